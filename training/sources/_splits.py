"""Deterministic splits: the same rows always land in the same split, on any machine.

Rows are ordered by a hash of their normalised text within each stratum and cut at the
cumulative shares. Identical texts hash alike, so duplicates never straddle two splits.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence


def text_digest(text: str) -> str:
    """sha256 of the text, case- and whitespace-normalised."""
    return hashlib.sha256(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


def stratified_split(
    items: Sequence[tuple[str, str]], shares: Sequence[tuple[str, float]]
) -> list[str]:
    """Split name for each ``(stratum, text)`` item; shares are ``(split, fraction)`` in order.

    A text seen more than once keeps the stratum of its first occurrence.
    """
    digests = [text_digest(text) for _, text in items]
    stratum_of: dict[str, str] = {}
    for (stratum, _), digest in zip(items, digests, strict=True):
        stratum_of.setdefault(digest, stratum)
    groups: dict[str, list[str]] = defaultdict(list)
    for digest, stratum in stratum_of.items():
        groups[stratum].append(digest)
    split_of: dict[str, str] = {}
    for members in groups.values():
        ordered = sorted(members)
        cuts = _cuts(len(ordered), shares)
        for i, digest in enumerate(ordered):
            split_of[digest] = next(name for name, cut in cuts if i < cut)
    return [split_of[d] for d in digests]


def _cuts(n: int, shares: Sequence[tuple[str, float]]) -> list[tuple[str, int]]:
    """Cumulative cut positions, rounded half up; the last split takes the rest."""
    total = sum(f for _, f in shares)
    cuts, cumulative = [], 0.0
    for name, fraction in shares[:-1]:
        cumulative += fraction / total
        cuts.append((name, int(n * cumulative + 0.5)))
    cuts.append((shares[-1][0], n))
    return cuts

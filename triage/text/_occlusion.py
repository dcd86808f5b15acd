"""Evidence for a flag the model raised without a lexicon hit: which part of the text drove it.

Occlusion: remove one segment at a time, score every variant in one batch, and point at the
segments whose removal lowers the flag's score the most. Segments are clauses; a text of a
single clause is split into jieba words instead, and adjacent chosen words are joined.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

from triage._schema import Span
from triage.text._normalize import normalize_text

_CLAUSE_BREAKS = frozenset(",.!?;:，。！？；：、…\n")
_NUMBER_SEPARATORS = frozenset(",.:")


def occlusion_evidence(
    text: str,
    score: Callable[[list[str]], Sequence[float]],
    *,
    max_spans: int = 2,
    exclude: Sequence[tuple[int, int]] = (),
    min_relative_drop: float = 0.5,
    max_segments: int = 32,
) -> list[Span]:
    """The segments of ``text`` whose removal lowers ``score`` the most, best first.

    ``score`` maps texts to the flag's score; it is called once, with ``text`` itself first
    and then one variant per removed segment. The strongest segment is always returned (when
    the text has any), others only when their drop is positive and at least
    ``min_relative_drop`` of the strongest. ``exclude`` holds character ranges that are never
    part of a span, such as the redactions, so evidence never shows personal data. A long
    text's consecutive segments are joined into about ``max_segments``, which bounds the
    batch. Offsets are exact: ``text[span.start:span.end] == span.text``.

    Pass the original text and let ``score`` normalise what the model sees
    (``lambda variants: model([normalize_text(v) for v in variants])``): normalisation is
    per character, so removing a segment and normalising commute.
    """
    if max_spans < 1 or max_segments < 1:
        raise ValueError("max_spans and max_segments must be at least 1")
    normalized = normalize_text(text)
    segments = _clause_segments(normalized, exclude)
    if len(segments) < 2:
        segments = _word_segments(normalized, exclude)
    if not segments:
        return []
    segments = _join_consecutive(segments, max_segments, exclude)
    variants = [text, *(text[:start] + text[end:] for start, end in segments)]
    scores = list(score(variants))
    if len(scores) != len(variants):
        raise ValueError(f"score returned {len(scores)} values for {len(variants)} texts")
    drops = [scores[0] - s for s in scores[1:]]
    chosen = _strongest_segments(normalized, segments, drops, max_spans, min_relative_drop)
    return [Span(start=start, end=end, text=text[start:end]) for start, end in chosen]


def _strongest_segments(
    text: str,
    segments: list[tuple[int, int]],
    drops: list[float],
    max_spans: int,
    min_relative_drop: float,
) -> list[tuple[int, int]]:
    ranked = sorted(range(len(segments)), key=lambda i: (-drops[i], segments[i][0]))
    best = drops[ranked[0]]
    groups: list[tuple[int, int]] = []
    for index in ranked:
        drop = drops[index]
        if groups and (drop <= 0 or drop < min_relative_drop * best):
            break
        start, end = segments[index]
        neighbour = next((g for g in groups if _adjacent(text, g, (start, end))), None)
        if neighbour is not None:
            groups[groups.index(neighbour)] = (min(start, neighbour[0]), max(end, neighbour[1]))
        elif len(groups) < max_spans:
            groups.append((start, end))
    return groups


def _join_consecutive(
    segments: list[tuple[int, int]], max_segments: int, exclude: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Join runs of consecutive segments so that about ``max_segments`` remain.

    A run never reaches across an excluded range, so a joined segment holds no personal data.
    """
    per_group = -(-len(segments) // max_segments)
    if per_group == 1:
        return segments
    joined: list[tuple[int, int]] = []
    count = 0
    for start, end in segments:
        if joined and count < per_group and not _any_excluded(joined[-1][1], start, exclude):
            joined[-1] = (joined[-1][0], end)
            count += 1
        else:
            joined.append((start, end))
            count = 1
    return joined


def _any_excluded(start: int, end: int, exclude: Sequence[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in exclude)


def _adjacent(text: str, a: tuple[int, int], b: tuple[int, int]) -> bool:
    first, second = sorted((a, b))
    return first[1] <= second[0] and not text[first[1] : second[0]].strip()


def _clause_segments(text: str, exclude: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    segments = []
    start = 0
    for position, char in enumerate(text):
        if _is_clause_break(text, position, char) or _excluded(position, exclude):
            segments.append((start, position))
            start = position + 1
    segments.append((start, len(text)))
    return [s for s in (_strip(text, *segment) for segment in segments) if s is not None]


def _word_segments(text: str, exclude: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    import jieba  # loads its dictionary on first use; only texts of one clause get here

    segments = []
    for word, start, end in jieba.tokenize(text):
        if any(c.isalnum() for c in word) and not any(
            _excluded(p, exclude) for p in range(start, end)
        ):
            stripped = _strip(text, start, end)
            if stripped is not None:
                segments.append(stripped)
    return segments


def _is_clause_break(text: str, position: int, char: str) -> bool:
    if char not in _CLAUSE_BREAKS:
        return False
    # 1,280.50 and 10:30 keep their separators.
    between_digits = (
        0 < position < len(text) - 1
        and text[position - 1].isdigit()
        and text[position + 1].isdigit()
    )
    return not (char in _NUMBER_SEPARATORS and between_digits)


def _excluded(position: int, exclude: Sequence[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in exclude)


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Trim whitespace, punctuation and symbols (emoji included) from both ends."""
    while start < end and _is_filler(text[start]):
        start += 1
    while end > start and _is_filler(text[end - 1]):
        end -= 1
    return (start, end) if start < end else None


def _is_filler(char: str) -> bool:
    return unicodedata.category(char)[0] in "PZSC"

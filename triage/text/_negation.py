"""Whether a lexicon hit is denied by its own clause: 没有被盗刷, 钱倒是没被骗, "nothing was stolen".

The scope is deliberately short: the few characters (Chinese) or words (English) before the
hit, inside its clause and after the last contrast word. "我没操作过，卡却被盗刷了" keeps its
hit, because 没 is in another clause and 却 starts a new scope.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable

from triage.text._lexicon import NegationRules

_CLAUSE_BREAK = re.compile(r"[,.!?;:，。！？；：、…\n]")
_ENGLISH_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_SCOPE_CHARS = 80


def _alternation(phrases: Iterable[str], *, latin: bool) -> re.Pattern[str] | None:
    ordered = sorted({p.lower() for p in phrases}, key=len, reverse=True)
    if not ordered:
        return None
    body = "|".join(re.escape(p) for p in ordered)
    return re.compile(rf"(?<![a-z])(?:{body})(?![a-z])" if latin else f"(?:{body})")


class NegationScope:
    """Applies the negation rules of a lexicon to hits in case-folded, normalised text."""

    def __init__(self, rules: NegationRules) -> None:
        self._window_chars = rules.window_chars
        self._window_words = rules.window_words
        self._cues_zh = tuple(rules.cues_zh)
        self._cues_en = frozenset(c.lower() for c in rules.cues_en)
        self._pseudo = [
            p
            for p in (
                _alternation(rules.pseudo_zh, latin=False),
                _alternation(rules.pseudo_en, latin=True),
            )
            if p is not None
        ]
        self._contrast = [
            p
            for p in (
                _alternation(rules.contrast_zh, latin=False),
                _alternation(rules.contrast_en, latin=True),
            )
            if p is not None
        ]

    def denied(self, text: str, starts: Iterable[int]) -> set[int]:
        """Which of the hits starting at ``starts`` are negated in their clause."""
        clause_starts = [0, *(m.end() for m in _CLAUSE_BREAK.finditer(text))]
        return {
            start
            for start in starts
            if self._denies(text, clause_starts[bisect_right(clause_starts, start) - 1], start)
        }

    def _denies(self, text: str, clause_start: int, start: int) -> bool:
        scope = self._scope(text, clause_start, start)
        if not scope:
            return False
        if any(cue in scope[-self._window_chars :] for cue in self._cues_zh):
            return True
        words = _ENGLISH_WORD.findall(scope)[-self._window_words :]
        return any(self._is_english_cue(word) for word in words)

    def _scope(self, text: str, clause_start: int, start: int) -> str:
        # Enough text for the windows and any pseudo-negation overlapping them; a bound keeps
        # a long clause with many hits linear.
        scope = text[max(clause_start, start - _SCOPE_CHARS) : start]
        after_contrast = max(
            (m.end() for p in self._contrast for m in p.finditer(scope)), default=0
        )
        scope = scope[after_contrast:]
        for pseudo in self._pseudo:
            scope = pseudo.sub(lambda m: " " * len(m.group()), scope)
        return scope

    def _is_english_cue(self, word: str) -> bool:
        return word in self._cues_en or ("n't" in self._cues_en and word.endswith("n't"))

"""Finding lexicon phrases in a Doc, in both languages, with exact character offsets.

Latin phrases match whole tokens case-insensitively through spaCy's PhraseMatcher (attr
LOWER), so "sue" never fires inside "issue". Chinese phrases match on characters: jieba cuts
被盗刷 as 被盗|刷 in one sentence and 被|盗刷 in another, so token matching would miss them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

_ASCII_UPPER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class PhraseHit(NamedTuple):
    """A phrase of ``key`` found at ``text[start:end]``."""

    key: str
    start: int
    end: int


def fold_case(text: str) -> str:
    """ASCII lowercase only: unlike str.lower() it never changes the length ('İ' stays one char)."""
    return text.translate(_ASCII_UPPER)


def _matches_by_token(phrase: str) -> bool:
    return bool(_LATIN_LETTER.search(phrase)) and not _HAN.search(phrase)


def _is_ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


class PhraseIndex:
    """Every phrase of a ``key -> phrases`` table, found in a Doc of the pipeline it was built for."""

    def __init__(self, nlp: Language, table: Mapping[str, Iterable[str]]) -> None:
        self._strings = nlp.vocab.strings
        self._matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        by_first_char: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, phrases in table.items():
            token_phrases = [p for p in phrases if _matches_by_token(p)]
            if token_phrases:
                self._matcher.add(key, [nlp.make_doc(p) for p in token_phrases])
            for phrase in (fold_case(p) for p in phrases if not _matches_by_token(p)):
                by_first_char[phrase[0]].append((phrase, key))
        # Longest first, so 被盗刷 is tried before 被盗 at the same position.
        self._by_first_char = {
            char: sorted(entries, key=lambda e: -len(e[0]))
            for char, entries in by_first_char.items()
        }
        # Jumps straight to the positions where some phrase could start.
        self._first_chars = (
            re.compile("[" + "".join(re.escape(c) for c in sorted(by_first_char)) + "]")
            if by_first_char
            else None
        )

    def find(self, doc: Doc, folded_text: str | None = None) -> list[PhraseHit]:
        """Leftmost-longest hits per key (hits of different keys may overlap), by position.

        ``folded_text`` is ``fold_case(doc.text)`` when the caller already has it.
        """
        folded = folded_text if folded_text is not None else fold_case(doc.text)
        hits = self._token_hits(doc) + self._character_hits(folded)
        kept: list[PhraseHit] = []
        end_of_last: dict[str, int] = {}  # sorted by start: only the last kept hit can overlap
        for hit in sorted(hits, key=lambda h: (h.start, h.start - h.end)):
            if hit.start >= end_of_last.get(hit.key, 0):
                kept.append(hit)
                end_of_last[hit.key] = hit.end
        return kept

    def _token_hits(self, doc: Doc) -> list[PhraseHit]:
        hits = []
        for match_id, start, end in self._matcher(doc):
            last = doc[end - 1]
            hits.append(PhraseHit(self._strings[match_id], doc[start].idx, last.idx + len(last)))
        return hits

    def _character_hits(self, text: str) -> list[PhraseHit]:
        hits: list[PhraseHit] = []
        if self._first_chars is None:
            return hits
        for candidate in self._first_chars.finditer(text):
            position = candidate.start()
            for phrase, key in self._by_first_char[candidate.group()]:
                end = position + len(phrase)
                if text.startswith(phrase, position) and self._bounded(text, position, end):
                    hits.append(PhraseHit(key, position, end))
        return hits

    @staticmethod
    def _bounded(text: str, start: int, end: int) -> bool:
        """A phrase that starts or ends with a Latin letter or digit must not run into another."""
        if _is_ascii_alnum(text[start]) and start > 0 and _is_ascii_alnum(text[start - 1]):
            return False
        return not (
            _is_ascii_alnum(text[end - 1]) and end < len(text) and _is_ascii_alnum(text[end])
        )

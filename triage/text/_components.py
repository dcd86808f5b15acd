"""The spaCy side of the text pipeline: registered components and the two blank pipelines.

Each component writes its result to a Doc extension with exact character offsets; the
``TextPipeline`` reads them back. Importing this module loads spaCy and registers the
factories, which is why ``TextPipeline`` imports it only when it is built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

import spacy
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc

from triage.text._facts import (
    CHANNEL,
    DATE,
    PRODUCT,
    Fact,
    english_date_value,
    find_amounts,
    find_card_tails,
    find_dates,
    find_service_numbers,
    leftmost_longest,
)
from triage.text._language import read_language
from triage.text._lexicon import load_evidence_lexicon, load_fact_lexicon
from triage.text._negation import NegationScope
from triage.text._personal_data import Redaction, find_personal_data
from triage.text._phrases import PhraseIndex, fold_case

LANGUAGE_READER = "triage_language"
PERSONAL_DATA_FINDER = "triage_personal_data"
FACT_FINDER = "triage_facts"
EVIDENCE_FINDER = "triage_evidence"

_TEXT_KEY = "triage.text"
_EXTENSIONS = (
    "language",
    "language_shares",
    "is_mixed_language",
    "personal_data",
    "facts",
    "flag_evidence",
)


def register_extensions() -> None:
    """The Doc attributes the components fill (``doc._.language`` ...); safe to call again."""
    for name in _EXTENSIONS:
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


def _texts(doc: Doc) -> tuple[str, str]:
    """``doc.text`` and its case-folded form, computed once per Doc (doc.text joins tokens)."""
    cached = doc.user_data.get(_TEXT_KEY)
    if cached is None:
        text = doc.text
        cached = doc.user_data[_TEXT_KEY] = (text, fold_case(text))
    text, folded = cached
    return text, folded


def _overlaps_any(start: int, end: int, redactions: Iterable[Redaction]) -> bool:
    return any(r.start < end and start < r.end for r in redactions)


class LanguageReader:
    """Sets ``doc._.language`` (zh/en, dominant script), its shares and whether it is mixed."""

    def __init__(self, *, mixed_threshold: float, default_language: str) -> None:
        self.mixed_threshold = mixed_threshold
        self.default_language = default_language

    def __call__(self, doc: Doc) -> Doc:
        reading = read_language(
            _texts(doc)[0], mixed_threshold=self.mixed_threshold, default=self.default_language
        )
        doc._.language = reading.language
        doc._.language_shares = reading.shares
        doc._.is_mixed_language = reading.is_mixed
        return doc


class PersonalDataFinder:
    """Sets ``doc._.personal_data``: validated ID, card, phone, e-mail and account numbers."""

    def __call__(self, doc: Doc) -> Doc:
        doc._.personal_data = find_personal_data(_texts(doc)[0], doc._.language or "zh")
        return doc


class FactFinder:
    """Sets ``doc._.facts``: amounts, dates, card tails, products and channels.

    Facts that overlap personal data are dropped: an entity's text is shown and stored.
    """

    def __init__(self, nlp: Language, lexicon_path: str) -> None:
        lexicon = load_fact_lexicon(lexicon_path or None)
        self._products = PhraseIndex(nlp, {k: v.all for k, v in lexicon.products.items()})
        self._channels = PhraseIndex(nlp, {k: v.all for k, v in lexicon.channels.items()})
        self._english_dates = Matcher(nlp.vocab, validate=True)
        if lexicon.date_patterns:
            self._english_dates.add(DATE, lexicon.date_patterns, greedy="LONGEST")
        self._date_trigger = _trigger_words(lexicon.date_patterns)

    def __call__(self, doc: Doc) -> Doc:
        text, folded = _texts(doc)
        found = [
            *find_amounts(text),
            *find_dates(text),
            *find_card_tails(text),
            *find_service_numbers(text),
            *self._english_date_facts(doc, folded),
            *self._mention_facts(doc, folded),
        ]
        redactions = doc._.personal_data or ()
        doc._.facts = tuple(
            f for f in leftmost_longest(found) if not _overlaps_any(f.start, f.end, redactions)
        )
        return doc

    def _english_date_facts(self, doc: Doc, folded: str) -> Iterator[Fact]:
        # The Matcher costs a quarter of a millisecond; most Chinese complaints have no date word.
        if self._date_trigger is not None and not self._date_trigger.search(folded):
            return
        for _, start, end in self._english_dates(doc):
            span = doc[start:end]
            yield Fact(DATE, span.start_char, span.end_char, english_date_value(span.text))

    def _mention_facts(self, doc: Doc, folded: str) -> list[Fact]:
        mentions = [Fact(PRODUCT, h.start, h.end, h.key) for h in self._products.find(doc, folded)]
        mentions += [Fact(CHANNEL, h.start, h.end, h.key) for h in self._channels.find(doc, folded)]
        # 微信 inside 微信支付 is the payment app, not the WeChat channel: a longer mention wins.
        return [
            m
            for m in mentions
            if not any(
                o.start <= m.start and m.end <= o.end and (o.end - o.start) > (m.end - m.start)
                for o in mentions
            )
        ]


def _trigger_words(patterns: list[list[dict[str, Any]]]) -> re.Pattern[str] | None:
    """Words one of which every pattern needs (its first required word); None: no filter."""
    words: set[str] = set()
    for pattern in patterns:
        required = [
            t["LOWER"] if "LOWER" in t else t["ORTH"]
            for t in pattern
            if ("LOWER" in t or "ORTH" in t) and t.get("OP", "1") in ("1", "+")
        ]
        if not required:
            return None
        first = required[0]
        words.update([first] if isinstance(first, str) else first["IN"])
    if not words:
        return None
    alternatives = "|".join(re.escape(w.lower()) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z])(?:{alternatives})(?![a-z])")


class EvidenceFinder:
    """Sets ``doc._.flag_evidence``: per urgency flag, the (start, end) of non-negated hits."""

    def __init__(self, nlp: Language, lexicon_path: str) -> None:
        lexicon = load_evidence_lexicon(lexicon_path or None)
        self.flags = tuple(lexicon.flags)
        self._index = PhraseIndex(nlp, {k: v.all for k, v in lexicon.flags.items()})
        self._negation = NegationScope(lexicon.negation)

    def __call__(self, doc: Doc) -> Doc:
        folded = _texts(doc)[1]
        redactions = doc._.personal_data or ()
        hits = self._index.find(doc, folded)
        negated = self._negation.denied(folded, (hit.start for hit in hits))
        evidence: dict[str, list[tuple[int, int]]] = {flag: [] for flag in self.flags}
        for hit in hits:
            if hit.start not in negated and not _overlaps_any(hit.start, hit.end, redactions):
                evidence[hit.key].append((hit.start, hit.end))
        doc._.flag_evidence = {flag: tuple(spans) for flag, spans in evidence.items()}
        return doc


@Language.factory(
    LANGUAGE_READER, default_config={"mixed_threshold": 0.25, "default_language": "zh"}
)
def make_language_reader(
    nlp: Language, name: str, mixed_threshold: float, default_language: str
) -> LanguageReader:
    register_extensions()
    return LanguageReader(mixed_threshold=mixed_threshold, default_language=default_language)


@Language.factory(PERSONAL_DATA_FINDER)
def make_personal_data_finder(nlp: Language, name: str) -> PersonalDataFinder:
    register_extensions()
    return PersonalDataFinder()


@Language.factory(FACT_FINDER, default_config={"lexicon_path": ""})
def make_fact_finder(nlp: Language, name: str, lexicon_path: str) -> FactFinder:
    """``lexicon_path`` empty: the shipped facts lexicon."""
    register_extensions()
    return FactFinder(nlp, lexicon_path)


@Language.factory(EVIDENCE_FINDER, default_config={"lexicon_path": ""})
def make_evidence_finder(nlp: Language, name: str, lexicon_path: str) -> EvidenceFinder:
    """``lexicon_path`` empty: the shipped evidence lexicon."""
    register_extensions()
    return EvidenceFinder(nlp, lexicon_path)


def build_language_pipeline(
    language: str,
    *,
    evidence_lexicon: str,
    fact_lexicon: str,
    mixed_threshold: float,
    default_language: str,
) -> Language:
    """A blank spaCy pipeline for ``language`` ('zh' with jieba, or 'en') with our components."""
    if language == "zh":
        import jieba

        # jieba logs its dictionary loading at DEBUG to stderr; service logs do not need it.
        jieba.setLogLevel(logging.WARNING)
        nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    else:
        nlp = spacy.blank(language)
    nlp.add_pipe(
        LANGUAGE_READER,
        config={"mixed_threshold": mixed_threshold, "default_language": default_language},
    )
    nlp.add_pipe(PERSONAL_DATA_FINDER)
    nlp.add_pipe(FACT_FINDER, config={"lexicon_path": fact_lexicon})
    nlp.add_pipe(EVIDENCE_FINDER, config={"lexicon_path": evidence_lexicon})
    # jieba loads its dictionary on first use: pay that when the pipeline is built.
    nlp("预热 warm-up")
    return nlp

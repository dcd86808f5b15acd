"""The text pipeline every complaint passes through before the model and before storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from triage._schema import Entity, Span
from triage.text._facts import Fact
from triage.text._language import LANGUAGES, read_language
from triage.text._lexicon import default_evidence_lexicon_path, default_fact_lexicon_path
from triage.text._normalize import normalize_text
from triage.text._personal_data import Redaction, redact

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc


class TextPipelineConfig(BaseModel):
    """The pipeline's knobs: which lexicons to load and when a text counts as mixed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lexicon_path: Path = Field(
        default_factory=default_evidence_lexicon_path,
        description="Evidence phrases per urgency flag (YAML).",
    )
    facts_path: Path = Field(
        default_factory=default_fact_lexicon_path,
        description="Product and channel phrases, English date patterns (YAML).",
    )
    mixed_threshold: float = Field(
        default=0.25, gt=0.0, le=0.5, description="Minority script share that makes a text mixed."
    )
    default_language: Literal["zh", "en"] = Field(
        default="zh", description="Language of a text with no letters, or an exact tie."
    )


@dataclass(frozen=True)
class TextAnalysis:
    """What the text pipeline learned about one complaint; offsets refer to ``text``."""

    text: str
    normalized: str
    language: str
    language_shares: dict[str, float]
    is_mixed: bool
    redacted_text: str
    redactions: tuple[Redaction, ...]
    entities: tuple[Entity, ...]
    lexicon_evidence: dict[str, tuple[Span, ...]]


class TextPipeline:
    """Language, normalisation, personal data, facts and flag evidence for complaint texts.

    The two spaCy pipelines (blank zh with jieba, blank en) are built once here and reused;
    each text goes to the pipeline of its dominant language.
    """

    def __init__(self, config: TextPipelineConfig | None = None) -> None:
        self.config = config or TextPipelineConfig()
        # spaCy loads here rather than on `import triage.text`.
        from triage.text._components import build_language_pipeline

        self._pipelines: dict[str, Language] = {
            language: build_language_pipeline(
                language,
                evidence_lexicon=str(self.config.lexicon_path),
                fact_lexicon=str(self.config.facts_path),
                mixed_threshold=self.config.mixed_threshold,
                default_language=self.config.default_language,
            )
            for language in LANGUAGES
        }

    def analyse(self, text: str) -> TextAnalysis:
        """Analyse one complaint."""
        normalized = normalize_text(text)
        doc = self._pipelines[self._route(normalized)](normalized)
        return _analysis(text, normalized, doc)

    def analyse_many(self, texts: Sequence[str], batch_size: int = 64) -> list[TextAnalysis]:
        """Analyse complaints in order, batching each language through ``nlp.pipe``."""
        normalized = [normalize_text(text) for text in texts]
        routes = [self._route(n) for n in normalized]
        analyses: dict[int, TextAnalysis] = {}
        for language, nlp in self._pipelines.items():
            indices = [i for i, route in enumerate(routes) if route == language]
            docs = nlp.pipe((normalized[i] for i in indices), batch_size=batch_size)
            for index, doc in zip(indices, docs, strict=True):
                analyses[index] = _analysis(texts[index], normalized[index], doc)
        return [analyses[i] for i in range(len(texts))]

    def _route(self, normalized: str) -> str:
        return read_language(
            normalized,
            mixed_threshold=self.config.mixed_threshold,
            default=self.config.default_language,
        ).language


def _analysis(text: str, normalized: str, doc: Doc) -> TextAnalysis:
    redactions: tuple[Redaction, ...] = doc._.personal_data
    facts: tuple[Fact, ...] = doc._.facts
    evidence: dict[str, tuple[tuple[int, int], ...]] = doc._.flag_evidence
    return TextAnalysis(
        text=text,
        normalized=normalized,
        language=doc._.language,
        language_shares=dict(doc._.language_shares),
        is_mixed=doc._.is_mixed_language,
        redacted_text=redact(text, redactions),
        redactions=redactions,
        # model_construct: the fields are built here from checked values; validation would
        # cost a tenth of the pipeline's time budget.
        entities=tuple(
            Entity.model_construct(
                label=f.label, start=f.start, end=f.end, text=text[f.start : f.end], value=f.value
            )
            for f in facts
        ),
        lexicon_evidence={
            flag: tuple(Span.model_construct(start=s, end=e, text=text[s:e]) for s, e in spans)
            for flag, spans in evidence.items()
        },
    )

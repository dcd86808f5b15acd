"""The text pipeline: language, normalisation, personal data, facts and evidence for flags.

Every complaint passes through it before the model and before anything is stored or logged.
Importing this package loads neither spaCy nor jieba; ``TextPipeline()`` builds the spaCy
pipelines once, and ``occlusion_evidence`` loads jieba only for single-clause texts.
"""

from __future__ import annotations

from triage.text._language import LanguageReading, read_language
from triage.text._lexicon import (
    BilingualPhrases,
    EvidenceLexicon,
    FactLexicon,
    NegationRules,
    load_evidence_lexicon,
    load_fact_lexicon,
)
from triage.text._normalize import normalize_text
from triage.text._occlusion import occlusion_evidence
from triage.text._personal_data import (
    PLACEHOLDERS,
    Redaction,
    find_personal_data,
    redact,
    redact_text,
)
from triage.text._pipeline import TextAnalysis, TextPipeline, TextPipelineConfig

__all__ = [
    "PLACEHOLDERS",
    "BilingualPhrases",
    "EvidenceLexicon",
    "FactLexicon",
    "LanguageReading",
    "NegationRules",
    "Redaction",
    "TextAnalysis",
    "TextPipeline",
    "TextPipelineConfig",
    "find_personal_data",
    "load_evidence_lexicon",
    "load_fact_lexicon",
    "normalize_text",
    "occlusion_evidence",
    "read_language",
    "redact",
    "redact_text",
]

"""The phrase lists behind evidence and facts, loaded from YAML files into typed objects."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from triage._yaml_config import load_yaml_model

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class BilingualPhrases(BaseModel):
    """The phrases for one key (a flag, a product, a channel), Chinese and English."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: tuple[str, ...] = ()
    en: tuple[str, ...] = ()

    @field_validator("zh", "en", mode="before")
    @classmethod
    def _phrases_as_text(cls, v: Any) -> Any:
        # YAML reads 12378 as a number; a phrase is always text.
        return [str(p) for p in v] if isinstance(v, list) else v

    @field_validator("zh", "en")
    @classmethod
    def _non_empty(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        blank = [p for p in v if not p.strip()]
        if blank:
            raise ValueError("phrases must not be empty")
        return tuple(p.strip() for p in v)

    @property
    def all(self) -> tuple[str, ...]:
        return self.zh + self.en


def _check_names(mapping: dict[str, BilingualPhrases]) -> dict[str, BilingualPhrases]:
    bad = [name for name in mapping if not _NAME.match(name)]
    if bad:
        raise ValueError(f"names must be snake_case ASCII: {', '.join(bad)}")
    return mapping


PhraseTable = Annotated[dict[str, BilingualPhrases], AfterValidator(_check_names)]


class NegationRules(BaseModel):
    """When a phrase hit is denied by its clause (没有被盗刷, "nothing was stolen")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_chars: int = Field(default=5, ge=1, le=20)
    window_words: int = Field(default=4, ge=1, le=10)
    cues_zh: tuple[str, ...] = ()
    cues_en: tuple[str, ...] = ()
    pseudo_zh: tuple[str, ...] = ()
    pseudo_en: tuple[str, ...] = ()
    contrast_zh: tuple[str, ...] = ()
    contrast_en: tuple[str, ...] = ()


class EvidenceLexicon(BaseModel):
    """Evidence phrases per urgency flag, and the negation rules that veto a hit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    flags: PhraseTable = Field(min_length=1)
    negation: NegationRules = NegationRules()


class FactLexicon(BaseModel):
    """Product and channel phrases by vocabulary name, and English date token patterns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    products: PhraseTable = Field(default_factory=dict)
    channels: PhraseTable = Field(default_factory=dict)
    date_words: dict[str, list[str]] = Field(default_factory=dict)  # YAML anchors only
    date_patterns: list[list[dict[str, Any]]] = Field(default_factory=list)


def default_evidence_lexicon_path() -> Path:
    return Path(str(resources.files("triage") / "config" / "lexicon" / "evidence.yaml"))


def default_fact_lexicon_path() -> Path:
    return Path(str(resources.files("triage") / "config" / "lexicon" / "facts.yaml"))


_Model = TypeVar("_Model", bound=BaseModel)


def load_evidence_lexicon(path: str | Path | None = None) -> EvidenceLexicon:
    """Load and validate an evidence lexicon; raises ConfigError with a readable message."""
    return _load(
        Path(path) if path is not None else default_evidence_lexicon_path(), EvidenceLexicon
    )


def load_fact_lexicon(path: str | Path | None = None) -> FactLexicon:
    """Load and validate a fact lexicon; raises ConfigError with a readable message."""
    return _load(Path(path) if path is not None else default_fact_lexicon_path(), FactLexicon)


def _load(file: Path, model: type[_Model]) -> _Model:
    return load_yaml_model(file, model, "lexicon")

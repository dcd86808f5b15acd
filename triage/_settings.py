"""Paths, URIs and service limits: one settings object, environment variables override.

Every variable is ``TRIAGE_<FIELD>`` (see the README's configuration table). Defaults keep
all state in a project-local, git-ignored ``.state/`` folder and the converted base model in
a user cache outside the repository.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "complaint-triage"


class Settings(BaseSettings):
    """Where state lives and how the service behaves; see README 'Configuration'."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="ignore")

    state_dir: Path = Path(".state")
    model_cache: Path = Field(default_factory=_default_cache)
    shared_datasets_dir: Path = Path("../shared/datasets")
    taxonomy_path: Path | None = None
    # the recipe `make run` trains when no champion exists; training/configs/fast.yaml is the
    # 4-layer student that meets the serving speed targets (see serving/README.md)
    first_run_config: Path = Path("training/configs/default.yaml")

    mlflow_tracking_uri: str = ""
    mlflow_registry_uri: str = ""
    mlflow_artifact_location: str = ""
    mlflow_experiment: str = "complaint-triage"
    registered_model_name: str = "complaint-triage"
    bentoml_home: Path | None = None

    review_db_url: str = ""
    record_mode: Literal["off", "all", "needs_review", "sample"] = "off"
    record_sample_rate: float = Field(default=0.05, ge=0.0, le=1.0)

    max_text_chars: int = Field(default=5000, ge=1)
    max_batch_size: int = Field(default=256, ge=1)
    api_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    num_threads: int | None = None
    # dynamic int8 costs ~5 points of category macro-F1 on the starter test (serving/README.md)
    quantize: Literal["none", "dynamic_int8"] = "none"
    # evidence for a flag the lexicon does not explain: n-gram attribution, occlusion, or none
    evidence_fallback: Literal["ngram", "occlusion", "off"] = "ngram"
    host: str = "127.0.0.1"
    port: int = 3000

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, v: object) -> object:
        if isinstance(v, str):
            return [t.strip() for t in v.split(",") if t.strip()]
        return v

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        state = self.state_dir.expanduser().resolve()
        self.state_dir = state
        self.model_cache = self.model_cache.expanduser().resolve()
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{state / 'mlflow.db'}"
        if not self.mlflow_registry_uri:
            self.mlflow_registry_uri = self.mlflow_tracking_uri
        if not self.mlflow_artifact_location:
            self.mlflow_artifact_location = str(state / "mlartifacts")
        if self.bentoml_home is None:
            self.bentoml_home = state / "bentoml"
        if not self.review_db_url:
            self.review_db_url = f"sqlite:///{state / 'review.db'}"
        return self

    @property
    def base_model_dir(self) -> Path:
        """Where the converted default base model (HF format) is cached."""
        return self.model_cache / "base" / "multilingual-e5-small"

    def ensure_dirs(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.model_cache.mkdir(parents=True, exist_ok=True)
        assert self.bentoml_home is not None
        self.bentoml_home.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("BENTOML_HOME", str(self.bentoml_home))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

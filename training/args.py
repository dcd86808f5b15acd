"""The knobs of a training run: one typed object, loaded from a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from triage._yaml_config import load_yaml_model


class DataSource(BaseModel):
    """One labelled source in the training mix, with its splits and sampling weight."""

    model_config = ConfigDict(extra="forbid")

    name: str
    train: Path | None = None
    dev: Path | None = None
    test: Path | None = None
    weight: float = Field(default=1.0, ge=0.0)
    max_train: int | None = Field(default=None, ge=1)


class NgramConfig(BaseModel):
    """The n-gram branch of a training config."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    max_n: int = Field(default=3, ge=1, le=5)
    min_df: int = Field(default=2, ge=1)
    max_terms: int = Field(default=300_000, ge=100)
    c_grid: list[float] = Field(default_factory=lambda: [1.0, 3.0, 10.0, 30.0, 100.0], min_length=1)
    blend_steps: int = Field(default=21, ge=2)


class TrainingConfig(BaseModel):
    """Base model, data mix, sequence length, schedule, seed and device of a run."""

    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    base_model: str = "default"
    taxonomy: Path | None = None
    sources: list[DataSource] = Field(min_length=1)

    max_length: int = Field(default=256, ge=16, le=512)
    trainable_top_layers: int | Literal["all"] = 2
    freeze_word_embeddings: bool = True
    lexicon_features: bool = True
    ngram_branch: NgramConfig = Field(default_factory=NgramConfig)
    keep_layers: int | None = Field(default=None, ge=1)

    epochs: int = Field(default=8, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    head_learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = 0.01
    warmup_ratio: float = Field(default=0.06, ge=0, le=0.5)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    loss_weights: dict[str, float] = Field(
        default_factory=lambda: {"category": 1.0, "flags": 1.0, "departments": 1.0, "owner": 0.5}
    )
    flag_positive_weight: float = Field(default=3.0, gt=0)  # flags are rare: weigh positives up
    early_stopping_patience: int = Field(default=3, ge=1)
    max_steps: int | None = Field(default=None, ge=1)

    seed: int = 13
    device: str = "auto"
    num_threads: int | None = None

    fund_safety_recall_target: float = Field(default=0.98, gt=0, le=1)
    # When dev precision at the target is below fund_safety_precision_target, take the most
    # dev recall that holds that precision, never below the floor (null: always the target).
    # See training/README.md.
    fund_safety_recall_floor: float | None = Field(default=0.95, gt=0, le=1)
    fund_safety_precision_target: float = Field(default=0.85, gt=0, le=1)
    review_accuracy_target: float = Field(default=0.95, gt=0, le=1)

    register_model: bool = True
    registered_model_name: str | None = None

    @field_validator("sources")
    @classmethod
    def _has_training_data(cls, v: list[DataSource]) -> list[DataSource]:
        if not any(s.train for s in v):
            raise ValueError("at least one source needs a train split")
        if not any(s.dev for s in v):
            raise ValueError("at least one source needs a dev split (calibration, early stopping)")
        return v


def load_training_config(path: str | Path) -> TrainingConfig:
    """Read a YAML config; relative data paths are taken from the current directory."""
    return load_yaml_model(Path(path), TrainingConfig, "training config")

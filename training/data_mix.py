"""The training mix: labelled sources, their splits and weights, turned into tensors' raw material."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.args import TrainingConfig
from triage import ConfigError, LabelledRecord, Taxonomy, read_records
from triage._records import content_hash


@dataclass
class SplitData:
    """The records of one split with their source weights and label targets."""

    records: list[LabelledRecord]
    weights: np.ndarray
    category: np.ndarray  # class index, -1 when unknown
    flags: np.ndarray  # multi-hot
    flag_mask: np.ndarray  # 1 where the flags are known
    departments: np.ndarray  # multi-hot
    owner: np.ndarray  # owner index, -1 when unknown
    department_mask: np.ndarray

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class DataVersion:
    source: str
    split: str
    path: str
    records: int
    digest: str


@dataclass
class TrainingData:
    train: SplitData
    dev: SplitData
    test: SplitData | None
    versions: list[DataVersion] = field(default_factory=list)


def targets(records: list[LabelledRecord], weights: list[float], taxonomy: Taxonomy) -> SplitData:
    """Encode labels as arrays; unknown fields become masks, never negatives."""
    cats, flags, depts = taxonomy.category_names, taxonomy.flag_names, taxonomy.department_names
    n = len(records)
    category = np.full(n, -1, dtype=np.int64)
    flag_arr = np.zeros((n, len(flags)), dtype=np.float32)
    flag_mask = np.zeros_like(flag_arr)
    dept_arr = np.zeros((n, len(depts)), dtype=np.float32)
    owner = np.full(n, -1, dtype=np.int64)
    dept_mask = np.zeros_like(dept_arr)
    for i, rec in enumerate(records):
        if rec.knows("category") and rec.category in cats:
            category[i] = cats.index(rec.category)
        if rec.knows("urgency_flags"):
            flag_mask[i] = 1
            for f in rec.urgency_flags:
                flag_arr[i, flags.index(f)] = 1
        if rec.knows("departments") and rec.departments:
            dept_mask[i] = 1
            for d in rec.departments:
                dept_arr[i, depts.index(d)] = 1
            owner[i] = depts.index(rec.departments[0])
    return SplitData(
        records, np.asarray(weights, dtype=np.float32), category, flag_arr, flag_mask,
        dept_arr, owner, dept_mask,
    )


def _check_labels(records: list[LabelledRecord], taxonomy: Taxonomy, path: Path) -> None:
    cats, flags, depts = (
        set(taxonomy.category_names), set(taxonomy.flag_names), set(taxonomy.department_names)
    )
    for rec in records:
        bad = (
            ([rec.category] if rec.knows("category") and rec.category not in cats else [])
            + [f for f in rec.urgency_flags if f not in flags]
            + [d for d in rec.departments if d not in depts]
        )
        if bad:
            raise ConfigError(
                f"{path}: record {rec.id!r} has label(s) not in the taxonomy: {', '.join(map(str, bad))}"
                " (run `triage data validate`)"
            )


def load_training_data(config: TrainingConfig, taxonomy: Taxonomy) -> TrainingData:
    """Read every source's splits, apply caps and weights, and record dataset versions."""
    rng = random.Random(config.seed)
    parts: dict[str, tuple[list[LabelledRecord], list[float]]] = {
        "train": ([], []), "dev": ([], []), "test": ([], []),
    }
    versions: list[DataVersion] = []
    for source in config.sources:
        for split in ("train", "dev", "test"):
            path = getattr(source, split)
            if path is None:
                continue
            if not Path(path).is_file():
                raise ConfigError(f"source {source.name!r}: {split} file not found: {path}")
            records = read_records(path)
            _check_labels(records, taxonomy, Path(path))
            if split == "train" and source.max_train and len(records) > source.max_train:
                records = rng.sample(records, source.max_train)
            versions.append(
                DataVersion(source.name, split, str(path), len(records), content_hash(records))
            )
            parts[split][0].extend(records)
            parts[split][1].extend([source.weight] * len(records))
    test = targets(*parts["test"], taxonomy) if parts["test"][0] else None
    return TrainingData(
        train=targets(*parts["train"], taxonomy),
        dev=targets(*parts["dev"], taxonomy),
        test=test,
        versions=versions,
    )

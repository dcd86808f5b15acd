"""Readers for the shared real data sets: each yields plain rows with their mapping keys.

A reader knows a source's file layout and nothing about the taxonomy. The files are read
in place (``../shared/datasets/<name>/``) and never modified.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from triage import ConfigError

SplitPolicy = Literal["published", "carve_dev", "hashed"]


@dataclass(frozen=True)
class SourceRow:
    """One row of a source file."""

    file: str  # file name inside the source folder
    row: int  # 0-based data row in that file (header excluded)
    split: str | None  # the source's published split, if it has one
    text: str
    keys: tuple[str, ...]  # mapping keys, most specific first
    received_at: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """How to read one source and how its records get their splits."""

    name: str
    files: tuple[str, ...]
    read: Callable[[Path], Iterator[SourceRow]]
    split_policy: SplitPolicy
    split_note: str


def _open(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        yield from csv.reader(fh)


def read_heimao_fin6(folder: Path) -> Iterator[SourceRow]:
    """``{train,dev,test}.csv`` without a header (text,label_id); ids resolved by labels.csv."""
    with (folder / "labels.csv").open(encoding="utf-8", newline="") as fh:
        names = {row["label_id"]: row["label_zh"] for row in csv.DictReader(fh)}
    for split in ("train", "dev", "test"):
        file = f"{split}.csv"
        for i, cells in enumerate(_open(folder / file)):
            if len(cells) != 2:
                raise ConfigError(f"{folder / file}: row {i} has {len(cells)} columns, expected 2")
            text, label_id = cells
            yield SourceRow(file, i, split, text.strip(), (names.get(label_id, label_id),))


def _iso_date(value: str) -> str | None:
    try:
        return datetime.strptime(value.strip(), "%Y/%m/%d").date().isoformat()
    except ValueError:
        return None


def read_cfpb_sample(folder: Path) -> Iterator[SourceRow]:
    """``complaints_sample.csv`` with a header; keys "Issue | Sub-issue" then "Issue"."""
    file = "complaints_sample.csv"
    with (folder / file).open(encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            issue, sub = row["Issue"].strip(), row["Sub-issue"].strip()
            keys = (f"{issue} | {sub}", issue) if sub else (issue,)
            yield SourceRow(
                file,
                i,
                None,
                row["Consumer complaint narrative"].strip(),
                keys,
                received_at=_iso_date(row["Date received"]),
            )


def read_banking77(folder: Path) -> Iterator[SourceRow]:
    """``{train,test}.csv`` with a header (text,category)."""
    for split in ("train", "test"):
        file = f"{split}.csv"
        with (folder / file).open(encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                yield SourceRow(file, i, split, row["text"].strip(), (row["category"],))


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in (
        SourceSpec(
            "heimao_fin6",
            ("train.csv", "dev.csv", "test.csv", "labels.csv"),
            read_heimao_fin6,
            "published",
            "the source's own train/dev/test split (stratified 80/10/10, seed 42)",
        ),
        SourceSpec(
            "cfpb_sample",
            ("complaints_sample.csv",),
            read_cfpb_sample,
            "hashed",
            "no published split: 80/10/10 stratified by mapped labels, ordered by sha256 of"
            " the normalised narrative (identical narratives share a split)",
        ),
        SourceSpec(
            "banking77",
            ("train.csv", "test.csv"),
            read_banking77,
            "carve_dev",
            "published train/test; dev is 10% of train per intent, ordered by sha256 of the"
            " normalised text",
        ),
    )
}

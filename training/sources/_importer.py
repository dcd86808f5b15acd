"""Importers: a shared real data set + its mapping file → labelled-record splits and a card.

Output: ``{out_dir}/{name}/{train,dev,test}.jsonl`` and ``README.md``. Rows whose label
the mapping does not list, maps to null, or leaves with no known field are dropped and
counted; rows without text are dropped too.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from training.sources._card import render_card
from training.sources._mapping import LabelTarget, SourceMapping, load_mapping, require_valid
from training.sources._readers import SOURCES, SourceRow, SourceSpec
from training.sources._splits import stratified_split
from triage import ConfigError, LabelledRecord, Taxonomy, get_settings, load_taxonomy, write_records
from triage._records import LABEL_FIELDS, content_hash

SPLITS = ("train", "dev", "test")
UNKNOWN, NONE = "(unknown)", "(none)"


@dataclass(frozen=True)
class ImportSummary:
    """What one import wrote: counts, label distribution, drops, version and input checksums."""

    source: str
    lang: str
    out_dir: Path
    counts: dict[str, int]  # records per split
    label_counts: dict[str, dict[str, int]]  # field → label → records (departments: the owner)
    known_counts: dict[str, int]  # field → records that know it
    dropped: dict[str, int]  # reason → rows
    version: str  # content_hash of the records and the mapping file bytes
    mapping_sha256: str
    input_sha256: dict[str, str]  # file name → sha256, computed at import
    created: str  # ISO date
    limit: int | None = None
    split_note: str = ""
    per_split_labels: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["out_dir"] = str(self.out_dir)
        out.pop("per_split_labels")
        return out


@dataclass(frozen=True)
class _Mapped:
    row: SourceRow
    key: str
    target: LabelTarget


def list_sources() -> list[str]:
    """Names of the shared data sets that have an importer and a mapping file."""
    return list(SOURCES)


def import_source(
    name: str,
    *,
    datasets_dir: Path,
    out_dir: Path,
    limit: int | None = None,
    taxonomy: Taxonomy | None = None,
) -> ImportSummary:
    """Import one source into ``out_dir/name``; ``limit`` keeps the first N records per split."""
    spec = _spec(name)
    folder = _source_folder(spec, Path(datasets_dir))
    mapping = load_mapping(name)
    require_valid(mapping, taxonomy or load_taxonomy(get_settings().taxonomy_path))
    input_sha256 = {f: _file_sha256(folder / f) for f in spec.files}
    kept, dropped = _map_rows(spec.read(folder), mapping)
    splits = {
        split: [_record(name, split, m, mapping) for m in rows][:limit]
        for split, rows in _assign_splits(spec, kept).items()
    }
    target = Path(out_dir) / name
    for split, records in splits.items():
        write_records(records, target / f"{split}.jsonl")
    everything = [r for split in SPLITS for r in splits[split]]
    summary = ImportSummary(
        source=name,
        lang=mapping.lang,
        out_dir=target,
        counts={split: len(splits[split]) for split in SPLITS},
        label_counts=_label_counts(everything),
        known_counts={f: sum(r.knows(f) for r in everything) for f in LABEL_FIELDS},
        dropped=dict(dropped),
        version=content_hash(everything, mapping.content),
        mapping_sha256=mapping.sha256,
        input_sha256=input_sha256,
        created=date.today().isoformat(),
        limit=limit,
        split_note=spec.split_note,
        per_split_labels={s: _flat_counts(splits[s]) for s in SPLITS},
    )
    (target / "README.md").write_text(render_card(summary, mapping, folder), encoding="utf-8")
    return summary


def import_all(
    datasets_dir: Path,
    out_dir: Path,
    *,
    limit: int | None = None,
    taxonomy: Taxonomy | None = None,
) -> list[ImportSummary]:
    """Import every source in :func:`list_sources` order."""
    taxonomy = taxonomy or load_taxonomy(get_settings().taxonomy_path)
    return [
        import_source(n, datasets_dir=datasets_dir, out_dir=out_dir, limit=limit, taxonomy=taxonomy)
        for n in list_sources()
    ]


def _spec(name: str) -> SourceSpec:
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}: choose from {', '.join(SOURCES)}")
    return SOURCES[name]


def _source_folder(spec: SourceSpec, datasets_dir: Path) -> Path:
    folder = datasets_dir / spec.name
    if not folder.is_dir():
        raise ConfigError(f"{folder} not found: set TRIAGE_SHARED_DATASETS_DIR")
    missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"{folder / missing[0]} not found: the shared data set is incomplete")
    return folder


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _map_rows(
    rows: Iterable[SourceRow], mapping: SourceMapping
) -> tuple[list[_Mapped], Counter[str]]:
    kept: list[_Mapped] = []
    dropped: Counter[str] = Counter()
    for row in rows:
        if not row.text:
            dropped["no_text"] += 1
            continue
        key, target = mapping.lookup(row.keys)
        if key is None:
            dropped["label_not_in_mapping"] += 1
        elif target is None:
            dropped["mapped_to_nothing"] += 1
        elif not (target := mapping.guard(target, row.text)).known:
            dropped["nothing_known_for_text"] += 1
        else:
            kept.append(_Mapped(row, key, target))
    return kept, dropped


def _signature(target: LabelTarget) -> str:
    """The stratum of a record: its known labels."""
    return "|".join(f"{f}={getattr(target, f) if f in target.known else '?'}" for f in LABEL_FIELDS)


def _assign_splits(spec: SourceSpec, kept: list[_Mapped]) -> dict[str, list[_Mapped]]:
    out: dict[str, list[_Mapped]] = {split: [] for split in SPLITS}
    if spec.split_policy == "hashed":
        names = stratified_split(
            [(_signature(m.target), m.row.text) for m in kept],
            [("train", 0.8), ("dev", 0.1), ("test", 0.1)],
        )
        for m, split in zip(kept, names, strict=True):
            out[split].append(m)
        return out
    train = [m for m in kept if m.row.split == "train"]
    if spec.split_policy == "carve_dev":
        names = stratified_split(
            [(m.key, m.row.text) for m in train], [("dev", 0.1), ("train", 0.9)]
        )
        out["dev"] = [m for m, s in zip(train, names, strict=True) if s == "dev"]
        out["train"] = [m for m, s in zip(train, names, strict=True) if s == "train"]
    else:
        out["train"] = train
        out["dev"] = [m for m in kept if m.row.split == "dev"]
    out["test"] = [m for m in kept if m.row.split == "test"]
    return out


def _record(name: str, split: str, m: _Mapped, mapping: SourceMapping) -> LabelledRecord:
    t = m.target
    return LabelledRecord(
        id=f"{name}-{split}-{m.row.row}",
        text=m.row.text,
        lang=mapping.lang,
        category=t.category if "category" in t.known else None,
        urgency_flags=t.urgency_flags if "urgency_flags" in t.known else (),
        departments=t.departments if "departments" in t.known else (),
        known=t.known,
        source=name,
        channel=mapping.channel,
        received_at=m.row.received_at,
        extra={"source_label": m.key},
    )


def _label_counts(records: list[LabelledRecord]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {f: Counter() for f in LABEL_FIELDS}
    for r in records:
        category = r.category if r.knows("category") and r.category else UNKNOWN
        counts["category"][category] += 1
        if r.knows("urgency_flags"):
            counts["urgency_flags"].update(r.urgency_flags or (NONE,))
        else:
            counts["urgency_flags"][UNKNOWN] += 1
        owner = r.departments[0] if r.knows("departments") and r.departments else UNKNOWN
        counts["departments"][owner] += 1
    return {f: dict(sorted(c.items())) for f, c in counts.items()}


def _flat_counts(records: list[LabelledRecord]) -> dict[str, int]:
    """``field: label`` → records, for the card's per-split table."""
    return {
        f"{fld}: {label}": n
        for fld, labels in _label_counts(records).items()
        for label, n in labels.items()
    }

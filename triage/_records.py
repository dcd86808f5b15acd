"""The labelled-record format shared by every data source, training, evaluation and review export.

One JSON object per line (CSV accepted on import). ``known`` says which label fields a
source really labels: a field that is not known is *missing*, never a negative.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triage._errors import InputError

LABEL_FIELDS = ("category", "urgency_flags", "departments")


@dataclass(frozen=True)
class LabelledRecord:
    """One complaint with whatever labels its source knows."""

    id: str
    text: str
    lang: str = ""
    category: str | None = None
    urgency_flags: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    known: frozenset[str] = frozenset(LABEL_FIELDS)
    source: str = ""
    channel: str | None = None
    product: str | None = None
    received_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def knows(self, label_field: str) -> bool:
        return label_field in self.known

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "lang": self.lang,
            "category": self.category,
            "urgency_flags": list(self.urgency_flags),
            "departments": list(self.departments),
            "source": self.source,
            "channel": self.channel,
            "product": self.product,
            "received_at": self.received_at,
            "known": [f for f in LABEL_FIELDS if f in self.known],
        }
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LabelledRecord:
        """Build from a parsed object; missing ``known`` means: what is present is known."""
        if "known" in obj and obj["known"] is not None:
            known = frozenset(str(k) for k in obj["known"])
        else:
            known = frozenset(
                f
                for f in LABEL_FIELDS
                if obj.get(f) not in (None, "") and (f == "category" or isinstance(obj.get(f), list))
            )
        core = {
            "id", "text", "lang", "category", "urgency_flags", "departments", "known",
            "source", "channel", "product", "received_at",
        }
        return cls(
            id=str(obj.get("id") or ""),
            text=str(obj["text"]) if isinstance(obj.get("text"), str) else "",
            lang=str(obj.get("lang") or ""),
            category=obj.get("category") or None,
            urgency_flags=tuple(_as_list(obj.get("urgency_flags"))),
            departments=tuple(_as_list(obj.get("departments"))),
            known=known,
            source=str(obj.get("source") or ""),
            channel=obj.get("channel") or None,
            product=obj.get("product") or None,
            received_at=obj.get("received_at") or None,
            extra={k: v for k, v in obj.items() if k not in core},
        )


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        # CSV cells carry lists as "a;b" or "a,b" or JSON.
        text = value.strip()
        if text.startswith("["):
            return [str(v) for v in json.loads(text)]
        return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


@dataclass(frozen=True)
class RawLine:
    """A line of an input file before validation, for error messages with file and line."""

    path: Path
    line: int
    obj: dict[str, Any] | None
    error: str | None = None


def iter_raw(path: str | Path) -> Iterator[RawLine]:
    """Read a JSONL or CSV file line by line, keeping the line number and parse problems."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: file not found")
    if file.suffix.lower() == ".csv":
        yield from _iter_csv(file)
        return
    with file.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield RawLine(file, number, None, "not UTF-8")
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawLine(file, number, None, f"invalid JSON: {exc.msg}")
                continue
            if not isinstance(obj, dict):
                yield RawLine(file, number, None, "expected a JSON object")
                continue
            yield RawLine(file, number, obj)


def _iter_csv(file: Path) -> Iterator[RawLine]:
    try:
        handle = file.open(encoding="utf-8", newline="")
        with handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "text" not in reader.fieldnames:
                raise InputError(f"{file}: CSV needs a header with a 'text' column")
            for row in reader:
                obj: dict[str, Any] = {k: v for k, v in row.items() if k is not None}
                yield RawLine(file, reader.line_num, obj)
    except UnicodeDecodeError as exc:
        raise InputError(f"{file}: not UTF-8 text") from exc


def read_records(paths: str | Path | Iterable[str | Path]) -> list[LabelledRecord]:
    """Read labelled records; raises InputError at the first unreadable line."""
    if isinstance(paths, str | Path):
        paths = [paths]
    records: list[LabelledRecord] = []
    for path in paths:
        for raw in iter_raw(path):
            if raw.obj is None:
                raise InputError(f"{raw.path}:{raw.line}: {raw.error}")
            records.append(LabelledRecord.from_json(raw.obj))
    return records


def write_records(records: Iterable[LabelledRecord], path: str | Path) -> int:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with file.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count


def content_hash(records: Iterable[LabelledRecord], *extra: bytes) -> str:
    """A dataset version: sha256 over the canonical records (and e.g. the mapping file)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    for blob in extra:
        digest.update(blob)
    return digest.hexdigest()[:16]

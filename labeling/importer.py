"""Import of JSONL/CSV files into the review store: predictions, labelled or unlabelled records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labeling._intake import CaseInput, case_from_prediction, case_from_record
from labeling.store import ReviewStore
from triage._errors import InputError
from triage._records import LabelledRecord, iter_raw


@dataclass
class ImportSummary:
    predictions: int = 0
    labelled: int = 0
    unlabelled: int = 0
    added: int = 0
    duplicates: int = 0

    def line(self, path: Path) -> str:
        return (
            f"{path}: {self.added} new case(s), {self.duplicates} already in the store "
            f"({self.predictions} predictions, {self.labelled} labelled, {self.unlabelled} unlabelled records)"
        )


def is_prediction(obj: dict[str, Any]) -> bool:
    """A line written by `triage predict` or the service (the contract's JSON object)."""
    return "redacted_text" in obj and isinstance(obj.get("category"), dict)


def import_file(
    store: ReviewStore, path: str | Path, *, origin: str = "import", batch: int = 500
) -> ImportSummary:
    """Add every line of a file as a case; stops with file:line at the first bad line.

    Predictions keep their suggestion and confidence; labelled records become cases whose
    suggestion is the record's labels (to verify); unlabelled records get no suggestion.
    Raw texts are redacted before they are stored.
    """
    file = Path(path)
    summary = ImportSummary()
    pending: list[CaseInput] = []

    def _flush() -> None:
        result = store.add_cases(pending)
        summary.added += result.added
        summary.duplicates += result.duplicates
        pending.clear()

    for raw in iter_raw(file):
        if raw.obj is None:
            raise InputError(f"{raw.path}:{raw.line}: {raw.error}")
        try:
            if is_prediction(raw.obj):
                pending.append(case_from_prediction(raw.obj, store.taxonomy, origin=origin))
                summary.predictions += 1
            else:
                record = LabelledRecord.from_json(raw.obj)
                if not record.text.strip():
                    raise InputError(f"{raw.path}:{raw.line}: text is missing or empty")
                _check_record(store, record, f"{raw.path}:{raw.line}")
                pending.append(case_from_record(record, store.taxonomy, origin=origin))
                if record.known:
                    summary.labelled += 1
                else:
                    summary.unlabelled += 1
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "record"
            raise InputError(f"{raw.path}:{raw.line}: {where}: {err['msg']}") from exc
        if len(pending) >= batch:
            _flush()
    if pending:
        _flush()
    return summary


def _check_record(store: ReviewStore, record: LabelledRecord, where: str) -> None:
    tax = store.taxonomy
    if record.knows("category") and record.category not in tax.category_names:
        raise InputError(f"{where}: category {record.category!r} is not in the taxonomy")
    bad = [f for f in record.urgency_flags if f not in tax.flag_names]
    if bad:
        raise InputError(f"{where}: unknown urgency flag(s) {', '.join(bad)}")
    bad = [d for d in record.departments if d not in tax.department_names]
    if bad:
        raise InputError(f"{where}: unknown department(s) {', '.join(bad)}")

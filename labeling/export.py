"""Reviewed cases back into training: a dataset version in the labelled-record format.

Each export writes ``NAME.jsonl`` (one labelled record per decided case, all three label
fields known, redacted text) and ``NAME.README.md`` (its card) side by side, and records
in the store which decision went into which export.
"""

from __future__ import annotations

import getpass
import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from labeling._models import utcnow
from labeling.store import CaseView, ReviewStore
from triage._errors import InputError
from triage._records import LABEL_FIELDS, LabelledRecord, content_hash


@dataclass(frozen=True)
class ExportResult:
    export_id: int
    path: Path
    card_path: Path
    records: int
    version: str


def record_for(case: CaseView, decision_id: int, decided_at: datetime) -> LabelledRecord:
    """One decided case as a labelled record; the reviewers' labels are the truth."""
    labels = case.current
    return LabelledRecord(
        id=f"review-{case.id}",
        text=case.text,
        lang=case.language,
        category=labels.category,
        urgency_flags=labels.flags,
        departments=labels.departments,
        known=frozenset(LABEL_FIELDS),
        source="review",
        channel=case.channel,
        received_at=case.received_at.isoformat() if case.received_at else None,
        extra={
            "case_id": case.id,
            "source_id": case.source_id,
            "decision_id": decision_id,
            "decided_at": decided_at.isoformat(),
            "model_version": case.model_version,
            "agrees_with_model": labels == case.suggestion,
        },
    )


def card_path_for(output: Path) -> Path:
    return output.with_name(f"{output.stem}.README.md")


def export_reviewed(
    store: ReviewStore,
    output: str | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    created_by: str | None = None,
    user_id: int | None = None,
) -> ExportResult:
    """Write decided cases (latest decision since ``since``) as a new dataset version."""
    out = Path(output)
    if out.suffix != ".jsonl":
        raise InputError(f"{out}: the export is a JSONL file; name it NAME.jsonl")
    if out.exists():
        raise InputError(f"{out} exists: a dataset version is never overwritten; pick a new name")
    rows = store.decided_cases(since=since, until=until)
    records = [record_for(case, decision_id, at) for case, decision_id, at in rows]
    version = content_hash(records)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        who = created_by or f"cli:{_os_user()}"
        export_id = store.record_export(
            path=str(out),
            version=version,
            created_by=who,
            user_id=user_id,
            since=since,
            items=[(decision_id, case.id) for case, decision_id, _ in rows],
        )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    card = card_path_for(out)
    card.write_text(
        dataset_card(
            out, records, version=version, export_id=export_id, since=since, created_by=who
        ),
        encoding="utf-8",
    )
    return ExportResult(export_id, out, card, len(records), version)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        return "unknown"


def _table(title: str, counts: Counter[str]) -> str:
    lines = [f"| {title} | records |", "|---|---|"]
    lines += [
        f"| {name} | {n} |" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return "\n".join(lines)


def dataset_card(
    path: Path,
    records: list[LabelledRecord],
    *,
    version: str,
    export_id: int,
    since: datetime | None,
    created_by: str,
) -> str:
    """The README beside an export: what it is, where it came from, how to train on it."""
    languages = Counter(r.lang or "?" for r in records)
    categories = Counter(r.category or "?" for r in records)
    flags = Counter(f for r in records for f in r.urgency_flags)
    flags["(none)"] = sum(1 for r in records if not r.urgency_flags)
    owners = Counter(r.departments[0] for r in records if r.departments)
    agreed = sum(1 for r in records if r.extra.get("agrees_with_model"))
    models = Counter(str(r.extra.get("model_version") or "(none)") for r in records)
    name = path.stem
    return f"""# Reviewed complaints: {name} (version {version})

Complaints that reviewers decided in the review application (`triage review`), exported
as a dataset version in the labelled-record format. Every record's labels are the
reviewers' final decision; all three label fields are known. The text is the redacted
text (personal data replaced by typed placeholders), the only form the review store keeps.

- export id: {export_id} (the review store's audit trail lists the decision behind each record)
- created: {utcnow():%Y-%m-%d %H:%M} UTC by {created_by}
- decisions since: {since.isoformat() if since else "the beginning"}
- records: {len(records)} ({", ".join(f"{k} {v}" for k, v in sorted(languages.items()))})
- agree with the model's suggestion: {agreed} of {len(records)}
- content hash: `{version}`

## Labels

{_table("category", categories)}

{_table("urgency flag", flags)}

{_table("owner department", owners)}

{_table("suggested by", models)}

## Fields

`id` (`review-<case id>`), `text`, `lang`, `category`, `urgency_flags`, `departments`
(owner first), `known`, `source` = `review`, `channel`, `received_at`, plus `case_id`,
`source_id`, `decision_id`, `decided_at`, `model_version` (the model whose suggestion was
reviewed) and `agrees_with_model`.

## Use in training

Add it to the mix in the training config as a train-only source, e.g.

```yaml
sources:
  - name: reviewed-{name}
    train: {path.as_posix()}
    weight: 1.0
```

Cases reviewed because the model was unsure are over-represented here: this is not a
random sample of incoming complaints, so do not use it as a test set for the whole stream.
"""

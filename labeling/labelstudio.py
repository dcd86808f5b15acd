"""Label Studio interop: cases out as tasks with predictions, annotations back as decisions.

Tasks carry ``data.text`` (the redacted text) and ``data.case_id``; each prediction has
``model_version``, ``score`` and choices results for four controls on the text:
``category`` (single), ``urgency_flags`` (multiple), ``owner`` (single, the first
department) and ``departments`` (multiple, the other concerned departments), because
Label Studio's choices carry no order. :func:`label_config` writes the matching labeling
interface; choices use the taxonomy's machine names as aliases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from labeling._intake import Labels, case_from_record
from labeling.store import (
    CaseView,
    ConflictError,
    NotFoundError,
    QueueFilters,
    ReviewStore,
    UserInfo,
)
from triage._errors import InputError
from triage._records import LabelledRecord
from triage._taxonomy import Taxonomy

TO_NAME = "text"


def label_config(taxonomy: Taxonomy) -> str:
    """The Label Studio labeling interface (XML) matching the exported tasks."""

    def choices(name: str, mode: str, labels: Any, header: str, required: bool) -> list[str]:
        req = ' required="true"' if required else ""
        out = [
            f"  <Header value={quoteattr(header)}/>",
            f'  <Choices name="{name}" toName="{TO_NAME}" choice="{mode}" showInLine="true"{req}>',
        ]
        for label in labels:
            out.append(
                f'    <Choice value={quoteattr(f"{label.zh} / {label.en}")} alias="{label.name}"/>'
            )
        out.append("  </Choices>")
        return out

    lines = ["<View>", f'  <Text name="{TO_NAME}" value="$text"/>']
    lines += choices("category", "single", taxonomy.categories, "类别 / Category", True)
    lines += choices(
        "urgency_flags", "multiple", taxonomy.urgency_flags, "紧急标记 / Urgency flags", False
    )
    lines += choices("owner", "single", taxonomy.departments, "主责部门 / Owner department", True)
    lines += choices(
        "departments",
        "multiple",
        taxonomy.departments,
        "协办部门（最多两个）/ Also concerned (at most two)",
        False,
    )
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _result(name: str, values: list[str]) -> dict[str, Any]:
    return {
        "id": name,
        "from_name": name,
        "to_name": TO_NAME,
        "type": "choices",
        "value": {"choices": values},
    }


def task_for(case: CaseView) -> dict[str, Any]:
    """One case as a Label Studio task with the current suggestion as its prediction."""
    labels = case.current
    task: dict[str, Any] = {
        "id": case.id,
        "data": {
            "text": case.text,
            "case_id": case.id,
            "source_id": case.source_id,
            "language": case.language,
            "urgency_level": case.urgency_level,
            "status": case.status,
        },
    }
    if labels.category:
        result = [_result("category", [labels.category])]
        if labels.flags:
            result.append(_result("urgency_flags", list(labels.flags)))
        if labels.departments:
            result.append(_result("owner", [labels.departments[0]]))
        if labels.departments[1:]:
            result.append(_result("departments", list(labels.departments[1:])))
        score = None
        if case.prediction:
            score = float(case.prediction.get("category", {}).get("confidence", 0.0))
        task["predictions"] = [
            {
                "model_version": case.model_version or "unknown",
                "score": score if score is not None else 1.0 - case.uncertainty,
                "result": result,
            }
        ]
    return task


def export_tasks(
    store: ReviewStore, viewer: UserInfo, output: str | Path, *, status: str = "todo"
) -> int:
    """Write the cases of a status (default: open and escalated) as a Label Studio JSON file."""
    tasks: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = store.queue(viewer, QueueFilters(status=status), limit=500, offset=offset)
        tasks.extend(task_for(c) for c in page.cases)
        offset += len(page.cases)
        if not page.cases or offset >= page.total:
            break
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    out.with_name(f"{out.stem}.label_config.xml").write_text(
        label_config(store.taxonomy), encoding="utf-8"
    )
    return len(tasks)


def _names(taxonomy: Taxonomy) -> dict[str, str]:
    """Every way a choice may come back (alias, value, either display name) to its name."""
    out: dict[str, str] = {}
    for group in (taxonomy.categories, taxonomy.urgency_flags, taxonomy.departments):
        for label in group:
            for key in (label.name, label.zh, label.en, f"{label.zh} / {label.en}"):
                out[key] = label.name
    return out


def labels_from_result(result: list[dict[str, Any]], taxonomy: Taxonomy) -> Labels:
    names = _names(taxonomy)
    picked: dict[str, list[str]] = {}
    for item in result:
        if item.get("type") != "choices":
            continue
        values = (item.get("value") or {}).get("choices") or []
        picked.setdefault(str(item.get("from_name")), []).extend(
            names.get(str(v), str(v)) for v in values
        )
    category = next(iter(picked.get("category") or []), None)
    owner = picked.get("owner") or []
    others = [
        d
        for d in taxonomy.department_names
        if d in picked.get("departments", []) and d not in owner
    ]
    return Labels(
        category=category,
        flags=tuple(picked.get("urgency_flags", [])),
        departments=tuple([*owner[:1], *others][:3]),
    )


@dataclass
class LabelStudioImport:
    decisions: int = 0
    accepted: int = 0
    changed: int = 0
    new_cases: int = 0
    already: int = 0
    skipped: int = 0

    def line(self) -> str:
        return (
            f"{self.decisions} decision(s) recorded ({self.accepted} accept, {self.changed} change, "
            f"{self.new_cases} new case(s)); {self.already} already imported, {self.skipped} skipped"
        )


def _read_tasks(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError:
        try:
            loaded = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not a Label Studio JSON export ({exc.msg})") from exc
    if isinstance(loaded, dict):
        loaded = [loaded]
    if not isinstance(loaded, list) or not all(isinstance(t, dict) for t in loaded):
        raise InputError(f"{path}: expected a JSON list of tasks")
    return loaded


def import_annotations(store: ReviewStore, path: str | Path, user: UserInfo) -> LabelStudioImport:
    """Record each task's latest completed annotation as a decision by ``user``.

    A task is matched to its case by ``data.case_id``, else by its text; a task from
    elsewhere becomes a new case (text redacted). Importing the same file again records
    nothing new: each annotation is recorded once.
    """
    summary = LabelStudioImport()
    for number, task in enumerate(_read_tasks(Path(path)), start=1):
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            summary.skipped += 1
            continue
        annotation = max(
            annotations,
            key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0),
        )
        labels = labels_from_result(annotation.get("result") or [], store.taxonomy)
        if labels.category is None or not labels.departments:
            summary.skipped += 1
            continue
        data = task.get("data") or {}
        case_id = _case_for(store, data, summary)
        if case_id is None:
            summary.skipped += 1
            continue
        ref = f"labelstudio:{task.get('id', number)}:{annotation.get('id', 0)}"
        current = store.get_case(case_id)
        try:
            action = "accept" if current.current == store.validate_labels(labels) else "change"
        except InputError:
            summary.skipped += 1
            continue
        try:
            store.decide(
                case_id,
                user,
                action,
                labels,
                expected_last_id=None,
                note=f"Label Studio annotation {annotation.get('id', '?')} (task {task.get('id', '?')})",
                seconds_spent=_float(annotation.get("lead_time")),
                origin="labelstudio",
                external_ref=ref,
                enforce_access=False,
            )
        except ConflictError:
            summary.already += 1
            continue
        summary.decisions += 1
        summary.accepted += action == "accept"
        summary.changed += action == "change"
    return summary


def _case_for(store: ReviewStore, data: dict[str, Any], summary: LabelStudioImport) -> int | None:
    raw_id = data.get("case_id")
    if raw_id is not None:
        try:
            return store.get_case(int(raw_id)).id
        except (NotFoundError, ValueError, TypeError):
            pass
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    found = store.find_case_by_text(text)
    if found is not None:
        return found
    record = LabelledRecord(
        id=str(data.get("source_id") or ""),
        text=text,
        lang=str(data.get("language") or ""),
        known=frozenset(),
        source="labelstudio",
    )
    result = store.add_cases([case_from_record(record, store.taxonomy, origin="labelstudio")])
    summary.new_cases += result.added
    return result.case_ids[0]


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None

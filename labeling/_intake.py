"""Turning predictions and labelled records into review cases (redacted text only)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from triage._records import LabelledRecord
from triage._schema import Prediction
from triage._taxonomy import Taxonomy


@dataclass(frozen=True)
class Labels:
    """A complaint's three label fields, as a reviewer or the model sees them."""

    category: str | None = None
    flags: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.category is None and not self.flags and not self.departments


@dataclass(frozen=True)
class CaseInput:
    """Everything a new case is made of; ``text`` is already redacted."""

    text: str
    language: str
    origin: str
    urgency_level: str
    urgency_rank: int
    suggestion: Labels = field(default_factory=Labels)
    source_id: str | None = None
    channel: str | None = None
    model_version: str | None = None
    prediction: dict[str, Any] | None = None
    received_at: datetime | None = None
    respond_by: datetime | None = None
    resolve_by: datetime | None = None
    needs_review: bool = True
    uncertainty: float = 1.0

    @property
    def fingerprint(self) -> str:
        """One case per complaint: its id, its received time and its text."""
        when = self.received_at.isoformat() if self.received_at else ""
        key = "\x1f".join([self.source_id or "", when, self.text])
        return hashlib.sha256(key.encode("utf-8")).hexdigest()


def locate_span(text: str, start: int, end: int, snippet: str) -> tuple[int, int] | None:
    """Where ``snippet`` (found at start:end of the original) sits in the redacted ``text``.

    Redaction shifts offsets after each placeholder, so the span is kept when the text still
    matches at its offsets, else at the nearest occurrence; a snippet that was redacted away
    is dropped (None).
    """
    if not snippet:
        return None
    if 0 <= start <= end <= len(text) and text[start:end] == snippet:
        return start, end
    found = [m.start() for m in re.finditer(re.escape(snippet), text)]
    if not found:
        return None
    best = min(found, key=lambda pos: abs(pos - start))
    return best, best + len(snippet)


def locate_quote(text: str, span: dict[str, Any]) -> tuple[int, int] | None:
    """Where a prediction's evidence span or entity (start, end, text) lies in the stored text."""
    return locate_span(
        text, int(span.get("start", -1)), int(span.get("end", -1)), str(span.get("text", ""))
    )


def relocate_prediction(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of a prediction whose evidence and entity offsets point into ``redacted_text``.

    Spans whose text no longer appears (it held personal data) are left out, so the stored
    prediction carries no text that the redacted complaint does not.
    """
    text = str(payload.get("redacted_text") or "")
    out = dict(payload)
    urgency = dict(out.get("urgency") or {})
    flags = []
    for flag in urgency.get("flags") or []:
        flag = dict(flag)
        evidence = []
        for span in flag.get("evidence") or []:
            where = locate_quote(text, span)
            if where:
                evidence.append({**span, "start": where[0], "end": where[1]})
        flag["evidence"] = evidence
        flags.append(flag)
    urgency["flags"] = flags
    out["urgency"] = urgency
    entities = []
    for entity in out.get("entities") or []:
        where = locate_quote(text, entity)
        if where:
            entities.append({**entity, "start": where[0], "end": where[1]})
    out["entities"] = entities
    out["offsets"] = "redacted_text"
    return out


def uncertainty_of(prediction: Prediction) -> float:
    """How unsure the model is: 1 - category confidence, or a flag score near 0.5 if worse."""
    worst = 1.0 - prediction.category.confidence
    for score in prediction.urgency.scores.values():
        worst = max(worst, 1.0 - abs(2.0 * score - 1.0))
    return round(min(max(worst, 0.0), 1.0), 6)


def level_rank(taxonomy: Taxonomy, level: str) -> int:
    names = taxonomy.level_names
    return names.index(level) if level in names else len(names)


def case_from_prediction(
    prediction: Prediction | dict[str, Any], taxonomy: Taxonomy, origin: str = "service"
) -> CaseInput:
    """A case from one prediction of the contract (the service's or `triage predict`'s)."""
    pred = (
        prediction if isinstance(prediction, Prediction) else Prediction.model_validate(prediction)
    )
    payload = relocate_prediction(pred.model_dump(mode="json"))
    received = pred.received_at
    return CaseInput(
        text=pred.redacted_text,
        language=pred.language,
        origin=origin,
        source_id=pred.id,
        channel=pred.channel,
        model_version=pred.model_version,
        prediction=payload,
        received_at=received,
        respond_by=pred.sla.respond_by,
        resolve_by=pred.sla.resolve_by,
        urgency_level=pred.urgency.level,
        urgency_rank=level_rank(taxonomy, pred.urgency.level),
        needs_review=pred.needs_review,
        uncertainty=uncertainty_of(pred),
        suggestion=Labels(
            category=pred.category.label,
            flags=tuple(f.label for f in pred.urgency.flags),
            departments=tuple(d.label for d in pred.departments),
        ),
    )


def redact_text(text: str, language: str) -> str:
    """Personal data replaced by typed placeholders, with the core's detectors."""
    try:
        from triage.text._normalize import normalize_text
        from triage.text._personal_data import find_personal_data, redact
    except ImportError:  # pragma: no cover - the core always ships them
        return _fallback_redact(text)
    return redact(text, find_personal_data(normalize_text(text), language))


_LONG_NUMBER = re.compile(r"\d[\d -]{5,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def _fallback_redact(text: str) -> str:
    return _LONG_NUMBER.sub("[NUMBER]", _EMAIL.sub("[EMAIL]", text))


def detect_language(text: str) -> str:
    try:
        from triage.text._language import read_language
    except ImportError:  # pragma: no cover
        return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"
    return read_language(text).language


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def case_from_record(
    record: LabelledRecord, taxonomy: Taxonomy, origin: str = "import"
) -> CaseInput:
    """A case from a labelled (or unlabelled) record; the text is redacted on the way in.

    The record's known labels become the suggestion to verify, attributed to its source.
    """
    language = record.lang or detect_language(record.text)
    text = redact_text(record.text, language)
    suggestion = Labels(
        category=record.category if record.knows("category") else None,
        flags=tuple(record.urgency_flags) if record.knows("urgency_flags") else (),
        departments=tuple(record.departments) if record.knows("departments") else (),
    )
    level = taxonomy.urgency_level(suggestion.flags)
    received = _parse_time(record.received_at)
    respond_by = resolve_by = None
    if received is not None and level in taxonomy.sla.deadlines:
        respond_by, resolve_by = taxonomy.sla.due_times(level, received)
    labelled = bool(record.known)
    return CaseInput(
        text=text,
        language=language,
        origin=origin,
        source_id=record.id or None,
        channel=record.channel,
        model_version=f"source:{record.source}" if labelled and record.source else None,
        prediction=None,
        received_at=received,
        respond_by=respond_by,
        resolve_by=resolve_by,
        urgency_level=level,
        urgency_rank=level_rank(taxonomy, level),
        needs_review=True,
        uncertainty=0.5 if labelled else 1.0,
        suggestion=suggestion,
    )

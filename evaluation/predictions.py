"""What a system answered for each labelled record, in one shape for the model and the baselines.

The model's answers are taken from the contract (``Triager.triage``), so the metrics measure
what users get: the delivered label, the raised flags, the delivered department suggestions
and the ``needs_review`` decision.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from triage import Complaint, InputError, LabelledRecord, Prediction, Taxonomy

if TYPE_CHECKING:
    from triage._inference import Triager


@dataclass
class PredictionSet:
    """One system's answers for a list of records, row ``i`` answering record ``i``."""

    system: str
    categories: list[str]
    flags: list[str]
    category: list[str]
    category_scores: np.ndarray  # (n, categories), in ``categories`` order
    flag_scores: np.ndarray  # (n, flags)
    raised: np.ndarray  # (n, flags) bool: the flags the system raised
    flag_thresholds: dict[str, float]
    urgency_level: list[str]
    suggestions: list[list[str]]  # departments, best first; the first is the owner
    needs_review: np.ndarray | None = None  # (n,) bool; None for systems without the decision
    language: list[str] = field(default_factory=list)
    display_text: list[str] = field(default_factory=list)  # what a report may show (redacted)
    seconds: float = 0.0  # wall time to answer all rows
    latency: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.category)

    @property
    def confidence(self) -> np.ndarray:
        """The score of the delivered category."""
        index = {c: i for i, c in enumerate(self.categories)}
        rows = np.arange(len(self))
        cols = np.asarray([index[c] for c in self.category], dtype=np.int64)
        return self.category_scores[rows, cols] if len(self) else np.zeros(0)

    def take(self, rows: Sequence[int] | np.ndarray) -> PredictionSet:
        """The answers for a subset of rows (slices, bootstrap checks)."""
        idx = np.asarray(rows, dtype=np.int64)
        pick = idx.tolist()
        return replace(
            self,
            category=[self.category[i] for i in pick],
            category_scores=self.category_scores[idx],
            flag_scores=self.flag_scores[idx],
            raised=self.raised[idx],
            urgency_level=[self.urgency_level[i] for i in pick],
            suggestions=[self.suggestions[i] for i in pick],
            needs_review=None if self.needs_review is None else self.needs_review[idx],
            language=[self.language[i] for i in pick] if self.language else [],
            display_text=[self.display_text[i] for i in pick] if self.display_text else [],
        )


def from_contract(
    predictions: Sequence[Prediction], taxonomy: Taxonomy, flag_thresholds: dict[str, float],
    *, system: str | None = None,
) -> PredictionSet:
    """Turn contract predictions into a PredictionSet (scores in taxonomy order)."""
    cats, flags = taxonomy.category_names, taxonomy.flag_names
    n = len(predictions)
    raised = np.zeros((n, len(flags)), dtype=bool)
    for i, p in enumerate(predictions):
        for f in p.urgency.flags:
            raised[i, flags.index(f.label)] = True
    return PredictionSet(
        system=system or (predictions[0].model_version if predictions else "model"),
        categories=list(cats),
        flags=list(flags),
        category=[p.category.label for p in predictions],
        category_scores=np.asarray(
            [[p.category.scores.get(c, 0.0) for c in cats] for p in predictions], dtype=float
        ).reshape(n, len(cats)),
        flag_scores=np.asarray(
            [[p.urgency.scores.get(f, 0.0) for f in flags] for p in predictions], dtype=float
        ).reshape(n, len(flags)),
        raised=raised,
        flag_thresholds={f: float(flag_thresholds.get(f, 0.5)) for f in flags},
        urgency_level=[p.urgency.level for p in predictions],
        suggestions=[[d.label for d in p.departments] for p in predictions],
        needs_review=np.asarray([p.needs_review for p in predictions], dtype=bool),
        language=[p.language for p in predictions],
        display_text=[p.redacted_text for p in predictions],
    )


def complaint_for(record: LabelledRecord) -> Complaint:
    """The complaint an intake system would send for this record (labels stripped)."""
    from pydantic import ValidationError

    fields: dict[str, Any] = {"text": record.text, "id": record.id or None}
    if record.channel:
        fields["channel"] = record.channel
    if record.received_at:
        fields["received_at"] = record.received_at
    try:
        return Complaint.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "record"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InputError(f"record {record.id or '(no id)'}: {where}: {msg}") from exc


def run_triager(
    triager: Triager, records: Sequence[LabelledRecord], *, chunk_size: int = 64,
    progress: bool = True, desc: str | None = None,
) -> PredictionSet:
    """Triage every record through the contract, timing each chunk; a progress bar on stderr."""
    from tqdm.auto import tqdm

    complaints = [complaint_for(r) for r in records]
    predictions: list[Prediction] = []
    per_complaint_ms: list[float] = []
    bar = tqdm(
        total=len(complaints), unit="complaint", file=sys.stderr, disable=not progress,
        desc=desc or f"triage ({triager.model_version})",
    )
    start = time.perf_counter()
    for first in range(0, len(complaints), chunk_size):
        chunk = complaints[first : first + chunk_size]
        t0 = time.perf_counter()
        predictions.extend(triager.triage(chunk))
        per_complaint_ms.extend([(time.perf_counter() - t0) * 1000 / len(chunk)] * len(chunk))
        bar.update(len(chunk))
    bar.close()
    seconds = time.perf_counter() - start
    preds = from_contract(
        predictions, triager.taxonomy, triager.spec.calibration.flag_thresholds,
        system=triager.model_version,
    )
    preds.seconds = seconds
    preds.latency = batch_latency(seconds, len(complaints), chunk_size)
    return preds


def batch_latency(seconds: float, count: int, batch_size: int) -> dict[str, float]:
    """Throughput figures of a batched run."""
    return {
        "batch_size": float(batch_size),
        "total_s": seconds,
        "ms_per_complaint": seconds * 1000 / count if count else float("nan"),
        "complaints_per_s": count / seconds if seconds > 0 else float("nan"),
    }


def single_request_latency(
    triager: Triager, records: Sequence[LabelledRecord], sample: int = 20
) -> dict[str, float]:
    """One complaint at a time, as a caller of ``POST /triage`` would: p50 / p95 / max in ms.

    The first call warms the model up and is not counted.
    """
    chosen = [complaint_for(r) for r in records[: sample + 1]]
    if len(chosen) < 2:
        return {}
    triager.triage(chosen[:1])
    times = []
    for complaint in chosen[1:]:
        t0 = time.perf_counter()
        triager.triage([complaint])
        times.append((time.perf_counter() - t0) * 1000)
    ordered = sorted(times)
    return {
        "single_sample": float(len(times)),
        "single_p50_ms": float(np.percentile(ordered, 50)),
        "single_p95_ms": float(np.percentile(ordered, 95)),
        "single_max_ms": float(ordered[-1]),
    }


def finite(value: float) -> float | None:
    """JSON-friendly number: None for nan/inf."""
    return None if value is None or not math.isfinite(value) else float(value)

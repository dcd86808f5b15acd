"""Every head's metrics for one system on one labelled set, plus slices and the worst errors.

Records whose field is unknown (``known`` lacks it) are left out of that field's metrics, and
the counts say how many. The arithmetic lives in ``triage._metrics`` (shared with training).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.predictions import PredictionSet, finite
from triage import LabelledRecord, Taxonomy
from triage._metrics import (
    accuracy,
    average_precision,
    bootstrap_macro_f1_interval,
    confusion_counts,
    expected_calibration_error,
    macro_f1,
    multilabel_prf,
    paired_bootstrap_macro_f1_difference,
    per_class_prf,
    precision_at_recall,
    reliability_bins,
    top_k_hit,
)

LENGTH_BUCKETS: tuple[tuple[int, str], ...] = (
    (50, "<50 chars"), (150, "50-149 chars"), (400, "150-399 chars"), (10**9, "400+ chars"),
)
COVERAGE_POINTS = (0.5, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class EvaluationOptions:
    """How much resampling and detail an evaluation computes."""

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    calibration_bins: int = 10
    worst_errors: int = 25
    min_slice: int = 1


@dataclass(frozen=True)
class KnownRows:
    """Row indices whose field is labelled, per field."""

    category: np.ndarray
    flags: np.ndarray
    owner: np.ndarray

    @classmethod
    def of(cls, records: Sequence[LabelledRecord], categories: Sequence[str]) -> KnownRows:
        cats = set(categories)
        return cls(
            category=np.asarray(
                [i for i, r in enumerate(records) if r.knows("category") and r.category in cats],
                dtype=np.int64,
            ),
            flags=np.asarray(
                [i for i, r in enumerate(records) if r.knows("urgency_flags")], dtype=np.int64
            ),
            owner=np.asarray(
                [i for i, r in enumerate(records) if r.knows("departments") and r.departments],
                dtype=np.int64,
            ),
        )


def field_counts(records: Sequence[LabelledRecord], known: KnownRows) -> dict[str, Any]:
    """How many records each field's metrics use and how many were left out as unknown."""
    n = len(records)
    return {
        "records": n,
        "category": {"evaluated": int(known.category.size), "left_out_unknown": n - int(known.category.size)},
        "urgency_flags": {"evaluated": int(known.flags.size), "left_out_unknown": n - int(known.flags.size)},
        "departments": {"evaluated": int(known.owner.size), "left_out_unknown": n - int(known.owner.size)},
    }


# -- heads ---------------------------------------------------------------------------------------
def category_metrics(
    records: Sequence[LabelledRecord], preds: PredictionSet, rows: np.ndarray,
    options: EvaluationOptions | None, *, detail: bool = True,
) -> dict[str, Any]:
    """Accuracy, macro-F1 (with a bootstrap interval when ``options``), per-class P/R/F1, confusion."""
    labels = preds.categories
    gold = [str(records[i].category) for i in rows]
    pred = [preds.category[i] for i in rows]
    out: dict[str, Any] = {
        "evaluated": len(gold),
        "accuracy": finite(accuracy(gold, pred)) if gold else None,
        "macro_f1": finite(macro_f1(gold, pred, labels)) if gold else None,
    }
    if options is not None and gold:
        low, high = bootstrap_macro_f1_interval(
            gold, pred, labels, resamples=options.resamples, confidence=options.confidence,
            seed=options.seed,
        )
        out["macro_f1_ci"] = [finite(low), finite(high)]
    if detail:
        out["per_class"] = per_class_table(gold, pred, labels)
        out["confusion"] = {
            "labels": list(labels), "matrix": confusion_counts(gold, pred, labels).tolist(),
        }
    return out


def per_class_table(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]
) -> dict[str, dict[str, float | None]]:
    """P/R/F1 per label; ``None`` where a figure is undefined (recall of a class with no support,
    precision of a class never predicted), so a reader is not misled by a zero."""
    table = per_class_prf(gold, pred, labels)
    predicted = {label: sum(1 for p in pred if p == label) for label in labels}
    return {label: _defined(row, predicted[label]) for label, row in table.items()}


def _defined(row: dict[str, float], predicted: int) -> dict[str, float | None]:
    support = int(row["support"])
    return {
        "precision": row["precision"] if predicted else None,
        "recall": row["recall"] if support else None,
        "f1": row["f1"] if support or predicted else None,
        "support": support,
        "predicted": predicted,
    }


def flag_metrics(
    records: Sequence[LabelledRecord], preds: PredictionSet, rows: np.ndarray, *, detail: bool = True
) -> dict[str, Any]:
    """Per-flag P/R/F1 at the system's thresholds, macro-F1 over flags with support, AP."""
    flags = preds.flags
    gold_sets = [set(records[i].urgency_flags) for i in rows]
    pred_sets = [{f for j, f in enumerate(flags) if preds.raised[i, j]} for i in rows]
    table = multilabel_prf(gold_sets, pred_sets, flags)
    per_flag: dict[str, dict[str, Any]] = {}
    for j, flag in enumerate(flags):
        predicted = sum(1 for s in pred_sets if flag in s)
        row = _defined(table[flag], predicted)
        row["threshold"] = preds.flag_thresholds.get(flag)
        if detail:
            positive = [flag in s for s in gold_sets]
            row["average_precision"] = finite(average_precision(preds.flag_scores[rows, j], positive))
            row["precision_at_recall_95"] = finite(
                precision_at_recall(preds.flag_scores[rows, j], positive, 0.95)
            )
        per_flag[flag] = row
    present = [f for f in flags if table[f]["support"] > 0]
    fund = per_flag.get("fund_safety", {})
    return {
        "evaluated": len(gold_sets),
        "macro_f1": float(np.mean([table[f]["f1"] for f in present])) if present else None,
        "fund_safety_recall": fund.get("recall"),
        "fund_safety_precision": fund.get("precision"),
        "fund_safety_threshold": fund.get("threshold"),
        "fund_safety_support": fund.get("support", 0),
        "per_flag": per_flag,
    }


def urgency_metrics(
    records: Sequence[LabelledRecord], preds: PredictionSet, rows: np.ndarray, taxonomy: Taxonomy
) -> dict[str, Any]:
    """Urgency-level accuracy: the policy's level from gold flags vs the delivered level."""
    gold = [taxonomy.urgency_level(records[i].urgency_flags) for i in rows]
    pred = [preds.urgency_level[i] for i in rows]
    return {
        "evaluated": len(gold),
        "level_accuracy": finite(accuracy(gold, pred)) if gold else None,
        "per_level": per_class_table(gold, pred, taxonomy.level_names),
    }


def owner_metrics(
    records: Sequence[LabelledRecord], preds: PredictionSet, rows: np.ndarray
) -> dict[str, Any]:
    """Whether the gold owner (first gold department) is the first / among the first two suggestions."""
    owners = [records[i].departments[0] for i in rows]
    ranked = [preds.suggestions[i] for i in rows]
    return {
        "evaluated": len(owners),
        "top1": finite(top_k_hit(owners, ranked, 1)) if owners else None,
        "top2": finite(top_k_hit(owners, ranked, 2)) if owners else None,
        "suggestions_per_complaint": float(np.mean([len(r) for r in ranked])) if ranked else None,
    }


def calibration_metrics(
    records: Sequence[LabelledRecord], preds: PredictionSet, rows: np.ndarray, bins: int,
    *, detail: bool = True,
) -> dict[str, Any]:
    """ECE of the category confidence against correctness, and the reliability bins."""
    confidence = preds.confidence[rows] if rows.size else np.zeros(0)
    correct = [preds.category[i] == records[i].category for i in rows]
    out: dict[str, Any] = {
        "ece": finite(expected_calibration_error(confidence, correct, bins)) if rows.size else None,
        "bins": bins,
    }
    if detail:
        out["reliability"] = [
            {k: finite(v) for k, v in b.items()} for b in reliability_bins(confidence, correct, bins)
        ]
    return out


def review_metrics(
    records: Sequence[LabelledRecord], preds: PredictionSet, rows: np.ndarray
) -> dict[str, Any]:
    """The needs_review trade-off: share auto-accepted and how right the auto-accepted are.

    Also the accuracy of the most confident 50/80/90/100% (the coverage curve at a few points),
    which exists for every system, with or without a review decision.
    """
    correct = np.asarray([preds.category[i] == records[i].category for i in rows], dtype=bool)
    out: dict[str, Any] = {"evaluated": int(rows.size)}
    if preds.needs_review is not None and rows.size:
        review = preds.needs_review[rows]
        auto = ~review
        out.update({
            "auto_accepted_share": float(auto.mean()),
            "auto_accepted_accuracy": float(correct[auto].mean()) if auto.any() else None,
            "review_share": float(review.mean()),
            "review_accuracy": float(correct[review].mean()) if review.any() else None,
        })
    else:
        out.update({"auto_accepted_share": None, "auto_accepted_accuracy": None})
    confidence = preds.confidence[rows] if rows.size else np.zeros(0)
    order = np.argsort(-confidence, kind="stable")
    points = {}
    for share in COVERAGE_POINTS:
        k = max(1, math.ceil(share * rows.size)) if rows.size else 0
        points[f"{int(share * 100)}%"] = float(correct[order[:k]].mean()) if k else None
    out["accuracy_at_coverage"] = points
    return out


# -- putting it together -------------------------------------------------------------------------
def head_summary(
    records: Sequence[LabelledRecord], preds: PredictionSet, taxonomy: Taxonomy,
    options: EvaluationOptions | None = None, *, detail: bool = True,
) -> dict[str, Any]:
    """All heads for these records; ``options`` adds the bootstrap interval, ``detail`` the tables."""
    known = KnownRows.of(records, preds.categories)
    bins = options.calibration_bins if options else 10
    return {
        "counts": field_counts(records, known),
        "category": category_metrics(records, preds, known.category, options, detail=detail),
        "flags": flag_metrics(records, preds, known.flags, detail=detail),
        "urgency": urgency_metrics(records, preds, known.flags, taxonomy),
        "owner": owner_metrics(records, preds, known.owner),
        "calibration": calibration_metrics(records, preds, known.category, bins, detail=detail),
        "review": review_metrics(records, preds, known.category),
    }


def evaluate_set(
    records: Sequence[LabelledRecord], preds: PredictionSet, taxonomy: Taxonomy,
    options: EvaluationOptions | None = None,
) -> dict[str, Any]:
    """The full metrics of one system: heads, latency, slices and the worst errors."""
    if len(records) != len(preds):
        raise ValueError(f"{len(records)} records but {len(preds)} predictions")
    options = options or EvaluationOptions()
    out = {"system": preds.system, **head_summary(records, preds, taxonomy, options)}
    out["latency"] = {k: finite(v) for k, v in preds.latency.items()}
    out["slices"] = slice_metrics(records, preds, taxonomy, options)
    out["worst_errors"] = worst_errors(records, preds, options.worst_errors)
    return out


def paired_macro_f1(
    records: Sequence[LabelledRecord], first: PredictionSet, second: PredictionSet,
    options: EvaluationOptions,
) -> dict[str, float | None]:
    """Category macro-F1 of ``first`` minus ``second`` on the same rows, with a paired interval."""
    rows = KnownRows.of(records, first.categories).category
    gold = [str(records[i].category) for i in rows]
    diff, low, high = paired_bootstrap_macro_f1_difference(
        gold, [first.category[i] for i in rows], [second.category[i] for i in rows],
        first.categories, resamples=options.resamples, confidence=options.confidence,
        seed=options.seed,
    )
    return {"difference": finite(diff), "ci_low": finite(low), "ci_high": finite(high)}


# -- slices --------------------------------------------------------------------------------------
def length_bucket(text: str) -> str:
    for upper, name in LENGTH_BUCKETS:
        if len(text) < upper:
            return name
    return LENGTH_BUCKETS[-1][1]


def slice_keys(records: Sequence[LabelledRecord], preds: PredictionSet) -> dict[str, Callable[[int], str]]:
    """The slicing dimensions; channel only where some record has one."""
    keys: dict[str, Callable[[int], str]] = {
        "language": lambda i: records[i].lang or (preds.language[i] if preds.language else "?"),
        "source": lambda i: records[i].source or "(none)",
        "length": lambda i: length_bucket(records[i].text),
    }
    if any(r.channel for r in records):
        keys["channel"] = lambda i: records[i].channel or "(none)"
    return keys


def slice_metrics(
    records: Sequence[LabelledRecord], preds: PredictionSet, taxonomy: Taxonomy,
    options: EvaluationOptions,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Headline figures per slice value (no intervals: most slices are small)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    order = {name: i for i, (_, name) in enumerate(LENGTH_BUCKETS)}
    for dimension, key in slice_keys(records, preds).items():
        groups: dict[str, list[int]] = {}
        for i in range(len(records)):
            groups.setdefault(key(i), []).append(i)
        names = sorted(groups, key=lambda g: (order.get(g, -1), -len(groups[g]), g))
        out[dimension] = {}
        for name in names:
            rows = groups[name]
            if len(rows) < options.min_slice:
                continue
            sub = head_summary([records[i] for i in rows], preds.take(rows), taxonomy, detail=False)
            out[dimension][name] = headline(sub)
    return out


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a table row shows."""
    return {
        "records": summary["counts"]["records"],
        "category_accuracy": summary["category"]["accuracy"],
        "category_macro_f1": summary["category"]["macro_f1"],
        "flags_macro_f1": summary["flags"]["macro_f1"],
        "fund_safety_recall": summary["flags"]["fund_safety_recall"],
        "urgency_level_accuracy": summary["urgency"]["level_accuracy"],
        "owner_top1": summary["owner"]["top1"],
        "owner_top2": summary["owner"]["top2"],
        "ece": summary["calibration"]["ece"],
        "auto_accepted_share": summary["review"]["auto_accepted_share"],
        "auto_accepted_accuracy": summary["review"]["auto_accepted_accuracy"],
    }


# -- errors for a person to read ----------------------------------------------------------------
def worst_errors(
    records: Sequence[LabelledRecord], preds: PredictionSet, limit: int
) -> dict[str, list[dict[str, Any]]]:
    """The most confident category mistakes and the most confidently missed fund_safety cases.

    The text shown is the system's redacted text where it has one (the contract's only stored form).
    """
    known = KnownRows.of(records, preds.categories)
    confidence = preds.confidence

    def text(i: int) -> str:
        return preds.display_text[i] if preds.display_text else records[i].text

    def raised(i: int) -> list[str]:
        return [f for j, f in enumerate(preds.flags) if preds.raised[i, j]]

    wrong = [int(i) for i in known.category if preds.category[i] != records[i].category]
    wrong.sort(key=lambda i: -float(confidence[i]))
    category = [
        {
            "id": records[i].id, "lang": records[i].lang, "text": text(i),
            "gold": records[i].category, "predicted": preds.category[i],
            "confidence": float(confidence[i]), "needs_review": _review(preds, i),
        }
        for i in wrong[:limit]
    ]
    missed: list[dict[str, Any]] = []
    if "fund_safety" in preds.flags:
        j = preds.flags.index("fund_safety")
        rows = [
            int(i) for i in known.flags
            if "fund_safety" in records[i].urgency_flags and not preds.raised[i, j]
        ]
        rows.sort(key=lambda i: float(preds.flag_scores[i, j]))
        missed = [
            {
                "id": records[i].id, "lang": records[i].lang, "text": text(i),
                "gold_flags": list(records[i].urgency_flags), "raised": raised(i),
                "fund_safety_score": float(preds.flag_scores[i, j]),
                "threshold": preds.flag_thresholds.get("fund_safety"),
            }
            for i in rows[:limit]
        ]
    return {"category": category, "fund_safety_missed": missed}


def _review(preds: PredictionSet, i: int) -> bool | None:
    return None if preds.needs_review is None else bool(preds.needs_review[i])

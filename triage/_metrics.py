"""Metric arithmetic shared by training (dev selection) and evaluation (reports, the gate)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def per_class_prf(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label (0 where undefined)."""
    out: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p != label)
        out[label] = _prf(tp, fp, fn)
    return out


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": float(tp + fn)}


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    """Mean F1 over the labels that occur in gold or pred (a label absent from both is skipped)."""
    table = per_class_prf(gold, pred, labels)
    used = [lab for lab in labels if lab in set(gold) or lab in set(pred)]
    if not used:
        return 0.0
    return float(np.mean([table[lab]["f1"] for lab in used]))


def accuracy(gold: Sequence[object], pred: Sequence[object]) -> float:
    if not gold:
        return 0.0
    return sum(1 for g, p in zip(gold, pred, strict=True) if g == p) / len(gold)


def multilabel_prf(
    gold: Sequence[set[str]], pred: Sequence[set[str]], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per-label precision/recall/F1 for multi-label sets."""
    out: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if label in g and label in p)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if label not in g and label in p)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if label in g and label not in p)
        out[label] = _prf(tp, fp, fn)
    return out


def top_k_hit(gold_owner: Sequence[str], ranked: Sequence[Sequence[str]], k: int) -> float:
    """Share of cases whose gold owner is among the first k suggestions."""
    if not gold_owner:
        return 0.0
    hits = sum(1 for g, r in zip(gold_owner, ranked, strict=True) if g in list(r)[:k])
    return hits / len(gold_owner)


def expected_calibration_error(
    confidence: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """ECE with equal-width confidence bins."""
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


# -- vectorised arithmetic for resampling, curves and calibration ------------------------------
def confusion_counts(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts of (gold row, predicted column) over ``labels``; pairs outside the labels are skipped."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, pred, strict=True):
        if g in index and p in index:
            matrix[index[g], index[p]] += 1
    return matrix


def label_codes(values: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Integer codes of ``values`` in ``labels`` order; a value outside the labels gets ``len(labels)``."""
    index = {label: i for i, label in enumerate(labels)}
    return np.asarray([index.get(v, len(labels)) for v in values], dtype=np.int64)


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """Row indices of ``resamples`` percentile-bootstrap draws of ``n`` rows (seeded)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n)) if n else np.zeros((resamples, 0), dtype=np.int64)


def bootstrap_macro_f1_interval(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str], *,
    resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of macro-F1 over rows (``(nan, nan)`` for no rows)."""
    if not gold:
        return float("nan"), float("nan")
    k = len(labels) + 1  # one extra code for values outside the label set
    g, p = label_codes(gold, labels), label_codes(pred, labels)
    idx = bootstrap_indices(len(gold), resamples, seed)
    scores = _macro_f1_over_labels(g[idx], p[idx], k, len(labels))
    return _percentiles(scores, confidence)


def paired_bootstrap_macro_f1_difference(
    gold: Sequence[str], pred_a: Sequence[str], pred_b: Sequence[str], labels: Sequence[str], *,
    resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> tuple[float, float, float]:
    """Macro-F1 of A minus B on the same rows, with a paired percentile bootstrap interval.

    Both systems are scored on the same resampled rows, so the interval reflects the
    difference between them rather than the noise of each.
    """
    if not gold:
        return float("nan"), float("nan"), float("nan")
    k = len(labels) + 1
    g, a, b = (label_codes(x, labels) for x in (gold, pred_a, pred_b))
    observed = float(
        _macro_f1_over_labels(g, a, k, len(labels))[0] - _macro_f1_over_labels(g, b, k, len(labels))[0]
    )
    idx = bootstrap_indices(len(gold), resamples, seed)
    diffs = _macro_f1_over_labels(g[idx], a[idx], k, len(labels)) - _macro_f1_over_labels(
        g[idx], b[idx], k, len(labels)
    )
    low, high = _percentiles(diffs, confidence)
    return observed, low, high


def _macro_f1_over_labels(gold: np.ndarray, pred: np.ndarray, k: int, n_labels: int) -> np.ndarray:
    """Macro-F1 over the first ``n_labels`` codes (code ``n_labels`` marks an unknown value)."""
    gold2, pred2 = np.atleast_2d(gold), np.atleast_2d(pred)
    rows = gold2.shape[0]
    offsets = (np.arange(rows) * k)[:, None]
    size = rows * k
    tp = np.bincount((gold2 + offsets)[gold2 == pred2], minlength=size).reshape(rows, k)
    gold_n = np.bincount((gold2 + offsets).ravel(), minlength=size).reshape(rows, k)
    pred_n = np.bincount((pred2 + offsets).ravel(), minlength=size).reshape(rows, k)
    tp, gold_n, pred_n = tp[:, :n_labels], gold_n[:, :n_labels], pred_n[:, :n_labels]
    denom = gold_n + pred_n
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(denom.shape, dtype=float), where=denom > 0)
    used = denom > 0
    counts = used.sum(axis=1)
    return np.divide(  # type: ignore[no-any-return]
        (f1 * used).sum(axis=1), counts, out=np.zeros(rows, dtype=float), where=counts > 0
    )


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def reliability_bins(
    confidence: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> list[dict[str, float]]:
    """Per equal-width confidence bin: its edges, count, mean confidence and accuracy.

    Bins match :func:`expected_calibration_error` (the first bin includes 0).
    """
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        count = int(in_bin.sum())
        out.append({
            "low": round(float(lo), 6), "high": round(float(hi), 6), "count": float(count),
            "confidence": float(conf[in_bin].mean()) if count else float("nan"),
            "accuracy": float(hit[in_bin].mean()) if count else float("nan"),
        })
    return out


def coverage_curve(
    confidence: Sequence[float], correct: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accept the most confident first: (threshold, share accepted, accuracy of the accepted).

    One point per distinct confidence value, from the strictest cut to accepting everything.
    """
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(-conf, kind="stable")
    conf, hit = conf[order], hit[order]
    accepted = np.arange(1, conf.size + 1)
    running = np.cumsum(hit) / accepted
    # Keep the last row of each run of equal confidence: a cut cannot split ties.
    last = np.r_[conf[1:] != conf[:-1], True]
    return conf[last], accepted[last] / conf.size, running[last]


def precision_recall_points(
    scores: Sequence[float], positive: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold, precision, recall) for every distinct score used as a cut ``score >= t``."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    if s.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    predicted = np.arange(1, s.size + 1)
    last = np.r_[s[1:] != s[:-1], True]
    total_pos = int(y.sum())
    precision = tp[last] / predicted[last]
    recall = tp[last] / total_pos if total_pos else np.zeros(int(last.sum()))
    return s[last], precision, recall


def precision_at_recall(scores: Sequence[float], positive: Sequence[bool], recall: float) -> float:
    """The best precision of any threshold whose recall reaches ``recall``: what the ranking
    allows, independent of the threshold the model ships with; nan without positives."""
    _, precision, recalls = precision_recall_points(scores, positive)
    ok = recalls >= recall - 1e-12
    if recalls.size == 0 or recalls[-1] == 0 or not ok.any():
        return float("nan")
    return float(precision[ok].max())


def average_precision(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the step precision-recall curve (sklearn's definition); nan without positives."""
    _, precision, recall = precision_recall_points(scores, positive)
    if recall.size == 0 or recall[-1] == 0:
        return float("nan")
    steps = np.diff(np.r_[0.0, recall])
    return float((steps * precision).sum())

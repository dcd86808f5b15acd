"""Calibration on the dev split: temperatures per head, flag thresholds, the review cut."""

from __future__ import annotations

import numpy as np

from triage._metrics import precision_recall_points
from triage._modeling import Calibration

_TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 81))


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, stable for large logits."""
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # type: ignore[no-any-return]


def fit_softmax_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the dev negative log-likelihood (grid search, robust)."""
    known = labels >= 0
    if known.sum() < 2:
        return 1.0
    lg, lb = logits[known], labels[known]
    nll = [-log_softmax(lg / t)[np.arange(len(lb)), lb].mean() for t in _TEMPERATURES]
    return float(_TEMPERATURES[int(np.argmin(nll))])


def fit_sigmoid_temperature(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
    """One temperature for a multi-label head, minimising masked binary cross-entropy."""
    if mask.sum() < 2:
        return 1.0
    losses = []
    for t in _TEMPERATURES:
        z = logits / t
        bce = np.logaddexp(0, z) - targets * z
        losses.append(float((bce * mask).sum() / mask.sum()))
    return float(_TEMPERATURES[int(np.argmin(losses))])


def _precision_at(scores: np.ndarray, positive: np.ndarray, threshold: float) -> float:
    raised = scores >= threshold
    return float((raised & positive.astype(bool)).sum() / max(int(raised.sum()), 1))


def fbeta_threshold(scores: np.ndarray, positive: np.ndarray, beta: float) -> float:
    """The threshold with the best F-beta on dev (beta > 1 weighs recall)."""
    pos = positive.astype(bool)
    best, best_t = -1.0, 0.5
    for t in np.unique(scores):
        raised = scores >= t
        tp = float((raised & pos).sum())
        p, r = tp / max(raised.sum(), 1), tp / max(pos.sum(), 1)
        f = (1 + beta**2) * p * r / max(beta**2 * p + r, 1e-9)
        if f > best:
            best, best_t = f, float(t)
    return best_t


def _highest_threshold_at_recall(positive_scores: np.ndarray, recall: float) -> float:
    """The highest threshold that still raises a ``recall`` share of the dev positives."""
    allowed_misses = int(np.floor((1 - recall) * positive_scores.size + 1e-9))
    return min(float(positive_scores[allowed_misses]), 0.5)


def _recall_first_threshold(
    scores: np.ndarray, positive: np.ndarray, floor_threshold: float, precision_target: float
) -> float:
    """The threshold with the highest dev recall whose precision holds ``precision_target``,
    never above ``floor_threshold`` (the floor's own threshold, returned when none holds)."""
    thresholds, precision, recall = precision_recall_points(scores, positive.astype(bool))
    ok = (precision >= precision_target) & (thresholds <= floor_threshold)
    if not ok.any():
        return floor_threshold
    best = recall[ok].max()
    return float(thresholds[ok & (recall == best)].max())


def recall_threshold(
    scores: np.ndarray,
    positive: np.ndarray,
    recall_target: float,
    *,
    recall_floor: float | None = None,
    precision_target: float = 0.85,
    min_precision: float = 0.5,
) -> float:
    """The highest threshold that keeps dev recall at or above the target.

    With a few dozen dev positives a 0.98 target means "catch every one", so the single
    hardest dev positive sets the threshold. When precision there falls below
    ``precision_target`` and a ``recall_floor`` is given, recall still comes first: the
    threshold with the highest dev recall whose precision holds the precision target, never
    below the floor. When precision is still below ``min_precision``, the threshold with the
    best F2 (recall weighed four times precision) is used.
    """
    pos = np.sort(scores[positive.astype(bool)])
    if pos.size == 0:
        return 0.5
    threshold = _highest_threshold_at_recall(pos, recall_target)
    if recall_floor is not None and _precision_at(scores, positive, threshold) < precision_target:
        floor_threshold = _highest_threshold_at_recall(pos, min(recall_floor, recall_target))
        threshold = max(
            threshold, _recall_first_threshold(scores, positive, floor_threshold, precision_target)
        )
    if _precision_at(scores, positive, threshold) < min_precision:
        threshold = min(fbeta_threshold(scores, positive, 2.0), 0.5)
    return threshold


def f1_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold with the best F1 on dev (0.5 when there are no positives)."""
    pos = positive.astype(bool)
    if pos.sum() == 0:
        return 0.5
    best, best_t = -1.0, 0.5
    for t in np.unique(np.concatenate([scores, [0.5]])):
        pred = scores >= t
        tp = float((pred & pos).sum())
        precision = tp / max(pred.sum(), 1)
        recall = tp / pos.sum()
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        if f1 > best + 1e-9 or (abs(f1 - best) <= 1e-9 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = f1, float(t)
    return best_t


def review_cut(confidence: np.ndarray, correct: np.ndarray, accuracy_target: float) -> float:
    """The lowest confidence cut whose auto-accepted share reaches the accuracy target.

    Falls back to the cut with the best accuracy among cuts that keep at least 30% coverage.
    """
    if confidence.size == 0:
        return 0.0
    order = np.argsort(-confidence)
    conf, hit = confidence[order], correct[order].astype(float)
    running = np.cumsum(hit) / np.arange(1, len(hit) + 1)
    ok = np.where(running >= accuracy_target)[0]
    if ok.size:
        return float(conf[ok.max()])
    min_cover = max(1, int(0.3 * len(conf)))
    best = int(np.argmax(running[min_cover - 1 :])) + min_cover - 1
    return float(conf[best])


def calibrate(
    *,
    category_logits: np.ndarray,
    category_labels: np.ndarray,
    flag_logits: np.ndarray,
    flag_targets: np.ndarray,
    flag_mask: np.ndarray,
    department_logits: np.ndarray,
    department_targets: np.ndarray,
    department_mask: np.ndarray,
    flags: list[str],
    departments: list[str],
    fund_safety_recall_target: float,
    review_accuracy_target: float,
    fund_safety_recall_floor: float | None = None,
    fund_safety_precision_target: float = 0.85,
    review_flag_margin: float = 0.4,
) -> Calibration:
    """Fit everything the inference object needs to turn logits into decisions."""
    t_cat = fit_softmax_temperature(category_logits, category_labels)
    t_flag = fit_sigmoid_temperature(flag_logits, flag_targets, flag_mask)
    t_dept = fit_sigmoid_temperature(department_logits, department_targets, department_mask)
    flag_probs = 1 / (1 + np.exp(-flag_logits / t_flag))
    flag_thresholds = {}
    for j, flag in enumerate(flags):
        known = flag_mask[:, j] > 0
        scores, positive = flag_probs[known, j], flag_targets[known, j]
        if flag == "fund_safety":
            flag_thresholds[flag] = recall_threshold(
                scores,
                positive,
                fund_safety_recall_target,
                recall_floor=fund_safety_recall_floor,
                precision_target=fund_safety_precision_target,
            )
        else:
            flag_thresholds[flag] = f1_threshold(scores, positive)
    z = category_logits / t_cat
    cat_probs = np.exp(log_softmax(z))
    known = category_labels >= 0
    confidence = cat_probs.max(axis=1)[known]
    correct = cat_probs.argmax(axis=1)[known] == category_labels[known]
    return Calibration(
        category_temperature=t_cat,
        flag_temperature=t_flag,
        department_temperature=t_dept,
        flag_thresholds={k: round(v, 6) for k, v in flag_thresholds.items()},
        department_thresholds=dict.fromkeys(departments, 0.5),
        review_confidence=round(review_cut(confidence, correct, review_accuracy_target), 6),
        review_flag_margin=review_flag_margin,
        notes={
            "fund_safety_recall_target": fund_safety_recall_target,
            "fund_safety_recall_floor": fund_safety_recall_floor,
            "fund_safety_precision_target": fund_safety_precision_target,
            "review_accuracy_target": review_accuracy_target,
            "dev_category_records": int(known.sum()),
        },
    )

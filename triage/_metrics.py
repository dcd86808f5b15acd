"""Metric arithmetic shared by training (dev selection) and evaluation (reports, the gate)."""

from __future__ import annotations

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
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return float(ece)

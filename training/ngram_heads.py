"""Fit the n-gram branch after the encoder: TF-IDF logistic models per head, blended on dev.

Each head gets a linear model on the same training rows as the encoder (unknown fields left
out, source weights kept): a multinomial model for the category, one binary model per flag
and per department. Its regularisation C is chosen on the dev split, then the blend of the
encoder's and the n-gram model's logits: both are put on a common scale by a dev-fitted
temperature and mixed with a weight ``w`` in [0, 1] chosen by the head's dev score
(category macro-F1, flags mean average precision, owner top-1), ties broken by dev
log-loss. ``w = 0`` (the encoder alone) is always a candidate, so the blend can only help on dev.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score

from training.args import NgramConfig
from training.calibration import fit_sigmoid_temperature, fit_softmax_temperature, log_softmax
from training.data_mix import SplitData
from triage._modeling import ModelSpec
from triage._ngrams import HEAD_NAMES, NgramHeads, NgramVocabulary
from triage.text import normalize_text


@dataclass
class HeadFit:
    """One head's fitted n-gram weights, its C and the dev score it was chosen by."""

    weights: np.ndarray  # (terms, labels)
    bias: np.ndarray
    c: float | None
    dev_score: float


def _macro_f1(labels: np.ndarray, logits: np.ndarray, n: int) -> float:
    known = labels >= 0
    if not known.any():
        return 0.0
    return float(f1_score(labels[known], logits[known].argmax(1), labels=range(n), average="macro", zero_division=0))


def _mean_ap(targets: np.ndarray, mask: np.ndarray, scores: np.ndarray) -> float:
    aps = []
    for j in range(targets.shape[1]):
        known = mask[:, j] > 0
        positive = targets[known, j] > 0
        if positive.any() and not positive.all():
            aps.append(float(average_precision_score(positive, scores[known, j])))
    return float(np.mean(aps)) if aps else 0.0


def _owner_top1(owner: np.ndarray, scores: np.ndarray) -> float:
    known = owner >= 0
    return float((scores[known].argmax(1) == owner[known]).mean()) if known.any() else 0.0


def _logistic(c: float, balanced: bool) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight="balanced" if balanced else None, max_iter=3000)


def _fit_category(
    x: sparse.csr_matrix, split: SplitData, x_dev: sparse.csr_matrix, dev: SplitData,
    n_labels: int, c_grid: list[float],
) -> HeadFit:
    known = split.category >= 0
    weights, bias = np.zeros((x.shape[1], n_labels), np.float32), np.zeros(n_labels, np.float32)
    if len(np.unique(split.category[known])) < 2:
        return HeadFit(weights, bias, None, 0.0)
    best: HeadFit | None = None
    for c in c_grid:
        model = _logistic(c, balanced=True).fit(
            x[known], split.category[known], sample_weight=split.weights[known]
        )
        w, b = np.zeros_like(weights), np.full(n_labels, -20.0, np.float32)  # unseen labels: never
        w[:, model.classes_] = model.coef_.T if len(model.classes_) > 2 else np.hstack([-model.coef_.T, model.coef_.T]) / 2
        b[model.classes_] = model.intercept_ if len(model.classes_) > 2 else np.array([-1, 1]) * model.intercept_[0] / 2
        score = _macro_f1(dev.category, np.asarray(x_dev @ w) + b, n_labels)
        if best is None or score > best.dev_score + 1e-9:
            best = HeadFit(w, b, c, score)
    assert best is not None
    return best


def _fit_binary(
    x: sparse.csr_matrix, targets: np.ndarray, mask: np.ndarray, weights: np.ndarray,
    x_dev: sparse.csr_matrix, dev_score: Callable[[np.ndarray], float], c_grid: list[float],
) -> HeadFit:
    """One binary model per label (rows where it is known); C shared by the head."""
    n_labels = targets.shape[1]
    best: HeadFit | None = None
    for c in c_grid:
        w, b = np.zeros((x.shape[1], n_labels), np.float32), np.zeros(n_labels, np.float32)
        for j in range(n_labels):
            known = mask[:, j] > 0
            y = targets[known, j] > 0
            if not known.any():
                continue
            if y.all() or not y.any():  # one class only: a constant, never a learnt guess
                rate = (y.sum() + 0.5) / (len(y) + 1.0)
                b[j] = float(np.log(rate / (1 - rate)))
                continue
            model = _logistic(c, balanced=True).fit(x[known], y, sample_weight=weights[known])
            w[:, j], b[j] = model.coef_[0], model.intercept_[0]
        score = dev_score(np.asarray(x_dev @ w) + b)
        if best is None or score > best.dev_score + 1e-9:
            best = HeadFit(w, b, c, score)
    assert best is not None
    return best


def _blend_category(encoder: np.ndarray, ngram: np.ndarray, labels: np.ndarray, steps: int) -> tuple[tuple[float, float], dict[str, float]]:
    known = labels >= 0
    if not known.any() or not ngram.any():
        return (1.0, 0.0), {}
    t_e = fit_softmax_temperature(encoder, labels)
    t_g = fit_softmax_temperature(ngram, labels)
    n = encoder.shape[1]

    def evaluate(w: float) -> tuple[float, float]:
        z = (1 - w) * encoder / t_e + w * ngram / t_g
        t = fit_softmax_temperature(z, labels)
        nll = -log_softmax(z[known] / t)[np.arange(int(known.sum())), labels[known]].mean()
        return round(_macro_f1(labels, z, n), 3), -float(nll)

    return _choose(evaluate, t_e, t_g, steps)


def _blend_sigmoid(
    encoder: np.ndarray, ngram: np.ndarray, targets: np.ndarray, mask: np.ndarray,
    primary: Callable[[np.ndarray], float], steps: int,
) -> tuple[tuple[float, float], dict[str, float]]:
    if mask.sum() == 0 or not ngram.any():
        return (1.0, 0.0), {}
    t_e = fit_sigmoid_temperature(encoder, targets, mask)
    t_g = fit_sigmoid_temperature(ngram, targets, mask)

    def evaluate(w: float) -> tuple[float, float]:
        z = (1 - w) * encoder / t_e + w * ngram / t_g
        t = fit_sigmoid_temperature(z, targets, mask)
        bce = (np.logaddexp(0, z / t) - targets * z / t) * mask
        return round(primary(z), 3), -float(bce.sum() / mask.sum())

    return _choose(evaluate, t_e, t_g, steps)


def _choose(
    evaluate: Callable[[float], tuple[float, float]], t_e: float, t_g: float, steps: int
) -> tuple[tuple[float, float], dict[str, float]]:
    """The weight with the best (dev score, -log-loss); returns the two logit scales."""
    grid = np.linspace(0.0, 1.0, steps)
    scored = [(evaluate(float(w)), float(w)) for w in grid]
    (best_score, _), best_w = max(scored, key=lambda s: (s[0], -abs(s[1] - 0.5)))
    encoder_alone = scored[0][0][0]
    ngram_alone = scored[-1][0][0]
    scales = ((1 - best_w) / t_e, best_w / t_g)
    return scales, {
        "weight": round(best_w, 3), "dev_blend": best_score,
        "dev_encoder": encoder_alone, "dev_ngram": ngram_alone,
    }


def fit_ngram_heads(
    train: SplitData, dev: SplitData, dev_encoder_logits: tuple[np.ndarray, np.ndarray, np.ndarray],
    spec: ModelSpec, config: NgramConfig, *, progress: bool = True,
) -> tuple[NgramHeads, dict[str, dict[str, float]]]:
    """Fit the branch on train, its C and blend on dev; returns it with a dev report per head."""
    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr)

    train_texts = [normalize_text(r.text) for r in train.records]
    vocabulary = NgramVocabulary.fit(
        train_texts, max_n=config.max_n, min_df=config.min_df, max_terms=config.max_terms
    )
    say(f"n-gram branch: {len(vocabulary):,} terms from {len(train_texts):,} train texts")
    x = vocabulary.transform(train_texts)
    x_dev = vocabulary.transform([normalize_text(r.text) for r in dev.records])
    sizes = (len(spec.categories), len(spec.flags), len(spec.departments))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = (
            _fit_category(x, train, x_dev, dev, sizes[0], config.c_grid),
            _fit_binary(x, train.flags, train.flag_mask, train.weights, x_dev,
                        lambda s: _mean_ap(dev.flags, dev.flag_mask, s), config.c_grid),
            _fit_binary(x, train.departments, train.department_mask, train.weights, x_dev,
                        lambda s: _owner_top1(dev.owner, s), config.c_grid),
        )
    dev_ngram = [np.asarray(x_dev @ f.weights, dtype=np.float32) + f.bias for f in fits]
    blends = (
        _blend_category(dev_encoder_logits[0], dev_ngram[0], dev.category, config.blend_steps),
        _blend_sigmoid(dev_encoder_logits[1], dev_ngram[1], dev.flags, dev.flag_mask,
                       lambda z: _mean_ap(dev.flags, dev.flag_mask, z), config.blend_steps),
        _blend_sigmoid(dev_encoder_logits[2], dev_ngram[2], dev.departments, dev.department_mask,
                       lambda z: _owner_top1(dev.owner, z), config.blend_steps),
    )
    report: dict[str, dict[str, float]] = {}
    for head, fit, (_, detail) in zip(HEAD_NAMES, fits, blends, strict=True):
        report[head] = {"c": fit.c or 0.0, **detail}
        if detail:
            say(
                f"  {head}: C={fit.c:g}, n-gram weight {detail['weight']:.2f} "
                f"(dev {detail['dev_encoder']:.3f} encoder, {detail['dev_ngram']:.3f} n-grams, "
                f"{detail['dev_blend']:.3f} blend)"
            )
    heads = NgramHeads(
        vocabulary,
        np.hstack([f.weights for f in fits]).astype(np.float32),
        np.concatenate([f.bias for f in fits]).astype(np.float32),
        sizes,
        {h: b[0] for h, b in zip(HEAD_NAMES, blends, strict=True)},
    )
    return heads, report

"""The report folder a person reads: metrics.json, PNG plots, index.html, worst_errors.jsonl.

Plots use matplotlib's Agg backend (no display). Labels on plots are the taxonomy's machine
names (ASCII), so no CJK font is needed; complaint texts appear only in the HTML page, escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.predictions import PredictionSet
from triage import LabelledRecord
from triage._metrics import coverage_curve, precision_recall_points, reliability_bins

TEMPLATE_DIR = Path(__file__).with_name("templates")
PLOTS = {
    "confusion_matrix": "confusion_matrix.png",
    "reliability": "reliability_diagram.png",
    "pr_curves": "pr_curves.png",
    "coverage": "coverage_curve.png",
}
SYSTEM_COLOURS = ("#1f5fa8", "#d9822b", "#5b9a4a", "#8a4fa3")


@dataclass
class EvaluationResult:
    """Everything one `triage evaluate` produced, for the report, MLflow and the console."""

    data_path: str
    data_digest: str
    records: Sequence[LabelledRecord]
    model: PredictionSet
    metrics: dict[str, Any]
    baselines: list[tuple[PredictionSet, dict[str, Any]]] = field(default_factory=list)
    model_info: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    def document(self) -> dict[str, Any]:
        """The metrics.json document (worst errors live in their own file)."""
        model = {k: v for k, v in self.metrics.items() if k != "worst_errors"}
        return {
            "created_at": self.created_at,
            "data": {"path": self.data_path, "digest": self.data_digest, "records": len(self.records)},
            "model": {**self.model_info, **model},
            "baselines": {
                preds.system: {k: v for k, v in m.items() if k not in ("worst_errors", "slices")}
                for preds, m in self.baselines
            },
        }


# -- plots ----------------------------------------------------------------------------------------
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(metrics: dict[str, Any], path: Path, title: str) -> Path:
    """Counts in each cell; colour by the share of the gold row (so small classes read too)."""
    plt = _pyplot()
    labels = metrics["category"]["confusion"]["labels"]
    matrix = np.asarray(metrics["category"]["confusion"]["matrix"], dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = 1.3 + 1.1 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if share[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(matrix[i, j])}\n{share[i, j]:.0%}", ha="center", va="center",
                    color=colour, fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of gold row")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _category_correct(records: Sequence[LabelledRecord], preds: PredictionSet) -> tuple[np.ndarray, np.ndarray]:
    rows = [i for i, r in enumerate(records) if r.knows("category") and r.category in preds.categories]
    conf = preds.confidence[rows] if rows else np.zeros(0)
    correct = np.asarray([preds.category[i] == records[i].category for i in rows], dtype=bool)
    return conf, correct


def plot_reliability(
    records: Sequence[LabelledRecord], systems: Sequence[PredictionSet], path: Path, bins: int = 10
) -> Path:
    """Accuracy per confidence bin against the diagonal, with how many cases fall in each bin."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    width = 1.0 / bins
    for k, preds in enumerate(systems):
        conf, correct = _category_correct(records, preds)
        table = reliability_bins(conf, correct, bins)
        centres = np.asarray([(b["low"] + b["high"]) / 2 for b in table])
        acc = np.asarray([b["accuracy"] for b in table])
        counts = np.asarray([b["count"] for b in table])
        colour = SYSTEM_COLOURS[k % len(SYSTEM_COLOURS)]
        used = counts > 0
        if k == 0:
            top.bar(centres[used], acc[used], width=width * 0.9, color=colour, alpha=0.35,
                    edgecolor=colour, label=f"{preds.system}: accuracy per bin")
        top.plot(centres[used], acc[used], marker="o", color=colour, linewidth=1.2,
                 label=None if k == 0 else preds.system)
        offset = (k - (len(systems) - 1) / 2) * width / max(len(systems), 1)
        bottom.bar(centres + offset, counts, width=width / max(len(systems), 1) * 0.9, color=colour,
                   alpha=0.7)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_ylabel("accuracy (category)")
    top.set_title("Reliability diagram (category confidence)")
    top.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("confidence of the delivered category")
    bottom.set_ylabel("cases")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pr_curves(
    records: Sequence[LabelledRecord], systems: Sequence[PredictionSet], path: Path
) -> Path:
    """One panel per urgency flag; the dot marks each system's operating threshold."""
    plt = _pyplot()
    flags = systems[0].flags
    rows = [i for i, r in enumerate(records) if r.knows("urgency_flags")]
    cols = 2 if len(flags) > 1 else 1
    nrows = math.ceil(len(flags) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 4.2 * nrows), squeeze=False)
    for j, flag in enumerate(flags):
        ax = axes[j // cols][j % cols]
        positive = np.asarray([flag in records[i].urgency_flags for i in rows], dtype=bool)
        support = int(positive.sum())
        if support == 0:
            ax.text(0.5, 0.5, "no positive cases\nin this data", ha="center", va="center")
        for k, preds in enumerate(systems):
            if support == 0:
                break
            scores = preds.flag_scores[rows, j]
            _, precision, recall = precision_recall_points(scores, positive)
            # The interpolated curve (best precision at this recall or more) reads without sawtooth.
            envelope = np.maximum.accumulate(precision[::-1])[::-1]
            colour = SYSTEM_COLOURS[k % len(SYSTEM_COLOURS)]
            ax.step(np.r_[0.0, recall], np.r_[envelope[:1], envelope], where="pre", color=colour,
                    linewidth=1.6 if k == 0 else 1.0, label=preds.system)
            raised = preds.raised[rows, j]
            tp = int((raised & positive).sum())
            op_p = tp / raised.sum() if raised.sum() else 0.0
            op_r = tp / support
            ax.plot([op_r], [op_p], marker="o", markersize=7, color=colour,
                    markeredgecolor="black")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"{flag} (positives: {support})")
        ax.grid(alpha=0.3)
        if support:
            ax.legend(loc="lower left", fontsize=8, title="dot = threshold in use", title_fontsize=8)
    for j in range(len(flags), nrows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle("Precision-recall per urgency flag")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_coverage(
    records: Sequence[LabelledRecord], systems: Sequence[PredictionSet], path: Path
) -> Path:
    """Accuracy of the auto-accepted cases against the share auto-accepted (most confident first)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for k, preds in enumerate(systems):
        conf, correct = _category_correct(records, preds)
        _, share, acc = coverage_curve(conf, correct)
        colour = SYSTEM_COLOURS[k % len(SYSTEM_COLOURS)]
        ax.plot(np.r_[0.0, share], np.r_[acc[:1], acc] if acc.size else [0.0], color=colour,
                linewidth=1.6 if k == 0 else 1.0, label=preds.system)
        if preds.needs_review is not None and conf.size:
            rows = [i for i, r in enumerate(records) if r.knows("category") and r.category in preds.categories]
            auto = ~preds.needs_review[rows]
            if auto.any():
                ax.plot([auto.mean()], [correct[auto].mean()], marker="o", markersize=8, color=colour,
                        markeredgecolor="black", linestyle="none",
                        label=f"needs_review in use: {auto.mean():.0%} auto, {correct[auto].mean():.1%} right")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(max(0.0, ax.get_ylim()[0]), 1.01)
    ax.set_xlabel("share of complaints auto-accepted (coverage)")
    ax.set_ylabel("accuracy of the auto-accepted (category)")
    ax.set_title("Coverage curve: what review buys")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(result: EvaluationResult, folder: Path) -> dict[str, str]:
    systems = [result.model, *[p for p, _ in result.baselines]]
    title = f"Category confusion: {result.model.system}"
    plot_confusion_matrix(result.metrics, folder / PLOTS["confusion_matrix"], title)
    plot_reliability(result.records, systems, folder / PLOTS["reliability"])
    plot_pr_curves(result.records, systems, folder / PLOTS["pr_curves"])
    plot_coverage(result.records, systems, folder / PLOTS["coverage"])
    return dict(PLOTS)


# -- tables -------------------------------------------------------------------------------------
COMPARISON_COLUMNS: tuple[tuple[str, str], ...] = (
    ("category_accuracy", "cat acc"),
    ("category_macro_f1", "cat macro-F1"),
    ("macro_f1_ci", "95% CI"),
    ("flags_macro_f1", "flags F1"),
    ("fund_safety_recall", "fund_safety R"),
    ("urgency_level_accuracy", "urgency acc"),
    ("owner_top1", "owner top-1"),
    ("owner_top2", "owner top-2"),
    ("ece", "ECE"),
    ("ms_per_complaint", "ms/complaint"),
    ("model_minus_this", "model - this macro-F1 [paired 95% CI]"),
)


def comparison_row(metrics: dict[str, Any]) -> dict[str, Any]:
    ci = metrics["category"].get("macro_f1_ci")
    return {
        "category_accuracy": metrics["category"]["accuracy"],
        "category_macro_f1": metrics["category"]["macro_f1"],
        "macro_f1_ci": ci,
        "flags_macro_f1": metrics["flags"]["macro_f1"],
        "fund_safety_recall": metrics["flags"]["fund_safety_recall"],
        "urgency_level_accuracy": metrics["urgency"]["level_accuracy"],
        "owner_top1": metrics["owner"]["top1"],
        "owner_top2": metrics["owner"]["top2"],
        "ece": metrics["calibration"]["ece"],
        "ms_per_complaint": metrics.get("latency", {}).get("ms_per_complaint"),
        "model_minus_this": metrics.get("model_minus_this"),
    }


def fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "-"
    if key == "model_minus_this" and isinstance(value, dict):
        if value.get("difference") is None:
            return "-"
        return f"{value['difference']:+.3f} [{value['ci_low']:+.3f}, {value['ci_high']:+.3f}]"
    if key == "macro_f1_ci" and isinstance(value, list | tuple):
        return "-" if None in value else f"{value[0]:.3f}-{value[1]:.3f}"
    if key.endswith("_ms") or key == "ms_per_complaint":
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"
    if key in ("batch_size", "single_sample"):
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def plain_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, no borders: reads in a terminal and pastes into Markdown-less places."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def comparison_table(result: EvaluationResult) -> str:
    """The model and the baselines in one plain table."""
    systems = [(result.model.system, result.metrics)] + [(p.system, m) for p, m in result.baselines]
    header = ["system", *[label for _, label in COMPARISON_COLUMNS]]
    rows = []
    for name, metrics in systems:
        row = comparison_row(metrics)
        rows.append([name, *[fmt(row[key], key) for key, _ in COMPARISON_COLUMNS]])
    return plain_table(header, rows)


# -- the folder --------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj


def render_html(result: EvaluationResult, plots: dict[str, str]) -> str:
    """The page, through a Jinja template with autoescaping on (complaint texts are user input)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    systems = [(result.model.system, result.metrics)] + [(p.system, m) for p, m in result.baselines]
    return env.get_template("report.html").render(
        result=result,
        m=result.metrics,
        info=result.model_info,
        plots=plots,
        columns=COMPARISON_COLUMNS,
        comparison=[(name, comparison_row(metrics)) for name, metrics in systems],
        errors=result.metrics.get("worst_errors", {}),
    )


def write_report(result: EvaluationResult, folder: Path) -> Path:
    """Write the whole report folder and return the HTML page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    plots = write_plots(result, folder)
    (folder / "metrics.json").write_text(
        json.dumps(_jsonable(result.document()), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    errors = result.metrics.get("worst_errors", {})
    with (folder / "worst_errors.jsonl").open("w", encoding="utf-8") as fh:
        for kind, rows in errors.items():
            for row in rows:
                fh.write(json.dumps(_jsonable({"kind": kind, **row}), ensure_ascii=False) + "\n")
    page = folder / "index.html"
    page.write_text(render_html(result, plots), encoding="utf-8")
    return page

"""Log an evaluation as an MLflow run whose artefacts are the report, linked to the model version."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from triage import Settings, get_settings
from triage._registry import configure_mlflow, mlflow_client

EVALUATION_RUN_KIND = "evaluation"
_METRIC_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")


def flat_metrics(tree: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested metrics document as ``a.b.c`` names (MLflow metric names)."""
    out: dict[str, float] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(flat_metrics(value, name))
    elif isinstance(tree, bool):
        return out
    elif isinstance(tree, int | float):
        out[_METRIC_NAME.sub("_", prefix)] = float(tree)
    return out


def headline_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics worth a column in the MLflow UI (the rest are in the report artefact)."""
    keep = {
        "category.accuracy", "category.macro_f1", "flags.macro_f1", "flags.fund_safety_recall",
        "urgency.level_accuracy", "owner.top1", "owner.top2", "calibration.ece",
        "review.auto_accepted_share", "review.auto_accepted_accuracy",
        "latency.ms_per_complaint", "latency.single_p50_ms", "latency.single_p95_ms",
    }
    flat = flat_metrics({k: v for k, v in metrics.items() if k not in ("slices", "worst_errors")})
    out = {k: v for k, v in flat.items() if k in keep or k.startswith(("counts.", "flags.per_flag."))}
    ci = metrics.get("category", {}).get("macro_f1_ci") or []
    if len(ci) == 2 and None not in ci:
        out["category.macro_f1_ci_low"], out["category.macro_f1_ci_high"] = float(ci[0]), float(ci[1])
    return out


def log_evaluation(
    report_folder: Path, metrics: dict[str, Any], *, model_version: str, model_name: str | None,
    version: str | None, data_path: str, data_digest: str, baselines: dict[str, dict[str, Any]] | None = None,
    settings: Settings | None = None,
) -> str:
    """One MLflow run per evaluation: headline metrics, the report folder, and version tags."""
    import mlflow

    settings = settings or get_settings()
    configure_mlflow(settings)
    tags = {
        "triage.run_kind": EVALUATION_RUN_KIND,
        "triage.model_version": model_version,
        "triage.eval_data": data_path,
        "triage.eval_data_digest": data_digest,
    }
    if model_name and version:
        tags.update({"triage.model_name": model_name, "triage.registry_version": version})
    with mlflow.start_run(run_name=f"evaluate {model_version} on {Path(data_path).name}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params({"data": data_path, "data_digest": data_digest, "model": model_version})
        mlflow.log_metrics(headline_metrics(metrics))
        for name, other in (baselines or {}).items():
            mlflow.log_metrics({f"baseline.{name}.{k}": v for k, v in headline_metrics(other).items()})
        mlflow.log_artifacts(str(report_folder), artifact_path="report")
        run_id = str(run.info.run_id)
    if model_name and version:
        client = mlflow_client(settings)
        client.set_model_version_tag(model_name, version, "evaluation.last_run_id", run_id)
        f1 = metrics.get("category", {}).get("macro_f1")
        if f1 is not None:
            client.set_model_version_tag(
                model_name, version, f"evaluation.{data_digest}.category_macro_f1", f"{f1:.4f}"
            )
    return run_id

"""One evaluation end to end: read the labelled file, triage it through the contract, score the
model (and the baselines), write the report, log it to MLflow."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from evaluation.metrics_report import EvaluationOptions, evaluate_set, paired_macro_f1
from evaluation.predictions import PredictionSet, run_triager, single_request_latency
from evaluation.report import EvaluationResult, write_report
from triage import InputError, LabelledRecord, Settings, Taxonomy, get_settings, read_records
from triage._records import content_hash

DEFAULT_TRAIN = Path("datasets/starter/train.jsonl")


def read_labelled(path: str | Path, taxonomy: Taxonomy, *, what: str = "evaluation data") -> list[LabelledRecord]:
    """Read a labelled file and check its labels against the model's taxonomy (one-line errors)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{file}: {what} file not found")
    records = read_records(file)
    if not records:
        raise InputError(f"{file}: no records")
    cats, flags, depts = (
        set(taxonomy.category_names), set(taxonomy.flag_names), set(taxonomy.department_names)
    )
    for number, record in enumerate(records, start=1):
        where = f"{file}: record {record.id or number}"
        if not record.text.strip():
            raise InputError(f"{where}: text is empty")
        if record.knows("category") and record.category is not None and record.category not in cats:
            raise InputError(f"{where}: category {record.category!r} is not in the model's taxonomy")
        bad = [f for f in record.urgency_flags if f not in flags] + [
            d for d in record.departments if d not in depts
        ]
        if bad:
            raise InputError(f"{where}: label(s) not in the model's taxonomy: {', '.join(bad)}")
    return records


@dataclass(frozen=True)
class ModelUnderTest:
    """A loaded model and how to name it in reports, tags and the promotion log."""

    triager: Any
    model_version: str
    name: str | None
    version: str | None


def load_model(ref: str, *, batch_size: int = 32, quantize: str | None = None,
               settings: Settings | None = None) -> ModelUnderTest:
    """Resolve ``ref`` once and load it with the configured inference options (as serving does)."""
    from triage._inference import InferenceOptions, Triager
    from triage._loading import configured_taxonomy
    from triage._registry import resolve_model

    settings = settings or get_settings()
    resolved = resolve_model(ref, settings)
    options = InferenceOptions(
        batch_size=batch_size,
        num_threads=settings.num_threads,
        quantize=cast(Literal["none", "dynamic_int8"], quantize or settings.quantize),
    )
    triager = Triager.from_folder(
        resolved.folder, model_version=resolved.model_version,
        taxonomy=configured_taxonomy(settings), options=options,
    )
    return ModelUnderTest(triager, resolved.model_version, resolved.name, resolved.version)


def predict_records(
    model: ModelUnderTest, records: Sequence[LabelledRecord], *, latency_sample: int = 0,
    progress: bool = True,
) -> PredictionSet:
    """The model's contract answers for every record, with latency figures."""
    preds = run_triager(
        model.triager, records, chunk_size=max(1, model.triager.options.batch_size), progress=progress
    )
    if latency_sample > 0:
        preds.latency.update(single_request_latency(model.triager, records, latency_sample))
    return preds


def evaluate_model(
    ref: str, data_path: str | Path, *, report_dir: Path | None = None, baselines: bool = False,
    train_path: str | Path | None = None, dev_path: str | Path | None = None, batch_size: int = 32,
    quantize: str | None = None, options: EvaluationOptions | None = None, latency_sample: int = 20,
    progress: bool = True, log_to_mlflow: bool = True, settings: Settings | None = None,
) -> tuple[EvaluationResult, Path, str | None]:
    """Evaluate a model reference on a labelled file; returns the result, the report page, the run id."""
    settings = settings or get_settings()
    options = options or EvaluationOptions()
    model = load_model(ref, batch_size=batch_size, quantize=quantize, settings=settings)
    taxonomy: Taxonomy = model.triager.taxonomy
    records = read_labelled(data_path, taxonomy)
    preds = predict_records(model, records, latency_sample=latency_sample, progress=progress)
    metrics = evaluate_set(records, preds, taxonomy, options)
    scored: list[tuple[PredictionSet, dict[str, Any]]] = []
    if baselines:
        scored = score_baselines(
            taxonomy, records, train_path or DEFAULT_TRAIN, dev_path, options, progress=progress
        )
        for baseline, baseline_metrics in scored:
            baseline_metrics["model_minus_this"] = paired_macro_f1(records, preds, baseline, options)
    spec = model.triager.spec
    result = EvaluationResult(
        data_path=str(data_path),
        data_digest=content_hash(records),
        records=records,
        model=preds,
        metrics=metrics,
        baselines=scored,
        model_info={
            "model_version": model.model_version, "name": model.name, "version": model.version,
            "decision_thresholds": {
                "flags": spec.calibration.flag_thresholds,
                "review_below_confidence": spec.calibration.review_confidence,
            },
        },
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    folder = report_dir or default_report_dir(settings, model.model_version, data_path)
    page = write_report(result, folder)
    run_id = None
    if log_to_mlflow:
        from evaluation.tracking import log_evaluation

        run_id = log_evaluation(
            folder, metrics, model_version=model.model_version, model_name=model.name,
            version=model.version, data_path=str(data_path), data_digest=result.data_digest,
            baselines={p.system: m for p, m in scored}, settings=settings,
        )
    return result, page, run_id


def score_baselines(
    taxonomy: Taxonomy, records: Sequence[LabelledRecord], train_path: str | Path,
    dev_path: str | Path | None, options: EvaluationOptions, *, progress: bool = True,
) -> list[tuple[PredictionSet, dict[str, Any]]]:
    """Train the baselines on ``train_path`` and score them on ``records`` by the same code."""
    from evaluation.baselines import train_baselines

    train = read_labelled(train_path, taxonomy, what="baseline training data")
    dev = read_labelled(dev_path, taxonomy, what="baseline dev data") if dev_path else None
    if progress:
        print(f"training baselines on {len(train)} records from {train_path} ...", file=sys.stderr)
    out = []
    for baseline in train_baselines(taxonomy, train, dev):
        preds = baseline.predict(records)
        metrics = evaluate_set(records, preds, taxonomy, options)
        out.append((preds, metrics))
    return out


def default_report_dir(settings: Settings, model_version: str, data_path: str | Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = model_version.replace("/", "-").replace(":", "-")
    return settings.state_dir / "reports" / f"{slug}-{Path(data_path).stem}-{stamp}"

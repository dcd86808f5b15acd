"""A tracked training run: MLflow params, data versions, metrics, artefacts, the registry."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.args import TrainingConfig
from training.data_mix import TrainingData, load_training_data
from training.trainer import Trainer, TrainingResult, save_model
from triage import Settings, Taxonomy, get_settings, load_taxonomy
from triage._registry import (
    CHALLENGER,
    CHAMPION,
    configure_mlflow,
    mlflow_client,
    pip_requirements,
    registry_cache_dir,
)


@dataclass
class RegisteredRun:
    run_id: str
    model_name: str
    version: str | None
    alias: str | None
    dev_metrics: dict[str, float]
    test_metrics: dict[str, float]
    model_dir: Path


def train_tracked(
    config: TrainingConfig,
    *,
    config_path: Path | None = None,
    settings: Settings | None = None,
    progress: bool = True,
) -> RegisteredRun:
    """Train, log everything to MLflow and register a model version with its alias."""
    import mlflow

    settings = settings or get_settings()
    configure_mlflow(settings)
    taxonomy = load_taxonomy(config.taxonomy or settings.taxonomy_path)
    data = load_training_data(config, taxonomy)
    name = config.registered_model_name or settings.registered_model_name
    with mlflow.start_run(run_name=config.name) as run:
        _log_setup(config, config_path, data)
        trainer = Trainer(
            config, taxonomy, data, progress=progress,
            on_epoch=lambda epoch, m: mlflow.log_metrics({f"dev_{k}": v for k, v in m.items()}, step=epoch),
        )
        result = trainer.fit()
        mlflow.log_metrics({f"final_dev_{k}": v for k, v in result.dev_metrics.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in result.test_metrics.items()})
        mlflow.log_metrics({f"time_{k}": v for k, v in result.timings.items()})
        mlflow.log_dict(asdict(result.model.spec.calibration), "calibration.json")
        with tempfile.TemporaryDirectory() as tmp:
            folder = save_model(result, Path(tmp) / "triage_model")
            _log_confusion(result, taxonomy, data, Path(tmp))
            card = Path(tmp) / "MODEL_CARD.md"
            card.write_text(model_card(config, result, data, taxonomy), encoding="utf-8")
            mlflow.log_artifact(str(card))
            version, alias = _log_and_register(folder, name, run.info.run_id, config.register_model)
            model_dir = registry_cache_dir(settings, name, version or run.info.run_id)
            if not model_dir.exists():
                import shutil

                shutil.copytree(folder, model_dir)
    return RegisteredRun(
        run.info.run_id, name, version, alias, result.dev_metrics, result.test_metrics, model_dir
    )


def _log_setup(config: TrainingConfig, config_path: Path | None, data: TrainingData) -> None:
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    params = config.model_dump(mode="json")
    params["sources"] = ",".join(s.name for s in config.sources)
    mlflow.log_params({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in params.items()})
    if config_path is not None:
        mlflow.log_artifact(str(config_path), artifact_path="config")
    mlflow.log_dict(config.model_dump(mode="json"), "config/resolved.json")
    for v in data.versions:
        source = resolve_dataset_source(str(Path(v.path).resolve()))
        dataset = MetaDataset(source=source, name=f"{v.source}/{v.split}", digest=v.digest)
        mlflow.log_input(dataset, context=v.split, tags={"records": str(v.records)})
    mlflow.set_tags({f"data.{v.source}.{v.split}": v.digest for v in data.versions})
    mlflow.log_metrics({
        "train_records": len(data.train), "dev_records": len(data.dev),
        "test_records": len(data.test) if data.test else 0,
    })


def _log_confusion(result: TrainingResult, taxonomy: Taxonomy, data: TrainingData, tmp: Path) -> None:
    """The dev confusion matrix as an image (a picture reads better than a table)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import numpy as np

    from triage._inference import calibrated_probabilities

    logits = result.dev_logits
    if logits is None:
        return
    cats = taxonomy.category_names
    probs = calibrated_probabilities(
        logits.category, logits.flags, logits.departments, result.model.spec.calibration
    )
    known = data.dev.category >= 0
    gold, pred = data.dev.category[known], probs.category.argmax(1)[known]
    matrix = np.zeros((len(cats), len(cats)), dtype=int)
    for g, p in zip(gold, pred, strict=True):
        matrix[g, p] += 1
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
    ax.set_yticks(range(len(cats)), cats)
    for i in range(len(cats)):
        for j in range(len(cats)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("dev confusion matrix (category)")
    fig.tight_layout()
    path = tmp / "confusion_matrix_dev.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    mlflow.log_artifact(str(path))


def _log_and_register(folder: Path, name: str, run_id: str, register: bool) -> tuple[str | None, str | None]:
    import mlflow.pyfunc

    from triage._pyfunc import MODEL_ARTIFACT, TriagePyfunc

    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=TriagePyfunc(),
        artifacts={MODEL_ARTIFACT: str(folder)},
        pip_requirements=pip_requirements(),
        registered_model_name=name if register else None,
        input_example=None,
    )
    if not register:
        return None, None
    version = str(info.registered_model_version)
    alias = assign_alias(name, version)
    print(f"registered {name} version {version} as @{alias}", file=sys.stderr)
    return version, alias


def assign_alias(name: str, version: str) -> str:
    """The first model on an empty registry becomes champion; later ones are challengers."""
    client = mlflow_client()
    try:
        client.get_model_version_by_alias(name, CHAMPION)
    except Exception:  # no champion yet
        client.set_registered_model_alias(name, CHAMPION, version)
        return CHAMPION
    client.set_registered_model_alias(name, CHALLENGER, version)
    return CHALLENGER


def model_card(config: TrainingConfig, result: TrainingResult, data: TrainingData, taxonomy: Taxonomy) -> str:
    cal = result.model.spec.calibration
    lines = [
        f"# Model card: {config.name}",
        "",
        f"- Base model: `{config.base_model}`; max length {config.max_length}; "
        f"trainable top layers: {config.trainable_top_layers}",
        f"- Labels: categories {taxonomy.category_names}; flags {taxonomy.flag_names}; "
        f"departments {taxonomy.department_names}",
        f"- Best epoch {result.best_epoch}; timings {', '.join(f'{k} {v:.1f}' for k, v in result.timings.items())}",
        "",
        "## Data",
        "",
        "| source | split | records | version |",
        "|---|---|---|---|",
        *[f"| {v.source} | {v.split} | {v.records} | `{v.digest}` |" for v in data.versions],
        "",
        "## Calibration (dev split)",
        "",
        f"- temperatures: category {cal.category_temperature:.2f}, flags {cal.flag_temperature:.2f}, "
        f"departments {cal.department_temperature:.2f}",
        f"- flag thresholds: {json.dumps(cal.flag_thresholds)}",
        f"- needs_review below category confidence {cal.review_confidence:.3f}",
        "",
        "## Metrics",
        "",
        "| metric | dev | test |",
        "|---|---|---|",
        *[
            f"| {k} | {v:.3f} | {result.test_metrics.get(k, float('nan')):.3f} |"
            for k, v in sorted(result.dev_metrics.items())
        ],
        "",
        "Intended use: routing suggestions with human review of low-confidence cases; "
        "not an automated decision on a customer.",
    ]
    return "\n".join(lines) + "\n"


def to_jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))

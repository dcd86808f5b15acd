"""Model references: ``champion``, ``challenger``, ``models:/name/version``, ``models:/name@alias``
or a local folder, resolved to a local model folder and the exact registry version.

Every consumer (CLI, service import, evaluation) resolves references here.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage._errors import ModelNotFoundError
from triage._modeling import MODEL_FILE
from triage._settings import Settings, get_settings

CHAMPION = "champion"
CHALLENGER = "challenger"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: its folder and what to call it in predictions."""

    folder: Path
    model_version: str
    name: str | None = None
    version: str | None = None


def configure_mlflow(settings: Settings | None = None) -> None:
    """Point MLflow at the configured stores and make sure the experiment exists."""
    import mlflow

    settings = settings or get_settings()
    settings.ensure_dirs()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_registry_uri)
    if mlflow.get_experiment_by_name(settings.mlflow_experiment) is None:
        location = settings.mlflow_artifact_location
        if "://" not in location:
            location = Path(location).resolve().as_uri()
        mlflow.create_experiment(settings.mlflow_experiment, artifact_location=location)
    mlflow.set_experiment(settings.mlflow_experiment)


def mlflow_client(settings: Settings | None = None) -> Any:
    from mlflow import MlflowClient

    settings = settings or get_settings()
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)


def pip_requirements() -> list[str]:
    """Explicit requirements for logged models (inference of them would try the network)."""
    from importlib.metadata import version

    pins = ["torch", "transformers", "tokenizers", "spacy", "jieba", "mlflow", "pydantic", "numpy"]
    return [f"{p}=={version(p)}" for p in pins] + ["complaint-triage"]


def find_model_folder(root: str | Path) -> Path | None:
    """The triage model folder at or under ``root`` (an MLflow model keeps it in artifacts/)."""
    root = Path(root)
    if (root / MODEL_FILE).is_file():
        return root
    for candidate in sorted(root.glob(f"**/{MODEL_FILE}")):
        return candidate.parent
    return None


def registry_cache_dir(settings: Settings, name: str, version: str) -> Path:
    """Local copy of a registered version, keyed by the registry it came from.

    The model cache is shared by every project folder of a user, and version numbers restart
    in each registry, so the registry URI is part of the key.
    """
    import hashlib

    registry = hashlib.sha256(settings.mlflow_registry_uri.encode()).hexdigest()[:12]
    return settings.model_cache / "registry" / registry / name / version


def resolve_model(ref: str = CHAMPION, settings: Settings | None = None) -> ResolvedModel:
    """Turn a model reference into a local folder, downloading registry artefacts once."""
    settings = settings or get_settings()
    local = Path(ref).expanduser()
    if local.exists():
        folder = find_model_folder(local)
        if folder is None:
            raise ModelNotFoundError(f"{ref}: not a triage model folder (no {MODEL_FILE})")
        return ResolvedModel(folder, f"local:{local.resolve().name}")
    name, version = registry_version(ref, settings)
    cache = registry_cache_dir(settings, name, version)
    folder = find_model_folder(cache) if cache.exists() else None
    if folder is None:
        folder = _download(name, version, cache)
    return ResolvedModel(folder, f"{name}/{version}", name, version)


def registry_version(ref: str, settings: Settings) -> tuple[str, str]:
    """The (registered model name, version) that a registry reference points at now."""
    if ref in (CHAMPION, CHALLENGER):
        ref = f"models:/{settings.registered_model_name}@{ref}"
    match = _MODELS_URI.match(ref)
    if not match:
        raise ModelNotFoundError(
            f"{ref!r} is not a model reference: use champion, challenger, "
            "models:/NAME/VERSION, models:/NAME@ALIAS or a model folder"
        )
    configure_mlflow(settings)
    client = mlflow_client(settings)
    name = match["name"]
    try:
        if match["version"]:
            mv = client.get_model_version(name, match["version"])
        else:
            mv = client.get_model_version_by_alias(name, match["alias"])
    except Exception as exc:
        what = f"version {match['version']}" if match["version"] else f"alias @{match['alias']}"
        raise ModelNotFoundError(
            f"no registered model {name!r} with {what} (train one with `triage train`)"
        ) from exc
    return name, str(mv.version)


def _download(name: str, version: str, cache: Path) -> Path:
    import mlflow.artifacts

    tmp = cache.with_name(cache.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(tmp))
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)
    folder = find_model_folder(cache)
    if folder is None:
        raise ModelNotFoundError(f"models:/{name}/{version} holds no triage model")
    return folder

"""Build the inference object from a model reference and the configured policy."""

from __future__ import annotations

from typing import Literal, cast

from triage._inference import InferenceOptions, Triager
from triage._registry import resolve_model
from triage._settings import Settings, get_settings
from triage._taxonomy import Taxonomy, load_taxonomy


def configured_taxonomy(settings: Settings) -> Taxonomy | None:
    """The configured policy file when one is set; else the model's own snapshot is used."""
    return load_taxonomy(settings.taxonomy_path) if settings.taxonomy_path else None


def load_triager(
    ref: str = "champion",
    *,
    batch_size: int = 32,
    quantize: str | None = None,
    settings: Settings | None = None,
) -> Triager:
    """Resolve ``ref`` (champion, challenger, models:/..., folder) and load it once."""
    settings = settings or get_settings()
    resolved = resolve_model(ref, settings)
    options = InferenceOptions(
        batch_size=batch_size,
        num_threads=settings.num_threads,
        quantize=cast(Literal["none", "dynamic_int8"], quantize or settings.quantize),
        evidence_fallback=settings.evidence_fallback,
    )
    return Triager.from_folder(
        resolved.folder,
        model_version=resolved.model_version,
        taxonomy=configured_taxonomy(settings),
        options=options,
    )

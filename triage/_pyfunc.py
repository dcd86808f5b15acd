"""The MLflow pyfunc flavour of a triage model: ``predict`` returns contract predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc

MODEL_ARTIFACT = "triage_model"


class TriagePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Wraps the inference object so any MLflow consumer gets the contract's JSON."""

    def load_context(self, context: Any) -> None:
        from triage._inference import Triager

        folder = Path(context.artifacts[MODEL_ARTIFACT])
        self.folder = folder
        self.triager = Triager.from_folder(folder, model_version=f"local:{folder.name}")

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # no type hints: MLflow would read them as a (list-only) input schema
        from triage._schema import Complaint

        if hasattr(model_input, "to_dict"):
            rows = model_input.to_dict(orient="records")
        elif isinstance(model_input, dict):
            rows = [model_input]
        else:
            rows = [r if isinstance(r, dict) else {"text": str(r)} for r in model_input]
        complaints = [Complaint.model_validate({k: v for k, v in r.items() if v is not None}) for r in rows]
        return [p.model_dump(mode="json") for p in self.triager.triage(complaints)]

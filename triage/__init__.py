"""Complaint triage core: taxonomy, settings, the prediction contract, text pipeline, inference.

Heavy pieces (torch, spaCy) load lazily so that importing the package does no work.
"""

from __future__ import annotations

from triage._errors import ConfigError, InputError, ModelNotFoundError, TriageError
from triage._offline import go_offline
from triage._records import LabelledRecord, read_records, write_records
from triage._schema import Complaint, Prediction
from triage._settings import Settings, get_settings
from triage._taxonomy import SlaPolicy, Taxonomy, load_taxonomy

__all__ = [
    "Complaint",
    "ConfigError",
    "InputError",
    "LabelledRecord",
    "ModelNotFoundError",
    "Prediction",
    "Settings",
    "SlaPolicy",
    "Taxonomy",
    "TriageError",
    "get_settings",
    "go_offline",
    "load_taxonomy",
    "read_records",
    "write_records",
]

"""Labeling room: the reviewers' application, its store, import and export.

Public names load lazily so that `triage --help` (which mounts ``labeling.cli``) stays instant.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PredictionRecorder",
    "ReviewStore",
    "create_app",
    "export_reviewed",
    "import_file",
    "open_store",
]

_WHERE = {
    "PredictionRecorder": "labeling.recorder",
    "ReviewStore": "labeling.store",
    "open_store": "labeling.store",
    "create_app": "labeling.app",
    "export_reviewed": "labeling.export",
    "import_file": "labeling.importer",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'labeling' has no attribute {name!r}")

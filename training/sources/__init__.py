"""Real shared data sets joined to the taxonomy by reviewed mapping files.

Each source in ``../shared/datasets/`` that the project uses has a mapping file in
``training/sources/mappings/<name>.yaml`` and an importer that writes labelled-record
splits plus a dataset card to ``<out_dir>/<name>/``. Only the label fields a source really
knows are marked known. Nothing here reads files at import time.
"""

from __future__ import annotations

from training.sources._importer import ImportSummary, import_all, import_source, list_sources
from training.sources._mapping import (
    LabelTarget,
    SourceMapping,
    check_mapping,
    load_mapping,
    mapping_path,
)

__all__ = [
    "ImportSummary",
    "LabelTarget",
    "SourceMapping",
    "check_mapping",
    "import_all",
    "import_source",
    "list_sources",
    "load_mapping",
    "mapping_path",
]

"""The dataset card written beside an import: provenance, version, counts, labels, drops."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from training.sources._mapping import SourceMapping

if TYPE_CHECKING:
    from training.sources._importer import ImportSummary

_SPLITS = ("train", "dev", "test")


def _shown(path: Path) -> str:
    """A path relative to the project root when it lies inside it."""
    root = Path(__file__).resolve().parents[2]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def render_card(summary: ImportSummary, mapping: SourceMapping, folder: Path) -> str:
    name = summary.source
    known = ", ".join(f"{f} {n}/{summary.total}" for f, n in summary.known_counts.items())
    lines = [
        f"# {name} (imported)",
        "",
        f"Derived at run time from the shared data set `{folder}` by `training.sources`",
        f"on {summary.created}. Not a copy to commit: `datasets/imported/` is git-ignored, and",
        f"the source's own card (`{folder / 'README.md'}`) governs licence and use.",
        "Labels come from the mapping file below, not from people reading these texts.",
        "A field outside a record's `known` list is missing, never a negative.",
        "",
        "| | |",
        "|---|---|",
        f"| mapping | `{_shown(mapping.path)}` (sha256 `{summary.mapping_sha256[:16]}`) |",
        f"| dataset version | `{summary.version}` (content hash of the records and the mapping) |",
        f"| language | {summary.lang} |",
        f"| records | {summary.total} |",
        f"| known fields | {known} |",
        f"| split | {summary.split_note} |",
        f"| ids | `{name}-<split>-<row>`: row = 0-based data row in the source file |",
    ]
    if summary.limit is not None:
        lines.append(
            f"| limit | first {summary.limit} records per split (a slice, not the full set) |"
        )
    lines += [
        "",
        "## Input files (sha256 computed at import)",
        "",
        "| file | sha256 |",
        "|---|---|",
    ]
    lines += [f"| `{f}` | `{h}` |" for f, h in summary.input_sha256.items()]
    lines += ["", "## Records per split", "", "| split | records |", "|---|---|"]
    lines += [f"| {s} | {summary.counts[s]} |" for s in _SPLITS]
    lines += [
        "",
        "## Labels per split",
        "",
        "departments counts the owner (first department); `(none)` = flags known and none raised.",
        "",
        "| field: label | " + " | ".join(_SPLITS) + " |",
        "|---|" + "---|" * len(_SPLITS),
    ]
    keys = sorted({k for counts in summary.per_split_labels.values() for k in counts})
    for key in keys:
        cells = " | ".join(str(summary.per_split_labels[s].get(key, 0)) for s in _SPLITS)
        lines.append(f"| {key} | {cells} |")
    lines += ["", "## Dropped rows", "", "| reason | rows |", "|---|---|"]
    drops = sorted(summary.dropped.items()) or [("none", 0)]
    lines += [f"| {reason} | {n} |" for reason, n in drops]
    return "\n".join(lines) + "\n"

"""Mapping files: how one source's labels become project labels, and which fields it knows.

One YAML file per source in ``training/sources/mappings/``. The file is the reviewed
artefact; this module only parses and checks it. An entry's fields say what the source
knows for that label: a field an entry sets is known (``urgency_flags: []`` is a known
negative), a field it leaves out is unknown unless the file-level ``known`` lists it.
An entry of ``null`` maps the label to nothing: its rows are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from triage import ConfigError, Taxonomy
from triage._records import LABEL_FIELDS

MAPPINGS_DIR = Path(__file__).parent / "mappings"


class _Entry(BaseModel):
    """One source label's targets, as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str | None = None
    urgency_flags: tuple[str, ...] | None = None
    departments: tuple[str, ...] | None = None


class _MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    lang: str
    key: str = ""
    channel: str | None = None
    known: tuple[str, ...] = ()
    flags_unknown_if_text_mentions: tuple[str, ...] = ()
    labels: dict[str, _Entry | None]


@dataclass(frozen=True)
class LabelTarget:
    """What the rows of one source label become; fields outside ``known`` are missing."""

    category: str | None
    urgency_flags: tuple[str, ...]
    departments: tuple[str, ...]
    known: frozenset[str]

    def without(self, label_field: str) -> LabelTarget:
        """The same target with one field made unknown (and emptied)."""
        return LabelTarget(
            category=None if label_field == "category" else self.category,
            urgency_flags=() if label_field == "urgency_flags" else self.urgency_flags,
            departments=() if label_field == "departments" else self.departments,
            known=self.known - {label_field},
        )


@dataclass(frozen=True)
class SourceMapping:
    """A parsed mapping file: source labels → targets, plus the bytes that version it."""

    source: str
    lang: str
    channel: str | None
    known: frozenset[str]
    targets: dict[str, LabelTarget | None]
    escalation_terms: tuple[str, ...]
    path: Path
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def lookup(self, keys: Sequence[str]) -> tuple[str | None, LabelTarget | None]:
        """(matched key, target) for the first key the file lists; (None, None) if none is."""
        for key in keys:
            if key in self.targets:
                return key, self.targets[key]
        return None, None

    def guard(self, target: LabelTarget, text: str) -> LabelTarget:
        """Make the flags unknown where the text mentions a term the file names (see the file)."""
        if "urgency_flags" in target.known and self._escalation.search(text):
            return target.without("urgency_flags")
        return target

    @cached_property
    def _escalation(self) -> re.Pattern[str]:
        if not self.escalation_terms:
            return re.compile(r"(?!x)x")  # matches nothing
        alternatives = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in self.escalation_terms)
        return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def mapping_path(name: str) -> Path:
    return MAPPINGS_DIR / f"{name}.yaml"


def load_mapping(name: str, path: Path | None = None) -> SourceMapping:
    """Parse a source's mapping file; raises ConfigError with the file and the first problem."""
    file = path if path is not None else mapping_path(name)
    if not file.is_file():
        raise ConfigError(f"mapping file not found: {file}")
    content = file.read_bytes()
    try:
        raw = yaml.safe_load(content.decode("utf-8"))
        parsed = _MappingFile.model_validate(raw)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not a readable YAML mapping: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{file}: {where}: {err['msg']}") from exc
    if parsed.source != name:
        raise ConfigError(f"{file}: says source {parsed.source!r}, expected {name!r}")
    bad_known = sorted(set(parsed.known) - set(LABEL_FIELDS))
    if bad_known:
        raise ConfigError(f"{file}: known: {bad_known} not among {list(LABEL_FIELDS)}")
    file_known = frozenset(parsed.known)
    return SourceMapping(
        source=parsed.source,
        lang=parsed.lang,
        channel=parsed.channel,
        known=file_known,
        targets={k: _target(e, file_known) for k, e in parsed.labels.items()},
        escalation_terms=parsed.flags_unknown_if_text_mentions,
        path=file,
        content=content,
    )


def _target(entry: _Entry | None, file_known: frozenset[str]) -> LabelTarget | None:
    if entry is None:
        return None
    set_here = {f for f in LABEL_FIELDS if getattr(entry, f) is not None}
    return LabelTarget(
        category=entry.category,
        urgency_flags=entry.urgency_flags or (),
        departments=entry.departments or (),
        known=frozenset(file_known | set_here),
    )


def check_mapping(mapping: SourceMapping, taxonomy: Taxonomy) -> list[str]:
    """Each problem as ``labels.<key>: <message>``; empty when every target is in the taxonomy."""
    cats, flags, depts = (
        set(taxonomy.category_names),
        set(taxonomy.flag_names),
        set(taxonomy.department_names),
    )
    problems: list[str] = []
    for key, target in mapping.targets.items():
        if target is None:
            continue
        where = f"labels.{key}"
        if not target.known:
            problems.append(f"{where}: knows no field (map it to null to drop it)")
        if "category" in target.known and target.category not in cats:
            problems.append(f"{where}: unknown category {target.category!r}")
        problems += [
            f"{where}: unknown urgency flag {f!r}" for f in target.urgency_flags if f not in flags
        ]
        problems += [
            f"{where}: unknown department {d!r}" for d in target.departments if d not in depts
        ]
        if "departments" in target.known and not 1 <= len(target.departments) <= 3:
            problems.append(f"{where}: known departments need 1 to 3 names")
    return problems


def require_valid(mapping: SourceMapping, taxonomy: Taxonomy) -> None:
    problems = check_mapping(mapping, taxonomy)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{mapping.path}: {problems[0]}{more}")

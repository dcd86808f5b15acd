"""The taxonomy and urgency/SLA policy, loaded from one YAML file into typed objects.

Everything that names a label reads it from here, so renaming or adding a label is a
configuration change plus retraining.
"""

from __future__ import annotations

import datetime as _dt
import re
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from triage._yaml_config import load_yaml_model

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int | float) -> timedelta:
    """Parse '90m', '4h', '3d' (or a number of hours) into a timedelta."""
    if isinstance(value, int | float):
        return timedelta(hours=float(value))
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"invalid duration {value!r}: use a number with m, h or d, e.g. '4h'")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class Label(BaseModel):
    """One label: a stable machine name and its display names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    zh: str
    en: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _snake_case(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"label name {v!r} must be snake_case ASCII")
        return v

    def display(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class UrgencyLevel(Label):
    """An urgency level and the flags that raise a complaint to it."""

    when_any_flag: tuple[str, ...] = ()


class Deadline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    respond_within: timedelta
    resolve_within: timedelta

    @field_validator("respond_within", "resolve_within", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().upper().startswith("P"):
            return v  # ISO 8601 duration, as a saved snapshot writes it: pydantic parses it
        return v if isinstance(v, timedelta) else parse_duration(v)

    @model_validator(mode="after")
    def _respond_before_resolve(self) -> Deadline:
        if self.respond_within > self.resolve_within:
            raise ValueError("respond_within must not be longer than resolve_within")
        return self


class SlaPolicy(BaseModel):
    """Time limits per urgency level, applied from the time a complaint was received."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "+08:00"
    deadlines: dict[str, Deadline]

    @field_validator("timezone")
    @classmethod
    def _offset(cls, v: str) -> str:
        _parse_offset(v)
        return v

    @property
    def tzinfo(self) -> _dt.tzinfo:
        return _parse_offset(self.timezone)

    def due_times(self, level: str, received_at: datetime) -> tuple[datetime, datetime]:
        """Respond-by and resolve-by times for a complaint of this level."""
        deadline = self.deadlines[level]
        start = received_at if received_at.tzinfo else received_at.replace(tzinfo=self.tzinfo)
        return start + deadline.respond_within, start + deadline.resolve_within


def _parse_offset(value: str) -> timezone:
    match = re.match(r"^([+-])(\d{2}):(\d{2})$", value)
    if not match:
        raise ValueError(f"timezone {value!r} must be an offset like +08:00")
    sign = 1 if match.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


class Taxonomy(BaseModel):
    """Categories, urgency flags, departments, urgency levels and the SLA policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    categories: tuple[Label, ...] = Field(min_length=2)
    urgency_flags: tuple[Label, ...] = Field(min_length=1)
    departments: tuple[Label, ...] = Field(min_length=1)
    urgency_levels: tuple[UrgencyLevel, ...] = Field(min_length=1)
    sla: SlaPolicy

    @model_validator(mode="after")
    def _consistent(self) -> Taxonomy:
        for group in ("categories", "urgency_flags", "departments", "urgency_levels"):
            names = [label.name for label in getattr(self, group)]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {group} names: {', '.join(dupes)}")
        flags = set(self.flag_names)
        for level in self.urgency_levels:
            unknown = [f for f in level.when_any_flag if f not in flags]
            if unknown:
                raise ValueError(
                    f"urgency level {level.name!r} refers to unknown flag(s): {', '.join(unknown)}"
                )
        if self.urgency_levels[-1].when_any_flag:
            raise ValueError("the last urgency level must be the default (empty when_any_flag)")
        levels = set(self.level_names)
        missing = [lv for lv in self.level_names if lv not in self.sla.deadlines]
        if missing:
            raise ValueError(f"urgency level(s) without an SLA deadline: {', '.join(missing)}")
        extra = [lv for lv in self.sla.deadlines if lv not in levels]
        if extra:
            raise ValueError(f"SLA deadline(s) for unknown level(s): {', '.join(extra)}")
        return self

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]

    @property
    def flag_names(self) -> list[str]:
        return [f.name for f in self.urgency_flags]

    @property
    def department_names(self) -> list[str]:
        return [d.name for d in self.departments]

    @property
    def level_names(self) -> list[str]:
        return [lv.name for lv in self.urgency_levels]

    def urgency_level(self, raised_flags: set[str] | list[str] | tuple[str, ...]) -> str:
        """The level that the policy derives from the raised flags."""
        raised = set(raised_flags)
        for level in self.urgency_levels:
            if not level.when_any_flag or raised.intersection(level.when_any_flag):
                return level.name
        return self.urgency_levels[-1].name

    def label(self, name: str) -> Label:
        for group in (self.categories, self.urgency_flags, self.departments, self.urgency_levels):
            for label in group:
                if label.name == name:
                    return label
        raise KeyError(name)


def default_taxonomy_path() -> Path:
    return Path(str(resources.files("triage") / "config" / "taxonomy.yaml"))


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate a taxonomy file; raises ConfigError with a readable message."""
    file = Path(path) if path is not None else default_taxonomy_path()
    return load_yaml_model(file, Taxonomy, "taxonomy")

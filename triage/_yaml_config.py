"""Typed configuration files: YAML in, a validated pydantic object out, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from triage._errors import ConfigError

ConfigModel = TypeVar("ConfigModel", bound=BaseModel)


def first_error(exc: ValidationError) -> str:
    """The first validation problem as 'field.path: message'."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def load_yaml_model(file: Path, model: type[ConfigModel], what: str) -> ConfigModel:
    """Read ``file`` as YAML and validate it; every failure is a ConfigError naming the file."""
    if not file.is_file():
        raise ConfigError(f"{what} file not found: {file}")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{file}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{file}: {first_error(exc)}") from exc

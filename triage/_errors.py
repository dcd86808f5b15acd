"""Errors that users see as one clear line (the CLI turns them into an exit code)."""

from __future__ import annotations


class TriageError(Exception):
    """Base class: a problem the user can act on, shown without a traceback."""

    exit_code = 1


class ConfigError(TriageError):
    """A configuration file or setting is missing or invalid."""

    exit_code = 2


class InputError(TriageError):
    """An input file or request is malformed."""

    exit_code = 2


class ModelNotFoundError(TriageError):
    """A model reference does not resolve to a model."""

    exit_code = 3

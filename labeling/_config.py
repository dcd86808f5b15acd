"""The review application's own knobs (``TRIAGE_REVIEW_*``); paths come from triage Settings."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from triage._settings import Settings, get_settings


class ReviewConfig(BaseSettings):
    """How the reviewers' application runs; every field is ``TRIAGE_REVIEW_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_REVIEW_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8300
    # Signs the session cookie; when empty, a random key is kept in <state_dir>/review-secret.key.
    secret_key: SecretStr = SecretStr("")
    # Send the session cookie over HTTPS only; turn on behind a TLS-terminating proxy.
    https_only: bool = False
    session_hours: float = Field(default=12.0, gt=0)
    claim_minutes: float = Field(default=10.0, gt=0)
    export_dir: Path = Path("datasets/reviewed")
    page_size: int = Field(default=50, ge=1, le=500)


def load_review_config() -> ReviewConfig:
    return ReviewConfig()


def session_secret(config: ReviewConfig, settings: Settings | None = None) -> str:
    """The configured key, or one generated once and kept (mode 0600) in the state folder."""
    if config.secret_key.get_secret_value():
        return config.secret_key.get_secret_value()
    settings = settings or get_settings()
    path = settings.state_dir / "review-secret.key"
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first: use theirs
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key

"""Password hashing (argon2id) and the small tokens the web application hands out."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_CHARS = 8


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> tuple[bool, bool]:
    """(matches, needs a rehash with today's parameters)."""
    try:
        _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _hasher().check_needs_rehash(stored_hash)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def burn_verify(password: str) -> None:
    """Spend the time a real check takes, so unknown usernames do not answer faster."""
    verify_password(_dummy_hash(), password)


def check_password_strength(password: str) -> None:
    from triage._errors import InputError

    if len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"password too short: use at least {MIN_PASSWORD_CHARS} characters")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()

"""The review store's tables (SQLAlchemy 2 declarative models).

Decisions are append-only: the state of a case is its latest decision, never a column that
is overwritten. Claims (leases) and web sessions are the only rows that change in place.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ROLES = ("reviewer", "lead", "admin")
ACTIONS = ("accept", "change", "escalate", "reassign")
# The status a case has after each kind of decision (no decision yet: "open").
STATUS_AFTER = {
    "accept": "decided",
    "change": "decided",
    "escalate": "escalated",
    "reassign": "open",
}
STATUSES = ("open", "escalated", "decided")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JSONText(TypeDecorator[Any]):
    """JSON kept as TEXT everywhere, so label lists can be filtered with LIKE '%"name"%'."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Case(Base):
    """One complaint to review: redacted text only, with the model's suggestion if any."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    source_id: Mapped[str | None] = mapped_column(String(200), index=True)
    origin: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="")
    channel: Mapped[str | None] = mapped_column(String(50))
    model_version: Mapped[str | None] = mapped_column(String(200))
    prediction: Mapped[Any | None] = mapped_column(JSONText)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    urgency_level: Mapped[str] = mapped_column(String(32))
    urgency_rank: Mapped[int] = mapped_column(Integer)
    uncertainty: Mapped[float] = mapped_column(Float, default=1.0)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=True)
    suggested_category: Mapped[str | None] = mapped_column(String(64))
    suggested_flags: Mapped[Any] = mapped_column(JSONText)
    suggested_departments: Mapped[Any] = mapped_column(JSONText)

    __table_args__ = (Index("ix_cases_queue", "urgency_rank", "resolve_by"),)


class Decision(Base):
    """One reviewer action and the full state of the case after it (append-only)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # 1, 2, 3 ... per case; the unique pair turns a lost race into a conflict, not a fork.
    seq: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    before_category: Mapped[str | None] = mapped_column(String(64))
    before_flags: Mapped[Any] = mapped_column(JSONText)
    before_departments: Mapped[Any] = mapped_column(JSONText)
    after_category: Mapped[str | None] = mapped_column(String(64))
    after_flags: Mapped[Any] = mapped_column(JSONText)
    after_departments: Mapped[Any] = mapped_column(JSONText)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    model_version: Mapped[str | None] = mapped_column(String(200))
    seconds_spent: Mapped[float | None] = mapped_column(Float)
    origin: Mapped[str] = mapped_column(String(20), default="web")
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)

    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_decisions_case_seq"),)


class Claim(Base):
    """A lease on a case: who works it until when (one row per case, renewed in place)."""

    __tablename__ = "claims"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class Export(Base):
    """A dataset version written from decided cases."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    path: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    records: Mapped[int] = mapped_column(Integer)


class ExportItem(Base):
    """Which decision went into which export (decisions themselves are never updated)."""

    __tablename__ = "export_items"

    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id"), primary_key=True)
    decision_id: Mapped[int] = mapped_column(
        ForeignKey("decisions.id"), primary_key=True, index=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))


class WebSession(Base):
    """A signed-in browser; the cookie holds a random id, the table its sha256."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

"""The review store: users, cases, append-only decisions, claims, exports, web sessions.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from labeling._models import JSONText, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE_GUARDS = [
    "CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions "
    "BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END",
    "CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions "
    "BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END",
]
_POSTGRES_GUARDS = [
    "CREATE FUNCTION labeling_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'decisions are append-only'; END; $$",
    "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions "
    "FOR EACH ROW EXECUTE FUNCTION labeling_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=True),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(50), nullable=True),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("prediction", JSONText(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("respond_by", UTCDateTime(), nullable=True),
        sa.Column("resolve_by", UTCDateTime(), nullable=True),
        sa.Column("urgency_level", sa.String(32), nullable=False),
        sa.Column("urgency_rank", sa.Integer(), nullable=False),
        sa.Column("uncertainty", sa.Float(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("suggested_category", sa.String(64), nullable=True),
        sa.Column("suggested_flags", JSONText(), nullable=False),
        sa.Column("suggested_departments", JSONText(), nullable=False),
        sa.UniqueConstraint("fingerprint"),
    )
    op.create_index("ix_cases_source_id", "cases", ["source_id"])
    op.create_index("ix_cases_queue", "cases", ["urgency_rank", "resolve_by"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("before_category", sa.String(64), nullable=True),
        sa.Column("before_flags", JSONText(), nullable=False),
        sa.Column("before_departments", JSONText(), nullable=False),
        sa.Column("after_category", sa.String(64), nullable=True),
        sa.Column("after_flags", JSONText(), nullable=False),
        sa.Column("after_departments", JSONText(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("seconds_spent", sa.Float(), nullable=True),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("external_ref", sa.String(200), nullable=True),
        sa.UniqueConstraint("case_id", "seq", name="uq_decisions_case_seq"),
        sa.UniqueConstraint("external_ref"),
    )
    op.create_index("ix_decisions_case_id", "decisions", ["case_id"])
    op.create_index("ix_decisions_user_id", "decisions", ["user_id"])
    op.create_table(
        "claims",
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
    )
    op.create_table(
        "export_items",
        sa.Column("export_id", sa.Integer(), sa.ForeignKey("exports.id"), primary_key=True),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("decisions.id"), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
    )
    op.create_index("ix_export_items_decision_id", "export_items", ["decision_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": _SQLITE_GUARDS, "postgresql": _POSTGRES_GUARDS}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS decisions_no_update")
        op.execute("DROP TRIGGER IF EXISTS decisions_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS decisions_append_only ON decisions")
        op.execute("DROP FUNCTION IF EXISTS labeling_append_only()")
    for table in (
        "web_sessions",
        "export_items",
        "exports",
        "claims",
        "decisions",
        "cases",
        "users",
    ):
        op.drop_table(table)

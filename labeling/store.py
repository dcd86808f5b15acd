"""The review store: cases, users, append-only decisions, claims and exports.

``open_store(url)`` connects (SQLite in WAL mode by default, any SQLAlchemy URL otherwise),
upgrades the schema to the newest Alembic revision and returns a :class:`ReviewStore`. The
state of a case is always derived from its latest decision; nothing is overwritten.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    Text,
    and_,
    create_engine,
    event,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.pool import StaticPool

from labeling._intake import CaseInput, Labels
from labeling._models import (
    ACTIONS,
    ROLES,
    STATUS_AFTER,
    Case,
    Claim,
    Decision,
    Export,
    ExportItem,
    User,
    WebSession,
    utcnow,
)
from labeling._security import (
    burn_verify,
    check_password_strength,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from triage._errors import InputError, TriageError
from triage._taxonomy import Taxonomy, load_taxonomy

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(TriageError):
    """A review-store problem the user can act on."""


class NotFoundError(StoreError):
    pass


class PermissionDeniedError(StoreError):
    pass


class ConflictError(StoreError):
    """Someone else changed or holds the case since this view was rendered (HTTP 409)."""


# -- views: plain values handed to the web pages and commands ---------------------------------
@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    role: str
    active: bool = True

    @property
    def is_lead(self) -> bool:
        return self.role in ("lead", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True)
class ClaimInfo:
    case_id: int
    user_id: int
    username: str
    claimed_at: datetime
    until: datetime

    def held_by_other(self, user_id: int, now: datetime | None = None) -> bool:
        return self.user_id != user_id and self.until > (now or utcnow())


@dataclass(frozen=True)
class DecisionView:
    id: int
    case_id: int
    seq: int
    username: str
    decided_at: datetime
    action: str
    status: str
    before: Labels
    after: Labels
    assignee: str | None
    note: str
    model_version: str | None
    seconds_spent: float | None
    origin: str
    external_ref: str | None
    exports: tuple[int, ...] = ()


@dataclass(frozen=True)
class CaseView:
    id: int
    source_id: str | None
    origin: str
    text: str
    language: str
    channel: str | None
    model_version: str | None
    prediction: dict[str, Any] | None
    received_at: datetime | None
    recorded_at: datetime
    respond_by: datetime | None
    resolve_by: datetime | None
    urgency_level: str
    uncertainty: float
    needs_review: bool
    suggestion: Labels
    current: Labels
    status: str
    last_decision_id: int
    last_decision_at: datetime | None
    last_decision_by: str | None
    last_action: str | None
    last_note: str
    assignee_id: int | None
    assignee: str | None
    claim: ClaimInfo | None


@dataclass(frozen=True)
class QueueFilters:
    department: str = ""
    category: str = ""
    flag: str = ""
    language: str = ""
    status: str = ""  # "" means the viewer's default: open (reviewer) or open + escalated (lead)


@dataclass(frozen=True)
class QueuePage:
    cases: list[CaseView]
    total: int
    offset: int
    limit: int


@dataclass
class RecordResult:
    added: int = 0
    duplicates: int = 0
    case_ids: list[int] = field(default_factory=list)


# -- engine ----------------------------------------------------------------------------------
def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    database = parsed.database or ""
    memory = database in ("", ":memory:") or "mode=memory" in url
    if not memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        **({"poolclass": StaticPool} if memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        # Acknowledged decisions must survive power loss, not only a crash: fsync on commit.
        conn.exec_driver_sql(f"PRAGMA synchronous={'FULL' if options.get('durable') else 'NORMAL'}")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("write") else "BEGIN")

    return engine


def make_engine(url: str) -> Engine:
    """An engine for the review store; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if url.startswith(("postgresql", "postgres")):
        connect_args["connect_timeout"] = 5
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def upgrade_schema(engine: Engine) -> None:
    """Run the Alembic migrations up to head on this engine."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        conn = conn.execution_options(write=True)
        with conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


def open_store(
    url: str | None = None, *, taxonomy: Taxonomy | None = None, migrate: bool = True
) -> ReviewStore:
    """Connect to the review store (default: the configured ``review_db_url``), upgraded to head."""
    if url is None:
        from triage._settings import get_settings

        url = get_settings().review_db_url
    engine = make_engine(url)
    try:
        if migrate:
            upgrade_schema(engine)
    except Exception:
        engine.dispose()
        raise
    return ReviewStore(engine, taxonomy or load_taxonomy())


# -- the store -------------------------------------------------------------------------------
def _labels(category: str | None, flags: Any, departments: Any) -> Labels:
    return Labels(category=category, flags=tuple(flags or ()), departments=tuple(departments or ()))


class ReviewStore:
    """All reads and writes of the review store; each method is one transaction."""

    def __init__(self, engine: Engine, taxonomy: Taxonomy) -> None:
        self.engine = engine
        self.taxonomy = taxonomy

    def close(self) -> None:
        self.engine.dispose()

    # sessions ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextlib.contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[Session]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(write=True, durable=durable)
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                yield session

    # labels ------------------------------------------------------------------------------
    def validate_labels(self, labels: Labels) -> Labels:
        """Check labels against the taxonomy; returns them de-duplicated, in order."""
        tax = self.taxonomy
        if labels.category not in tax.category_names:
            raise InputError(
                f"category {labels.category!r} is not one of {', '.join(tax.category_names)}"
            )
        flags = tuple(dict.fromkeys(labels.flags))
        unknown = [f for f in flags if f not in tax.flag_names]
        if unknown:
            raise InputError(f"unknown urgency flag(s): {', '.join(unknown)}")
        departments = tuple(dict.fromkeys(d for d in labels.departments if d))
        unknown = [d for d in departments if d not in tax.department_names]
        if unknown:
            raise InputError(f"unknown department(s): {', '.join(unknown)}")
        if not 1 <= len(departments) <= 3:
            raise InputError("give 1 to 3 departments, the owner first")
        ordered_flags = tuple(f for f in tax.flag_names if f in flags)
        return Labels(category=labels.category, flags=ordered_flags, departments=departments)

    # users -------------------------------------------------------------------------------
    def add_user(
        self, username: str, password: str, role: str = "reviewer", display_name: str = ""
    ) -> UserInfo:
        username = username.strip()
        if not username or len(username) > 64 or any(c.isspace() for c in username):
            raise InputError("username must be 1 to 64 characters without spaces")
        if role not in ROLES:
            raise InputError(f"role must be one of {', '.join(ROLES)}")
        check_password_strength(password)
        try:
            with self._write() as s:
                user = User(
                    username=username,
                    display_name=display_name.strip(),
                    role=role,
                    password_hash=hash_password(password),
                    active=True,
                    created_at=utcnow(),
                )
                s.add(user)
                s.flush()
                return _user_info(user)
        except IntegrityError as exc:
            raise InputError(f"user {username!r} already exists") from exc

    def set_password(self, username: str, password: str) -> None:
        check_password_strength(password)
        with self._write() as s:
            user = s.scalars(select(User).where(User.username == username)).first()
            if user is None:
                raise NotFoundError(f"no user {username!r}")
            user.password_hash = hash_password(password)
            user.active = True
            s.query(WebSession).filter(WebSession.user_id == user.id).delete()

    def update_user(
        self, user_id: int, *, role: str | None = None, active: bool | None = None
    ) -> UserInfo:
        with self._write() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFoundError(f"no user {user_id}")
            if role is not None:
                if role not in ROLES:
                    raise InputError(f"role must be one of {', '.join(ROLES)}")
                user.role = role
            if active is not None:
                user.active = active
                if not active:
                    s.query(WebSession).filter(WebSession.user_id == user.id).delete()
            return _user_info(user)

    def get_user(self, user_id: int) -> UserInfo | None:
        with self._read() as s:
            user = s.get(User, user_id)
            return _user_info(user) if user else None

    def find_user(self, username: str) -> UserInfo | None:
        with self._read() as s:
            user = s.scalars(select(User).where(User.username == username)).first()
            return _user_info(user) if user else None

    def list_users(self) -> list[UserInfo]:
        with self._read() as s:
            return [_user_info(u) for u in s.scalars(select(User).order_by(User.username))]

    def authenticate(self, username: str, password: str) -> UserInfo | None:
        with self._read() as s:
            user = s.scalars(select(User).where(User.username == username.strip())).first()
            stored = (user.id, user.password_hash, user.active) if user else None
        if stored is None:
            burn_verify(password)
            return None
        ok, rehash = verify_password(stored[1], password)
        if not ok or not stored[2]:
            return None
        if rehash:
            with self._write() as s:
                row = s.get(User, stored[0])
                if row is not None:
                    row.password_hash = hash_password(password)
        return self.get_user(stored[0])

    # web sessions ------------------------------------------------------------------------
    def create_session(self, user_id: int, hours: float) -> str:
        token = new_token()
        now = utcnow()
        with self._write() as s:
            s.query(WebSession).filter(WebSession.expires_at < now).delete()
            s.add(
                WebSession(
                    id_hash=token_digest(token),
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + timedelta(hours=hours),
                )
            )
        return token

    def session_user(self, token: str) -> UserInfo | None:
        with self._read() as s:
            row = s.get(WebSession, token_digest(token))
            if row is None or row.expires_at <= utcnow():
                return None
            user = s.get(User, row.user_id)
            return _user_info(user) if user and user.active else None

    def end_session(self, token: str) -> None:
        with self._write() as s:
            s.query(WebSession).filter(WebSession.id_hash == token_digest(token)).delete()

    # intake ------------------------------------------------------------------------------
    def add_cases(self, cases: Iterable[CaseInput]) -> RecordResult:
        """Add new cases in one transaction; a complaint already in the store is skipped."""
        result = RecordResult()
        batch = list(cases)
        if not batch:
            return result
        with self._write() as s:
            prints = [c.fingerprint for c in batch]
            existing = dict(
                s.execute(select(Case.fingerprint, Case.id).where(Case.fingerprint.in_(prints)))
                .tuples()
                .all()
            )
            now = utcnow()
            for item, fingerprint in zip(batch, prints, strict=True):
                if fingerprint in existing:
                    result.duplicates += 1
                    result.case_ids.append(existing[fingerprint])
                    continue
                row = Case(
                    fingerprint=fingerprint,
                    source_id=item.source_id,
                    origin=item.origin,
                    text=item.text,
                    language=item.language or "",
                    channel=item.channel,
                    model_version=item.model_version,
                    prediction=item.prediction,
                    received_at=item.received_at,
                    recorded_at=now,
                    respond_by=item.respond_by,
                    resolve_by=item.resolve_by,
                    urgency_level=item.urgency_level,
                    urgency_rank=item.urgency_rank,
                    uncertainty=item.uncertainty,
                    needs_review=item.needs_review,
                    suggested_category=item.suggestion.category,
                    suggested_flags=list(item.suggestion.flags),
                    suggested_departments=list(item.suggestion.departments),
                )
                s.add(row)
                s.flush()
                existing[fingerprint] = row.id
                result.added += 1
                result.case_ids.append(row.id)
        return result

    def find_case_by_text(self, text: str) -> int | None:
        with self._read() as s:
            return s.scalars(
                select(Case.id).where(Case.text == text).order_by(Case.id).limit(1)
            ).first()

    # reading cases -----------------------------------------------------------------------
    def _state_select(self) -> tuple[Any, Any, Any, Any]:
        last = (
            select(Decision.case_id, func.max(Decision.seq).label("seq"))
            .group_by(Decision.case_id)
            .subquery("last_decision")
        )
        latest = aliased(Decision, name="latest")
        decider = aliased(User, name="decider")
        assignee = aliased(User, name="assignee")
        claimer = aliased(User, name="claimer")
        query = (
            select(Case, latest, decider.username, assignee.username, Claim, claimer.username)
            .outerjoin(last, last.c.case_id == Case.id)
            .outerjoin(latest, and_(latest.case_id == Case.id, latest.seq == last.c.seq))
            .outerjoin(decider, decider.id == latest.user_id)
            .outerjoin(assignee, assignee.id == latest.assignee_id)
            .outerjoin(Claim, Claim.case_id == Case.id)
            .outerjoin(claimer, claimer.id == Claim.user_id)
        )
        return query, latest, last, claimer

    @staticmethod
    def _view(row: Any) -> CaseView:
        case, latest, decider, assignee, claim, claimer = row
        suggestion = _labels(
            case.suggested_category, case.suggested_flags, case.suggested_departments
        )
        current = (
            _labels(latest.after_category, latest.after_flags, latest.after_departments)
            if latest is not None
            else suggestion
        )
        claim_info = (
            ClaimInfo(claim.case_id, claim.user_id, claimer or "?", claim.claimed_at, claim.until)
            if claim is not None
            else None
        )
        return CaseView(
            id=case.id,
            source_id=case.source_id,
            origin=case.origin,
            text=case.text,
            language=case.language,
            channel=case.channel,
            model_version=case.model_version,
            prediction=case.prediction,
            received_at=case.received_at,
            recorded_at=case.recorded_at,
            respond_by=case.respond_by,
            resolve_by=case.resolve_by,
            urgency_level=case.urgency_level,
            uncertainty=case.uncertainty,
            needs_review=case.needs_review,
            suggestion=suggestion,
            current=current,
            status=latest.status if latest is not None else "open",
            last_decision_id=latest.id if latest is not None else 0,
            last_decision_at=latest.decided_at if latest is not None else None,
            last_decision_by=decider,
            last_action=latest.action if latest is not None else None,
            last_note=latest.note if latest is not None else "",
            assignee_id=latest.assignee_id if latest is not None else None,
            assignee=assignee,
            claim=claim_info,
        )

    def get_case(self, case_id: int) -> CaseView:
        query, _, _, _ = self._state_select()
        with self._read() as s:
            row = s.execute(query.where(Case.id == case_id)).first()
        if row is None:
            raise NotFoundError(f"no case {case_id}")
        return self._view(row)

    def _filtered(self, viewer: UserInfo, filters: QueueFilters) -> tuple[Any, Any]:
        query, latest, _, _ = self._state_select()
        status = func.coalesce(latest.status, "open")
        has_decision = latest.id.is_not(None)
        category = func.coalesce(latest.after_category, Case.suggested_category)
        flags_text = type_coerce(Case.suggested_flags, Text)
        depts_text = type_coerce(Case.suggested_departments, Text)
        after_flags = type_coerce(latest.after_flags, Text)
        after_depts = type_coerce(latest.after_departments, Text)
        wanted = filters.status or ("todo" if viewer.is_lead else "open")
        if not viewer.is_lead:
            wanted = "open"  # reviewers work open cases; seeing the rest is a lead's job
            query = query.where(or_(latest.assignee_id.is_(None), latest.assignee_id == viewer.id))
        if wanted == "todo":
            query = query.where(status.in_(("open", "escalated")))
        elif wanted != "all":
            query = query.where(status == wanted)
        if filters.category:
            query = query.where(category == filters.category)
        if filters.flag:
            pattern = f'%"{filters.flag}"%'
            query = query.where(
                or_(
                    and_(has_decision, after_flags.like(pattern)),
                    and_(~has_decision, flags_text.like(pattern)),
                )
            )
        if filters.department:
            pattern = f'%"{filters.department}"%'
            query = query.where(
                or_(
                    and_(has_decision, after_depts.like(pattern)),
                    and_(~has_decision, depts_text.like(pattern)),
                )
            )
        if filters.language:
            query = query.where(Case.language == filters.language)
        return query, latest

    _ORDER = (
        Case.urgency_rank,
        Case.resolve_by.is_(None),
        Case.resolve_by,
        Case.uncertainty.desc(),
        Case.id,
    )

    def queue(
        self,
        viewer: UserInfo,
        filters: QueueFilters | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
    ) -> QueuePage:
        """Cases in review order: urgency level, time to resolve_by, then model uncertainty."""
        query, _ = self._filtered(viewer, filters or QueueFilters())
        with self._read() as s:
            total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
            rows = s.execute(query.order_by(*self._ORDER).limit(limit).offset(offset)).all()
        return QueuePage([self._view(r) for r in rows], int(total), offset, limit)

    def next_case(
        self, viewer: UserInfo, filters: QueueFilters | None = None, *, after: int | None = None
    ) -> int | None:
        """The first case in the viewer's queue that nobody else holds (skipping ``after``)."""
        query, _ = self._filtered(viewer, filters or QueueFilters())
        now = utcnow()
        query = query.where(
            or_(Claim.case_id.is_(None), Claim.until <= now, Claim.user_id == viewer.id)
        )
        if after is not None:
            query = query.where(Case.id != after)
        with self._read() as s:
            row = s.execute(query.order_by(*self._ORDER).limit(1)).first()
        return row[0].id if row else None

    def can_view(self, viewer: UserInfo, case: CaseView) -> bool:
        if viewer.is_lead:
            return True
        if case.status == "open" and case.assignee_id in (None, viewer.id):
            return True
        with self._read() as s:
            mine = s.scalar(
                select(func.count())
                .select_from(Decision)
                .where(Decision.case_id == case.id, Decision.user_id == viewer.id)
            )
        return bool(mine)

    # claims ------------------------------------------------------------------------------
    def claim(self, case_id: int, user: UserInfo, minutes: float = 10.0) -> ClaimInfo:
        """Take (or renew) the lease on a case unless someone else holds a live one."""
        now = utcnow()
        until = now + timedelta(minutes=minutes)
        for _ in range(2):
            try:
                with self._write() as s:
                    row = s.get(Claim, case_id, with_for_update=True)
                    if row is not None and row.until > now and row.user_id != user.id:
                        holder = s.get(User, row.user_id)
                        return ClaimInfo(
                            case_id,
                            row.user_id,
                            holder.username if holder else "?",
                            row.claimed_at,
                            row.until,
                        )
                    if row is None:
                        s.add(Claim(case_id=case_id, user_id=user.id, claimed_at=now, until=until))
                    else:
                        if row.user_id != user.id or row.until <= now:
                            row.claimed_at = now
                        row.user_id = user.id
                        row.until = until
                    return ClaimInfo(case_id, user.id, user.username, now, until)
            except IntegrityError:
                continue  # someone inserted the lease first: read theirs
        raise ConflictError("the case is being claimed by someone else; try again")

    def release(self, case_id: int, user: UserInfo) -> None:
        with self._write() as s:
            row = s.get(Claim, case_id)
            if row is not None and (row.user_id == user.id or user.is_lead):
                s.delete(row)

    # decisions ---------------------------------------------------------------------------
    def decide(
        self,
        case_id: int,
        user: UserInfo,
        action: str,
        labels: Labels | None = None,
        *,
        expected_last_id: int | None,
        note: str = "",
        seconds_spent: float | None = None,
        assignee_id: int | None = None,
        origin: str = "web",
        external_ref: str | None = None,
        enforce_access: bool = True,
    ) -> DecisionView:
        """Append one decision; the case's state becomes what this row says.

        ``expected_last_id`` is the latest decision the decider saw (0: none); if another
        decision came in between, nothing is written and :class:`ConflictError` is raised.
        ``None`` skips the check (imports that apply on top of whatever is there), as does
        ``enforce_access=False`` for the reviewer's status and claim limits (operator imports).
        """
        if action not in ACTIONS:
            raise InputError(f"action must be one of {', '.join(ACTIONS)}")
        if action == "reassign" and not user.is_lead:
            raise PermissionDeniedError("only a lead can reassign a case")
        if action == "change" and labels is None:
            raise InputError("a change needs the new labels")
        checked = (
            self.validate_labels(labels) if labels is not None and action != "reassign" else None
        )
        note = (note or "").strip()[:4000]
        try:
            with self._write(durable=True) as s:
                case = s.get(Case, case_id, with_for_update=True)
                if case is None:
                    raise NotFoundError(f"no case {case_id}")
                last = s.scalars(
                    select(Decision)
                    .where(Decision.case_id == case_id)
                    .order_by(Decision.seq.desc())
                    .limit(1)
                ).first()
                last_id = last.id if last else 0
                if expected_last_id is not None and expected_last_id != last_id:
                    if last is None:
                        raise ConflictError(
                            f"case {case_id} has no decision {expected_last_id}: reload the case; "
                            "nothing was saved."
                        )
                    who = s.get(User, last.user_id)
                    raise ConflictError(
                        f"case {case_id} changed since you opened it: "
                        f"{who.username if who else 'someone'} recorded '{last.action}' "
                        f"at {last.decided_at:%Y-%m-%d %H:%M:%S} UTC. Reload the case to see it; "
                        "nothing was saved."
                    )
                status = last.status if last else "open"
                assignee = last.assignee_id if last else None
                if enforce_access and not user.is_lead:
                    if status != "open" or assignee not in (None, user.id):
                        raise PermissionDeniedError(
                            f"case {case_id} is {status}; only a lead can decide it now"
                        )
                    claim = s.get(Claim, case_id)
                    if claim is not None and claim.user_id != user.id and claim.until > utcnow():
                        holder = s.get(User, claim.user_id)
                        raise ConflictError(
                            f"case {case_id} is claimed by {holder.username if holder else 'someone'} "
                            f"until {claim.until:%H:%M} UTC; nothing was saved"
                        )
                before = (
                    _labels(last.after_category, last.after_flags, last.after_departments)
                    if last
                    else _labels(
                        case.suggested_category, case.suggested_flags, case.suggested_departments
                    )
                )
                if action == "accept":
                    after = self.validate_labels(before) if before.category else None
                    if after is None:
                        raise InputError("there is no suggestion to accept: choose the labels")
                elif action == "change":
                    assert checked is not None
                    after = checked
                elif action == "escalate":
                    after = checked or before
                else:
                    after = before
                    if assignee_id is None:
                        raise InputError("reassign needs a reviewer to assign the case to")
                    target = s.get(User, assignee_id)
                    if target is None or not target.active:
                        raise InputError(f"no active user {assignee_id} to assign the case to")
                    assignee = target.id
                if external_ref and s.scalar(
                    select(Decision.id).where(Decision.external_ref == external_ref)
                ):
                    raise ConflictError(f"{external_ref} was already recorded")
                row = Decision(
                    case_id=case_id,
                    seq=(last.seq if last else 0) + 1,
                    user_id=user.id,
                    decided_at=utcnow(),
                    action=action,
                    status=STATUS_AFTER[action],
                    before_category=before.category,
                    before_flags=list(before.flags),
                    before_departments=list(before.departments),
                    after_category=after.category,
                    after_flags=list(after.flags),
                    after_departments=list(after.departments),
                    assignee_id=assignee,
                    note=note,
                    model_version=case.model_version,
                    seconds_spent=None
                    if seconds_spent is None
                    else round(max(seconds_spent, 0.0), 3),
                    origin=origin,
                    external_ref=external_ref,
                )
                s.add(row)
                claim_row = s.get(Claim, case_id)
                if claim_row is not None:
                    s.delete(claim_row)
                s.flush()
                assignee_name = None
                if assignee is not None:
                    target_user = s.get(User, assignee)
                    assignee_name = target_user.username if target_user else None
                view = DecisionView(
                    id=row.id,
                    case_id=case_id,
                    seq=row.seq,
                    username=user.username,
                    decided_at=row.decided_at,
                    action=action,
                    status=row.status,
                    before=before,
                    after=after,
                    assignee=assignee_name,
                    note=note,
                    model_version=row.model_version,
                    seconds_spent=row.seconds_spent,
                    origin=origin,
                    external_ref=external_ref,
                )
        except IntegrityError as exc:
            raise ConflictError(
                f"case {case_id} was decided by someone else at the same moment; reload it"
            ) from exc
        return view

    def history(self, case_id: int) -> list[DecisionView]:
        """Every decision on a case, oldest first, with the exports that carried it."""
        actor = aliased(User)
        target = aliased(User)
        with self._read() as s:
            rows = s.execute(
                select(Decision, actor.username, target.username)
                .join(actor, actor.id == Decision.user_id)
                .outerjoin(target, target.id == Decision.assignee_id)
                .where(Decision.case_id == case_id)
                .order_by(Decision.seq)
            ).all()
            exports: dict[int, list[int]] = {}
            for export_id, decision_id in s.execute(
                select(ExportItem.export_id, ExportItem.decision_id).where(
                    ExportItem.case_id == case_id
                )
            ):
                exports.setdefault(decision_id, []).append(export_id)
        return [
            _decision_view(d, name, assignee, exports.get(d.id, ())) for d, name, assignee in rows
        ]

    def decisions(self, *, since: datetime | None = None) -> list[DecisionView]:
        """All decisions (for audits and statistics), oldest first."""
        actor = aliased(User)
        target = aliased(User)
        query = (
            select(Decision, actor.username, target.username)
            .join(actor, actor.id == Decision.user_id)
            .outerjoin(target, target.id == Decision.assignee_id)
            .order_by(Decision.id)
        )
        if since is not None:
            query = query.where(Decision.decided_at >= since)
        with self._read() as s:
            return [_decision_view(d, n, a, ()) for d, n, a in s.execute(query).all()]

    # exports -----------------------------------------------------------------------------
    def decided_cases(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[CaseView, int, datetime]]:
        """Cases whose latest decision is accept or change: (case, decision id, decided at)."""
        query, latest, _, _ = self._state_select()
        query = query.where(latest.status == "decided")
        if since is not None:
            query = query.where(latest.decided_at >= since)
        if until is not None:
            query = query.where(latest.decided_at < until)
        with self._read() as s:
            rows = s.execute(query.order_by(Case.id)).all()
        out = []
        for row in rows:
            view = self._view(row)
            out.append((view, view.last_decision_id, view.last_decision_at or utcnow()))
        return out

    def record_export(
        self,
        *,
        path: str,
        version: str,
        created_by: str,
        user_id: int | None,
        since: datetime | None,
        items: Sequence[tuple[int, int]],
    ) -> int:
        """Note which decisions (decision id, case id) went into a dataset version."""
        with self._write(durable=True) as s:
            export = Export(
                created_at=utcnow(),
                created_by=created_by,
                user_id=user_id,
                path=path,
                version=version,
                since=since,
                records=len(items),
            )
            s.add(export)
            s.flush()
            s.add_all(ExportItem(export_id=export.id, decision_id=d, case_id=c) for d, c in items)
            return export.id

    def exports(self) -> list[dict[str, Any]]:
        with self._read() as s:
            return [
                {
                    "id": e.id,
                    "created_at": e.created_at,
                    "created_by": e.created_by,
                    "path": e.path,
                    "version": e.version,
                    "records": e.records,
                    "since": e.since,
                }
                for e in s.scalars(select(Export).order_by(Export.id.desc()))
            ]

    # raw access for statistics -------------------------------------------------------------
    def open_cases(self) -> list[CaseView]:
        query, latest, _, _ = self._state_select()
        query = query.where(func.coalesce(latest.status, "open").in_(("open", "escalated")))
        with self._read() as s:
            return [self._view(r) for r in s.execute(query.order_by(*self._ORDER)).all()]

    def model_suggested_decided(self) -> list[CaseView]:
        """Decided cases whose suggestion came from a model (for agreement statistics)."""
        query, latest, _, _ = self._state_select()
        query = query.where(latest.status == "decided", Case.prediction.is_not(None))
        with self._read() as s:
            return [self._view(r) for r in s.execute(query.order_by(Case.id)).all()]

    def count_cases(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(Case)) or 0)


def _user_info(user: User) -> UserInfo:
    return UserInfo(user.id, user.username, user.display_name, user.role, user.active)


def _decision_view(
    d: Decision, username: str, assignee: str | None, exports: Iterable[int]
) -> DecisionView:
    return DecisionView(
        id=d.id,
        case_id=d.case_id,
        seq=d.seq,
        username=username,
        decided_at=d.decided_at,
        action=d.action,
        status=d.status,
        before=_labels(d.before_category, d.before_flags, d.before_departments),
        after=_labels(d.after_category, d.after_flags, d.after_departments),
        assignee=assignee,
        note=d.note,
        model_version=d.model_version,
        seconds_spent=d.seconds_spent,
        origin=d.origin,
        external_ref=d.external_ref,
        exports=tuple(sorted(exports)),
    )

"""The reviewers' web application: server-rendered pages over the review store.

Every form carries a CSRF token checked against the session (403 when missing or wrong);
the session cookie is signed, SameSite=Lax, HttpOnly and, when configured, HTTPS-only;
templates autoescape everything (complaint text is attacker-controlled); a strict
Content-Security-Policy allows no inline script at all.
"""

import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from labeling._config import ReviewConfig, load_review_config, session_secret
from labeling._i18n import LANGUAGES, translator
from labeling._intake import Labels
from labeling._render import local_time, marks_for, segments, time_left
from labeling.store import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QueueFilters,
    ReviewStore,
    UserInfo,
    open_store,
)
from triage._errors import InputError

HERE = Path(__file__).parent
SESSION_COOKIE = "triage_review"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_EXPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageError(Exception):
    """An error shown as a page with a status code (403, 404, 409, 400)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


class _SignInThrottle:
    """At most ``limit`` failed sign-ins per username in ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, username: str) -> bool:
        now = time.monotonic()
        with self._lock:
            fails = self._fails[username.lower()]
            while fails and now - fails[0] > self.window:
                fails.popleft()
            return len(fails) >= self.limit

    def failed(self, username: str) -> None:
        with self._lock:
            self._fails[username.lower()].append(time.monotonic())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._fails.pop(username.lower(), None)


def _due_words(
    value: datetime | None, now: datetime, t: Callable[..., str]
) -> tuple[str, int | None]:
    """'3h 20m left' / '2d 4h overdue' and the minutes left (negative when overdue)."""
    text, minutes = time_left(value, now)
    if minutes is None:
        return text, None
    return (
        t("time.overdue", d=text.lstrip("-")) if minutes < 0 else t("time.left", d=text)
    ), minutes


def _safe_next(value: str | None) -> str:
    """Only local paths: never redirect a signed-in user to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/queue"


def create_app(
    store: ReviewStore,
    config: ReviewConfig | None = None,
    *,
    secret: str | None = None,
    close_store: bool = False,
) -> FastAPI:
    """The application over an open store (tests pass their own; `serve` opens the configured one)."""
    config = config or load_review_config()
    secret = secret or session_secret(config)
    taxonomy = store.taxonomy
    tz = taxonomy.sla.tzinfo
    throttle = _SignInThrottle()

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # always: complaint text and notes are attacker-controlled
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates = Jinja2Templates(env=env)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        yield
        if close_store:
            store.close()

    app = FastAPI(
        title="triage review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.store = store
    app.state.config = config
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=int(config.session_hours * 3600),
        same_site="lax",
        https_only=config.https_only,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # -- helpers ---------------------------------------------------------------------------
    def lang_of(request: Request) -> str:
        lang = request.session.get("lang")
        return lang if lang in LANGUAGES else "zh"

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return str(token)

    def label_name(lang: str) -> Callable[[str], str]:
        def name(label: str) -> str:
            try:
                return taxonomy.label(label).display(lang)
            except KeyError:
                return translator(lang)(f"entity.{label}", default=label)

        return name

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = lang_of(request)
        now = datetime.now(UTC)
        base = {
            "user": getattr(request.state, "user", None),
            "lang": lang,
            "t": translator(lang),
            "name": label_name(lang),
            "csrf": csrf_token(request),
            "tax": taxonomy,
            "when": lambda dt: local_time(dt, tz),
            "left": lambda dt: _due_words(dt, now, translator(lang)),
            "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "flash": request.session.pop("flash", None),
        }
        return templates.TemplateResponse(
            request, template, {**base, **context}, status_code=status
        )

    def current_user(request: Request) -> UserInfo | None:
        sid = request.session.get("sid")
        user = store.session_user(sid) if isinstance(sid, str) else None
        request.state.user = user
        return user

    def require_user(request: Request) -> UserInfo:
        user = current_user(request)
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target if request.method == "GET" else "/queue")
        return user

    def require_lead(user: Annotated[UserInfo, Depends(require_user)]) -> UserInfo:
        if not user.is_lead:
            raise PageError(403, "forbidden.lead")
        return user

    def require_admin(user: Annotated[UserInfo, Depends(require_user)]) -> UserInfo:
        if not user.is_admin:
            raise PageError(403, "forbidden.admin")
        return user

    SignedIn = Annotated[UserInfo, Depends(require_user)]
    Lead = Annotated[UserInfo, Depends(require_lead)]
    Admin = Annotated[UserInfo, Depends(require_admin)]

    async def check_csrf(request: Request) -> None:
        form = await request.form()
        sent = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
        expected = request.session.get("csrf") or ""
        if (
            not isinstance(sent, str)
            or not expected
            or not secrets.compare_digest(sent, str(expected))
        ):
            raise PageError(403, "error.csrf")

    csrf = [Depends(check_csrf)]

    def flash(request: Request, key: str, **values: Any) -> None:
        request.session["flash"] = {"key": key, "values": {k: str(v) for k, v in values.items()}}

    # -- errors ----------------------------------------------------------------------------
    @app.exception_handler(SignInRequired)
    async def _signin_required(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/signin?{urlencode({'next': exc.next_path})}", status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(
            request,
            "error.html",
            status=exc.status,
            status_code=exc.status,
            message_key=exc.message,
            message="",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return render(
            request,
            "error.html",
            status=exc.status_code,
            status_code=exc.status_code,
            message_key="",
            message=str(exc.detail),
        )

    def store_error(exc: Exception) -> PageError:
        if isinstance(exc, ConflictError):
            return PageError(409, str(exc))
        if isinstance(exc, PermissionDeniedError):
            return PageError(403, str(exc))
        if isinstance(exc, NotFoundError):
            return PageError(404, str(exc))
        return PageError(400, str(exc))

    # -- sign-in ---------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request, next: str = "/queue") -> Response:
        if current_user(request) is not None:
            return RedirectResponse(_safe_next(next), status_code=303)
        return render(request, "signin.html", next=_safe_next(next), error="", username="")

    @app.post("/signin", dependencies=csrf)
    def signin(
        request: Request,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/queue",
    ) -> Response:
        username = username.strip()[:64]
        if throttle.blocked(username):
            return render(
                request,
                "signin.html",
                status=429,
                next=_safe_next(next),
                error="signin.throttled",
                username=username,
            )
        user = store.authenticate(username, password) if username and password else None
        if user is None:
            throttle.failed(username)
            return render(
                request,
                "signin.html",
                status=401,
                next=_safe_next(next),
                error="signin.failed",
                username=username,
            )
        throttle.succeeded(username)
        lang = lang_of(request)
        request.session.clear()  # a fresh session: no fixation across sign-in
        request.session.update(
            {
                "sid": store.create_session(user.id, config.session_hours),
                "csrf": secrets.token_urlsafe(32),
                "lang": lang,
            }
        )
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/signout", dependencies=csrf)
    def signout(request: Request) -> Response:
        sid = request.session.get("sid")
        if isinstance(sid, str):
            store.end_session(sid)
        lang = lang_of(request)
        request.session.clear()
        request.session["lang"] = lang
        return RedirectResponse("/signin", status_code=303)

    @app.post("/lang", dependencies=csrf)
    def switch_language(
        request: Request,
        lang: Annotated[str, Form()] = "zh",
        back: Annotated[str, Form()] = "/queue",
    ) -> Response:
        if lang in LANGUAGES:
            request.session["lang"] = lang
        return RedirectResponse(_safe_next(back), status_code=303)

    # -- queue -----------------------------------------------------------------------------
    def filters_from(request: Request) -> QueueFilters:
        q = request.query_params
        tax_ok = {
            "department": taxonomy.department_names,
            "category": taxonomy.category_names,
            "flag": taxonomy.flag_names,
            "language": ["zh", "en"],
            "status": ["todo", "open", "escalated", "decided", "all"],
        }
        values = {k: q.get(k, "") for k in tax_ok}
        return QueueFilters(**{k: v if v in tax_ok[k] else "" for k, v in values.items()})

    def filter_query(filters: QueueFilters) -> str:
        return urlencode({k: v for k, v in filters.__dict__.items() if v})

    @app.get("/queue", response_class=HTMLResponse)
    def queue_page(request: Request, user: SignedIn, page: int = 1) -> Response:
        filters = filters_from(request)
        page = max(page, 1)
        result = store.queue(
            user, filters, limit=config.page_size, offset=(page - 1) * config.page_size
        )
        pages = max((result.total + config.page_size - 1) // config.page_size, 1)
        return render(
            request,
            "queue.html",
            result=result,
            filters=filters,
            page=page,
            pages=pages,
            fq=filter_query(filters),
            now=datetime.now(UTC),
        )

    @app.get("/queue/next")
    def queue_next(request: Request, user: SignedIn, after: int | None = None) -> Response:
        filters = filters_from(request)
        case_id = store.next_case(user, filters, after=after)
        fq = filter_query(filters)
        if case_id is None:
            flash(request, "queue.empty")
            return RedirectResponse("/queue" + (f"?{fq}" if fq else ""), status_code=303)
        return RedirectResponse(f"/cases/{case_id}" + (f"?{fq}" if fq else ""), status_code=303)

    # -- one case --------------------------------------------------------------------------
    def load_case(case_id: int, user: UserInfo) -> Any:
        try:
            case = store.get_case(case_id)
        except NotFoundError as exc:
            raise PageError(404, str(exc)) from exc
        if not store.can_view(user, case):
            raise PageError(403, "forbidden.case")
        return case

    def may_decide(user: UserInfo, case: Any) -> bool:
        if user.is_lead:
            return True
        return case.status == "open" and case.assignee_id in (None, user.id)

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    def case_page(request: Request, case_id: int, user: SignedIn) -> Response:
        case = load_case(case_id, user)
        claim = case.claim
        if may_decide(user, case) and case.status != "decided":
            claim = store.claim(case_id, user, config.claim_minutes)
        now = datetime.now(UTC)
        claimed_by_other = claim is not None and claim.held_by_other(user.id, now)
        lang = lang_of(request)
        marks, hidden = marks_for(case.text, case.prediction, label_name(lang))
        pred = case.prediction or {}
        filters = filters_from(request)
        return render(
            request,
            "case.html",
            case=case,
            segments=segments(case.text, marks),
            hidden_spans=hidden,
            claim=claim,
            claimed_by_other=claimed_by_other,
            can_decide=may_decide(user, case) and (user.is_lead or not claimed_by_other),
            category_scores=(pred.get("category") or {}).get("scores") or {},
            category_confidence=(pred.get("category") or {}).get("confidence"),
            flag_scores=(pred.get("urgency") or {}).get("scores") or {},
            department_scores={
                d.get("label"): d.get("score") for d in pred.get("departments") or []
            },
            review_reasons=pred.get("review_reasons") or [],
            opened_at=f"{time.time():.3f}",
            users=[u for u in store.list_users() if u.active] if user.is_lead else [],
            fq=filter_query(filters),
        )

    def seconds_since(opened_at: str) -> float | None:
        try:
            spent = time.time() - float(opened_at)
        except ValueError:
            return None
        return spent if 0 <= spent <= 86400 else None

    @app.post("/cases/{case_id}/decide", dependencies=csrf)
    def decide(
        request: Request,
        user: SignedIn,
        case_id: int,
        action: Annotated[str, Form()],
        last_decision_id: Annotated[int, Form()],
        category: Annotated[str, Form()] = "",
        flags: Annotated[list[str] | None, Form()] = None,
        owner: Annotated[str, Form()] = "",
        dept2: Annotated[str, Form()] = "",
        dept3: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
        opened_at: Annotated[str, Form()] = "",
        fq: Annotated[str, Form()] = "",
    ) -> Response:
        if action not in ("accept", "change", "escalate"):
            raise PageError(400, "error.action")
        labels = None
        if action != "accept" and category:
            labels = Labels(
                category=category,
                flags=tuple(flags or ()),
                departments=tuple(d for d in (owner, dept2, dept3) if d),
            )
        try:
            store.decide(
                case_id,
                user,
                action,
                labels,
                expected_last_id=last_decision_id,
                note=note,
                seconds_spent=seconds_since(opened_at),
            )
        except (ConflictError, PermissionDeniedError, NotFoundError, InputError) as exc:
            raise store_error(exc) from exc
        flash(request, f"saved.{action}", case=case_id)
        query = urlencode({"after": case_id}) + (
            f"&{fq}" if re.fullmatch(r"[\w=&%.-]*", fq) else ""
        )
        return RedirectResponse(f"/queue/next?{query}", status_code=303)

    @app.post("/cases/{case_id}/reassign", dependencies=csrf)
    def reassign(
        request: Request,
        user: Lead,
        case_id: int,
        assignee: Annotated[int, Form()],
        last_decision_id: Annotated[int, Form()],
        note: Annotated[str, Form()] = "",
    ) -> Response:
        try:
            store.decide(
                case_id,
                user,
                "reassign",
                expected_last_id=last_decision_id,
                note=note,
                assignee_id=assignee,
            )
        except (ConflictError, PermissionDeniedError, NotFoundError, InputError) as exc:
            raise store_error(exc) from exc
        flash(request, "saved.reassign", case=case_id)
        return RedirectResponse(f"/cases/{case_id}/history", status_code=303)

    @app.post("/cases/{case_id}/release", dependencies=csrf)
    def release(request: Request, case_id: int, user: SignedIn) -> Response:
        store.release(case_id, user)
        return RedirectResponse("/queue", status_code=303)

    @app.get("/cases/{case_id}/history", response_class=HTMLResponse)
    def history_page(request: Request, case_id: int, user: SignedIn) -> Response:
        case = load_case(case_id, user)
        return render(request, "history.html", case=case, decisions=store.history(case_id))

    # -- dashboard, export, users ----------------------------------------------------------
    @app.get("/dashboard", response_class=HTMLResponse)
    def dashboard_page(request: Request, user: SignedIn) -> Response:
        from labeling.stats import DUE_BUCKETS, dashboard

        return render(request, "dashboard.html", board=dashboard(store), buckets=DUE_BUCKETS)

    @app.get("/export", response_class=HTMLResponse)
    def export_page(request: Request, user: Lead) -> Response:
        return render(
            request,
            "export.html",
            exports=store.exports(),
            export_dir=str(config.export_dir),
            today=datetime.now(tz).strftime("%Y%m%d"),
        )

    @app.post("/export", dependencies=csrf)
    def export_run(
        request: Request,
        user: Lead,
        name: Annotated[str, Form()],
        since: Annotated[str, Form()] = "",
    ) -> Response:
        from labeling.export import export_reviewed

        name = name.strip().removesuffix(".jsonl")
        if not _EXPORT_NAME.match(name) or ".." in name:
            raise PageError(400, "error.export_name")
        try:
            since_dt = datetime.fromisoformat(since).replace(tzinfo=tz) if since else None
        except ValueError as exc:
            raise PageError(400, "error.date") from exc
        try:
            result = export_reviewed(
                store,
                config.export_dir / f"{name}.jsonl",
                since=since_dt,
                created_by=user.username,
                user_id=user.id,
            )
        except InputError as exc:
            raise PageError(400, str(exc)) from exc
        flash(
            request, "export.done", records=result.records, path=result.path, version=result.version
        )
        return RedirectResponse("/export", status_code=303)

    @app.get("/users", response_class=HTMLResponse)
    def users_page(request: Request, user: Admin) -> Response:
        return render(
            request, "users.html", users=store.list_users(), roles=("reviewer", "lead", "admin")
        )

    @app.post("/users", dependencies=csrf)
    def users_add(
        request: Request,
        user: Admin,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        role: Annotated[str, Form()] = "reviewer",
        display_name: Annotated[str, Form()] = "",
    ) -> Response:
        try:
            store.add_user(username, password, role, display_name)
        except InputError as exc:
            raise PageError(400, str(exc)) from exc
        flash(request, "users.added", username=username)
        return RedirectResponse("/users", status_code=303)

    @app.post("/users/{user_id}", dependencies=csrf)
    def users_update(
        request: Request,
        user: Admin,
        user_id: int,
        role: Annotated[str, Form()] = "",
        active: Annotated[str, Form()] = "",
    ) -> Response:
        if user_id == user.id and (active == "0" or (role and role != "admin")):
            raise PageError(400, "users.self")
        try:
            store.update_user(
                user_id, role=role or None, active=None if active == "" else active == "1"
            )
        except (InputError, NotFoundError) as exc:
            raise store_error(exc) from exc
        flash(request, "users.updated")
        return RedirectResponse("/users", status_code=303)

    return app


def create_app_from_env() -> FastAPI:
    """The application over the configured store (``uvicorn --factory`` entry point)."""
    store = open_store()
    return create_app(store, load_review_config(), close_store=True)

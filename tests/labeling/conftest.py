"""Fixtures for the review room: a fresh store per test, users, predictions and a signed-in client.

The store runs on SQLite in a temporary folder; with ``TRIAGE_TEST_POSTGRES_URL`` set (CI
starts Debian's PostgreSQL), the store tests also run against that server.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from labeling.store import ReviewStore, UserInfo, open_store
from triage._taxonomy import load_taxonomy

PASSWORD = "correct horse battery"
CN = timezone(timedelta(hours=8))
POSTGRES_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL", "")


@functools.cache
def _taxonomy() -> Any:
    return load_taxonomy()


def make_prediction(
    case_id: str,
    text: str,
    *,
    category: str = "product_quality",
    confidence: float = 0.9,
    flags: list[tuple[str, float, list[tuple[int, int, str]]]] | None = None,
    departments: list[tuple[str, float]] | None = None,
    entities: list[dict[str, Any]] | None = None,
    redacted_text: str | None = None,
    received_at: datetime | None = None,
    needs_review: bool = False,
    model_version: str = "complaint-triage/7",
    language: str = "zh",
) -> dict[str, Any]:
    """A prediction of the contract, with the SLA computed by the default policy."""
    tax = _taxonomy()
    flags = flags if flags is not None else []
    departments = departments or [("risk_control", 0.88), ("business", 0.41)]
    raised = [f for f, _, _ in flags]
    level = tax.urgency_level(raised)
    received = received_at or datetime(2026, 11, 23, 9, 0, tzinfo=CN)
    respond_by, resolve_by = tax.sla.due_times(level, received)
    others = [c for c in tax.category_names if c != category]
    scores = {category: confidence, **{c: round((1 - confidence) / len(others), 4) for c in others}}
    flag_scores = {f: 0.02 for f in tax.flag_names} | {f: s for f, s, _ in flags}
    return {
        "id": case_id,
        "language": language,
        "category": {"label": category, "confidence": confidence, "scores": scores},
        "urgency": {
            "level": level,
            "flags": [
                {
                    "label": f,
                    "score": s,
                    "evidence": [{"start": a, "end": b, "text": t} for a, b, t in spans],
                }
                for f, s, spans in flags
            ],
            "scores": flag_scores,
        },
        "departments": [{"label": d, "score": s} for d, s in departments],
        "sla": {
            "level": level,
            "respond_by": respond_by.isoformat(),
            "resolve_by": resolve_by.isoformat(),
        },
        "needs_review": needs_review,
        "review_reasons": ["low_confidence"] if needs_review else [],
        "entities": entities or [],
        "redacted_text": redacted_text if redacted_text is not None else text,
        "model_version": model_version,
        "channel": "app",
        "received_at": received.isoformat(),
    }


def sample_predictions() -> list[dict[str, Any]]:
    text = "我的卡（尾号8812）昨天被盗刷了5000元，我根本没有操作过！"
    return [
        make_prediction(
            "c-1",
            text,
            flags=[
                ("fund_safety", 0.97, [(text.index("被盗刷"), text.index("被盗刷") + 3, "被盗刷")])
            ],
            entities=[
                {
                    "label": "amount",
                    "start": text.index("5000元"),
                    "end": text.index("5000元") + 5,
                    "text": "5000元",
                    "value": 5000.0,
                }
            ],
        ),
        make_prediction(
            "c-2",
            "客服态度太差了，电话打了三次都没人回。",
            category="service_attitude",
            confidence=0.62,
            departments=[("customer_service", 0.8)],
            needs_review=True,
        ),
        make_prediction(
            "c-3",
            "The mobile app crashes with error 503 every time I log in.",
            confidence=0.95,
            departments=[("technology", 0.9)],
            language="en",
        ),
        make_prediction(
            "c-4",
            "转账显示成功但对方一直没到账，已经三天了。",
            category="contract_performance",
            confidence=0.7,
            flags=[("transaction_risk", 0.8, [(0, 4, "转账显示")])],
            departments=[("business", 0.7)],
        ),
    ]


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters in-process (the real ones cost ~0.4 s a hash on CI machines)."""
    from argon2 import PasswordHasher

    from labeling import _security

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(_security, "_hasher", lambda: fast)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'review.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("set TRIAGE_TEST_POSTGRES_URL to run the store tests against PostgreSQL")
    yield POSTGRES_URL
    _drop_all(POSTGRES_URL)


def _drop_all(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from labeling.store import MIGRATIONS, make_engine

    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    engine.dispose()


@pytest.fixture()
def store(store_url: str) -> Iterator[ReviewStore]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture()
def sqlite_store(tmp_path: Path) -> Iterator[ReviewStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'review.db'}")
    yield opened
    opened.close()


@pytest.fixture()
def people(sqlite_store: ReviewStore) -> dict[str, UserInfo]:
    return _people(sqlite_store)


def _people(store: ReviewStore) -> dict[str, UserInfo]:
    return {
        "admin": store.add_user("admin", PASSWORD, "admin"),
        "lead": store.add_user("lena", PASSWORD, "lead", "Lena Lead"),
        "alice": store.add_user("alice", PASSWORD, "reviewer"),
        "bob": store.add_user("bob", PASSWORD, "reviewer"),
    }


@pytest.fixture()
def store_people(store: ReviewStore) -> dict[str, UserInfo]:
    return _people(store)


@pytest.fixture()
def seeded(sqlite_store: ReviewStore, people: dict[str, UserInfo]) -> ReviewStore:
    from labeling._intake import case_from_prediction

    sqlite_store.add_cases(
        case_from_prediction(p, sqlite_store.taxonomy) for p in sample_predictions()
    )
    return sqlite_store


@pytest.fixture()
def app_factory(seeded: ReviewStore, tmp_path: Path) -> Any:
    from fastapi.testclient import TestClient

    from labeling._config import ReviewConfig
    from labeling.app import create_app

    config = ReviewConfig(
        secret_key="test-secret-" + "x" * 32, export_dir=tmp_path / "datasets" / "reviewed"
    )
    app = create_app(seeded, config)

    def client() -> TestClient:
        return TestClient(app, follow_redirects=False)

    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: Any, username: str, password: str = PASSWORD) -> str:
    """Sign in and return the session's CSRF token."""
    page = client.get("/signin")
    response = client.post(
        "/signin",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": "/queue",
        },
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/queue").text)


ROOT = Path(__file__).resolve().parents[2]


def start_server(db_url: str, state: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "TRIAGE_STATE_DIR": str(state),
        "TRIAGE_REVIEW_SECRET_KEY": "server-test-secret-" + "k" * 32,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labeling",
            "--db",
            db_url,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server did not start:\n{log.read_text(errors='replace')}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

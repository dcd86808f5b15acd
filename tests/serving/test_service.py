"""The real BentoML service with a tiny model on a free localhost port: routes, order, bad input, auth."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import build_tiny_base, tiny_records, write_jsonl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tiny_model_folder(root: Path) -> Path:
    from training.args import DataSource, TrainingConfig
    from training.data_mix import load_training_data
    from training.trainer import Trainer, save_model
    from triage import load_taxonomy

    base = build_tiny_base(root / "base")
    rows = tiny_records()
    train = write_jsonl(root / "train.jsonl", rows)
    cfg = TrainingConfig(
        base_model=str(base), sources=[DataSource(name="tiny", train=train, dev=train)],
        max_length=64, trainable_top_layers=1, epochs=1, batch_size=8,
    )
    tax = load_taxonomy()
    result = Trainer(cfg, tax, load_training_data(cfg, tax), progress=False).fit()
    return save_model(result, root / "model")


class Service:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def post(self, route: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{route}", json=body, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def tiny_bento(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A tiny trained model imported into a temporary BentoML store (one per module)."""
    from serving.launch import _import_folder
    from triage._settings import Settings

    tmp = tmp_path_factory.mktemp("svc")
    state = tmp / "state"
    env = {"TRIAGE_STATE_DIR": str(state), "BENTOML_HOME": str(state / "bentoml"),
           "TRIAGE_MODEL_CACHE": str(tmp / "cache")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = Settings()
        settings.ensure_dirs()
        yield _import_folder(_tiny_model_folder(tmp), settings), env
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _start(tag: str, env: dict[str, str], log: Path) -> Iterator[Service]:
    import subprocess
    import sys

    from serving.launch import wait_until_ready

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "serving.service:ComplaintTriage",
         "--host", "127.0.0.1", "--port", str(port),
         "--working-dir", str(Path(__file__).resolve().parents[2])],
        env={**os.environ, **env, "TRIAGE_BENTO_MODEL": tag}, stdout=log.open("w"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_ready(url, proc, timeout=300):
            raise RuntimeError("service did not become ready:\n" + log.read_text()[-3000:])
        yield Service(url, log)
    finally:
        from serving.launch import stop_service

        stop_service(proc)


@pytest.fixture(scope="module")
def service(tiny_bento: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tag, env = tiny_bento
    folder = tmp_path_factory.mktemp("svc-log")
    review_db = folder / "review.db"
    yield from _start(tag, {
        **env, "TRIAGE_MAX_TEXT_CHARS": "500", "TRIAGE_MAX_BATCH_SIZE": "5",
        "TRIAGE_RECORD_MODE": "all", "TRIAGE_REVIEW_DB_URL": f"sqlite:///{review_db}",
    }, folder / "service.log")


def test_triage_answers_the_contract(service: Service) -> None:
    text = "我的信用卡尾号8812昨天被盗刷了5000元，身份证号11010519491231002X，电话13812345678"
    r = service.post("/triage", {"text": text, "id": "c-1", "channel": "hotline",
                                 "received_at": "2026-11-23T08:12:00+08:00"})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["id"] == "c-1" and p["language"] == "zh"
    assert set(p["category"]["scores"]) == {"service_attitude", "product_quality", "contract_performance"}
    assert set(p["urgency"]["scores"]) == {"fund_safety", "transaction_risk", "regulatory_escalation", "privacy_breach"}
    assert 1 <= len(p["departments"]) <= 3
    assert p["sla"]["respond_by"].startswith("2026-11-23")
    assert p["model_version"].startswith("local:")
    assert "11010519491231002X" not in p["redacted_text"] and "13812345678" not in p["redacted_text"]
    for flag in p["urgency"]["flags"]:
        for ev in flag["evidence"]:
            assert text[ev["start"]:ev["end"]] == ev["text"]


def test_batch_keeps_order(service: Service) -> None:
    texts = ["客服态度太差了", "charged twice for one payment", "转账一直没到账", "app crashes on login"]
    r = service.post("/triage_batch", {"complaints": [{"text": t, "id": str(i)} for i, t in enumerate(texts)]})
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["results"]] == ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    ("route", "body", "needle"),
    [
        ("/triage", {}, "text"),
        ("/triage", {"text": ""}, "text"),
        ("/triage", {"text": "   \n\t"}, "empty"),
        ("/triage", {"text": "x" * 501}, "over the limit of 500"),
        ("/triage", {"text": 42}, "text"),
        ("/triage", {"text": "ok", "received_at": "yesterday-ish"}, "received_at"),
        ("/triage", {"text": "ok", "colour": "red"}, "colour"),
        ("/triage_batch", {"complaints": []}, "empty"),
        ("/triage_batch", {"complaints": [{"text": "a"}] * 6}, "over the batch limit of 5"),
        ("/triage_batch", {"complaints": "nope"}, "complaints"),
        ("/triage_batch", {"complaints": [{"text": "fine"}, {"id": "no-text"}]}, "text"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem(service: Service, route: str, body: Any, needle: str) -> None:
    r = service.post(route, body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert needle in r.text


def test_invalid_json_is_a_4xx(service: Service) -> None:
    r = httpx.post(f"{service.url}/triage", content=b"{not json", headers={"content-type": "application/json"}, timeout=30)
    assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize("text", [
    "控制字符\x00\x07\x1b结束", "😡😡😡 my card 💳 was skimmed!!", "混合 mixed 文本 text ＡＢＣ１２３",
    "a" * 480, "卡" * 400,
])
def test_odd_but_valid_text_is_answered(service: Service, text: str) -> None:
    r = service.post("/triage", {"text": text})
    assert r.status_code == 200, r.text


def test_health_and_docs_are_served(service: Service) -> None:
    for route in ("/healthz", "/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(f"{service.url}{route}", timeout=30).status_code == 200, route
    spec = httpx.get(f"{service.url}/docs.json", timeout=30).json()
    assert "/triage" in spec["paths"] and "/triage_batch" in spec["paths"]


def test_logs_carry_no_complaint_text(service: Service) -> None:
    secret = "独一无二的投诉文本6217000012345678"
    assert service.post("/triage", {"text": secret}).status_code == 200
    log = service.log.read_text(errors="replace")
    assert '"route": "/triage"' in log
    assert secret not in log and "6217000012345678" not in log


@pytest.fixture(scope="module")
def service_with_auth(tiny_bento: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tag, env = tiny_bento
    log = tmp_path_factory.mktemp("svc-auth") / "service.log"
    yield from _start(tag, {**env, "TRIAGE_API_TOKENS": "s3cret,other"}, log)


def test_auth_on(service_with_auth: Service) -> None:
    s = service_with_auth
    assert s.post("/triage", {"text": "hello"}).status_code == 401
    assert s.post("/triage", {"text": "hello"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = s.post("/triage", {"text": "hello"}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200, ok.text
    assert httpx.get(f"{s.url}/readyz", timeout=30).status_code == 200


def test_auth_off_by_default(service: Service) -> None:
    assert service.post("/triage", {"text": "hello"}).status_code == 200


PERSONAL = {
    "id card": "11010519491231002X",
    "bank card": "6222021234567890128",
    "mobile": "13812345678",
    "e-mail": "zhang.wei@example.com",
}


def test_stored_and_logged_complaints_are_redacted(service: Service) -> None:
    """Complaints full of personal data: the review store and the log keep none of it."""
    import time

    texts = [
        f"我的身份证{PERSONAL['id card']}，卡号{PERSONAL['bank card']}被盗刷，电话{PERSONAL['mobile']}",
        f"Contact me at {PERSONAL['e-mail']} or {PERSONAL['mobile']}, card {PERSONAL['bank card']} was skimmed",
    ]
    for text in texts:
        assert service.post("/triage", {"text": text}).status_code == 200
    assert service.post("/triage_batch", {"complaints": [{"text": t} for t in texts]}).status_code == 200
    db = Path(service.log.parent / "review.db")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (db.exists() and b"[" in db.read_bytes()):
        time.sleep(0.5)
    time.sleep(2)  # let the recorder's background writer finish
    stored = b"".join(p.read_bytes() for p in db.parent.glob("review.db*"))
    assert "[身份证]".encode() in stored or b"[ID_CARD]" in stored, "nothing was recorded"
    log = service.log.read_bytes()
    for what, value in PERSONAL.items():
        assert value.encode() not in stored, f"{what} found in the review store"
        assert value.encode() not in log, f"{what} found in the service log"


def test_fuzzing_the_openapi_schema_finds_no_server_error(service: Service) -> None:
    """Bounded schemathesis run against the service's own OpenAPI: never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{service.url}/docs.json")

    def fuzz(path: str, mode: GenerationMode) -> None:
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=schema[path]["POST"].as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            response = case.call(base_url=service.url, timeout=60)
            assert response.status_code < 500, (path, mode.value, case.body, response.text[:300])

        call()

    for path in ("/triage", "/triage_batch"):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(path, mode)

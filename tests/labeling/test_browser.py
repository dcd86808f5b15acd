"""Headless Chromium drives the real application: sign in, work cases by keyboard, escaping, CSRF.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install -y chromium``); the tests
start the server themselves and leave a screenshot of the case page in test-artifacts/.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labeling._intake import case_from_prediction
from labeling.store import open_store
from tests.labeling.conftest import (
    PASSWORD,
    ROOT,
    free_port,
    make_prediction,
    sample_predictions,
    start_server,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
XSS = (
    '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> 我的卡被盗刷了，请处理'
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite:///{folder / 'review.db'}"
    store = open_store(db_url)
    store.add_user("alice", PASSWORD, "reviewer", "Alice Wang")
    store.add_cases(case_from_prediction(p, store.taxonomy) for p in sample_predictions())
    xss_id = store.add_cases(
        [
            case_from_prediction(
                make_prediction(
                    "xss", XSS, category="service_attitude", departments=[("customer_service", 0.7)]
                ),
                store.taxonomy,
            )
        ]
    ).case_ids[0]
    store.close()
    port = free_port()
    process = start_server(db_url, folder / "state", port, folder / "server.log")
    yield {"url": f"http://127.0.0.1:{port}", "db": db_url, "xss": xss_id}
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any, server: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.goto(server["url"] + "/signin")
    tab.fill("#username", "alice")
    tab.fill("#password", PASSWORD)
    tab.click("#signin-btn")
    tab.wait_for_url("**/queue")
    yield tab
    context.close()


def test_work_cases_by_keyboard(page: Any, server: dict[str, Any]) -> None:
    assert "待办队列" in page.content()
    page.keyboard.press("n")  # start: the most urgent case
    page.wait_for_url("**/cases/1")
    text = page.locator("#complaint-text")
    assert "被盗刷" in text.inner_text()
    assert page.locator("#complaint-text mark.ev").first.inner_text() == "被盗刷"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "case-page.png"), full_page=True)

    page.keyboard.press("a")  # accept all -> the next case
    page.wait_for_url(lambda url: "/cases/" in url and not url.endswith("/cases/1"))
    assert "案件 #1 已接受" in page.locator(".flash").inner_text()
    second = int(page.url.rsplit("/", 1)[1].split("?")[0])
    page.keyboard.press("e")  # escalate it
    page.wait_for_url(lambda url: not url.rstrip("/").endswith(f"/cases/{second}"))
    store = open_store(server["db"])
    try:
        assert [(d.action, d.username) for d in store.history(1)] == [("accept", "alice")]
        assert store.get_case(second).status == "escalated"
    finally:
        store.close()


def test_keys_are_ignored_while_typing_a_note(page: Any, server: dict[str, Any]) -> None:
    page.goto(server["url"] + "/cases/3")
    page.click("textarea[name=note]")
    page.keyboard.type("an aside")  # contains both 'a' and 'n'
    assert page.url.endswith("/cases/3")
    store = open_store(server["db"])
    try:
        assert store.history(3) == []
    finally:
        store.close()


def test_complaint_html_renders_as_text(page: Any, server: dict[str, Any]) -> None:
    page.goto(f"{server['url']}/cases/{server['xss']}")
    assert page.evaluate("window.__xss") is None
    assert page.locator("#complaint-text img").count() == 0
    assert "<script>window.__xss = 1</script>" in page.locator("#complaint-text").inner_text()


def test_forged_csrf_token_is_rejected(page: Any, server: dict[str, Any]) -> None:
    page.goto(server["url"] + "/cases/2")
    page.evaluate("document.querySelector('#decide-form input[name=csrf_token]').value = 'forged'")
    with page.expect_response(lambda r: r.url.endswith("/cases/2/decide")) as answer:
        page.click("#accept-btn")
    assert answer.value.status == 403
    assert "CSRF" in page.locator("#error-message").inner_text()
    store = open_store(server["db"])
    try:
        assert store.history(2) == []
    finally:
        store.close()

"""Nothing acknowledged is lost: SIGKILL the application mid-stream, restart, find every decision."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from labeling._intake import case_from_prediction
from labeling.store import open_store
from tests.labeling.conftest import PASSWORD, free_port, make_prediction, start_server


def sign_in(client: httpx.Client) -> str:
    page = client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/signin", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/queue").text).group(1)


def test_sigkill_mid_stream_loses_no_acknowledged_decision(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'review.db'}"
    store = open_store(db_url)
    store.add_user("alice", PASSWORD, "reviewer")
    cases = store.add_cases(
        case_from_prediction(make_prediction(f"d-{i}", f"第{i}号投诉：转账没到账"), store.taxonomy)
        for i in range(600)
    ).case_ids
    store.close()

    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(db_url, tmp_path / "state", port, log)
    acknowledged: list[int] = []
    lock = threading.Lock()
    pending = iter(cases)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        csrf = sign_in(client)

        def stream() -> None:
            # One connection per worker, sharing the signed-in session cookie.
            worker = httpx.Client(base_url=client.base_url, cookies=client.cookies, timeout=10)
            while True:
                with lock:
                    case_id = next(pending, None)
                if case_id is None:
                    return
                try:
                    response = worker.post(
                        f"/cases/{case_id}/decide",
                        data={
                            "csrf_token": csrf,
                            "action": "accept",
                            "last_decision_id": "0",
                            "note": f"stream {case_id}",
                        },
                    )
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 303:
                    with lock:
                        acknowledged.append(case_id)

        workers = [threading.Thread(target=stream) for _ in range(4)]
        for thread in workers:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 80 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(server.pid, signal.SIGKILL)  # mid-stream: requests are in flight
        server.wait(timeout=10)
        for thread in workers:
            thread.join(timeout=30)
        assert 80 <= len(acknowledged) < len(cases), "the kill did not land mid-stream"
    finally:
        if server.poll() is None:
            server.kill()

    server = start_server(db_url, tmp_path / "state", port, log)
    try:
        store = open_store(db_url)
        for case_id in acknowledged:
            history = store.history(case_id)
            assert [(d.action, d.username, d.note) for d in history] == [
                ("accept", "alice", f"stream {case_id}")
            ]
        decided = {c.id for c, _, _ in store.decided_cases()}
        assert set(acknowledged) <= decided
        store.close()

        # The restarted application serves the same session and keeps working.
        again = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", cookies=client.cookies, timeout=10
        )
        history = again.get(f"/cases/{acknowledged[-1]}/history")
        assert history.status_code == 200 and f"stream {acknowledged[-1]}" in history.text
        remaining = sorted(set(cases) - decided)[0]
        response = again.post(
            f"/cases/{remaining}/decide",
            data={"csrf_token": csrf, "action": "accept", "last_decision_id": "0"},
        )
        assert response.status_code == 303
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()

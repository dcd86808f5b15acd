"""The web application over HTTP: sign-in, CSRF, roles, escaping, conflicts, claims, pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from labeling import _i18n
from labeling._intake import case_from_prediction
from labeling.store import ReviewStore
from tests.labeling.conftest import PASSWORD, csrf_of, make_prediction, sign_in
from triage import read_records


def _decide(client: Any, csrf: str, case_id: int, action: str = "accept", **fields: Any) -> Any:
    page = client.get(f"/cases/{case_id}")
    last = re.search(r'name="last_decision_id" value="(\d+)"', page.text)
    data = {
        "csrf_token": csrf,
        "action": action,
        "last_decision_id": last.group(1) if last else "0",
        **fields,
    }
    return client.post(f"/cases/{case_id}/decide", data=data)


def test_sign_in_required_and_safe_redirects(app_factory: Any) -> None:
    client = app_factory()
    response = client.get("/cases/1")
    assert (
        response.status_code == 303 and response.headers["location"] == "/signin?next=%2Fcases%2F1"
    )
    page = client.get("/signin")
    assert page.status_code == 200 and "登录" in page.text  # Chinese by default
    bad = client.post(
        "/signin", data={"username": "alice", "password": "nope", "csrf_token": csrf_of(page.text)}
    )
    assert bad.status_code == 401 and "用户名或密码不正确" in bad.text
    ok = client.post(
        "/signin",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "https://evil.example/",
        },
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/queue"  # no open redirect
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_security_headers(app_factory: Any) -> None:
    response = app_factory().get("/signin")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_csrf_missing_or_wrong_is_rejected(app_factory: Any, seeded: ReviewStore) -> None:
    client = app_factory()
    page = client.get("/signin")
    assert (
        client.post("/signin", data={"username": "alice", "password": PASSWORD}).status_code == 403
    )
    csrf = sign_in(client, "alice")
    for token in (None, "", "forged-token", csrf[:-1]):
        data = {"action": "accept", "last_decision_id": "0"} | (
            {"csrf_token": token} if token is not None else {}
        )
        response = client.post("/cases/1/decide", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert seeded.history(1) == []
    # A token from another session is no good either.
    other = app_factory()
    other_csrf = sign_in(other, "bob")
    assert client.post("/signout", data={"csrf_token": other_csrf}).status_code == 403
    assert csrf_of(page.text) != csrf  # signing in issues a fresh token
    assert _decide(client, csrf, 1).status_code == 303


def test_reviewer_cannot_export_reassign_or_manage_users(
    app_factory: Any, seeded: ReviewStore, people: dict
) -> None:
    client = app_factory()
    csrf = sign_in(client, "alice")
    assert client.get("/export").status_code == 403
    assert client.post("/export", data={"csrf_token": csrf, "name": "x"}).status_code == 403
    response = client.post(
        "/cases/1/reassign",
        data={"csrf_token": csrf, "assignee": people["bob"].id, "last_decision_id": "0"},
    )
    assert response.status_code == 403
    assert client.get("/users").status_code == 403
    assert (
        client.post(
            "/users", data={"csrf_token": csrf, "username": "eve", "password": PASSWORD}
        ).status_code
        == 403
    )
    assert seeded.history(1) == [] and seeded.find_user("eve") is None


def test_lead_reassigns_and_exports(
    app_factory: Any, seeded: ReviewStore, people: dict, tmp_path: Path
) -> None:
    reviewer = app_factory()
    r_csrf = sign_in(reviewer, "alice")
    assert _decide(reviewer, r_csrf, 1).status_code == 303
    lead = app_factory()
    csrf = sign_in(lead, "lena")
    response = lead.post(
        "/cases/2/reassign",
        data={
            "csrf_token": csrf,
            "assignee": people["bob"].id,
            "last_decision_id": "0",
            "note": "bob knows this one",
        },
    )
    assert response.status_code == 303
    assert seeded.get_case(2).assignee == "bob"
    response = lead.post(
        "/export", data={"csrf_token": csrf, "name": "web-export", "since": "2020-01-01"}
    )
    assert response.status_code == 303
    page = lead.get("/export")
    assert "web-export.jsonl" in page.text
    records = read_records(tmp_path / "datasets" / "reviewed" / "web-export.jsonl")
    assert [r.id for r in records] == ["review-1"]
    assert (
        lead.post("/export", data={"csrf_token": csrf, "name": "../../etc/passwd"}).status_code
        == 400
    )


def test_admin_manages_users(app_factory: Any, seeded: ReviewStore, people: dict) -> None:
    client = app_factory()
    csrf = sign_in(client, "admin")
    assert client.get("/users").status_code == 200
    response = client.post(
        "/users",
        data={"csrf_token": csrf, "username": "erin", "password": PASSWORD, "role": "lead"},
    )
    assert response.status_code == 303 and seeded.find_user("erin").role == "lead"
    alice = people["alice"]
    assert (
        client.post(f"/users/{alice.id}", data={"csrf_token": csrf, "active": "0"}).status_code
        == 303
    )
    assert not seeded.find_user("alice").active
    assert (
        client.post(
            f"/users/{people['admin'].id}", data={"csrf_token": csrf, "active": "0"}
        ).status_code
        == 400
    )


def test_complaint_text_is_escaped(app_factory: Any, seeded: ReviewStore) -> None:
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)> 我的卡被盗刷了'
    start = attack.index("被盗刷")
    case_id = seeded.add_cases(
        [
            case_from_prediction(
                make_prediction(
                    "xss", attack, flags=[("fund_safety", 0.9, [(start, start + 3, "被盗刷")])]
                ),
                seeded.taxonomy,
            )
        ]
    ).case_ids[0]
    client = app_factory()
    csrf = sign_in(client, "lena")
    page = client.get(f"/cases/{case_id}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert '<mark class="ev ev-fund_safety"' in page.text  # highlighting still works
    # Notes are attacker-controlled too.
    _decide(client, csrf, case_id, "escalate", note="<b>bold</b><script>x()</script>")
    history = client.get(f"/cases/{case_id}/history").text
    assert "<script>x()" not in history and "&lt;script&gt;x()" in history
    escalated = client.get(f"/cases/{case_id}").text  # the lead sees the escalation note, as text
    assert 'id="last-note"' in escalated and "&lt;b&gt;bold&lt;/b&gt;" in escalated
    assert "<script>x()" not in escalated
    assert "<script>alert" not in client.get("/queue").text


def test_stale_write_gets_409_and_saves_nothing(app_factory: Any, seeded: ReviewStore) -> None:
    first, second = app_factory(), app_factory()
    c1, c2 = sign_in(first, "lena"), sign_in(second, "admin")
    seen = second.get("/cases/1").text  # admin opens the case...
    last_seen = re.search(r'name="last_decision_id" value="(\d+)"', seen).group(1)
    assert _decide(first, c1, 1, "accept").status_code == 303  # ...lena decides meanwhile...
    response = second.post(
        "/cases/1/decide",
        data={
            "csrf_token": c2,
            "action": "change",
            "last_decision_id": last_seen,
            "category": "service_attitude",
            "owner": "customer_service",
        },
    )
    assert response.status_code == 409
    assert "changed since you opened it" in response.text and "lena" in response.text
    assert [d.action for d in seeded.history(1)] == ["accept"]


def test_claims_show_and_block_other_reviewers(app_factory: Any, seeded: ReviewStore) -> None:
    alice, bob = app_factory(), app_factory()
    sign_in(alice, "alice")
    b_csrf = sign_in(bob, "bob")
    assert 'id="claim-mine"' in alice.get("/cases/1").text
    page = bob.get("/cases/1")
    assert 'id="claim-banner"' in page.text and "alice" in page.text
    assert 'id="accept-btn"' not in page.text
    response = bob.post(
        "/cases/1/decide", data={"csrf_token": b_csrf, "action": "accept", "last_decision_id": "0"}
    )
    assert response.status_code == 409 and "claimed by alice" in response.text
    # "next" skips the claimed case for bob.
    nxt = bob.get("/queue/next")
    assert nxt.status_code == 303 and nxt.headers["location"] != "/cases/1"


def test_accept_change_escalate_flow_and_history(app_factory: Any, seeded: ReviewStore) -> None:
    client = app_factory()
    csrf = sign_in(client, "alice")
    queue = client.get("/queue")
    order = [int(x) for x in re.findall(r'<td><a href="/cases/(\d+)">', queue.text)]
    assert order[0] == 1  # the critical case heads the queue
    start = client.get("/queue/next")
    assert start.headers["location"] == "/cases/1"
    page = client.get("/cases/1")
    assert "被盗刷" in page.text and 'data-key="a"' in page.text and "/static/app.js" in page.text
    response = _decide(client, csrf, 1, "accept", opened_at="0")
    assert response.status_code == 303 and response.headers["location"].startswith(
        "/queue/next?after=1"
    )
    assert client.get(response.headers["location"]).headers["location"] != "/cases/1"
    response = _decide(
        client,
        csrf,
        2,
        "change",
        category="contract_performance",
        flags=["regulatory_escalation"],
        owner="business",
        dept2="compliance",
        note="threatens 12378",
    )
    assert response.status_code == 303
    state = seeded.get_case(2)
    assert state.status == "decided" and state.current.departments == ("business", "compliance")
    assert state.current.flags == ("regulatory_escalation",)
    assert _decide(client, csrf, 3, "escalate", note="policy question").status_code == 303
    assert seeded.get_case(3).status == "escalated"
    history = client.get("/cases/2/history").text
    assert "threatens 12378" in history and "alice" in history
    bad = _decide(client, csrf, 4, "change", category="weather", owner="business")
    assert bad.status_code == 400
    # Reviewers see their own decided cases, not others'.
    assert client.get("/cases/2").status_code == 200


def test_language_switch_and_pages_have_all_their_text(
    app_factory: Any, seeded: ReviewStore
) -> None:
    _i18n.MISSING.clear()
    client = app_factory()
    csrf = sign_in(client, "admin")
    _decide(client, csrf, 1, "accept")
    _decide(client, csrf, 2, "change", category="service_attitude", owner="customer_service")
    for lang in ("zh", "en"):
        client.post("/lang", data={"csrf_token": csrf, "lang": lang, "back": "/queue"})
        for url in (
            "/queue",
            "/queue?status=all",
            "/cases/1",
            "/cases/3",
            "/cases/1/history",
            "/dashboard",
            "/export",
            "/users",
        ):
            response = client.get(url)
            assert response.status_code == 200, (lang, url, response.text[:500])
        queue = client.get("/queue").text
        assert ("待办队列" in queue) == (lang == "zh") and ("Queue" in queue) == (lang == "en")
    assert set() == _i18n.MISSING
    assert set(_i18n.MESSAGES["zh"]) == set(_i18n.MESSAGES["en"])


def test_dashboard_numbers(app_factory: Any, seeded: ReviewStore) -> None:
    client = app_factory()
    csrf = sign_in(client, "lena")
    _decide(client, csrf, 1, "accept", opened_at="0")
    _decide(client, csrf, 2, "change", category="contract_performance", owner="business")
    page = client.get("/dashboard").text
    assert "lena" in page and "50%" in page  # category agreement on two decided cases


def test_sign_out_ends_the_session_server_side(app_factory: Any) -> None:
    client = app_factory()
    csrf = sign_in(client, "alice")
    stolen = dict(client.cookies)
    assert client.post("/signout", data={"csrf_token": csrf}).status_code == 303
    replay = app_factory()
    replay.cookies.update(stolen)
    assert replay.get("/queue").status_code == 303  # the old cookie no longer signs anyone in


@pytest.mark.parametrize("path", ["/cases/999", "/cases/999/history"])
def test_unknown_case_is_404(app_factory: Any, path: str) -> None:
    client = app_factory()
    sign_in(client, "lena")
    assert client.get(path).status_code == 404


def test_every_form_endpoint_demands_the_csrf_token(app_factory: Any, seeded: ReviewStore) -> None:
    from fastapi.routing import APIRoute

    client = app_factory()
    sign_in(client, "admin")
    posts = [r for r in client.app.routes if isinstance(r, APIRoute) and "POST" in r.methods]
    assert len(posts) >= 9
    for route in posts:
        path = route.path.replace("{case_id}", "1").replace("{user_id}", "2")
        response = client.post(
            path,
            data={
                "action": "accept",
                "last_decision_id": "0",
                "name": "x",
                "assignee": "3",
                "username": "x",
                "password": PASSWORD,
            },
        )
        assert response.status_code == 403, path
    assert seeded.history(1) == [] and seeded.find_user("x") is None


def test_unlabelled_case_needs_labels_not_accept(
    app_factory: Any, seeded: ReviewStore, tmp_path: Path
) -> None:
    from labeling.importer import import_file

    source = tmp_path / "unlabelled.jsonl"
    source.write_text('{"id": "u-9", "text": "网点排队两个小时没人管"}\n', encoding="utf-8")
    import_file(seeded, source)
    case_id = seeded.count_cases()  # the newest case
    client = app_factory()
    csrf = sign_in(client, "alice")
    page = client.get(f"/cases/{case_id}").text
    assert "网点排队" in page and 'id="accept-btn"' not in page
    assert _decide(client, csrf, case_id, "accept").status_code == 400
    response = _decide(
        client, csrf, case_id, "change", category="service_attitude", owner="customer_service"
    )
    assert response.status_code == 303
    assert seeded.get_case(case_id).current.departments == ("customer_service",)

"""The review store: migrations, append-only decisions, derived state, conflicts, queue, claims."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from labeling._intake import Labels, case_from_prediction
from labeling._models import Claim
from labeling.store import (
    ConflictError,
    PermissionDeniedError,
    QueueFilters,
    ReviewStore,
    UserInfo,
    open_store,
)
from tests.labeling.conftest import PASSWORD, make_prediction, sample_predictions
from triage._errors import InputError


def _add(store: ReviewStore, predictions: list[dict]) -> list[int]:
    return store.add_cases(case_from_prediction(p, store.taxonomy) for p in predictions).case_ids


def test_migrations_match_the_models(store: ReviewStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from labeling._models import Base

    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": "labeling_alembic_version"}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_open_store_is_idempotent_and_sqlite_uses_wal(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'review.db'}"
    open_store(url).close()
    store = open_store(url)  # second start: already at head
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        head = conn.exec_driver_sql("SELECT version_num FROM labeling_alembic_version").scalar()
    assert head == "0001"
    store.close()


def test_decisions_are_append_only_and_state_is_derived(
    store: ReviewStore, store_people: dict[str, UserInfo]
) -> None:
    alice, lead = store_people["alice"], store_people["lead"]
    case_id = _add(store, sample_predictions()[:1])[0]
    case = store.get_case(case_id)
    assert case.status == "open" and case.last_decision_id == 0
    assert case.current == Labels("product_quality", ("fund_safety",), ("risk_control", "business"))

    first = store.decide(
        case_id, alice, "escalate", expected_last_id=0, note="not sure", seconds_spent=12.5
    )
    assert store.get_case(case_id).status == "escalated"
    changed = Labels(
        "contract_performance", ("fund_safety", "regulatory_escalation"), ("risk_control",)
    )
    second = store.decide(case_id, lead, "change", changed, expected_last_id=first.id)
    state = store.get_case(case_id)
    assert state.status == "decided" and state.current == changed
    assert state.suggestion.category == "product_quality"  # the suggestion itself is untouched
    third = store.decide(
        case_id, lead, "reassign", expected_last_id=second.id, assignee_id=alice.id
    )
    state = store.get_case(case_id)
    assert state.status == "open" and state.assignee == "alice" and state.current == changed

    history = store.history(case_id)
    assert [(d.seq, d.action, d.username) for d in history] == [
        (1, "escalate", "alice"),
        (2, "change", "lena"),
        (3, "reassign", "lena"),
    ]
    assert history[1].before.category == "product_quality" and history[1].after == changed
    assert history[0].seconds_spent == 12.5 and history[0].model_version == "complaint-triage/7"
    assert third.id == state.last_decision_id

    # The database itself refuses to rewrite or delete history.
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET note = 'rewritten'"))
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("DELETE FROM decisions"))
    assert len(store.history(case_id)) == 3


def test_stale_write_is_a_conflict_and_writes_nothing(
    store: ReviewStore, store_people: dict[str, UserInfo]
) -> None:
    alice, bob = store_people["alice"], store_people["bob"]
    case_id = _add(store, sample_predictions()[:1])[0]
    store.decide(case_id, alice, "accept", expected_last_id=0)
    with pytest.raises((ConflictError, PermissionDeniedError)):
        store.decide(
            case_id,
            bob,
            "change",
            Labels("service_attitude", (), ("customer_service",)),
            expected_last_id=0,
        )
    lead = store_people["lead"]
    with pytest.raises(ConflictError, match="changed since you opened it"):
        store.decide(
            case_id,
            lead,
            "change",
            Labels("service_attitude", (), ("customer_service",)),
            expected_last_id=0,
        )
    assert [d.action for d in store.history(case_id)] == ["accept"]


def test_racing_decisions_one_wins_the_other_conflicts(
    store: ReviewStore, store_people: dict[str, UserInfo]
) -> None:
    lead, admin = store_people["lead"], store_people["admin"]
    case_ids = _add(store, [make_prediction(f"race-{i}", f"投诉内容 {i}") for i in range(6)])
    outcomes: list[str] = []
    lock = threading.Lock()

    def decide(user: UserInfo, case_id: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            store.decide(case_id, user, "accept", expected_last_id=0)
            result = "ok"
        except ConflictError:
            result = "conflict"
        with lock:
            outcomes.append(result)

    for case_id in case_ids:
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=decide, args=(u, case_id, barrier)) for u in (lead, admin)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes.count("ok") == len(case_ids)
    assert outcomes.count("conflict") == len(case_ids)
    assert all(len(store.history(c)) == 1 for c in case_ids)


def test_label_validation(store: ReviewStore, store_people: dict[str, UserInfo]) -> None:
    case_id = _add(store, sample_predictions()[:1])[0]
    alice = store_people["alice"]
    for bad in (
        Labels("nonsense", (), ("business",)),
        Labels("product_quality", ("fire",), ("business",)),
        Labels("product_quality", (), ()),
        Labels("product_quality", (), ("business", "legal", "technology", "compliance")),
        Labels("product_quality", (), ("marketing",)),
    ):
        with pytest.raises(InputError):
            store.decide(case_id, alice, "change", bad, expected_last_id=0)
    with pytest.raises(PermissionDeniedError):
        store.decide(case_id, alice, "reassign", expected_last_id=0, assignee_id=alice.id)
    assert store.history(case_id) == []


def test_queue_order_filters_and_visibility(
    store: ReviewStore, store_people: dict[str, UserInfo]
) -> None:
    from datetime import datetime

    from tests.labeling.conftest import CN

    early = datetime(2026, 11, 20, 9, 0, tzinfo=CN)
    late = datetime(2026, 11, 22, 9, 0, tzinfo=CN)
    preds = [
        make_prediction(
            "normal-early",
            "普通投诉一",
            category="service_attitude",
            departments=[("customer_service", 0.9)],
            received_at=early,
        ),
        make_prediction(
            "critical-late", "资金被盗刷", flags=[("fund_safety", 0.99, [])], received_at=late
        ),
        make_prediction(
            "critical-early-sure",
            "资金被盗刷了二",
            flags=[("fund_safety", 0.99, [])],
            received_at=early,
            confidence=0.99,
        ),
        make_prediction(
            "critical-early-unsure",
            "资金被盗刷了三",
            flags=[("fund_safety", 0.99, [])],
            received_at=early,
            confidence=0.5,
        ),
        make_prediction(
            "high",
            "转账没到账",
            flags=[("transaction_risk", 0.9, [])],
            received_at=early,
            language="zh",
        ),
        make_prediction(
            "english",
            "My refund is late.",
            category="contract_performance",
            departments=[("business", 0.9)],
            language="en",
        ),
    ]
    _add(store, preds)
    alice, bob, lead = store_people["alice"], store_people["bob"], store_people["lead"]
    page = store.queue(alice)
    assert [c.source_id for c in page.cases] == [
        "critical-early-unsure",
        "critical-early-sure",
        "critical-late",
        "high",
        "normal-early",
        "english",
    ]
    assert store.queue(alice, QueueFilters(flag="fund_safety")).total == 3
    assert store.queue(alice, QueueFilters(department="customer_service")).total == 1
    assert store.queue(alice, QueueFilters(category="contract_performance")).total == 1
    assert [c.source_id for c in store.queue(alice, QueueFilters(language="en")).cases] == [
        "english"
    ]

    top = page.cases[0]
    store.decide(top.id, alice, "escalate", expected_last_id=0)
    assert store.queue(alice).total == 5  # escalated cases leave a reviewer's queue...
    assert store.queue(lead).total == 6  # ...and stay in a lead's to-do list
    assert store.queue(lead, QueueFilters(status="escalated")).total == 1
    assert (
        store.queue(alice, QueueFilters(status="all")).total == 5
    )  # reviewers only ever see open work

    # A case assigned to bob disappears from alice's queue.
    second = store.get_case(page.cases[1].id)
    store.decide(second.id, lead, "reassign", expected_last_id=0, assignee_id=bob.id)
    assert second.id not in [c.id for c in store.queue(alice).cases]
    assert second.id in [c.id for c in store.queue(bob).cases]
    with pytest.raises(PermissionDeniedError):
        store.decide(
            second.id, alice, "accept", expected_last_id=store.get_case(second.id).last_decision_id
        )

    # Filters also follow decided labels: a change moves the case to its new category.
    third = page.cases[2]
    store.decide(
        third.id,
        lead,
        "change",
        Labels("service_attitude", (), ("compliance",)),
        expected_last_id=0,
    )
    assert third.id in [
        c.id
        for c in store.queue(lead, QueueFilters(status="decided", department="compliance")).cases
    ]


def test_claims_are_leases(store: ReviewStore, store_people: dict[str, UserInfo]) -> None:
    alice, bob, lead = store_people["alice"], store_people["bob"], store_people["lead"]
    first, second = _add(store, sample_predictions()[:2])
    mine = store.claim(first, alice, minutes=10)
    assert mine.user_id == alice.id
    theirs = store.claim(first, bob, minutes=10)
    assert theirs.user_id == alice.id and theirs.held_by_other(bob.id)
    assert store.get_case(first).claim.username == "alice"
    # next_case skips a case someone else holds.
    assert store.next_case(bob) == second
    with pytest.raises(ConflictError, match="claimed by alice"):
        store.decide(first, bob, "accept", expected_last_id=0)
    # A lead may override; deciding releases the lease.
    store.decide(first, lead, "accept", expected_last_id=0)
    assert store.get_case(first).claim is None

    # An expired lease is free for the taking.
    store.claim(second, alice, minutes=10)
    with store._write() as s:
        s.get(Claim, second).until -= timedelta(minutes=11)
    assert store.claim(second, bob, minutes=10).user_id == bob.id


def test_users_passwords_and_sessions(store: ReviewStore) -> None:
    user = store.add_user("carol", PASSWORD, "reviewer")
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT password_hash FROM users WHERE username = 'carol'"
        ).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert store.authenticate("carol", PASSWORD) == user
    assert store.authenticate("carol", "wrong password") is None
    assert store.authenticate("nobody", PASSWORD) is None
    with pytest.raises(InputError, match="exists"):
        store.add_user("carol", PASSWORD, "reviewer")
    with pytest.raises(InputError, match="too short"):
        store.add_user("dave", "short", "reviewer")
    with pytest.raises(InputError, match="role"):
        store.add_user("dave", PASSWORD, "superuser")

    token = store.create_session(user.id, hours=1)
    assert store.session_user(token) == user
    with store.engine.connect() as conn:
        kept = conn.exec_driver_sql("SELECT id_hash FROM web_sessions").scalar()
    assert kept != token  # only a digest of the cookie's id is stored
    store.end_session(token)
    assert store.session_user(token) is None

    token = store.create_session(user.id, hours=1)
    store.update_user(user.id, active=False)
    assert store.session_user(token) is None
    assert store.authenticate("carol", PASSWORD) is None


def test_a_made_up_last_decision_id_is_a_conflict(
    store: ReviewStore, store_people: dict[str, UserInfo]
) -> None:
    case_id = _add(store, sample_predictions()[:1])[0]
    with pytest.raises(ConflictError, match="has no decision 41"):
        store.decide(case_id, store_people["alice"], "accept", expected_last_id=41)

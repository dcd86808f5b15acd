"""Export of reviewed cases: the labelled-record format, its card, and the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labeling._intake import Labels
from labeling.export import export_reviewed
from labeling.stats import disagreement, disagreement_table
from labeling.store import ReviewStore, UserInfo
from triage import LabelledRecord, read_records
from triage._errors import InputError
from triage._records import LABEL_FIELDS


def _work(store: ReviewStore, people: dict[str, UserInfo]) -> None:
    alice, lead = people["alice"], people["lead"]
    store.decide(1, alice, "accept", expected_last_id=0)
    store.decide(
        2,
        alice,
        "change",
        Labels("contract_performance", ("regulatory_escalation",), ("business", "compliance")),
        expected_last_id=0,
        note="threatens the regulator",
    )
    store.decide(3, alice, "escalate", expected_last_id=0)  # escalated: not decided, not exported
    first = store.decide(4, alice, "accept", expected_last_id=0)
    store.decide(
        4,
        lead,
        "change",
        Labels("product_quality", ("transaction_risk",), ("technology",)),
        expected_last_id=first.id,
    )


def test_export_is_readable_by_training_and_recorded(
    seeded: ReviewStore, people: dict, tmp_path: Path
) -> None:
    _work(seeded, people)
    out = tmp_path / "datasets" / "reviewed" / "batch-1.jsonl"
    result = export_reviewed(seeded, out, created_by="lena", user_id=people["lead"].id)
    records = read_records(out)
    assert [r.id for r in records] == ["review-1", "review-2", "review-4"] and result.records == 3
    assert all(r.known == frozenset(LABEL_FIELDS) and r.source == "review" for r in records)
    changed = {r.id: r for r in records}["review-2"]
    assert changed.category == "contract_performance" and changed.departments == (
        "business",
        "compliance",
    )
    assert changed.urgency_flags == ("regulatory_escalation",)
    assert changed.text == "客服态度太差了，电话打了三次都没人回。" and changed.lang == "zh"
    assert (
        changed.extra["agrees_with_model"] is False
        and changed.extra["model_version"] == "complaint-triage/7"
    )
    relabelled = {r.id: r for r in records}["review-4"]
    assert relabelled.category == "product_quality"  # the latest decision wins
    # The records round-trip through the shared format unchanged.
    assert [
        LabelledRecord.from_json(json.loads(line)) for line in out.read_text().splitlines()
    ] == records

    card = result.card_path.read_text(encoding="utf-8")
    assert result.card_path.name == "batch-1.README.md"
    assert result.version in card and "train: " in card and "records: 3" in card

    exports = seeded.exports()
    assert exports[0]["id"] == result.export_id and exports[0]["version"] == result.version
    assert exports[0]["created_by"] == "lena" and exports[0]["records"] == 3
    history = seeded.history(4)
    assert [d.exports for d in history] == [(), (result.export_id,)]  # which decision went where
    assert seeded.history(3)[0].exports == ()

    with pytest.raises(InputError, match="never overwritten"):
        export_reviewed(seeded, out)
    with pytest.raises(InputError, match="JSONL"):
        export_reviewed(seeded, tmp_path / "x.csv")


def test_export_since_selects_recent_decisions(
    seeded: ReviewStore, people: dict, tmp_path: Path
) -> None:
    _work(seeded, people)
    future = datetime.now(UTC) + timedelta(days=1)
    empty = export_reviewed(seeded, tmp_path / "later.jsonl", since=future)
    assert empty.records == 0 and read_records(tmp_path / "later.jsonl") == []
    recent = export_reviewed(
        seeded, tmp_path / "recent.jsonl", since=datetime.now(UTC) - timedelta(hours=1)
    )
    assert recent.records == 3


def test_disagreement_per_label(seeded: ReviewStore, people: dict) -> None:
    _work(seeded, people)
    result = disagreement(seeded)
    assert result.cases == 3
    rows = {(r.kind, r.label): r for r in result.labels}
    quality = rows[("category", "product_quality")]
    assert (quality.model, quality.reviewers, quality.both, quality.reviewer_only) == (1, 2, 1, 1)
    attitude = rows[("category", "service_attitude")]
    assert (attitude.model, attitude.reviewers, attitude.model_only) == (1, 0, 1)
    escalation = rows[("flag", "regulatory_escalation")]
    assert (escalation.model, escalation.reviewers, escalation.reviewer_only) == (0, 1, 1)
    contract = rows[("category", "contract_performance")]
    assert (contract.model, contract.reviewers, contract.both, contract.agreement) == (1, 1, 0, 0.0)
    assert result.category_agreement == pytest.approx(1 / 3)
    table = disagreement_table(result)
    assert "service_attitude" in table and "3 decided case(s)" in table


def test_training_mix_takes_the_export_as_a_source(
    seeded: ReviewStore, people: dict, tmp_path: Path
) -> None:
    data_mix = pytest.importorskip("training.data_mix")
    args = pytest.importorskip("training.args")
    _work(seeded, people)
    out = export_reviewed(seeded, tmp_path / "reviewed" / "r1.jsonl").path
    config = args.TrainingConfig(
        sources=[
            {"name": "reviewed-r1", "train": str(out), "dev": str(out), "weight": 2.0},
        ]
    )
    data = data_mix.load_training_data(config, seeded.taxonomy)
    assert len(data.train) == 3 and data.train.weights.tolist() == [2.0, 2.0, 2.0]
    assert (data.train.category >= 0).all() and data.train.flag_mask.all()

"""Intake: span relocation into the redacted text, file import, redaction of raw text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labeling._intake import case_from_prediction, locate_span, relocate_prediction
from labeling._render import marks_for, segments
from labeling.importer import import_file
from labeling.store import ReviewStore
from tests.labeling.conftest import make_prediction
from triage._errors import InputError


def test_locate_span_follows_redaction_shifts() -> None:
    original = "身份证110101199003071234，昨天被盗刷了"
    redacted = "身份证[身份证]，昨天被盗刷了"
    start = original.index("被盗刷")
    assert redacted[start : start + 3] != "被盗刷"  # the offsets moved
    where = locate_span(redacted, start, start + 3, "被盗刷")
    assert where is not None and redacted[where[0] : where[1]] == "被盗刷"
    assert locate_span(redacted, 3, 21, "110101199003071234") is None  # redacted away: dropped
    assert locate_span(redacted, 0, 0, "") is None


def test_stored_prediction_keeps_only_spans_present_in_the_redacted_text() -> None:
    original = "手机13812345678，卡被盗刷了5000元"
    redacted = "手机[手机号]，卡被盗刷了5000元"
    s = original.index("被盗刷")
    a = original.index("5000元")
    payload = make_prediction(
        "x",
        original,
        redacted_text=redacted,
        flags=[("fund_safety", 0.97, [(s, s + 3, "被盗刷"), (2, 13, "13812345678")])],
        entities=[{"label": "amount", "start": a, "end": a + 5, "text": "5000元", "value": 5000.0}],
    )
    stored = relocate_prediction(payload)
    evidence = stored["urgency"]["flags"][0]["evidence"]
    assert [e["text"] for e in evidence] == ["被盗刷"]
    assert redacted[evidence[0]["start"] : evidence[0]["end"]] == "被盗刷"
    assert redacted[stored["entities"][0]["start"] : stored["entities"][0]["end"]] == "5000元"
    assert "13812345678" not in json.dumps(stored, ensure_ascii=False)
    assert stored["offsets"] == "redacted_text"


def test_highlight_segments_cover_the_text_exactly() -> None:
    text = "卡被盗刷了5000元，我没有操作"
    pred = make_prediction(
        "x",
        text,
        flags=[("fund_safety", 0.9, [(1, 7, "被盗刷了50")])],
        entities=[{"label": "amount", "start": 5, "end": 10, "text": "5000元", "value": 5000}],
    )
    marks, hidden = marks_for(text, pred, lambda name: name)
    parts = segments(text, marks)
    assert "".join(p.text for p in parts) == text and not hidden
    assert [(p.text, p.classes) for p in parts if p.classes] == [
        ("被盗刷了", ("ev", "ev-fund_safety")),
        ("50", ("ev", "ev-fund_safety", "ent", "ent-amount")),
        ("00元", ("ent", "ent-amount")),
    ]


def test_uncertainty_and_due_times_come_from_the_prediction(sqlite_store: ReviewStore) -> None:
    sure = case_from_prediction(
        make_prediction("a", "文本", confidence=0.95), sqlite_store.taxonomy
    )
    unsure = case_from_prediction(
        make_prediction("b", "文本", confidence=0.4), sqlite_store.taxonomy
    )
    borderline = case_from_prediction(
        make_prediction("c", "文本", confidence=0.95, flags=[("fund_safety", 0.52, [])]),
        sqlite_store.taxonomy,
    )
    assert sure.uncertainty < unsure.uncertainty and sure.uncertainty < borderline.uncertainty
    assert borderline.urgency_level == "critical" and borderline.urgency_rank == 0
    assert (borderline.resolve_by - borderline.received_at).total_seconds() == 24 * 3600


def test_import_predictions_labelled_and_unlabelled_records(
    sqlite_store: ReviewStore, tmp_path: Path
) -> None:
    lines = [
        make_prediction("p-1", "APP闪退，转账失败。", flags=[("transaction_risk", 0.8, [])]),
        {
            "id": "r-1",
            "text": "我的手机号13812345678被泄露给了催收公司",
            "lang": "zh",
            "category": "service_attitude",
            "urgency_flags": ["privacy_breach"],
            "departments": ["compliance"],
            "source": "starter",
            "known": ["category", "urgency_flags", "departments"],
            "received_at": "2026-11-20T10:00:00+08:00",
        },
        {"id": "u-1", "text": "The branch closed early and nobody told me."},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8"
    )
    summary = import_file(sqlite_store, path)
    assert (summary.predictions, summary.labelled, summary.unlabelled, summary.added) == (
        1,
        1,
        1,
        3,
    )
    again = import_file(sqlite_store, path)
    assert (again.added, again.duplicates) == (0, 3)

    by_source = {c.source_id: c for c in (sqlite_store.get_case(i) for i in range(1, 4))}
    labelled = by_source["r-1"]
    assert "13812345678" not in labelled.text and "[手机号]" in labelled.text
    assert labelled.suggestion.category == "service_attitude" and labelled.urgency_level == "high"
    assert labelled.model_version == "source:starter" and labelled.resolve_by is not None
    unlabelled = by_source["u-1"]
    assert unlabelled.suggestion.category is None and unlabelled.language == "en"
    assert unlabelled.resolve_by is None and unlabelled.uncertainty == 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "mixed.jsonl:2: invalid JSON"),
        ('{"id": "x", "text": ""}', "mixed.jsonl:2: text is missing"),
        ('{"id": "x", "text": "t", "category": "weather"}', "mixed.jsonl:2: category 'weather'"),
    ],
)
def test_import_names_file_and_line_of_a_bad_record(
    sqlite_store: ReviewStore, tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "ok", "text": "好的"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        import_file(sqlite_store, path)

"""Evidence for urgency flags from the bilingual phrase lexicon, with negation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from triage import ConfigError, load_taxonomy
from triage.text import TextPipeline, TextPipelineConfig, load_evidence_lexicon


@pytest.fixture(scope="module")
def pipeline() -> Iterator[TextPipeline]:
    yield TextPipeline()


def evidence(pipeline: TextPipeline, text: str) -> dict[str, list[str]]:
    found = pipeline.analyse(text).lexicon_evidence
    for spans in found.values():
        for span in spans:
            assert text[span.start : span.end] == span.text
    return {flag: [s.text for s in spans] for flag, spans in found.items() if spans}


def test_lexicon_covers_exactly_the_taxonomy_flags() -> None:
    assert list(load_evidence_lexicon().flags) == load_taxonomy().flag_names


def test_every_flag_is_reported_even_without_hits(pipeline: TextPipeline) -> None:
    found = pipeline.analyse("服务态度很好，谢谢").lexicon_evidence
    assert set(found) == set(load_taxonomy().flag_names)
    assert all(spans == () for spans in found.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的信用卡昨天被盗刷了5000元", {"fund_safety": ["被盗刷"]}),
        ("我没操作过，余额少了三千", {"fund_safety": ["没操作过", "余额少了"]}),
        ("我没操作过卡却被盗刷了", {"fund_safety": ["没操作过", "被盗刷"]}),
        ("钱不翼而飞，账户还被冻结了", {"fund_safety": ["不翼而飞", "被冻结"]}),
        ("转账三天了还没到账", {"transaction_risk": ["还没到账"]}),
        ("同一笔消费扣了两次", {"transaction_risk": ["扣了两次"]}),
        ("已经向金融监管总局12378投诉", {"regulatory_escalation": ["金融监管总局", "12378"]}),
        ("再不处理我就报警，找媒体曝光", {"regulatory_escalation": ["报警", "媒体", "曝光"]}),
        ("催收骚扰我家人，还爆通讯录", {"privacy_breach": ["骚扰我家人", "爆通讯录"]}),
        (
            "My card was stolen and there were unauthorized charges",
            {"fund_safety": ["stolen", "unauthorized"]},
        ),
        (
            "I was Charged Twice and the payment is still pending",
            {"transaction_risk": ["Charged Twice", "still pending"]},
        ),
        ("I will sue you and complain to the CFPB", {"regulatory_escalation": ["sue", "CFPB"]}),
        ("The collector called my employer", {"privacy_breach": ["called my employer"]}),
        (
            "我的信用卡被盗刷了, I will report it to the police",
            {"fund_safety": ["被盗刷"], "regulatory_escalation": ["police"]},
        ),
        ("ＣＦＰＢ全角也算", {"regulatory_escalation": ["ＣＦＰＢ"]}),
    ],
)
def test_phrase_hits(pipeline: TextPipeline, text: str, expected: dict[str, list[str]]) -> None:
    assert evidence(pipeline, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("没有被盗刷，只是想问一下年费", {}),
        ("钱倒是没被盗刷，但是客服态度太差了", {}),
        ("并没有发现盗刷", {}),
        ("卡未被冻结", {}),
        ("不是被骗，是利息算错了", {}),
        ("no money was taken, but the staff were rude", {}),
        ("Nothing was stolen; I just want a refund", {}),
        ("My card was not stolen but I was charged twice", {"transaction_risk": ["charged twice"]}),
        ("there were no unauthorized transactions", {}),
        ("I have not been charged twice", {}),
    ],
)
def test_negated_hits_are_not_evidence(
    pipeline: TextPipeline, text: str, expected: dict[str, list[str]]
) -> None:
    assert evidence(pipeline, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("不知道为什么被冻结了", {"fund_safety": ["被冻结"]}),
        ("是不是被盗刷了？", {"fund_safety": ["被盗刷"]}),
        ("money was taken without my consent", {"fund_safety": ["money was taken"]}),
        ("no one told me and my account was frozen", {"fund_safety": ["account was frozen"]}),
    ],
)
def test_pseudo_negations_do_not_veto(
    pipeline: TextPipeline, text: str, expected: dict[str, list[str]]
) -> None:
    assert evidence(pipeline, text) == expected


@pytest.mark.parametrize(
    "text",
    ["this issue is not resolved", "拨打1237890查询", "the courtesy call was fine"],
)
def test_phrases_match_whole_words_and_numbers(pipeline: TextPipeline, text: str) -> None:
    assert evidence(pipeline, text) == {}


def test_lexicon_is_configurable(tmp_path: Path) -> None:
    lexicon = tmp_path / "evidence.yaml"
    lexicon.write_text(
        "flags:\n  fund_safety:\n    zh: [钱包空了]\n    en: [wallet is empty]\n"
        "negation:\n  cues_zh: [没]\n",
        encoding="utf-8",
    )
    custom = TextPipeline(TextPipelineConfig(lexicon_path=lexicon))
    found = custom.analyse("我的钱包空了，被盗刷了").lexicon_evidence
    assert [s.text for s in found["fund_safety"]] == ["钱包空了"]
    assert list(found) == ["fund_safety"]
    assert custom.analyse("钱包没空了").lexicon_evidence == {"fund_safety": ()}
    assert [
        s.text for s in custom.analyse("My Wallet is empty").lexicon_evidence["fund_safety"]
    ] == ["Wallet is empty"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("flags: [a, b]\n", "flags"),
        ("flags:\n  Fund Safety:\n    zh: [x]\n", "snake_case"),
        ("flags:\n  fund_safety:\n    zh: ['  ']\n", "empty"),
        ("flags: {fund_safety: {zh: [x]}\n", "not valid YAML"),
    ],
)
def test_bad_lexicon_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    lexicon = tmp_path / "evidence.yaml"
    lexicon.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_evidence_lexicon(lexicon)


def test_missing_lexicon_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        TextPipeline(TextPipelineConfig(lexicon_path=tmp_path / "missing.yaml"))

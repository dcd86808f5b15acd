"""The pipeline as the inference core uses it: one analysis per text, in order, batched."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from triage.text import TextAnalysis, TextPipeline, normalize_text

COMPLAINTS = [
    "我的信用卡尾号8812昨天被盗刷了5000元，我根本没有操作过！手机13800138000",
    "My mortgage payment of $1,200 was charged twice on Nov 3. Email: jane@example.com",
    "我的信用卡被盗刷了, please help me asap, 我要报警",
    "",
    "１２３４５ 😡",
]


@pytest.fixture(scope="module")
def pipeline() -> Iterator[TextPipeline]:
    yield TextPipeline()


def test_analysis_of_one_complaint(pipeline: TextPipeline) -> None:
    text = COMPLAINTS[0]
    analysis = pipeline.analyse(text)
    assert isinstance(analysis, TextAnalysis)
    assert analysis.text == text
    assert analysis.normalized == normalize_text(text)
    assert analysis.language == "zh"
    assert not analysis.is_mixed
    assert analysis.redacted_text == text.replace("13800138000", "[手机号]")
    assert [r.label for r in analysis.redactions] == ["mobile_phone"]
    assert {(e.label, e.value) for e in analysis.entities} >= {
        ("card_tail", "8812"),
        ("amount", 5000.0),
        ("date", "昨天"),
        ("product", "credit_card"),
    }
    assert [s.text for s in analysis.lexicon_evidence["fund_safety"]] == ["被盗刷", "没有操作过"]


def test_mixed_text_uses_its_dominant_language(pipeline: TextPipeline) -> None:
    analysis = pipeline.analyse(COMPLAINTS[2])
    assert analysis.language == "zh"
    assert analysis.is_mixed
    assert analysis.language_shares["en"] > 0.25
    assert [s.text for s in analysis.lexicon_evidence["regulatory_escalation"]] == ["报警"]


def test_analyse_many_keeps_order_and_matches_analyse(pipeline: TextPipeline) -> None:
    batch = pipeline.analyse_many(COMPLAINTS, batch_size=2)
    assert [a.text for a in batch] == COMPLAINTS
    assert batch == [pipeline.analyse(text) for text in COMPLAINTS]
    assert [a.language for a in batch] == ["zh", "en", "zh", "zh", "zh"]
    assert batch[1].redacted_text.endswith("Email: [EMAIL]")


def test_analyse_many_of_nothing(pipeline: TextPipeline) -> None:
    assert pipeline.analyse_many([]) == []


def test_importing_the_package_loads_neither_spacy_nor_jieba() -> None:
    code = "import sys, triage.text; print('spacy' in sys.modules, 'jieba' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_components_are_registered_spacy_factories(pipeline: TextPipeline) -> None:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("triage_language")
    nlp.add_pipe("triage_personal_data")
    nlp.add_pipe("triage_facts")
    nlp.add_pipe("triage_evidence")
    doc = nlp("My card ending in 8812 was stolen, call 13800138000")
    assert doc._.language == "en"
    assert [r.label for r in doc._.personal_data] == ["mobile_phone"]
    assert doc._.flag_evidence["fund_safety"] == ((27, 33),)


_CLAUSES_ZH = [
    "我的信用卡尾号8812昨天被盗刷了5000元", "我根本没有操作过", "客服热线95588一直打不通",
    "APP也登录不上", "我已经向金融监管总局12378投诉了", "余额少了三千块", "账户被冻结了",
    "上周五去网点柜台办理转账", "至今没到账", "手续费收了¥1,280.50", "催收天天骚扰我家人",
    "理财产品到期不兑付", "房贷提前还款被收违约金", "工作人员态度非常恶劣", "手机13800138000",
]  # fmt: skip
_CLAUSES_EN = [
    "My credit card ending in 8812 was charged twice on Nov 3", "nobody answers the hotline",
    "I did not authorize this $200 payment", "the branch refused to refund me",
    "I will complain to the CFPB", "my account was frozen last Friday", "call me at 13800138000",
    "the transfer of 2,000 dollars is still pending", "the collector called my employer",
]  # fmt: skip


def _complaints_of_200_chars(count: int) -> list[str]:
    """Four Chinese complaints to one English, each cut to 200 characters."""
    texts = []
    for i in range(count):
        clauses, separator = (_CLAUSES_EN, ", ") if i % 5 == 4 else (_CLAUSES_ZH, "，")
        text = ""
        while len(text) < 200:
            text += clauses[(i * 7 + len(text)) % len(clauses)] + separator
        texts.append(text[:200])
    return texts


@pytest.mark.slow
def test_throughput_per_complaint(pipeline: TextPipeline) -> None:
    """The issue's budget: at most 2 ms of pipeline time per 200-character complaint.

    Run: pytest tests/triage/test_text_pipeline.py -m slow -s. CPU time is asserted because
    wall time on a shared two-core machine measures the neighbours too; both are printed.
    """
    texts = _complaints_of_200_chars(1000)
    pipeline.analyse_many(texts[:100])
    cpu, wall = [], []
    for _ in range(3):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        pipeline.analyse_many(texts, batch_size=64)
        cpu.append((time.process_time() - cpu_start) / len(texts) * 1000)
        wall.append((time.perf_counter() - wall_start) / len(texts) * 1000)
    print(
        f"\ntext pipeline, {len(texts)} complaints of 200 chars (80% zh): "
        f"{min(cpu):.2f} ms CPU, {min(wall):.2f} ms wall per complaint (best of 3)"
    )
    assert min(cpu) <= 2.0

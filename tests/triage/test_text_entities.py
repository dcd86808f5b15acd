"""Facts as entities with values and exact offsets into the original text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from triage._schema import Entity
from triage.text import TextPipeline


@pytest.fixture(scope="module")
def pipeline() -> Iterator[TextPipeline]:
    yield TextPipeline()


def entities(pipeline: TextPipeline, text: str, label: str) -> list[tuple[str, object]]:
    found = pipeline.analyse(text).entities
    return [(e.text, e.value) for e in found if e.label == label]


def assert_exact(text: str, found: tuple[Entity, ...]) -> None:
    for entity in found:
        assert text[entity.start : entity.end] == entity.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("手续费¥1,280.50太贵", [("¥1,280.50", 1280.5)]),
        ("扣了1280.5元", [("1280.5元", 1280.5)]),
        ("少了3千元", [("3千元", 3000.0)]),
        ("借了2万，利息太高", [("2万", 20000.0)]),
        ("被骗了1.5万", [("1.5万", 15000.0)]),
        ("丢了五千块", [("五千块", 5000.0)]),
        ("余额少了三千", [("三千", 3000.0)]),
        ("理财亏了两万五", [("两万五", 25000.0)]),
        ("一共三千多元", [("三千多元", 3000.0)]),
        ("一千零五十元手续费", [("一千零五十元", 1050.0)]),
        ("I was charged $200 twice", [("$200", 200.0)]),
        ("a fee of 2,000 dollars", [("2,000 dollars", 2000.0)]),
        ("they took RMB 300 and 50 yuan", [("RMB 300", 300.0), ("50 yuan", 50.0)]),
        ("全角金额５０００元", [("５０００元", 5000.0)]),
        ("千万不要买这个理财", []),
        ("我十分生气", []),
        ("一万个理由", []),
        ("送了2万积分", []),
        ("我们一块去的网点", []),
        ("排在第一千位", []),
    ],
)
def test_amounts(pipeline: TextPipeline, text: str, expected: list[tuple[str, float]]) -> None:
    assert entities(pipeline, text, "amount") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-03转账失败", [("2026-11-03", "2026-11-03")]),
        ("2026年11月3日扣款", [("2026年11月3日", "2026-11-03")]),
        ("交易日期20261103", [("20261103", "2026-11-03")]),
        ("11月3日扣的款", [("11月3日", "11月3日")]),
        ("昨天被盗刷", [("昨天", "昨天")]),
        ("上周五去的网点", [("上周五", "上周五")]),
        ("前天打的电话", [("前天", "前天")]),
        ("三天前就申请了", [("三天前", "三天前")]),
        ("等了一周一直没回复", []),
        ("It happened last Friday.", [("last Friday", "last Friday")]),
        ("charged on Nov 3 and again yesterday", [("Nov 3", "Nov 3"), ("yesterday", "yesterday")]),
        ("on Nov 3, 2026 the transfer failed", [("Nov 3, 2026", "2026-11-03")]),
        ("since 3rd of November 2026", [("3rd of November 2026", "2026-11-03")]),
        ("two weeks ago", [("two weeks ago", "two weeks ago")]),
    ],
)
def test_dates(pipeline: TextPipeline, text: str, expected: list[tuple[str, str]]) -> None:
    assert entities(pipeline, text, "date") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的信用卡尾号8812被盗刷", [("尾号8812", "8812")]),
        ("尾号为：8812的卡", [("尾号为：8812", "8812")]),
        ("my card ending in 8812", [("ending in 8812", "8812")]),
        ("the last four digits 8812", [("last four digits 8812", "8812")]),
        ("卡号6222 **** **** 8812", [("6222 **** **** 8812", "8812")]),
        ("尾号88123", []),
    ],
)
def test_card_tails(pipeline: TextPipeline, text: str, expected: list[tuple[str, str]]) -> None:
    assert entities(pipeline, text, "card_tail") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("信用卡被盗刷", [("信用卡", "credit_card")]),
        ("房贷提前还款被收违约金", [("房贷", "mortgage")]),
        ("买的理财到期不兑付", [("理财", "wealth_management")]),
        ("保险理赔一直拖", [("保险", "insurance"), ("理赔", "insurance")]),
        (
            "My Credit Card and my mortgage",
            [("Credit Card", "credit_card"), ("mortgage", "mortgage")],
        ),
        ("用微信支付付款", [("微信支付", "payment_app")]),
        ("催收打到我单位", [("催收", "debt_collection")]),
        ("this is an issue with my mortgage", [("mortgage", "mortgage")]),
    ],
)
def test_products(pipeline: TextPipeline, text: str, expected: list[tuple[str, str]]) -> None:
    assert entities(pipeline, text, "product") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("打客服热线95588没人接", [("客服热线", "hotline"), ("95588", "hotline")]),
        ("APP登录不上", [("APP", "app")]),
        ("手机银行转账失败", [("手机银行", "app")]),
        ("去网点柜台办理", [("网点", "branch"), ("柜台", "branch")]),
        ("在微信上投诉", [("微信", "wechat")]),
        ("用微信支付付款", []),
        ("发邮件没人回", [("邮件", "email")]),
        (
            "I called the hotline and went to the branch, then sent an email",
            [("hotline", "hotline"), ("branch", "branch"), ("email", "email")],
        ),
        ("扣了95000元", []),
    ],
)
def test_channels(pipeline: TextPipeline, text: str, expected: list[tuple[str, str]]) -> None:
    assert entities(pipeline, text, "channel") == expected


def test_a_mention_can_be_product_and_channel(pipeline: TextPipeline) -> None:
    found = pipeline.analyse("手机银行转账失败").entities
    assert {(e.label, e.value) for e in found if e.text == "手机银行"} == {
        ("product", "mobile_banking"),
        ("channel", "app"),
    }


@pytest.mark.parametrize(
    "text",
    [
        "😡😡我的信用卡（尾号８８１２）昨天被盗刷了５０００元！！💳 客服热线９５５８８打不通",
        "👨‍👩‍👧 𠀀𠀁 ¥1,280.50 on Nov 3, 2026 — my ＣＲＥＤＩＴ ＣＡＲＤ ending in 8812 🙏",
        "\u3000\u3000上周五\t在ＡＰＰ上转账２万，\r\n至今没到账",
    ],
)
def test_offsets_are_exact_with_emoji_and_full_width(pipeline: TextPipeline, text: str) -> None:
    analysis = pipeline.analyse(text)
    assert len(analysis.entities) >= 3
    assert_exact(text, analysis.entities)
    for spans in analysis.lexicon_evidence.values():
        for span in spans:
            assert text[span.start : span.end] == span.text


def test_full_width_entities_keep_original_text_and_value(pipeline: TextPipeline) -> None:
    text = "😡我的信用卡（尾号８８１２）被盗刷了５０００元"
    found = {e.label: e for e in pipeline.analyse(text).entities}
    assert found["card_tail"].text == "尾号８８１２"
    assert found["card_tail"].value == "8812"
    assert found["amount"].text == "５０００元"
    assert found["amount"].value == 5000.0


def test_entities_never_show_personal_data(pipeline: TextPipeline) -> None:
    text = "账号20261103123412，身份证11010519491231002X"
    analysis = pipeline.analyse(text)
    shown = " ".join(e.text for e in analysis.entities)
    assert "20261103" not in shown
    assert "19491231" not in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("被扣了3000，没有任何通知", [("3000", 3000.0)]),
        ("余额少了1280.5", [("1280.5", 1280.5)]),
        ("扣了3000元", [("3000元", 3000.0)]),
        ("还了3期", []),
        ("少了3天", []),
    ],
)
def test_bare_numbers_after_money_words(
    pipeline: TextPipeline, text: str, expected: list[tuple[str, float]]
) -> None:
    assert entities(pipeline, text, "amount") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It was debited on May 3, 2026", [("May 3, 2026", "2026-05-03")]),
        ("since May 3", [("May 3", "May 3")]),
        ("you may 3 times ask", []),
    ],
)
def test_may_is_a_month_only_with_its_capital(
    pipeline: TextPipeline, text: str, expected: list[tuple[str, str]]
) -> None:
    assert entities(pipeline, text, "date") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("转了3w给他们", [("3w", 30000.0)]),
        ("工资3k一个月", [("3k", 3000.0)]),
        ("贷款了4万6，利息要还", [("4万6", 46000.0)]),
        ("总共3万8千元", [("3万8千元", 38000.0)]),
        ("欠了2万元", [("2万元", 20000.0)]),
    ],
)
def test_colloquial_magnitudes(
    pipeline: TextPipeline, text: str, expected: list[tuple[str, float]]
) -> None:
    assert entities(pipeline, text, "amount") == expected


def test_masked_id_numbers_are_not_card_tails(pipeline: TextPipeline) -> None:
    assert entities(pipeline, "身份证号：37022*********0046", "card_tail") == []
    assert entities(pipeline, "卡号6222********8812", "card_tail") == [("6222********8812", "8812")]

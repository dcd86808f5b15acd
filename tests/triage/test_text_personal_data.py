"""Personal data: each kind found and replaced; near misses (amounts, dates, order numbers,
17-digit strings, failed checksums) left alone; neighbouring text never swallowed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from triage.text import TextPipeline, find_personal_data, normalize_text, redact, redact_text
from triage.text._personal_data import is_valid_id_card, luhn_valid

ID_CARD = "11010519491231002X"  # valid GB 11643 check digit
ID_CARD_2 = "440304199003071234"[:17] + "X"  # 44030419900307123X, valid
CARD_16 = "6225880123456783"  # Luhn-valid
CARD_19 = "6222021234567890128"  # Luhn-valid


@pytest.fixture(scope="module")
def pipeline() -> Iterator[TextPipeline]:
    yield TextPipeline()


def labels(text: str, language: str = "zh") -> list[tuple[str, str]]:
    """(label, covered text) for each redaction found in ``text``."""
    return [
        (r.label, text[r.start : r.end]) for r in find_personal_data(normalize_text(text), language)
    ]


def test_validators() -> None:
    assert is_valid_id_card(ID_CARD)
    assert is_valid_id_card(ID_CARD_2)
    assert not is_valid_id_card("110105194912310021")  # wrong check digit
    assert not is_valid_id_card("110105194913310029")  # month 13
    assert not is_valid_id_card("990105194912310021")  # no such province
    assert luhn_valid(CARD_16) and luhn_valid(CARD_19)
    assert not luhn_valid("6225880123456784")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"我的身份证号是{ID_CARD}，请核实", [("id_card", ID_CARD)]),
        (f"身份证{ID_CARD.lower()}。", [("id_card", ID_CARD.lower())]),
        (f"My ID number: {ID_CARD_2}.", [("id_card", ID_CARD_2)]),
        (f"卡号{CARD_16}被盗刷", [("bank_card", CARD_16)]),
        (f"card number {CARD_19}, please check", [("bank_card", CARD_19)]),
        ("卡号6225 8801 2345 6783今天", [("bank_card", "6225 8801 2345 6783")]),
        ("card 6225-8801-2345-6783.", [("bank_card", "6225-8801-2345-6783")]),
        ("手机13800138000联系我", [("mobile_phone", "13800138000")]),
        ("call me on +86 139 1234 5678 tomorrow", [("mobile_phone", "+86 139 1234 5678")]),
        ("电话：138-0013-8000。", [("mobile_phone", "138-0013-8000")]),
        ("座机010-62345678转人工", [("landline_phone", "010-62345678")]),
        ("landline (0755)82345678 after 6pm", [("landline_phone", "(0755)82345678")]),
        ("邮箱zhang.san@163.com谢谢", [("email", "zhang.san@163.com")]),
        ("write to john.doe+bank@example.co.uk.", [("email", "john.doe+bank@example.co.uk")]),
        ("我的账号：12345678901，一直没到账", [("account_number", "12345678901")]),
        ("account no. 987654321 was frozen", [("account_number", "987654321")]),
        (
            "对方账户 6217 0000 1234 5678 999 没收到",
            [("account_number", "6217 0000 1234 5678 999")],
        ),
        ("全角手机号１３８００１３８０００也要", [("mobile_phone", "１３８００１３８０００")]),
    ],
)
def test_finds_personal_data(text: str, expected: list[tuple[str, str]]) -> None:
    assert labels(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "被扣了18000000元，太离谱",  # an amount
        "损失￥13800138000",  # money, however phone-shaped
        "交易日期20261103，金额5000元",  # a compact date
        "2026-11-03转账",  # an ISO date
        "订单号2026110312345678一直处理中",  # order number, fails Luhn
        "订单号：6225880123456783",  # labelled order number, even if Luhn-valid
        "order number 13800138000 is stuck",  # labelled order number
        "流水号12345678901234567",  # 17 digits
        "编号12345678901234569",  # 17 digits, Luhn-valid: still neither ID nor card
        "身份证110105194912310021",  # failed ID checksum
        "卡号6225880123456784",  # failed Luhn... still an account number in context? see below
        "尾号8812的信用卡",  # card tail is kept
        "ending in 8812",
        "last four digits 8812",
        "客服95588和400-820-8888都打不通",  # institutions' numbers
        "12800138000",  # no mobile prefix 12
        "138001380001",  # 12 digits
        "1380013800",  # 10 digits
        "0000000000000000",  # Luhn-valid but not a card
    ],
)
def test_near_misses_are_not_redacted(text: str) -> None:
    found = labels(text)
    if text.startswith("卡号6225880123456784"):
        # Not a bank card (Luhn fails), but digits after 卡号 are still an account identifier.
        assert found == [("account_number", "6225880123456784")]
    else:
        assert found == []


def test_digit_runs_are_bounded() -> None:
    # A phone inside a longer run is not a phone; an ID inside a longer run is not an ID.
    assert labels("99913800138000") == []  # 14 digits, fails Luhn
    assert labels(f"{ID_CARD[:-1]}12") == []  # 19 digits, fails Luhn
    assert labels(f"9{ID_CARD}") == []
    assert labels(f"{CARD_16}1") == []  # 17 digits


def test_never_swallows_neighbouring_text() -> None:
    text = f"尾号8812的卡{CARD_16}和手机13800138000、邮箱a@b.cn。"
    redactions = find_personal_data(normalize_text(text), "zh")
    assert [text[r.start : r.end] for r in redactions] == [CARD_16, "13800138000", "a@b.cn"]
    assert redact(text, redactions) == "尾号8812的卡[银行卡号]和手机[手机号]、邮箱[邮箱]。"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (
            f"我的信用卡尾号8812被盗刷，身份证{ID_CARD}，手机13800138000，邮箱a.b@qq.com",
            "我的信用卡尾号8812被盗刷，身份证[身份证]，手机[手机号]，邮箱[邮箱]",
        ),
        (
            f"座机010-62345678，卡号{CARD_16}，账号：12345678901",
            "座机[电话]，卡号[银行卡号]，账号：[账号]",
        ),
        (
            f"My card ending in 8812 ({CARD_16}) was stolen. ID {ID_CARD}, phone 13800138000, "
            "email me at john@example.com, account no. 12345678901.",
            "My card ending in 8812 ([CARD_NUMBER]) was stolen. ID [ID_CARD], phone [PHONE], "
            "email me at [EMAIL], account no. [ACCOUNT].",
        ),
        ("Home phone 021-62345678, thanks", "Home phone [PHONE], thanks"),
    ],
)
def test_placeholders_follow_the_language(pipeline: TextPipeline, text: str, redacted: str) -> None:
    analysis = pipeline.analyse(text)
    assert analysis.redacted_text == redacted
    for r in analysis.redactions:
        assert r.start < r.end
        assert text[r.start : r.end].strip() == text[r.start : r.end]


def test_redactions_keep_no_personal_text() -> None:
    (redaction,) = find_personal_data(f"身份证{ID_CARD}", "zh")
    assert ID_CARD not in repr(redaction)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("账号为：12345678901", [("account_number", "12345678901")]),
        ("账号是 12345678901", [("account_number", "12345678901")]),
        ("身份证号为：110105491231002", [("id_card", "110105491231002")]),  # 15-digit, in context
        ("订单号为：13800138000", []),
    ],
)
def test_context_words_with_colons(text: str, expected: list[tuple[str, str]]) -> None:
    assert labels(text) == expected


def test_statement_timestamps_are_not_cards() -> None:
    # 20261103130500 is Luhn-valid, but reads as a date and a time of day.
    assert luhn_valid("20261103130500")
    assert labels("交易时间20261103130500") == []


def test_direction_marks_around_a_pasted_number_do_not_hide_it() -> None:
    text = "他的电话\u202d138 0013 8000\u202c打了很多次"
    assert labels(text) == [("mobile_phone", "138 0013 8000")]


def test_redact_text_needs_no_pipeline() -> None:
    assert redact_text(f"身份证{ID_CARD}，电话13800138000") == "身份证[身份证]，电话[手机号]"
    assert redact_text("call me on 13800138000") == "call me on [PHONE]"
    assert redact_text("电话13800138000", language="en") == "电话[PHONE]"

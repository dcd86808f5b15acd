"""Language by script shares: the dominant script wins; mixed when the minority is substantial."""

from __future__ import annotations

import pytest

from triage.text import read_language


@pytest.mark.parametrize(
    ("text", "language", "mixed"),
    [
        ("我的信用卡昨天被盗刷了五千元，请尽快处理", "zh", False),
        ("My credit card was charged twice and nobody answers the hotline.", "en", False),
        ("我在APP上转账失败，钱却扣了", "zh", False),
        ("我的ATM卡在ATM机上被吞了", "zh", False),
        ("我的信用卡被盗刷了, please help me asap", "zh", True),
        ("The branch in 北京 refused to refund me, this is unacceptable", "en", False),
        ("I was charged twice 重复扣款了 please refund", "en", True),
    ],
)
def test_dominant_language_and_mixed(text: str, language: str, mixed: bool) -> None:
    reading = read_language(text)
    assert reading.language == language
    assert reading.is_mixed is mixed
    assert sum(reading.shares.values()) == pytest.approx(1.0, abs=1e-3)


def test_full_width_latin_counts_as_english() -> None:
    assert read_language("Ｍｙ ｃａｒｄ ｗａｓ ｓｔｏｌｅｎ").language == "en"


def test_text_without_letters_gets_the_default() -> None:
    reading = read_language("12345 😡", default="en")
    assert reading.language == "en"
    assert reading.shares == {"zh": 0.0, "en": 0.0}
    assert not reading.is_mixed


def test_threshold_is_configurable() -> None:
    text = "我的ATM卡在ATM机上被吞了"
    assert not read_language(text).is_mixed
    assert read_language(text, mixed_threshold=0.1).is_mixed

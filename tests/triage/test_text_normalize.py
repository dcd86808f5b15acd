"""Normalisation is length-preserving, so offsets into it are offsets into the original."""

from __future__ import annotations

import pytest

from triage.text import normalize_text


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("１２３４５６７８元", "12345678元"),
        ("ＡＰＰ登录不上", "APP登录不上"),
        ("我的卡（尾号８８１２）！", "我的卡(尾号8812)!"),
        ("余额少了，请处理：谢谢？", "余额少了,请处理:谢谢?"),
        ("金额￥１，２８０．５０", "金额¥1,280.50"),
        ("第一行\n第二行\r\n\t缩进", "第一行 第二行   缩进"),
        ("全角\u3000空格\u00a0和\u200b零宽", "全角 空格 和 零宽"),
        ("控制\x00字符\x1b\x7f", "控制 字符  "),
        ("“quoted” ‘single’ – dash", "\"quoted\" 'single' - dash"),
        ("中文句号。顿号、书名号《》保留", "中文句号。顿号、书名号《》保留"),
    ],
)
def test_normalises_without_moving_characters(original: str, expected: str) -> None:
    assert normalize_text(original) == expected
    assert len(normalize_text(original)) == len(original)


def test_runs_of_whitespace_are_not_collapsed() -> None:
    assert normalize_text("a \u3000\u3000 b") == "a    b"


def test_emoji_and_astral_characters_are_kept_one_for_one() -> None:
    text = "卡被盗刷了😡👨‍👩‍👧𠀀ok"
    assert normalize_text(text) == text
    assert len(normalize_text(text)) == len(text)


def test_is_idempotent() -> None:
    text = "ＡＢＣ　１２３，“引号”\t"
    once = normalize_text(text)
    assert normalize_text(once) == once

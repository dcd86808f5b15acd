"""Occlusion evidence: the segment whose removal drops the model's score the most."""

from __future__ import annotations

import pytest

from triage.text import occlusion_evidence


class KeywordScore:
    """A stand-in model: high when the keyword is present; records how it is called."""

    def __init__(self, keyword: str, *others: str) -> None:
        self.keywords = (keyword, *others)
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[float]:
        self.calls.append(list(texts))
        return [0.1 + 0.8 * sum(k in t for k in self.keywords) / len(self.keywords) for t in texts]


def test_picks_the_clause_that_drives_the_score() -> None:
    text = "我昨天去网点办业务，排队很久。回家发现余额少了三千！客服说不清楚"
    score = KeywordScore("余额少了")
    spans = occlusion_evidence(text, score)
    assert [s.text for s in spans] == ["回家发现余额少了三千"]
    assert text[spans[0].start : spans[0].end] == spans[0].text
    assert len(score.calls) == 1  # one batched call
    assert score.calls[0][0] == text  # the original first, then one variant per clause
    assert len(score.calls[0]) == 5


def test_two_spans_when_two_clauses_matter() -> None:
    text = "My card was skimmed at the ATM, the staff were rude, and I lost $500."
    spans = occlusion_evidence(text, KeywordScore("skimmed", "lost"), max_spans=2)
    assert [s.text for s in spans] == ["My card was skimmed at the ATM", "and I lost $500"]


def test_max_spans_limits_the_answer() -> None:
    text = "My card was skimmed at the ATM, the staff were rude, and I lost $500."
    spans = occlusion_evidence(text, KeywordScore("skimmed", "lost"), max_spans=1)
    assert [s.text for s in spans] == ["My card was skimmed at the ATM"]


def test_short_text_is_split_into_words_and_adjacent_words_joined() -> None:
    text = "我没操作过余额少了三千"
    spans = occlusion_evidence(text, KeywordScore("余额少了"))
    assert [s.text for s in spans] == ["余额少了"]


def test_offsets_are_exact_with_emoji_full_width_and_padding() -> None:
    text = "😡😡  ＡＰＰ转账失败，\u3000钱被转走了💸！！  客服不理"
    spans = occlusion_evidence(text, KeywordScore("被转走"))
    assert [s.text for s in spans] == ["钱被转走了"]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_clauses_keep_numbers_whole() -> None:
    text = "手续费收了1,280.50元,太离谱了"
    spans = occlusion_evidence(text, KeywordScore("1,280.50"))
    assert [s.text for s in spans] == ["手续费收了1,280.50元"]


def test_always_answers_with_the_strongest_segment() -> None:
    # A model that no single removal moves still gets one span, the earliest of the ties.
    text = "第一句话，第二句话"
    spans = occlusion_evidence(text, lambda texts: [0.7] * len(texts))
    assert [s.text for s in spans] == ["第一句话"]


def test_excluded_ranges_never_appear_in_evidence() -> None:
    text = "手机13800138000被盗刷了"
    phone = (2, 13)
    spans = occlusion_evidence(text, KeywordScore("盗刷"), exclude=[phone])
    assert spans
    assert all(not (s.start < phone[1] and phone[0] < s.end) for s in spans)


def test_empty_or_punctuation_only_text() -> None:
    assert occlusion_evidence("", KeywordScore("x")) == []
    assert occlusion_evidence("！！😡", KeywordScore("x")) == []


def test_score_must_answer_every_variant() -> None:
    with pytest.raises(ValueError, match="values"):
        occlusion_evidence("一句，两句", lambda texts: [0.5])
    with pytest.raises(ValueError, match="max_spans"):
        occlusion_evidence("一句，两句", KeywordScore("x"), max_spans=0)


def test_long_texts_are_scored_in_a_bounded_batch() -> None:
    clauses = [f"第{i}句没什么" for i in range(100)]
    clauses[57] = "余额少了三千"
    text = "，".join(clauses)
    score = KeywordScore("余额少了")
    spans = occlusion_evidence(text, score, max_segments=10)
    assert len(score.calls[0]) <= 1 + 10
    assert len(spans) == 1
    assert "余额少了三千" in spans[0].text
    assert text[spans[0].start : spans[0].end] == spans[0].text


def test_joined_segments_never_reach_across_excluded_ranges() -> None:
    clauses = [f"第{i}句" for i in range(40)]
    text = "，".join(clauses)
    hidden = (text.index("第20句"), text.index("第20句") + len("第20句"))
    spans = occlusion_evidence(
        text, KeywordScore("第2"), max_segments=4, exclude=[hidden], max_spans=4
    )
    assert all(not (s.start < hidden[1] and hidden[0] < s.end) for s in spans)

"""The n-gram branch: tokens, TF-IDF rows as scikit-learn computes them, blend, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from triage._ngrams import NgramHeads, NgramVocabulary, ngram_tokens, ngrams

TEXTS = [
    "信用卡被盗刷了3笔，共¥1,280.50，尾号8812",
    "客服态度恶劣，挂我电话",
    "My card was skimmed at the ATM, £200 gone",
    "The agent was rude and hung up on me",
    "信用卡被盗刷，客服态度也差",
]


def test_tokens_are_cjk_characters_words_and_numbers() -> None:
    assert ngram_tokens("ATM取款2,000元failed") == ["atm", "取", "款", "0", "元", "failed"]
    assert ngram_tokens("  ，！ ") == []
    assert ngrams("盗刷盗刷", 2) == {"盗": 2, "刷": 2, "盗 刷": 2, "刷 盗": 1}


def test_tfidf_rows_match_scikit_learn() -> None:
    vocab = NgramVocabulary.fit(TEXTS, max_n=2, min_df=1)
    ours = vocab.transform(TEXTS).toarray()
    reference = TfidfVectorizer(
        analyzer=lambda t: [g for g, c in ngrams(t, 2).items() for _ in range(c)],
        sublinear_tf=True, vocabulary=vocab.terms,
    ).fit(TEXTS)
    np.testing.assert_allclose(ours, reference.transform(TEXTS).toarray(), atol=1e-5)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_min_df_and_unknown_terms() -> None:
    vocab = NgramVocabulary.fit(TEXTS, max_n=1, min_df=2)
    assert "盗" in vocab.terms and "skimmed" not in vocab.terms
    assert vocab.transform(["完全陌生的词"]).nnz == 0  # a text of unseen terms is a zero row


def _heads(blend: dict[str, tuple[float, float]]) -> NgramHeads:
    vocab = NgramVocabulary.fit(TEXTS, max_n=2, min_df=1)
    rng = np.random.default_rng(0)
    return NgramHeads(vocab, rng.normal(size=(len(vocab), 3 + 4 + 6)).astype(np.float32),
                      rng.normal(size=13).astype(np.float32), (3, 4, 6), blend)


def test_blend_scales_each_head() -> None:
    heads = _heads({"category": (1.0, 0.0), "flags": (0.0, 1.0), "departments": (0.5, 2.0)})
    encoder = [np.ones((2, 3), np.float32), np.ones((2, 4), np.float32), np.ones((2, 6), np.float32)]
    ngram = heads.logits(TEXTS[:2])
    category, flags, departments = heads.apply(TEXTS[:2], encoder)
    np.testing.assert_allclose(category, encoder[0])  # (1, 0): the encoder alone
    np.testing.assert_allclose(flags, ngram[1], rtol=1e-6)
    np.testing.assert_allclose(departments, 0.5 + 2.0 * ngram[2], rtol=1e-5)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    heads = _heads({"category": (0.7, 0.3), "flags": (0.2, 0.8), "departments": (1.0, 0.0)})
    heads.save(tmp_path)
    loaded = NgramHeads.load(tmp_path)
    assert loaded is not None and loaded.blend == heads.blend
    for a, b in zip(heads.logits(TEXTS), loaded.logits(TEXTS), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert NgramHeads.load(tmp_path / "elsewhere") is None


@pytest.mark.parametrize("text", ["", "😀😀", "a" * 5000])
def test_odd_texts_featurise(text: str) -> None:
    vocab = NgramVocabulary.fit(TEXTS, max_n=3, min_df=1)
    assert vocab.transform([text]).shape == (1, len(vocab))


def _flag_heads(strong: dict[str, float]) -> NgramHeads:
    """A branch whose first flag is raised by the given terms only."""
    vocab = NgramVocabulary.fit(TEXTS, max_n=2, min_df=1)
    weights = np.zeros((len(vocab), 13), np.float32)
    for term, w in strong.items():
        weights[vocab.terms.index(term), 3] = w
    return NgramHeads(vocab, weights, np.zeros(13, np.float32), (3, 4, 6), {})


def test_evidence_quotes_the_terms_that_raise_the_flag() -> None:
    heads = _flag_heads({"盗 刷": 2.0, "盗": 1.0, "态 度": -3.0})
    text = "信用卡被盗刷，客服态度也差"
    spans = heads.evidence(text, "flags", 0)
    assert [text[a:b] for a, b in spans] == ["盗刷"]  # overlapping terms merged, negative ignored
    assert heads.evidence(text, "flags", 1) == []  # nothing raises the second flag


def test_evidence_never_quotes_an_excluded_span() -> None:
    heads = _flag_heads({"skimmed": 2.0, "card": 1.5})
    text = "My card was skimmed at the ATM, £200 gone"
    start = text.index("skimmed")
    spans = heads.evidence(text, "flags", 0, exclude=[(start, start + 7)])
    assert [text[a:b] for a, b in spans] == ["card"]


def test_evidence_keeps_clauses_apart() -> None:
    heads = _flag_heads({"盗 刷": 2.0, "也 差": 1.5})
    text = "信用卡被盗刷，客服态度也差"
    assert [text[a:b] for a, b in heads.evidence(text, "flags", 0)] == ["盗刷", "也差"]


def test_evidence_prefers_terms_a_reviewer_can_read() -> None:
    text = "信用卡被盗刷，客服态度也差"
    heads = _flag_heads({"盗 刷": 1.0, "也": 3.0, "差": 2.5})  # lone characters outweigh it
    assert [text[a:b] for a, b in heads.evidence(text, "flags", 0)] == ["盗刷"]
    alone = _flag_heads({"也": 3.0})  # nothing else raised the score: the top term is kept
    assert [text[a:b] for a, b in alone.evidence(text, "flags", 0)] == ["也"]


def test_evidence_stays_a_quote_on_repetitive_text() -> None:
    heads = _flag_heads({"盗 刷": 2.0})
    text = "盗刷" * 5000
    spans = heads.evidence(text, "flags", 0)
    assert spans and all(b - a <= 40 for a, b in spans) and len(spans) <= 3

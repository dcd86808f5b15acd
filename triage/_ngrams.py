"""The n-gram branch: a TF-IDF linear model per head, blended with the encoder's logits.

On a few thousand hand-labelled complaints a linear model on character n-grams is a strong
reader of the exact wording ("盗刷", "冻结", "态度恶劣") while the encoder generalises over
paraphrase; the blend takes the best of both (figures in training/README.md). The branch is
fitted after the encoder (see ``training/ngram_heads.py``) and stored with the model; this
module is the featuriser and the blend that every consumer shares.

Features are TF-IDF over token n-grams where a token is one CJK character, one Latin word
(lower-cased) or one number (every number becomes ``0``): character 1-3 grams for Chinese,
word 1-3 grams for English, both for mixed text. Sub-linear term frequency, smoothed IDF,
L2-normalised rows, as scikit-learn's ``TfidfVectorizer`` does.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

NGRAM_VOCAB_FILE = "ngram_vocab.json"
NGRAM_WEIGHTS_FILE = "ngram_heads.safetensors"

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[A-Za-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*")
HEAD_NAMES = ("category", "flags", "departments")
# Evidence stays a quote, not a paragraph: each term is quoted where it first occurs (at most
# this often), and touching occurrences merge only up to this many characters.
MAX_OCCURRENCES = 2
MAX_SPAN_CHARS = 40


def _located_tokens(text: str) -> list[tuple[str, int, int]]:
    out = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token[0].isdigit():
            token = "0"
        elif token.isascii():
            token = token.lower()
        out.append((token, match.start(), match.end()))
    return out


def ngram_tokens(text: str) -> list[str]:
    """CJK characters, lower-cased Latin words and numbers (as ``0``), in text order."""
    return [t for t, _, _ in _located_tokens(text)]


def ngram_occurrences(text: str, max_n: int) -> dict[str, list[tuple[int, int]]]:
    """Where each token n-gram occurs, as character spans of ``text``."""
    tokens = _located_tokens(text)
    where: dict[str, list[tuple[int, int]]] = {}
    for n in range(1, max_n + 1):
        for i in range(len(tokens) - n + 1):
            term = " ".join(t for t, _, _ in tokens[i : i + n])
            where.setdefault(term, []).append((tokens[i][1], tokens[i + n - 1][2]))
    return where


def is_quotable(term: str) -> bool:
    """Whether an n-gram means something to a reviewer on its own.

    A lone CJK character ("在", "万") or a bare number carries weight in the linear model but
    explains nothing when highlighted; two or more tokens, or one Latin word of three letters
    or more ("skimmed"), do.
    """
    tokens = term.split(" ")
    if len(tokens) > 1:
        return True
    return tokens[0].isascii() and tokens[0].isalpha() and len(tokens[0]) >= 3


def ngrams(text: str, max_n: int) -> Counter[str]:
    """Counts of the token 1..max_n grams of a text (tokens joined by a space)."""
    tokens = ngram_tokens(text)
    counts: Counter[str] = Counter()
    for n in range(1, max_n + 1):
        for i in range(len(tokens) - n + 1):
            counts[" ".join(tokens[i : i + n])] += 1
    return counts


@dataclass
class NgramVocabulary:
    """The n-grams a model knows and their inverse document frequencies."""

    terms: list[str]
    idf: np.ndarray
    max_n: int = 3

    def __post_init__(self) -> None:
        self._index = {t: i for i, t in enumerate(self.terms)}

    def __len__(self) -> int:
        return len(self.terms)

    @classmethod
    def fit(
        cls, texts: Sequence[str], *, max_n: int = 3, min_df: int = 2, max_terms: int = 300_000
    ) -> NgramVocabulary:
        """Terms seen in at least ``min_df`` texts (the most frequent ``max_terms``)."""
        df: Counter[str] = Counter()
        for text in texts:
            df.update(ngrams(text, max_n).keys())
        kept = [(t, c) for t, c in df.items() if c >= min_df]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        kept = kept[:max_terms]
        n = len(texts)
        idf = np.array([math.log((1 + n) / (1 + c)) + 1.0 for _, c in kept], dtype=np.float32)
        return cls([t for t, _ in kept], idf, max_n)

    def transform(self, texts: Iterable[str]) -> sparse.csr_matrix:
        """TF-IDF rows (sub-linear tf, L2-normalised), one per text."""
        indptr: list[int] = [0]
        indices: list[int] = []
        values: list[float] = []
        for text in texts:
            row = [(self._index[t], 1.0 + math.log(c)) for t, c in ngrams(text, self.max_n).items() if t in self._index]
            weights = np.array([w * self.idf[j] for j, w in row], dtype=np.float32)
            norm = float(np.linalg.norm(weights)) if row else 1.0
            indices.extend(j for j, _ in row)
            values.extend((weights / (norm or 1.0)).tolist())
            indptr.append(len(indices))
        return sparse.csr_matrix(
            (np.array(values, dtype=np.float32), np.array(indices, dtype=np.int64), np.array(indptr)),
            shape=(len(indptr) - 1, len(self.terms)),
        )

    def to_json(self) -> dict[str, object]:
        return {"max_n": self.max_n, "terms": self.terms, "idf": [round(float(x), 6) for x in self.idf]}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> NgramVocabulary:
        return cls(list(obj["terms"]), np.asarray(obj["idf"], dtype=np.float32), int(obj["max_n"]))  # type: ignore[call-overload]


def _crosses(text: str, end: int, start: int) -> bool:
    """Whether the gap between two spans holds a clause break (they stay separate)."""
    return any(c in "。！？；!?;\n" for c in text[end:start])


def blend_logits(encoder: np.ndarray, ngram: np.ndarray, scales: tuple[float, float]) -> np.ndarray:
    return (scales[0] * encoder + scales[1] * ngram).astype(np.float32)


@dataclass
class NgramHeads:
    """Linear n-gram logits for the three heads and each head's blend weight.

    ``weights`` has one column per category, flag and department (in the model's order);
    ``blend[h] = (a, b)`` makes head ``h``'s logits ``a * encoder + b * n-gram``; (1, 0)
    leaves the encoder alone. The two scales are fitted on the dev split.
    """

    vocabulary: NgramVocabulary
    weights: np.ndarray  # (terms, categories + flags + departments)
    bias: np.ndarray
    sizes: tuple[int, int, int]
    blend: dict[str, tuple[float, float]]

    def logits(self, normalized_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = self.vocabulary.transform(normalized_texts)
        z = np.asarray(x @ self.weights, dtype=np.float32) + self.bias
        a, b, _ = self.sizes
        return z[:, :a], z[:, a : a + b], z[:, a + b :]

    def evidence(
        self, normalized_text: str, head: str, label: int, *,
        exclude: Sequence[tuple[int, int]] = (), max_terms: int = 3, min_share: float = 0.3,
    ) -> list[tuple[int, int]]:
        """Spans of the n-grams that raise one label's n-gram score most (exact attribution).

        A linear model's score is a sum over the text's n-grams, so each n-gram's share is
        its TF-IDF value times its weight. The strongest positive quotable terms (at least
        ``min_share`` of the top one; a lone character only when nothing else raised the
        score) are located in the text, never inside an excluded span (personal data), and
        overlapping or touching occurrences are merged.
        """
        column = sum(self.sizes[: HEAD_NAMES.index(head)]) + label
        row = self.vocabulary.transform([normalized_text])
        share = row.data * self.weights[row.indices, column]
        order = [k for k in np.argsort(-share) if share[k] > 0]
        quotable = [k for k in order if is_quotable(self.vocabulary.terms[row.indices[k]])]
        order = quotable or order[:1]
        if not order:
            return []
        chosen = [self.vocabulary.terms[row.indices[k]] for k in order if share[k] >= min_share * share[order[0]]]
        where = ngram_occurrences(normalized_text, self.vocabulary.max_n)
        spans = []
        for term in chosen[:max_terms]:
            spans += [
                (a, b) for a, b in where.get(term, ())
                if not any(a < e and s < b for s, e in exclude)
            ][:MAX_OCCURRENCES]
        merged: list[tuple[int, int]] = []
        for a, b in sorted(spans):
            if (
                merged and a <= merged[-1][1] + 1
                and max(merged[-1][1], b) - merged[-1][0] <= MAX_SPAN_CHARS
                and not _crosses(normalized_text, merged[-1][1], a)
            ):
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged

    def combine(
        self, encoder: Sequence[np.ndarray], ngram: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted sum of the encoder's and the n-gram model's logits, per head."""
        out = [
            blend_logits(e, g, self.blend.get(h, (1.0, 0.0)))
            for h, e, g in zip(HEAD_NAMES, encoder, ngram, strict=True)
        ]
        return out[0], out[1], out[2]

    def apply(
        self, normalized_texts: Sequence[str], encoder: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.combine(encoder, self.logits(normalized_texts))

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        meta = {**self.vocabulary.to_json(), "sizes": list(self.sizes), "blend": self.blend}
        (folder / NGRAM_VOCAB_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        save_file(
            {"weights": np.ascontiguousarray(self.weights, dtype=np.float32),
             "bias": np.ascontiguousarray(self.bias, dtype=np.float32)},
            str(folder / NGRAM_WEIGHTS_FILE),
        )

    @classmethod
    def load(cls, folder: Path) -> NgramHeads | None:
        """The folder's n-gram branch, or None for a model trained without one."""
        if not (folder / NGRAM_VOCAB_FILE).exists():
            return None
        from safetensors.numpy import load_file

        meta = json.loads((folder / NGRAM_VOCAB_FILE).read_text(encoding="utf-8"))
        arrays = load_file(str(folder / NGRAM_WEIGHTS_FILE))
        sizes = tuple(int(s) for s in meta["sizes"])
        return cls(
            NgramVocabulary.from_json(meta), arrays["weights"], arrays["bias"],
            (sizes[0], sizes[1], sizes[2]),
            {k: (float(v[0]), float(v[1])) for k, v in meta["blend"].items()},
        )

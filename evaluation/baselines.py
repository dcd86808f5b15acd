"""Two baselines trained on the model's own training data, answering in the model's shape.

- ``KeywordRules``: a transparent lexicon per label (``keyword_lexicon.yaml``) with priors
  from the training data.
- ``TfidfLogisticRegression``: TF-IDF n-grams (char 1-3 for Chinese, word 1-2 for English,
  as in shared/datasets/BASELINES.md) and one logistic regression per head: a softmax over
  categories, one-vs-rest per urgency flag, a softmax over the owner department.

Both return a ``PredictionSet``, so the model and the baselines are scored by the same code.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from evaluation.predictions import PredictionSet, batch_latency
from triage import ConfigError, LabelledRecord, Taxonomy
from triage._metrics import macro_f1

LEXICON_FILE = Path(__file__).with_name("keyword_lexicon.yaml")
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
DEFAULT_C = 10.0
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


class Baseline(Protocol):
    name: str

    def fit(self, records: Sequence[LabelledRecord]) -> Baseline: ...

    def predict(self, records: Sequence[LabelledRecord]) -> PredictionSet: ...


def is_chinese(text: str) -> bool:
    """Han characters outweigh Latin words (a word counts as 1.5 characters)."""
    return len(_HAN.findall(text)) >= 1.5 * len(_LATIN_WORD.findall(text)) and bool(_HAN.search(text))


def owner_of(record: LabelledRecord) -> str | None:
    return record.departments[0] if record.knows("departments") and record.departments else None


def _category_of(record: LabelledRecord, categories: Sequence[str]) -> str | None:
    return record.category if record.knows("category") and record.category in categories else None


# -- keyword rules --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lexicon:
    """Keywords per label, per group (categories, flags, departments)."""

    categories: dict[str, list[str]]
    flags: dict[str, list[str]]
    departments: dict[str, list[str]]

    @classmethod
    def load(cls, path: Path = LEXICON_FILE) -> Lexicon:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the keyword lexicon: {exc}") from exc
        groups = {}
        for group in ("categories", "flags", "departments"):
            entries = raw.get(group) or {}
            groups[group] = {
                label: [str(w) for lang in (words or {}).values() for w in (lang or [])]
                for label, words in entries.items()
            }
        return cls(**groups)


def _keyword_pattern(word: str) -> re.Pattern[str]:
    if word.isascii():
        return re.compile(r"(?<![A-Za-z0-9])" + re.escape(word) + r"(?![A-Za-z0-9])", re.IGNORECASE)
    return re.compile(re.escape(word))


@dataclass
class KeywordRules:
    """Count lexicon hits per label; fall back to training-data priors where nothing matches."""

    taxonomy: Taxonomy
    lexicon: Lexicon = field(default_factory=Lexicon.load)
    name: str = "keyword_rules"
    _category_prior: dict[str, float] = field(default_factory=dict)
    _owner_by_category: dict[str, str] = field(default_factory=dict)
    _owner_prior: dict[str, float] = field(default_factory=dict)
    _patterns: dict[str, dict[str, list[re.Pattern[str]]]] = field(default_factory=dict)

    def fit(self, records: Sequence[LabelledRecord]) -> KeywordRules:
        cats, depts = self.taxonomy.category_names, self.taxonomy.department_names
        counts = Counter(c for r in records if (c := _category_of(r, cats)))
        total = sum(counts.values()) or 1
        self._category_prior = {c: counts.get(c, 0) / total for c in cats}
        owners = Counter(o for r in records if (o := owner_of(r)))
        total_owners = sum(owners.values()) or 1
        self._owner_prior = {d: owners.get(d, 0) / total_owners for d in depts}
        by_category: dict[str, Counter[str]] = {c: Counter() for c in cats}
        for r in records:
            c, o = _category_of(r, cats), owner_of(r)
            if c and o:
                by_category[c][o] += 1
        fallback = max(depts, key=lambda d: self._owner_prior[d])
        self._owner_by_category = {
            c: (counter.most_common(1)[0][0] if counter else fallback) for c, counter in by_category.items()
        }
        self._patterns = {
            group: {label: [_keyword_pattern(w) for w in words] for label, words in table.items()}
            for group, table in (
                ("categories", self.lexicon.categories),
                ("flags", self.lexicon.flags),
                ("departments", self.lexicon.departments),
            )
        }
        return self

    def _hits(self, group: str, labels: Sequence[str], text: str) -> np.ndarray:
        patterns = self._patterns.get(group, {})
        return np.asarray(
            [sum(1 for p in patterns.get(label, []) if p.search(text)) for label in labels], dtype=float
        )

    def predict(self, records: Sequence[LabelledRecord]) -> PredictionSet:
        start = time.perf_counter()
        tax = self.taxonomy
        cats, flags, depts = tax.category_names, tax.flag_names, tax.department_names
        prior = np.asarray([self._category_prior.get(c, 0.0) for c in cats])
        owner_prior = np.asarray([self._owner_prior.get(d, 0.0) for d in depts])
        cat_scores, flag_scores, suggestions, labels = [], [], [], []
        for record in records:
            hits = self._hits("categories", cats, record.text)
            # Hits decide; the prior (< 1 in total) only breaks ties and fills in when nothing matches.
            raw = hits + prior
            cat_scores.append(raw / raw.sum() if raw.sum() > 0 else np.full(len(cats), 1 / len(cats)))
            label = cats[int(np.argmax(raw))]
            labels.append(label)
            flag_hits = self._hits("flags", flags, record.text)
            flag_scores.append(flag_hits / (flag_hits + 1.0))
            dept_hits = self._hits("departments", depts, record.text)
            ranked = sorted(range(len(depts)), key=lambda j: (-dept_hits[j], -owner_prior[j]))
            owner = depts[ranked[0]] if dept_hits.max() > 0 else self._owner_by_category.get(label, depts[ranked[0]])
            rest = [depts[j] for j in ranked if depts[j] != owner and dept_hits[j] > 0]
            suggestions.append([owner, *rest][:3])
        scores = np.asarray(flag_scores).reshape(len(records), len(flags))
        raised = scores >= 0.5
        return PredictionSet(
            system=self.name, categories=list(cats), flags=list(flags), category=labels,
            category_scores=np.asarray(cat_scores).reshape(len(records), len(cats)),
            flag_scores=scores, raised=raised, flag_thresholds=dict.fromkeys(flags, 0.5),
            urgency_level=[tax.urgency_level([f for j, f in enumerate(flags) if raised[i, j]]) for i in range(len(records))],
            suggestions=suggestions,
            seconds=time.perf_counter() - start,
            latency=batch_latency(time.perf_counter() - start, len(records), len(records)),
        )


# -- TF-IDF + logistic regression -----------------------------------------------------------------
def language_aware_analyzer() -> Callable[[str], list[str]]:
    """Char 1-3 grams for Chinese text, lower-cased word 1-2 grams (prefixed) for English."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3)).build_analyzer()
    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=True).build_analyzer()

    def analyse(text: str) -> list[str]:
        if is_chinese(text):
            return list(chars(text))
        return ["w:" + w for w in words(text)]

    return analyse


@dataclass
class TfidfLogisticRegression:
    """One vectoriser, one logistic regression per head (class_weight balanced, lbfgs)."""

    taxonomy: Taxonomy
    C: float = DEFAULT_C
    name: str = "tfidf_lr"
    _vectorizer: Any = None
    _category: Any = None
    _flags: dict[str, Any] = field(default_factory=dict)
    _flag_constant: dict[str, float] = field(default_factory=dict)
    _owner: Any = None
    _owner_constant: str | None = None

    def _logreg(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000)

    def fit(self, records: Sequence[LabelledRecord]) -> TfidfLogisticRegression:
        from sklearn.feature_extraction.text import TfidfVectorizer

        tax = self.taxonomy
        cats = tax.category_names
        self._vectorizer = TfidfVectorizer(analyzer=language_aware_analyzer(), sublinear_tf=True)
        matrix = self._vectorizer.fit_transform([r.text for r in records])
        rows = [i for i, r in enumerate(records) if _category_of(r, cats)]
        if len({records[i].category for i in rows}) < 2:
            raise ConfigError("the TF-IDF baseline needs training records of at least 2 categories")
        self._category = self._logreg().fit(matrix[rows], [records[i].category for i in rows])
        flag_rows = [i for i, r in enumerate(records) if r.knows("urgency_flags")]
        for flag in tax.flag_names:
            target = [int(flag in records[i].urgency_flags) for i in flag_rows]
            if len(set(target)) < 2:
                self._flag_constant[flag] = float(np.mean(target)) if target else 0.0
                continue
            self._flags[flag] = self._logreg().fit(matrix[flag_rows], target)
        owner_rows = [i for i, r in enumerate(records) if owner_of(r)]
        owners = [owner_of(records[i]) for i in owner_rows]
        if len(set(owners)) >= 2:
            self._owner = self._logreg().fit(matrix[owner_rows], owners)
        else:
            self._owner_constant = owners[0] if owners else tax.department_names[0]
        return self

    def category_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Category probabilities in taxonomy order (a category unseen in training scores 0)."""
        cats = self.taxonomy.category_names
        proba = self._category.predict_proba(self._vectorizer.transform(list(texts)))
        out = np.zeros((len(texts), len(cats)))
        for j, label in enumerate(self._category.classes_):
            out[:, cats.index(label)] = proba[:, j]
        return out

    def predict(self, records: Sequence[LabelledRecord]) -> PredictionSet:
        start = time.perf_counter()
        tax = self.taxonomy
        cats, flags, depts = tax.category_names, tax.flag_names, tax.department_names
        texts = [r.text for r in records]
        matrix = self._vectorizer.transform(texts)
        cat_scores = self.category_scores(texts)
        n = len(records)
        flag_scores = np.zeros((n, len(flags)))
        for j, flag in enumerate(flags):
            model = self._flags.get(flag)
            if model is None:
                flag_scores[:, j] = self._flag_constant.get(flag, 0.0)
            else:
                flag_scores[:, j] = model.predict_proba(matrix)[:, list(model.classes_).index(1)]
        raised = flag_scores >= 0.5
        if self._owner is not None:
            owner_proba = self._owner.predict_proba(matrix)
            classes = list(self._owner.classes_)
            suggestions = [
                [classes[j] for j in np.argsort(-owner_proba[i])[:3]] for i in range(n)
            ]
        else:
            suggestions = [[self._owner_constant or depts[0]] for _ in range(n)]
        seconds = time.perf_counter() - start
        return PredictionSet(
            system=self.name, categories=list(cats), flags=list(flags),
            category=[cats[int(j)] for j in cat_scores.argmax(axis=1)],
            category_scores=cat_scores, flag_scores=flag_scores, raised=raised,
            flag_thresholds=dict.fromkeys(flags, 0.5),
            urgency_level=[tax.urgency_level([f for j, f in enumerate(flags) if raised[i, j]]) for i in range(n)],
            suggestions=suggestions, seconds=seconds, latency=batch_latency(seconds, n, n),
        )


def tune_c(
    taxonomy: Taxonomy, train: Sequence[LabelledRecord], dev: Sequence[LabelledRecord],
    grid: Sequence[float] = C_GRID,
) -> tuple[float, dict[float, float]]:
    """The C with the best dev category macro-F1 (the category head only, as BASELINES.md does)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    cats = taxonomy.category_names
    train_rows = [r for r in train if _category_of(r, cats)]
    dev_rows = [r for r in dev if _category_of(r, cats)]
    vectorizer = TfidfVectorizer(analyzer=language_aware_analyzer(), sublinear_tf=True)
    x_train = vectorizer.fit_transform([r.text for r in train])
    keep = [i for i, r in enumerate(train) if _category_of(r, cats)]
    x_dev = vectorizer.transform([r.text for r in dev_rows])
    gold = [str(r.category) for r in dev_rows]
    scores: dict[float, float] = {}
    for c in grid:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        model.fit(x_train[keep], [str(r.category) for r in train_rows])
        scores[c] = macro_f1(gold, [str(p) for p in model.predict(x_dev)], cats)
    # Ties go to the C nearest the default (a stable, unsurprising choice).
    best = max(grid, key=lambda c: (round(scores[c], 10), -abs(np.log(c / DEFAULT_C))))
    return best, scores


def train_baselines(
    taxonomy: Taxonomy, train: Sequence[LabelledRecord], dev: Sequence[LabelledRecord] | None = None,
) -> list[Baseline]:
    """Fit both baselines on the same training records; C tuned on ``dev`` when given."""
    c = tune_c(taxonomy, train, dev)[0] if dev else DEFAULT_C
    return [
        KeywordRules(taxonomy).fit(train),
        TfidfLogisticRegression(taxonomy, C=c).fit(train),
    ]

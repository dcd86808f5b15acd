"""The one inference object: complaints in, contract predictions out.

The CLI, the BentoML service, batch scoring and evaluation all call ``Triager``; nothing
else turns model outputs into predictions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from triage._modeling import Calibration, TriageModel, load_triage_model
from triage._schema import (
    CategoryResult,
    Complaint,
    DepartmentScore,
    Entity,
    Prediction,
    SlaResult,
    Span,
    UrgencyFlagResult,
    UrgencyResult,
)
from triage._taxonomy import Taxonomy


@dataclass(frozen=True)
class InferenceOptions:
    """How the inference object runs: batch size, threads, the fast path."""

    batch_size: int = 32
    num_threads: int | None = None
    quantize: Literal["none", "dynamic_int8"] = "none"
    device: str = "auto"
    # When a raised flag has no lexicon hit: "ngram" quotes the n-grams that raise the flag's
    # n-gram score most (exact, near free; occlusion where the model has no n-gram branch),
    # "occlusion" re-scores the text with each clause removed (faithful to the whole model,
    # up to 8 extra passes), "off" leaves such a flag without evidence.
    evidence_fallback: Literal["ngram", "occlusion", "off"] = "ngram"
    evidence_max_segments: int = 8  # bounds the occlusion batch for long complaints


@dataclass
class HeadProbabilities:
    """Calibrated probabilities per head, one row per text, in input order."""

    category: np.ndarray
    flags: np.ndarray
    departments: np.ndarray


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))  # type: ignore[no-any-return]


def calibrated_probabilities(
    category: np.ndarray, flags: np.ndarray, departments: np.ndarray, cal: Calibration
) -> HeadProbabilities:
    """Apply the per-head temperatures fitted on the dev split."""
    return HeadProbabilities(
        category=_softmax(category / cal.category_temperature),
        flags=_sigmoid(flags / cal.flag_temperature),
        departments=_sigmoid(departments / cal.department_temperature),
    )


LEXICON_PREFIX = "lexicon:"
MAX_EVIDENCE_SPANS = 8  # lexicon hits quoted per raised flag


def lexicon_feature_names(flags: Sequence[str]) -> list[str]:
    return [f"{LEXICON_PREFIX}{f}" for f in flags]


def lexicon_features(analyses: Sequence[Any], feature_names: Sequence[str]) -> np.ndarray:
    """1.0 where a flag's evidence lexicon fires (negated hits do not count), per text."""
    out = np.zeros((len(analyses), len(feature_names)), dtype=np.float32)
    for j, name in enumerate(feature_names):
        flag = name.removeprefix(LEXICON_PREFIX)
        for i, analysis in enumerate(analyses):
            if analysis.lexicon_evidence.get(flag):
                out[i, j] = 1.0
    return out


def length_chunks(
    sorted_lengths: Sequence[int], order: Sequence[int], batch_size: int, spread: float = 1.3
) -> list[list[int]]:
    """Split length-sorted rows into batches whose lengths stay within ``spread`` of each other.

    Every row of a batch is padded to its longest, and attention grows with the square of
    the length, so one 250-token complaint in a batch of 30-token ones costs more than
    running it alone. Batches hold at most ``batch_size`` rows.
    """
    chunks: list[list[int]] = []
    first = 0
    for k, row in enumerate(order):
        if chunks and len(chunks[-1]) < batch_size and sorted_lengths[k] <= spread * first + 8:
            chunks[-1].append(row)
        else:
            chunks.append([row])
            first = sorted_lengths[k]
    return chunks


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Triager:
    """Loads a trained model once and triages complaints in length-sorted batches."""

    def __init__(
        self,
        model: TriageModel,
        tokenizer: Any,
        *,
        model_version: str,
        taxonomy: Taxonomy | None = None,
        options: InferenceOptions | None = None,
        text_pipeline: Any | None = None,
    ) -> None:
        from triage.text import TextPipeline

        self.options = options or InferenceOptions()
        if self.options.num_threads:
            torch.set_num_threads(self.options.num_threads)
        self.device = resolve_device(self.options.device)
        self.spec = model.spec
        self.taxonomy = taxonomy or Taxonomy.model_validate(model.spec.taxonomy)
        self._check_taxonomy()
        if self.options.quantize == "dynamic_int8" and self.device.type == "cpu":
            model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        self.ngrams = model.ngrams
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.model_version = model_version
        self.text = text_pipeline or TextPipeline()
        self._lock = threading.Lock()

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        *,
        model_version: str | None = None,
        taxonomy: Taxonomy | None = None,
        options: InferenceOptions | None = None,
    ) -> Triager:
        model, tokenizer = load_triage_model(Path(folder))
        return cls(
            model,
            tokenizer,
            model_version=model_version or f"local:{Path(folder).name}",
            taxonomy=taxonomy,
            options=options,
        )

    def _check_taxonomy(self) -> None:
        from triage._errors import ConfigError

        tax, spec = self.taxonomy, self.spec
        for what, have, want in (
            ("categories", tax.category_names, spec.categories),
            ("urgency flags", tax.flag_names, spec.flags),
            ("departments", tax.department_names, spec.departments),
        ):
            if list(have) != list(want):
                raise ConfigError(
                    f"the configured taxonomy's {what} {have} differ from the model's {want}: "
                    "retrain the model for the new taxonomy"
                )

    # -- scores ----------------------------------------------------------------------------
    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        prefixed = [self.spec.query_prefix + t for t in texts]
        encoded = self.tokenizer(prefixed, truncation=True, max_length=self.spec.max_length)
        return [list(ids) for ids in encoded["input_ids"]]

    def logits(
        self, normalized_texts: Sequence[str], features: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw head logits for already-normalised texts, in input order."""
        n = len(normalized_texts)
        names = self.spec.feature_names
        if names and features is None:
            features = lexicon_features(self.text.analyse_many(list(normalized_texts)), names)
        sizes = (len(self.spec.categories), len(self.spec.flags), len(self.spec.departments))
        outs = [np.zeros((n, k), dtype=np.float32) for k in sizes]
        if n == 0:
            return outs[0], outs[1], outs[2]
        ids = self._encode(normalized_texts)
        order = sorted(range(n), key=lambda i: len(ids[i]))
        pad = int(self.tokenizer.pad_token_id or 0)
        bs = max(1, self.options.batch_size)
        autocast = self.device.type == "cuda"
        with self._lock, torch.inference_mode():
            for chunk in length_chunks([len(ids[i]) for i in order], order, bs):
                width = max(len(ids[i]) for i in chunk)
                batch = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    batch[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                batch, mask = batch.to(self.device), mask.to(self.device)
                feats = (
                    torch.from_numpy(features[chunk]).to(self.device) if features is not None else None
                )
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                    heads = self.model(batch, mask, feats)
                for out, tensor in zip(
                    outs, (heads.category, heads.flags, heads.departments), strict=True
                ):
                    out[chunk] = tensor.float().cpu().numpy()
        if self.ngrams is not None:
            return self.ngrams.apply(normalized_texts, outs)
        return outs[0], outs[1], outs[2]

    def probabilities(
        self, normalized_texts: Sequence[str], features: np.ndarray | None = None
    ) -> HeadProbabilities:
        return calibrated_probabilities(
            *self.logits(normalized_texts, features), self.spec.calibration
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised sentence vectors (for similar-complaint search)."""
        from triage.text import normalize_text

        ids = self._encode([normalize_text(t) for t in texts])
        vectors = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(ids), self.options.batch_size):
                chunk = ids[i : i + self.options.batch_size]
                width = max(len(x) for x in chunk)
                batch = torch.zeros((len(chunk), width), dtype=torch.long)
                mask = torch.zeros_like(batch)
                for r, x in enumerate(chunk):
                    batch[r, : len(x)] = torch.tensor(x)
                    mask[r, : len(x)] = 1
                v = self.model.embed(batch.to(self.device), mask.to(self.device)).float().cpu()
                vectors.append(torch.nn.functional.normalize(v, dim=-1).numpy())
        return np.concatenate(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)

    # -- predictions -----------------------------------------------------------------------
    def triage(
        self, complaints: Sequence[Complaint], *, now: datetime | None = None
    ) -> list[Prediction]:
        """Triage complaints in one go; predictions come back in input order."""
        if not complaints:
            return []
        analyses = self.text.analyse_many([c.text for c in complaints])
        features = lexicon_features(analyses, self.spec.feature_names)
        probs = self.probabilities([a.normalized for a in analyses], features)
        received_default = now or datetime.now(self.taxonomy.sla.tzinfo)
        return [
            self._prediction(c, a, probs, i, received_default)
            for i, (c, a) in enumerate(zip(complaints, analyses, strict=True))
        ]

    def triage_stream(
        self, complaints: Iterable[Complaint], *, chunk_size: int = 256
    ) -> Iterable[Prediction]:
        """Triage an arbitrarily long stream in chunks, never holding it all in memory."""
        chunk: list[Complaint] = []
        for complaint in complaints:
            chunk.append(complaint)
            if len(chunk) >= chunk_size:
                yield from self.triage(chunk)
                chunk = []
        if chunk:
            yield from self.triage(chunk)

    def _prediction(
        self, complaint: Complaint, analysis: Any, probs: HeadProbabilities, row: int,
        received_default: datetime,
    ) -> Prediction:
        spec, cal = self.spec, self.spec.calibration
        cat_scores = {c: float(p) for c, p in zip(spec.categories, probs.category[row], strict=True)}
        label = max(cat_scores, key=cat_scores.__getitem__)
        flag_scores = {f: float(p) for f, p in zip(spec.flags, probs.flags[row], strict=True)}
        raised = [f for f in spec.flags if flag_scores[f] >= cal.flag_thresholds.get(f, 0.5)]
        variant_scores: dict[str, np.ndarray] = {}  # shared by this complaint's flags
        flags = [
            UrgencyFlagResult(
                label=f, score=flag_scores[f], evidence=self._evidence(f, analysis, variant_scores)
            )
            for f in raised
        ]
        level = self.taxonomy.urgency_level(raised)
        received = complaint.received_at or received_default
        respond_by, resolve_by = self.taxonomy.sla.due_times(level, received)
        departments = self._departments(probs.departments[row])
        reasons = self._review_reasons(cat_scores[label], flag_scores, departments)
        return Prediction(
            id=complaint.id,
            language=analysis.language,
            category=CategoryResult(label=label, confidence=cat_scores[label], scores=cat_scores),
            urgency=UrgencyResult(level=level, flags=flags, scores=flag_scores),
            departments=departments,
            sla=SlaResult(level=level, respond_by=respond_by, resolve_by=resolve_by),
            needs_review=bool(reasons),
            review_reasons=reasons,
            entities=[Entity.model_validate(e, from_attributes=True) for e in analysis.entities],
            redacted_text=analysis.redacted_text,
            model_version=self.model_version,
            channel=complaint.channel,
            received_at=complaint.received_at,
        )

    def _departments(self, scores: np.ndarray) -> list[DepartmentScore]:
        thresholds = self.spec.calibration.department_thresholds
        ranked = sorted(zip(self.spec.departments, scores, strict=True), key=lambda x: -x[1])
        chosen = [ranked[0]] + [
            (d, s) for d, s in ranked[1:3] if s >= thresholds.get(d, 0.5)
        ]
        return [DepartmentScore(label=d, score=float(s)) for d, s in chosen]

    def _review_reasons(
        self,
        confidence: float,
        flag_scores: dict[str, float],
        departments: list[DepartmentScore],
    ) -> list[str]:
        cal = self.spec.calibration
        reasons = []
        if confidence < cal.review_confidence:
            reasons.append(
                f"category confidence {confidence:.2f} is below {cal.review_confidence:.2f}"
            )
        margin = cal.review_flag_margin
        for flag, score in flag_scores.items():
            threshold = cal.flag_thresholds.get(flag, 0.5)
            # the band is in log-odds, so a threshold near 0 or 1 does not make every case "close"
            if margin > 0 and abs(_logit(score) - _logit(threshold)) < margin:
                reasons.append(f"{flag} score {score:.2f} is close to its threshold {threshold:.2f}")
        return reasons

    def _evidence(
        self, flag: str, analysis: Any, cache: dict[str, np.ndarray] | None = None
    ) -> list[Span]:
        """Lexicon hits; else the n-grams or clauses that drove the flag's score."""
        # the first hits in reading order: a complaint repeating one phrase is not a longer quote
        hits = list(analysis.lexicon_evidence.get(flag, ()))[:MAX_EVIDENCE_SPANS]
        mode = self.options.evidence_fallback
        if hits or mode == "off":
            return [Span(start=h.start, end=h.end, text=h.text) for h in hits]
        index = self.spec.flags.index(flag)
        personal = [(r.start, r.end) for r in analysis.redactions]  # never quote personal data
        if mode == "ngram" and self.ngrams is not None:
            found = self.ngrams.evidence(analysis.normalized, "flags", index, exclude=personal)
            if found:
                return [Span(start=a, end=b, text=analysis.text[a:b]) for a, b in found]
        return self._occlusion_evidence(index, analysis, personal, cache)

    def _occlusion_evidence(
        self, index: int, analysis: Any, personal: list[tuple[int, int]],
        cache: dict[str, np.ndarray] | None,
    ) -> list[Span]:
        """The clauses whose removal lowers the flag's score most."""
        from triage.text import normalize_text, occlusion_evidence

        cache = {} if cache is None else cache
        # The flag had no lexicon hit, so removing a clause cannot remove one: the variants
        # reuse the complaint's own lexicon inputs instead of re-running the text pipeline.
        features = lexicon_features([analysis], self.spec.feature_names)

        def score(variants: list[str]) -> list[float]:
            missing = [v for v in dict.fromkeys(variants) if v not in cache]
            if missing:
                probs = self.probabilities(
                    [normalize_text(v) for v in missing], np.repeat(features, len(missing), axis=0)
                )
                for i, v in enumerate(missing):
                    cache[v] = probs.flags[i]
            return [float(cache[v][index]) for v in variants]

        spans = occlusion_evidence(
            analysis.text, score, exclude=personal, max_segments=self.options.evidence_max_segments
        )
        return [Span(start=s.start, end=s.end, text=s.text) for s in spans]


ScoreFunction = Callable[[list[str]], list[float]]

"""The training loop: cache the frozen lower layers once, fine-tune the top layers and heads.

On 2 CPU cores a full fine-tune of the 12-layer encoder runs at ~11 samples/s; running the
frozen lower layers once and training only the top ``trainable_top_layers`` on their cached
output makes an epoch over the starter set take seconds (figures in training/README.md).
"""

from __future__ import annotations

import copy
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from training.args import TrainingConfig
from training.calibration import calibrate
from training.data_mix import SplitData, TrainingData
from triage import ConfigError, Taxonomy
from triage._inference import (
    calibrated_probabilities,
    lexicon_feature_names,
    lexicon_features,
    resolve_device,
)
from triage._metrics import macro_f1, multilabel_prf, top_k_hit
from triage._modeling import ModelSpec, TriageModel
from triage.text import normalize_text


@dataclass
class SplitLogits:
    category: np.ndarray
    flags: np.ndarray
    departments: np.ndarray


@dataclass
class TrainingResult:
    model: TriageModel
    tokenizer: Any
    history: list[dict[str, float]] = field(default_factory=list)
    dev_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    best_epoch: int = 0
    dev_logits: SplitLogits | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_base_model(name: str) -> str:
    """'default' is the embedded encoder, converted into the model cache on first use."""
    if name != "default":
        return name
    from training.base_model import ensure_base_model
    from triage import get_settings

    return str(ensure_base_model(get_settings().base_model_dir))


def build_model(config: TrainingConfig, taxonomy: Taxonomy) -> tuple[TriageModel, Any]:
    """Load the base encoder and tokenizer (offline) and put fresh heads on it."""
    from transformers import AutoModel, AutoTokenizer

    base = resolve_base_model(config.base_model)
    try:
        encoder = AutoModel.from_pretrained(base, add_pooling_layer=False)
        tokenizer = AutoTokenizer.from_pretrained(base)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load base model {config.base_model!r} offline: {str(exc).splitlines()[0]}"
        ) from exc
    if config.keep_layers is not None:
        _truncate_layers(encoder, config.keep_layers)
    spec = ModelSpec(
        categories=taxonomy.category_names,
        flags=taxonomy.flag_names,
        departments=taxonomy.department_names,
        max_length=config.max_length,
        feature_names=lexicon_feature_names(taxonomy.flag_names) if config.lexicon_features else [],
        base_model=config.base_model,
        taxonomy=taxonomy.model_dump(mode="json"),
        training={"config": config.model_dump(mode="json")},
    )
    return TriageModel(encoder, spec, dropout=config.dropout), tokenizer


def _truncate_layers(encoder: nn.Module, keep: int) -> None:
    layers = encoder.encoder.layer  # type: ignore[union-attr]
    if keep < len(layers):
        encoder.encoder.layer = nn.ModuleList(list(layers)[:keep])  # type: ignore[union-attr]
        encoder.config.num_hidden_layers = keep  # type: ignore[union-attr]


def tokenize(records: list[Any], tokenizer: Any, spec: ModelSpec) -> list[list[int]]:
    texts = [spec.query_prefix + normalize_text(r.text) for r in records]
    return [list(x) for x in tokenizer(texts, truncation=True, max_length=spec.max_length)["input_ids"]]


def _pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def _pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(s.shape[0] for s in states)
    hidden = torch.zeros((len(states), width, states[0].shape[1]), dtype=torch.float32)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        hidden[i, : s.shape[0]] = s.float()
        mask[i, : s.shape[0]] = 1
    return hidden, mask


def length_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (less padding), in shuffled order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


class _Autocast:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __call__(self) -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")


def cache_states(
    model: TriageModel, ids: list[list[int]], depth: int, device: torch.device, desc: str,
    pad: int, progress: bool,
) -> list[torch.Tensor]:
    """Run the frozen lower ``depth`` layers once; keep each text's unpadded states."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    states: list[torch.Tensor | None] = [None] * len(ids)
    autocast = _Autocast(device)
    model.eval()
    bar = tqdm(total=len(ids), desc=desc, unit="text", disable=not progress, file=sys.stderr)
    with torch.inference_mode():
        for start in range(0, len(order), 32):
            chunk = order[start : start + 32]
            batch, mask = _pad([ids[i] for i in chunk], pad)
            with autocast():
                hidden = model.hidden_at(batch.to(device), mask.to(device), depth)
            for row, i in enumerate(chunk):
                states[i] = hidden[row, : len(ids[i])].to(torch.bfloat16).cpu().clone()
            bar.update(len(chunk))
    bar.close()
    return [s for s in states if s is not None]


class Trainer:
    """Fits a TriageModel on a TrainingData mix according to a TrainingConfig."""

    def __init__(
        self, config: TrainingConfig, taxonomy: Taxonomy, data: TrainingData, *,
        progress: bool = True, on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.config = config
        self.taxonomy = taxonomy
        self.data = data
        self.progress = progress
        self.on_epoch = on_epoch
        self.device = resolve_device(config.device)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)

    # -- set-up ----------------------------------------------------------------------------
    def _depth(self, model: TriageModel) -> int:
        top = self.config.trainable_top_layers
        if top == "all":
            return 0
        return max(0, model.num_layers - int(top))

    def _freeze(self, model: TriageModel, depth: int) -> None:
        for p in model.encoder.parameters():
            p.requires_grad = False
        if self.config.trainable_top_layers == "all":
            for name, p in model.encoder.named_parameters():
                frozen_words = self.config.freeze_word_embeddings and "word_embeddings" in name
                p.requires_grad = not frozen_words
        else:
            for layer in list(model._layers())[depth:]:
                for p in layer.parameters():
                    p.requires_grad = True

    def _optimizer(self, model: TriageModel, steps: int) -> tuple[Any, Any]:
        head_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
        enc_params = [p for n, p in model.named_parameters() if n.startswith("encoder.") and p.requires_grad]
        groups = [{"params": head_params, "lr": self.config.head_learning_rate}]
        if enc_params:
            groups.append({"params": enc_params, "lr": self.config.learning_rate})
        opt = torch.optim.AdamW(groups, weight_decay=self.config.weight_decay)
        warmup = max(1, int(self.config.warmup_ratio * steps))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (steps - step) / max(1, steps - warmup))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)

    # -- losses ----------------------------------------------------------------------------
    def loss(self, logits: Any, split: SplitData, rows: list[int]) -> torch.Tensor:
        w = self.config.loss_weights
        dev = logits.category.device
        weight = torch.tensor(split.weights[rows], device=dev)
        cat = torch.tensor(split.category[rows], device=dev)
        flags = torch.tensor(split.flags[rows], device=dev)
        flag_mask = torch.tensor(split.flag_mask[rows], device=dev)
        depts = torch.tensor(split.departments[rows], device=dev)
        dept_mask = torch.tensor(split.department_mask[rows], device=dev)
        owner = torch.tensor(split.owner[rows], device=dev)
        total = torch.zeros((), device=dev)
        known = cat >= 0
        if known.any():
            ce = nn.functional.cross_entropy(
                logits.category.float()[known], cat[known], reduction="none", label_smoothing=0.05
            )
            total = total + w.get("category", 1.0) * (ce * weight[known]).sum() / weight[known].sum()
        total = total + w.get("flags", 1.0) * _masked_bce(
            logits.flags, flags, flag_mask, weight, self.config.flag_positive_weight
        )
        total = total + w.get("departments", 1.0) * _masked_bce(
            logits.departments, depts, dept_mask, weight
        )
        has_owner = owner >= 0
        if has_owner.any():
            ce = nn.functional.cross_entropy(
                logits.departments.float()[has_owner], owner[has_owner], reduction="none"
            )
            total = total + w.get("owner", 0.5) * (ce * weight[has_owner]).sum() / weight[has_owner].sum()
        return total

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> TrainingResult:
        cfg = self.config
        seed_everything(cfg.seed)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        model, tokenizer = build_model(cfg, self.taxonomy)
        model.to(self.device)
        timings["load_base_s"] = time.perf_counter() - t0
        depth = self._depth(model)
        self._freeze(model, depth)
        pad = int(tokenizer.pad_token_id or 0)
        train_ids = tokenize(self.data.train.records, tokenizer, model.spec)
        dev_ids = tokenize(self.data.dev.records, tokenizer, model.spec)
        self._features = {
            "train": self.split_features(self.data.train, model.spec),
            "dev": self.split_features(self.data.dev, model.spec),
        }
        cached = depth > 0
        t0 = time.perf_counter()
        if cached:
            train_inputs: list[Any] = cache_states(model, train_ids, depth, self.device, "encode train", pad, self.progress)
            dev_inputs: list[Any] = cache_states(model, dev_ids, depth, self.device, "encode dev", pad, self.progress)
        else:
            train_inputs, dev_inputs = train_ids, dev_ids
        timings["cache_s"] = time.perf_counter() - t0

        rng = random.Random(cfg.seed)
        per_epoch = math.ceil(len(train_ids) / cfg.batch_size)
        total_steps = cfg.max_steps or per_epoch * cfg.epochs
        opt, sched = self._optimizer(model, total_steps)
        autocast = _Autocast(self.device)
        history: list[dict[str, float]] = []
        best_score, best_state, best_epoch, stale, step = -1.0, None, 0, 0, 0
        t0 = time.perf_counter()
        lengths = [len(x) for x in train_ids]
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            batches = length_batches(lengths, cfg.batch_size, rng)
            bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                       disable=not self.progress, file=sys.stderr)
            running = 0.0
            for rows in bar:
                with autocast():
                    logits = self._forward(model, train_inputs, rows, depth, pad, cached, "train")
                    loss = self.loss(logits, self.data.train, rows)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
                opt.step()
                sched.step()
                step += 1
                running = 0.9 * running + 0.1 * float(loss.detach()) if step > 1 else float(loss.detach())
                bar.set_postfix(loss=f"{running:.3f}")
                if cfg.max_steps and step >= cfg.max_steps:
                    break
            bar.close()
            dev_logits = self.predict_logits(model, dev_inputs, depth, pad, cached, "dev")
            metrics = split_metrics(dev_logits, self.data.dev, self.taxonomy, model.spec)
            metrics["train_loss"] = running
            history.append({"epoch": float(epoch), **metrics})
            if self.on_epoch:
                self.on_epoch(epoch, metrics)
            if self.progress:
                print(
                    f"epoch {epoch}: dev macro-F1 {metrics['selection_score']:.3f} "
                    f"(category {metrics['category_macro_f1']:.3f}, flags {metrics['flags_macro_f1']:.3f}, "
                    f"owner top-1 {metrics['owner_top1']:.3f})",
                    file=sys.stderr,
                )
            if metrics["selection_score"] > best_score + 1e-6:
                best_score, best_epoch, stale = metrics["selection_score"], epoch, 0
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items() if not _frozen_key(model, k)})
            else:
                stale += 1
                if stale >= cfg.early_stopping_patience:
                    break
            if cfg.max_steps and step >= cfg.max_steps:
                break
        timings["train_s"] = time.perf_counter() - t0
        if best_state is not None:
            model.load_state_dict(best_state, strict=False)
        model.eval()
        dev_logits = self.predict_logits(model, dev_inputs, depth, pad, cached, "dev")
        ngram_report: dict[str, dict[str, float]] = {}
        if cfg.ngram_branch.enabled:
            t0 = time.perf_counter()
            from training.ngram_heads import fit_ngram_heads

            model.ngrams, ngram_report = fit_ngram_heads(
                self.data.train, self.data.dev,
                (dev_logits.category, dev_logits.flags, dev_logits.departments),
                model.spec, cfg.ngram_branch, progress=self.progress,
            )
            dev_logits = self._with_ngrams(model, self.data.dev, dev_logits)
            timings["ngram_s"] = time.perf_counter() - t0
        model.spec.calibration = calibrate(
            category_logits=dev_logits.category,
            category_labels=self.data.dev.category,
            flag_logits=dev_logits.flags,
            flag_targets=self.data.dev.flags,
            flag_mask=self.data.dev.flag_mask,
            department_logits=dev_logits.departments,
            department_targets=self.data.dev.departments,
            department_mask=self.data.dev.department_mask,
            flags=model.spec.flags,
            departments=model.spec.departments,
            fund_safety_recall_target=cfg.fund_safety_recall_target,
            fund_safety_recall_floor=cfg.fund_safety_recall_floor,
            fund_safety_precision_target=cfg.fund_safety_precision_target,
            review_accuracy_target=cfg.review_accuracy_target,
        )
        dev_metrics = split_metrics(dev_logits, self.data.dev, self.taxonomy, model.spec)
        test_metrics: dict[str, float] = {}
        if self.data.test is not None and len(self.data.test):
            t0 = time.perf_counter()
            test_ids = tokenize(self.data.test.records, tokenizer, model.spec)
            self._features["test"] = self.split_features(self.data.test, model.spec)
            test_logits = self._with_ngrams(
                model, self.data.test, self.predict_logits(model, test_ids, 0, pad, False, "test")
            )
            test_metrics = split_metrics(test_logits, self.data.test, self.taxonomy, model.spec)
            timings["test_s"] = time.perf_counter() - t0
        model.spec.training.update(
            {"best_epoch": best_epoch, "depth_cached": depth, "ngram_branch": ngram_report}
        )
        return TrainingResult(
            model, tokenizer, history, dev_metrics, test_metrics, timings, best_epoch, dev_logits
        )

    @staticmethod
    def _with_ngrams(model: TriageModel, split: SplitData, logits: SplitLogits) -> SplitLogits:
        """The encoder's logits blended with the n-gram branch, as serving computes them."""
        if model.ngrams is None:
            return logits
        texts = [normalize_text(r.text) for r in split.records]
        return SplitLogits(*model.ngrams.apply(texts, (logits.category, logits.flags, logits.departments)))

    def split_features(self, split: SplitData, spec: ModelSpec) -> np.ndarray:
        """Lexicon features from the same text pipeline that serving uses."""
        if not spec.feature_names:
            return np.zeros((len(split), 0), dtype=np.float32)
        from triage.text import TextPipeline

        if not hasattr(self, "_text"):
            self._text = TextPipeline()
        analyses = self._text.analyse_many([r.text for r in split.records])
        return lexicon_features(analyses, spec.feature_names)

    def _forward(
        self, model: TriageModel, inputs: list[Any], rows: list[int], depth: int, pad: int,
        cached: bool, split: str,
    ) -> Any:
        feats = self._features[split]
        features = torch.from_numpy(feats[rows]).to(self.device) if feats.shape[1] else None
        if cached:
            hidden, mask = _pad_states([inputs[i] for i in rows])
            return model.forward_from(hidden.to(self.device), mask.to(self.device), depth, features)
        ids, mask = _pad([inputs[i] for i in rows], pad)
        return model(ids.to(self.device), mask.to(self.device), features)

    def predict_logits(
        self, model: TriageModel, inputs: list[Any], depth: int, pad: int, cached: bool, split: str
    ) -> SplitLogits:
        model.eval()
        n = len(inputs)
        outs = [np.zeros((n, k), dtype=np.float32) for k in (len(model.spec.categories), len(model.spec.flags), len(model.spec.departments))]
        sizes = [len(x) for x in inputs]
        order = sorted(range(n), key=lambda i: sizes[i])
        autocast = _Autocast(self.device)
        with torch.inference_mode():
            for start in range(0, n, 32):
                rows = order[start : start + 32]
                with autocast():
                    logits = self._forward(model, inputs, rows, depth, pad, cached, split)
                for out, t in zip(outs, (logits.category, logits.flags, logits.departments), strict=True):
                    out[rows] = t.float().cpu().numpy()
        return SplitLogits(*outs)


def _frozen_key(model: TriageModel, key: str) -> bool:
    param = dict(model.named_parameters()).get(key)
    return param is not None and not param.requires_grad


def _masked_bce(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
    positive_weight: float = 1.0,
) -> torch.Tensor:
    if mask.sum() == 0:
        return torch.zeros((), device=logits.device)
    pos = torch.full((logits.shape[1],), positive_weight, device=logits.device)
    bce = nn.functional.binary_cross_entropy_with_logits(
        logits.float(), target, reduction="none", pos_weight=pos
    )
    per_row = (bce * mask).sum(1)
    rows = mask.sum(1) > 0
    return (per_row[rows] * weight[rows]).sum() / (mask.sum(1)[rows] * weight[rows]).sum()


def split_metrics(logits: SplitLogits, split: SplitData, taxonomy: Taxonomy, spec: ModelSpec) -> dict[str, float]:
    """Per-head quality on a split, from calibrated probabilities and thresholds."""
    probs = calibrated_probabilities(logits.category, logits.flags, logits.departments, spec.calibration)
    cats, flags, depts = spec.categories, spec.flags, spec.departments
    out: dict[str, float] = {}
    known = split.category >= 0
    gold = [cats[i] for i in split.category[known]]
    pred = [cats[i] for i in probs.category.argmax(1)[known]]
    out["category_macro_f1"] = macro_f1(gold, pred, cats)
    out["category_accuracy"] = float(np.mean([g == p for g, p in zip(gold, pred, strict=True)])) if gold else 0.0
    fk = split.flag_mask.max(1) > 0
    thresholds = np.array([spec.calibration.flag_thresholds.get(f, 0.5) for f in flags])
    raised = probs.flags >= thresholds
    gold_sets = [{flags[j] for j in np.where(split.flags[i] > 0)[0]} for i in np.where(fk)[0]]
    pred_sets = [{flags[j] for j in np.where(raised[i])[0]} for i in np.where(fk)[0]]
    prf = multilabel_prf(gold_sets, pred_sets, flags)
    present = [f for f in flags if prf[f]["support"] > 0]
    out["flags_macro_f1"] = float(np.mean([prf[f]["f1"] for f in present])) if present else 0.0
    for f in flags:
        out[f"{f}_recall"] = prf[f]["recall"]
        out[f"{f}_precision"] = prf[f]["precision"]
    levels_gold = [taxonomy.urgency_level(s) for s in gold_sets]
    levels_pred = [taxonomy.urgency_level(s) for s in pred_sets]
    out["urgency_level_accuracy"] = float(np.mean([a == b for a, b in zip(levels_gold, levels_pred, strict=True)])) if gold_sets else 0.0
    ok = split.owner >= 0
    owners = [depts[i] for i in split.owner[ok]]
    ranked = [[depts[j] for j in np.argsort(-probs.departments[i])] for i in np.where(ok)[0]]
    out["owner_top1"] = top_k_hit(owners, ranked, 1)
    out["owner_top2"] = top_k_hit(owners, ranked, 2)
    owner_pred = [r[0] for r in ranked]
    out["owner_macro_f1"] = macro_f1(owners, owner_pred, depts)
    out["selection_score"] = float(np.mean([out["category_macro_f1"], out["flags_macro_f1"], out["owner_macro_f1"]]))
    return out


def save_model(result: TrainingResult, folder: Path) -> Path:
    """Write the model folder (encoder, tokenizer, heads, spec) plus a sentence-transformers layout."""
    result.model.save(folder, result.tokenizer)
    export_sentence_transformer(folder / "encoder", prompts={"query": result.model.spec.query_prefix})
    return folder


def export_sentence_transformer(encoder_dir: Path, prompts: dict[str, str]) -> None:
    """Make the fine-tuned encoder loadable with ``SentenceTransformer(encoder_dir)`` (mean pooling)."""
    import json

    hidden = json.loads((encoder_dir / "config.json").read_text())["hidden_size"]
    (encoder_dir / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (encoder_dir / "1_Pooling").mkdir(exist_ok=True)
    (encoder_dir / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True}, indent=2))
    (encoder_dir / "2_Normalize").mkdir(exist_ok=True)
    (encoder_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256}))
    (encoder_dir / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {**prompts, "passage": "passage: "}, "default_prompt_name": "query",
         "similarity_fn_name": "cosine"}, indent=2))

"""Real-data benchmark: the project's training recipe vs TF-IDF + LR on a public data set.

    python -m evaluation.benchmark_real [--dataset heimao_fin6|cfpb_sample] [--max-train N]

The recipe is ``training.trainer.Trainer`` with the default training config, on a taxonomy
whose categories are the data set's own labels (flags and departments are the default ones,
unlabelled here, so their losses are masked). TF-IDF + LR is the baseline of
shared/datasets/BASELINES.md (C tuned on dev where there is a dev split, else C=10). Both are
scored on the same test rows, with a paired bootstrap of the macro-F1 difference.

The data are read from the shared datasets folder (``TRIAGE_SHARED_DATASETS_DIR``); nothing
is copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from triage import (
    ConfigError,
    InputError,
    LabelledRecord,
    Taxonomy,
    TriageError,
    get_settings,
    go_offline,
)
from triage._metrics import (
    accuracy,
    bootstrap_macro_f1_interval,
    macro_f1,
    paired_bootstrap_macro_f1_difference,
    per_class_prf,
)

DATASETS = ("heimao_fin6", "cfpb_sample")
DEFAULT_CONFIG = Path("training/configs/default.yaml")


@dataclass
class BenchmarkData:
    """A data set's splits as labelled records (category only) and its label set."""

    name: str
    labels: list[tuple[str, str]]  # (machine name, display name)
    train: list[LabelledRecord]
    dev: list[LabelledRecord]
    test: list[LabelledRecord]
    notes: str
    recipe_train: list[LabelledRecord] | None = None  # where the recipe fits on less than train


def _record(name: str, split: str, i: int, text: str, label: str, lang: str) -> LabelledRecord:
    return LabelledRecord(id=f"{name}-{split}-{i}", text=text, lang=lang, category=label,
                          known=frozenset({"category"}), source=name)


def load_heimao_fin6(folder: Path) -> BenchmarkData:
    """The published train/dev/test (CSV without a header: text,label_id)."""
    names: dict[str, tuple[str, str]] = {}
    with (folder / "labels.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            names[row["label_id"]] = (row["label_en"], row["label_zh"])
    splits: dict[str, list[LabelledRecord]] = {}
    for split in ("train", "dev", "test"):
        with (folder / f"{split}.csv").open(encoding="utf-8", newline="") as fh:
            rows = [r for r in csv.reader(fh) if len(r) == 2 and r[0].strip()]
        splits[split] = [
            _record("heimao_fin6", split, i, text, names[label][0], "zh")
            for i, (text, label) in enumerate(rows)
        ]
    labels = [names[k] for k in sorted(names, key=int)]
    return BenchmarkData("heimao_fin6", labels, splits["train"], splits["dev"], splits["test"],
                         "published train/dev/test splits")


def slug(text: str) -> str:
    out = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return out[:48].rstrip("_") if out and out[0].isalpha() else f"l_{out}"[:48]


def load_cfpb_sample(folder: Path, *, seed: int = 0) -> BenchmarkData:
    """Narrative rows only, products with >= 10 rows, stratified 80/20 (random_state 0) as in
    BASELINES.md; the recipe's dev split is a stratified 10% of that train part."""
    from sklearn.model_selection import train_test_split

    with (folder / "complaints_sample.csv").open(encoding="utf-8", newline="") as fh:
        rows = [
            (r["Consumer complaint narrative"], r["Product"]) for r in csv.DictReader(fh)
            if (r.get("Consumer complaint narrative") or "").strip()
        ]
    counts = Counter(p for _, p in rows)
    rows = [(t, p) for t, p in rows if counts[p] >= 10]
    texts, products = [t for t, _ in rows], [p for _, p in rows]
    tr_t, te_t, tr_p, te_p = train_test_split(texts, products, test_size=0.2, stratify=products,
                                              random_state=seed)
    fit_t, dev_t, fit_p, dev_p = train_test_split(tr_t, tr_p, test_size=0.1, stratify=tr_p,
                                                  random_state=seed)
    names = {p: slug(p) for p in sorted(set(products))}

    def make(split: str, ts: Sequence[str], ps: Sequence[str]) -> list[LabelledRecord]:
        return [_record("cfpb_sample", split, i, t, names[p], "en") for i, (t, p) in enumerate(zip(ts, ps, strict=True))]

    return BenchmarkData(
        "cfpb_sample", [(names[p], p) for p in sorted(names)], make("train", tr_t, tr_p),
        make("dev", dev_t, dev_p), make("test", te_t, te_p),
        "narrative rows, products >= 10 rows, stratified 80/20 random_state=0; "
        "recipe: 90% of train to fit, 10% as dev; TF-IDF+LR: all of train, C=10",
        recipe_train=make("fit", fit_t, fit_p),
    )


def dataset_taxonomy(labels: Sequence[tuple[str, str]]) -> Taxonomy:
    """The default taxonomy with the data set's labels as categories (flags, departments kept)."""
    from triage import load_taxonomy

    base = load_taxonomy().model_dump()
    base["categories"] = [{"name": name, "zh": shown, "en": shown} for name, shown in labels]
    return Taxonomy.model_validate(base)


# -- the two systems -----------------------------------------------------------------------------
def recipe_predictions(
    data: BenchmarkData, taxonomy: Taxonomy, *, config_path: Path, max_train: int | None,
    epochs: int | None, device: str, progress: bool, save_model_to: Path | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Fine-tune with the project's Trainer and predict the test rows through Triager."""
    from training.args import DataSource, load_training_config
    from training.data_mix import TrainingData, targets
    from training.trainer import Trainer
    from triage._inference import InferenceOptions, Triager
    from triage.text import normalize_text

    config = load_training_config(config_path)
    train = data.recipe_train or data.train
    if max_train and len(train) > max_train:
        rng = np.random.default_rng(0)
        train = [train[i] for i in sorted(rng.choice(len(train), max_train, replace=False))]
    config = config.model_copy(update={
        "name": f"benchmark-{data.name}",
        "sources": [DataSource(name=data.name, train=Path(f"{data.name}/train"), dev=Path(f"{data.name}/dev"))],
        "register": False,
        "device": device,
        **({"epochs": epochs} if epochs else {}),
    })
    split_data = TrainingData(
        train=targets(train, [1.0] * len(train), taxonomy),
        dev=targets(data.dev, [1.0] * len(data.dev), taxonomy),
        test=None,
    )
    start = time.perf_counter()
    result = Trainer(config, taxonomy, split_data, progress=progress).fit()
    train_s = time.perf_counter() - start
    if save_model_to is not None:
        from training.trainer import save_model

        save_model(result, save_model_to)
    triager = Triager(
        result.model, result.tokenizer, model_version=f"benchmark-{data.name}", taxonomy=taxonomy,
        options=InferenceOptions(batch_size=32, quantize="none", device=device, evidence_fallback="off"),
    )
    start = time.perf_counter()
    probs = triager.probabilities([normalize_text(r.text) for r in data.test])
    predict_s = time.perf_counter() - start
    cats = taxonomy.category_names
    info = {
        "train_records": len(train), "dev_records": len(data.dev), "best_epoch": result.best_epoch,
        "epochs": config.epochs, "train_s": round(train_s, 1), "predict_s": round(predict_s, 1),
        "timings": {k: round(v, 1) for k, v in result.timings.items()},
        "config": str(config_path), "device": str(triager.device),
    }
    return [cats[int(j)] for j in probs.category.argmax(axis=1)], info


def tfidf_predictions(data: BenchmarkData, taxonomy: Taxonomy) -> tuple[list[str], dict[str, Any]]:
    """BASELINES.md's TF-IDF + LR: C tuned on dev by macro-F1 where a published dev split exists."""
    from evaluation.baselines import DEFAULT_C, TfidfLogisticRegression, tune_c

    start = time.perf_counter()
    tuned = data.name == "heimao_fin6"
    c, grid = tune_c(taxonomy, data.train, data.dev) if tuned else (DEFAULT_C, {})
    model = TfidfLogisticRegression(taxonomy, C=c)
    # Only the category head is scored here; fit it alone (the other heads have no labels).
    model.fit(data.train)
    scores = model.category_scores([r.text for r in data.test])
    cats = taxonomy.category_names
    info = {"C": c, "dev_macro_f1_by_C": {str(k): round(v, 4) for k, v in grid.items()},
            "seconds": round(time.perf_counter() - start, 1), "train_records": len(data.train)}
    return [cats[int(j)] for j in scores.argmax(axis=1)], info


# -- scoring and printing -------------------------------------------------------------------------
def score(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str], seed: int) -> dict[str, Any]:
    low, high = bootstrap_macro_f1_interval(gold, pred, labels, resamples=1000, seed=seed)
    table = per_class_prf(gold, pred, labels)
    return {
        "accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred, labels),
        "macro_f1_ci": [low, high],
        "per_class_f1": {k: round(v["f1"], 4) for k, v in table.items()},
    }


def run_benchmark(
    dataset: str, *, datasets_dir: Path, config_path: Path = DEFAULT_CONFIG,
    max_train: int | None = None, epochs: int | None = None, device: str = "auto",
    progress: bool = True, seed: int = 0, save_model_to: Path | None = None,
) -> dict[str, Any]:
    folder = datasets_dir / dataset
    if not folder.is_dir():
        raise ConfigError(f"{folder}: data set folder not found (set TRIAGE_SHARED_DATASETS_DIR)")
    data = load_heimao_fin6(folder) if dataset == "heimao_fin6" else load_cfpb_sample(folder, seed=seed)
    taxonomy = dataset_taxonomy(data.labels)
    labels = taxonomy.category_names
    gold = [str(r.category) for r in data.test]
    if progress:
        print(f"{dataset}: {len(data.train)} train / {len(data.dev)} dev / {len(data.test)} test; "
              "TF-IDF + LR first ...", file=sys.stderr)
    tfidf, tfidf_info = tfidf_predictions(data, taxonomy)
    if progress:
        print("the project's recipe ...", file=sys.stderr)
    recipe, recipe_info = recipe_predictions(
        data, taxonomy, config_path=config_path, max_train=max_train, epochs=epochs, device=device,
        progress=progress, save_model_to=save_model_to,
    )
    diff, low, high = paired_bootstrap_macro_f1_difference(
        gold, recipe, tfidf, labels, resamples=1000, seed=seed
    )
    return {
        "dataset": dataset,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {_cpu_count()} CPU cores, device {recipe_info['device']}",
        "split": data.notes,
        "test_records": len(gold),
        "capped": bool(max_train),
        "recipe": {**score(gold, recipe, labels, seed), **recipe_info},
        "tfidf_lr": {**score(gold, tfidf, labels, seed), **tfidf_info},
        "difference": {"recipe_minus_tfidf_macro_f1": diff, "paired_ci": [low, high]},
    }


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def markdown(result: dict[str, Any]) -> str:
    r, t, d = result["recipe"], result["tfidf_lr"], result["difference"]
    lines = [
        f"### {result['dataset']} (test, {result['test_records']} rows; {result['date']}; {result['machine']})",
        "",
        "| system | accuracy | macro-F1 | macro-F1 95% CI |",
        "|---|---|---|---|",
        f"| project recipe (train {r['train_records']}, best epoch {r['best_epoch']}/{r['epochs']}) | "
        f"{r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['macro_f1_ci'][0]:.3f}-{r['macro_f1_ci'][1]:.3f} |",
        f"| TF-IDF + LR (C={t['C']}) | {t['accuracy']:.4f} | {t['macro_f1']:.4f} | "
        f"{t['macro_f1_ci'][0]:.3f}-{t['macro_f1_ci'][1]:.3f} |",
        "",
        f"Recipe minus TF-IDF+LR macro-F1: {d['recipe_minus_tfidf_macro_f1']:+.4f}, paired bootstrap "
        f"95% CI [{d['paired_ci'][0]:+.3f}, {d['paired_ci'][1]:+.3f}] (1,000 resamples, seed 0).",
        "",
        "| label | recipe F1 | TF-IDF+LR F1 |",
        "|---|---|---|",
        *[f"| {k} | {v:.4f} | {t['per_class_f1'][k]:.4f} |" for k, v in r["per_class_f1"].items()],
    ]
    if result["capped"]:
        lines += ["", f"Capped run: the recipe was trained on {r['train_records']} records only."]
    return "\n".join(lines)


def check_model_destination(folder: Path) -> None:
    """Refuse a --save-model target before training (minutes to hours), not after it."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--save-model {folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise InputError(f"--save-model {folder}: folder is not empty (nothing is overwritten)")


def main(argv: Sequence[str] | None = None) -> None:
    go_offline()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dataset", choices=DATASETS, default="heimao_fin6")
    parser.add_argument("--datasets-dir", type=Path, default=None,
                        help="Folder holding the shared data sets (default: the settings').")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="Training config whose knobs the recipe uses (its sources are replaced).")
    parser.add_argument("--max-train", type=int, default=None, help="Cap the recipe's training rows.")
    parser.add_argument("--epochs", type=int, default=None, help="Override the config's epochs.")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="Also write the result as JSON.")
    parser.add_argument("--save-model", type=Path, default=None,
                        help="Keep the recipe's trained model in this folder (to read its errors later).")
    args = parser.parse_args(argv)
    try:
        if args.save_model is not None:
            check_model_destination(args.save_model)
        result = run_benchmark(
            args.dataset, datasets_dir=args.datasets_dir or get_settings().shared_datasets_dir,
            config_path=args.config, max_train=args.max_train, epochs=args.epochs, device=args.device,
            save_model_to=args.save_model,
        )
    except TriageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    print(markdown(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()

"""The multi-task model, masked losses, calibration and a tracked run into a temporary registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.args import DataSource, TrainingConfig, load_training_config
from training.calibration import recall_threshold, review_cut
from training.data_mix import load_training_data, targets
from training.trainer import Trainer
from triage import ConfigError, LabelledRecord, load_taxonomy


def tiny_config(base: Path, data: dict[str, Path], **overrides: object) -> TrainingConfig:
    values: dict[str, object] = {
        "base_model": str(base),
        "sources": [DataSource(name="tiny", train=data["train"], dev=data["dev"], test=data["test"])],
        "max_length": 64, "trainable_top_layers": 1, "epochs": 2, "batch_size": 4, "seed": 3,
    }
    values.update(overrides)
    return TrainingConfig.model_validate(values)


def test_unknown_fields_are_masked_not_negative() -> None:
    tax = load_taxonomy()
    records = [
        LabelledRecord(id="a", text="x", category="service_attitude", known=frozenset({"category"})),
        LabelledRecord(id="b", text="y", urgency_flags=("fund_safety",), known=frozenset({"urgency_flags"})),
    ]
    split = targets(records, [1.0, 1.0], tax)
    assert split.category.tolist() == [0, -1]
    assert split.flag_mask[0].sum() == 0 and split.flag_mask[1].sum() == len(tax.flag_names)
    assert split.flags[1, tax.flag_names.index("fund_safety")] == 1
    assert split.department_mask.sum() == 0 and split.owner.tolist() == [-1, -1]


def test_masked_loss_ignores_unknown_fields(tiny_base: Path, tiny_data: dict[str, Path]) -> None:
    tax = load_taxonomy()
    cfg = tiny_config(tiny_base, tiny_data)
    trainer = Trainer(cfg, tax, load_training_data(cfg, tax), progress=False)
    records = [LabelledRecord(id="a", text="x", category="service_attitude", known=frozenset({"category"}))]
    split = targets(records, [1.0], tax)

    class Logits:
        category = torch.zeros(1, 3)
        flags = torch.full((1, 4), 5.0)  # confidently "raised": would cost a lot if unknown counted as negative
        departments = torch.full((1, 6), 5.0)

    loss = trainer.loss(Logits(), split, [0])
    expected = torch.nn.functional.cross_entropy(torch.zeros(1, 3), torch.tensor([0]), label_smoothing=0.05)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_training_is_deterministic_and_calibrated(tiny_base: Path, tiny_data: dict[str, Path]) -> None:
    tax = load_taxonomy()
    cfg = tiny_config(tiny_base, tiny_data)
    data = load_training_data(cfg, tax)
    first = Trainer(cfg, tax, data, progress=False).fit()
    second = Trainer(cfg, tax, data, progress=False).fit()
    assert first.dev_metrics == second.dev_metrics
    cal = first.model.spec.calibration
    assert set(cal.flag_thresholds) == set(tax.flag_names)
    assert cal.category_temperature > 0
    assert "category_macro_f1" in first.test_metrics


def test_ngram_branch_is_saved_and_served_as_trained(
    tiny_base: Path, tiny_data: dict[str, Path], tmp_path: Path
) -> None:
    from training.trainer import save_model
    from triage._inference import Triager
    from triage.text import normalize_text

    tax = load_taxonomy()
    cfg = tiny_config(tiny_base, tiny_data)
    data = load_training_data(cfg, tax)
    result = Trainer(cfg, tax, data, progress=False).fit()
    ngrams = result.model.ngrams
    assert ngrams is not None and len(ngrams.vocabulary) > 0
    assert set(result.model.spec.training["ngram_branch"]) == {"category", "flags", "departments"}
    assert all(a >= 0 and b >= 0 for a, b in ngrams.blend.values())
    save_model(result, tmp_path / "model")
    triager = Triager.from_folder(tmp_path / "model")
    assert triager.ngrams is not None and triager.ngrams.blend == ngrams.blend
    texts = [normalize_text(r.text) for r in data.dev.records]
    assert result.dev_logits is not None
    served = triager.logits(texts)
    # training saw the frozen layers through a bf16 cache: equal up to that rounding
    np.testing.assert_allclose(served[0], result.dev_logits.category, atol=2e-3)
    np.testing.assert_allclose(served[1], result.dev_logits.flags, atol=2e-3)

    off = Trainer(cfg.model_copy(update={"ngram_branch": cfg.ngram_branch.model_copy(update={"enabled": False})}),
                  tax, data, progress=False).fit()
    assert off.model.ngrams is None


def test_ngram_branch_skips_heads_without_known_labels() -> None:
    from training.args import NgramConfig
    from training.ngram_heads import fit_ngram_heads
    from triage._modeling import ModelSpec

    tax = load_taxonomy()
    texts = ["信用卡被盗刷了", "客服态度很差", "合同条款没有履行", "卡被盗刷，钱没了", "态度恶劣挂电话", "说好的利率不兑现"] * 3
    cats = ["product_quality", "service_attitude", "contract_performance"] * 6
    records = [LabelledRecord(id=str(i), text=t, category=c, known=frozenset({"category"}))
               for i, (t, c) in enumerate(zip(texts, cats, strict=True))]
    split = targets(records, [1.0] * len(records), tax)
    spec = ModelSpec(categories=tax.category_names, flags=tax.flag_names, departments=tax.department_names)
    encoder = (np.zeros((len(records), 3), np.float32), np.zeros((len(records), 4), np.float32),
               np.zeros((len(records), 6), np.float32))
    heads, report = fit_ngram_heads(split, split, encoder, spec, NgramConfig(min_df=1), progress=False)
    assert heads.blend["flags"] == (1.0, 0.0) and heads.blend["departments"] == (1.0, 0.0)
    assert not heads.weights[:, 3:].any()  # no flag or department was ever known: nothing learnt
    assert heads.blend["category"][1] > 0 and report["category"]["dev_blend"] == 1.0


def test_full_fine_tune_mode_runs(tiny_base: Path, tiny_data: dict[str, Path]) -> None:
    tax = load_taxonomy()
    cfg = tiny_config(tiny_base, tiny_data, trainable_top_layers="all", epochs=1)
    result = Trainer(cfg, tax, load_training_data(cfg, tax), progress=False).fit()
    assert result.model.spec.training["depth_cached"] == 0


def test_recall_threshold_keeps_recall() -> None:
    scores = np.array([0.9, 0.2, 0.35, 0.6, 0.05])
    positive = np.array([1, 0, 1, 1, 0])
    t = recall_threshold(scores, positive, 0.98)
    assert ((scores >= t) & (positive == 1)).sum() == 3


def test_recall_threshold_holds_the_floor_when_the_target_floods_the_queue() -> None:
    # 20 positives, one of them scored like the negatives: catching it (recall 1.0) would raise
    # all 15 negatives too; the 0.95 floor lets that one go and keeps precision at 1.0.
    positives = np.r_[0.02, np.linspace(0.6, 0.99, 19)]
    scores = np.r_[positives, np.full(15, 0.05)]
    positive = np.r_[np.ones(20), np.zeros(15)]
    assert recall_threshold(scores, positive, 0.98) == pytest.approx(0.02)
    t = recall_threshold(scores, positive, 0.98, recall_floor=0.95, precision_target=0.85)
    assert t == pytest.approx(0.5)  # thresholds are capped at 0.5
    assert ((scores >= t) & (positive == 1)).sum() == 19
    assert ((scores >= t) & (positive == 0)).sum() == 0


def test_recall_threshold_takes_the_most_recall_that_holds_the_precision_target() -> None:
    # 40 positives: the target (catch all 40) costs precision 0.63; the floor alone would stop
    # at 38 of 40; 39 of 40 still holds precision 0.93, so recall comes first and that is taken.
    positives = np.r_[0.01, 0.1, 0.2, np.linspace(0.6, 0.99, 37)]
    scores = np.r_[positives, np.full(20, 0.05), np.full(3, 0.15)]
    positive = np.r_[np.ones(40), np.zeros(23)]
    t = recall_threshold(scores, positive, 0.98, recall_floor=0.95, precision_target=0.85)
    assert t == pytest.approx(0.1)
    assert ((scores >= t) & (positive == 1)).sum() == 39


def test_recall_threshold_keeps_the_target_when_precision_is_good() -> None:
    scores = np.r_[np.linspace(0.3, 0.99, 20), np.full(30, 0.1)]
    positive = np.r_[np.ones(20), np.zeros(30)]
    t = recall_threshold(scores, positive, 0.98, recall_floor=0.95, precision_target=0.85)
    assert t == pytest.approx(0.3)


def test_review_cut_reaches_accuracy_target() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.6, 0.5])
    correct = np.array([1, 1, 1, 0, 1])
    assert review_cut(conf, correct, 0.95) == pytest.approx(0.9)


def test_config_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [{name: x}]\n")
    with pytest.raises(ConfigError, match="train split"):
        load_training_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_training_config(tmp_path / "missing.yaml")


def test_tracked_run_registers_champion_then_challenger(
    tiny_base: Path, tiny_data: dict[str, Path], isolated_state: Path
) -> None:
    from training.tracking import train_tracked
    from triage._registry import resolve_model

    cfg = tiny_config(tiny_base, tiny_data, epochs=1, max_steps=2)
    first = train_tracked(cfg, progress=False)
    assert (first.version, first.alias) == ("1", "champion")
    second = train_tracked(cfg, progress=False)
    assert (second.version, second.alias) == ("2", "challenger")
    champion = resolve_model("champion")
    assert champion.model_version == "complaint-triage/1"
    assert (champion.folder / "triage_model.json").is_file()
    challenger = resolve_model("models:/complaint-triage@challenger")
    assert challenger.version == "2"

    import mlflow

    run = mlflow.get_run(first.run_id)
    assert "final_dev_category_macro_f1" in run.data.metrics
    assert any(k.startswith("data.tiny.") for k in run.data.tags)


def test_first_run_trains_the_configured_recipe_once(
    tiny_base: Path, tiny_data: dict[str, Path], isolated_state: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import yaml

    from training.bootstrap import ensure_champion
    from triage import get_settings

    recipe = isolated_state.parent / "first-run.yaml"
    cfg = tiny_config(tiny_base, tiny_data, epochs=1, max_steps=2, name="first-run")
    recipe.write_text(yaml.safe_dump(cfg.model_dump(mode="json")), encoding="utf-8")
    monkeypatch.setenv("TRIAGE_FIRST_RUN_CONFIG", str(recipe))
    get_settings.cache_clear()
    assert ensure_champion() == "1"
    assert str(recipe) in capsys.readouterr().err
    assert ensure_champion() == "1"  # a champion exists: reused, nothing trained
    assert "reusing it" in capsys.readouterr().err


def test_lexicon_evidence_is_capped_on_repetitive_text(tiny_base: Path, tiny_data: dict[str, Path]) -> None:
    """A complaint repeating one phrase 3,000 times quotes its first hits, not 3,000 spans."""
    from training.trainer import build_model
    from triage._inference import MAX_EVIDENCE_SPANS, Triager

    tax = load_taxonomy()
    model, tokenizer = build_model(tiny_config(tiny_base, tiny_data), tax)
    triager = Triager(model, tokenizer, model_version="tiny")
    analysis = triager.text.analyse_many(["卡被盗刷了，" * 3000])[0]
    assert len(analysis.lexicon_evidence["fund_safety"]) > MAX_EVIDENCE_SPANS
    spans = triager._evidence("fund_safety", analysis)
    assert [s.start for s in spans] == [h.start for h in analysis.lexicon_evidence["fund_safety"]][:MAX_EVIDENCE_SPANS]
    assert all(s.text == "被盗刷" for s in spans)

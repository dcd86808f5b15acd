"""Evaluation: metric arithmetic against hand-computed cases, bootstrap sanity, baselines, the
report page, and the promotion gate on tiny models in a temporary registry."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from evaluation.metrics_report import EvaluationOptions, evaluate_set, head_summary, per_class_table
from evaluation.predictions import PredictionSet
from tests.conftest import tiny_records, write_jsonl
from triage import InputError, LabelledRecord, Taxonomy, load_taxonomy
from triage._metrics import (
    average_precision,
    bootstrap_macro_f1_interval,
    coverage_curve,
    expected_calibration_error,
    label_codes,
    macro_f1,
    paired_bootstrap_macro_f1_difference,
    precision_at_recall,
    reliability_bins,
)
from triage._settings import get_settings

ALL = frozenset({"category", "urgency_flags", "departments"})


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def record(i: int, category: str | None, flags: Sequence[str] = (), depts: Sequence[str] = (),
           known: frozenset[str] = ALL, text: str = "text", lang: str = "en") -> LabelledRecord:
    return LabelledRecord(id=f"r{i}", text=text, lang=lang, category=category,
                          urgency_flags=tuple(flags), departments=tuple(depts), known=known,
                          source="hand")


def crafted(taxonomy: Taxonomy, categories: Sequence[str], confidence: Sequence[float],
            raised: Sequence[Sequence[str]] = (), suggestions: Sequence[Sequence[str]] = (),
            needs_review: Sequence[bool] | None = None, fund_scores: Sequence[float] | None = None,
            texts: Sequence[str] = (), system: str = "crafted") -> PredictionSet:
    """A PredictionSet whose delivered category has the given confidence (rest spread evenly)."""
    cats, flags = taxonomy.category_names, taxonomy.flag_names
    n = len(categories)
    scores = np.zeros((n, len(cats)))
    for i, (c, p) in enumerate(zip(categories, confidence, strict=True)):
        scores[i, :] = (1 - p) / (len(cats) - 1)
        scores[i, cats.index(c)] = p
    raised = list(raised) or [[] for _ in range(n)]
    flag_matrix = np.asarray([[f in r for f in flags] for r in raised], dtype=bool)
    flag_scores = flag_matrix.astype(float) * 0.9 + 0.05
    if fund_scores is not None:
        flag_scores[:, flags.index("fund_safety")] = fund_scores
    return PredictionSet(
        system=system, categories=list(cats), flags=list(flags), category=list(categories),
        category_scores=scores, flag_scores=flag_scores, raised=flag_matrix,
        flag_thresholds=dict.fromkeys(flags, 0.5),
        urgency_level=[taxonomy.urgency_level(r) for r in raised],
        suggestions=[list(s) for s in suggestions] or [["business"] for _ in range(n)],
        needs_review=None if needs_review is None else np.asarray(needs_review, dtype=bool),
        display_text=list(texts),
    )


# -- metric arithmetic -----------------------------------------------------------------------------
def test_per_class_table_marks_a_class_without_support() -> None:
    gold = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "c"]
    table = per_class_table(gold, pred, ["a", "b", "c", "d"])
    assert table["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 1 * 2, "predicted": 1}
    assert table["b"]["precision"] == 0.5 and table["b"]["recall"] == 0.5
    # c: predicted once, never in gold: precision 0, recall undefined, F1 0 (counts in macro-F1).
    assert table["c"] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0, "predicted": 1}
    # d: neither in gold nor predicted: nothing is defined, and macro-F1 skips it.
    assert table["d"] == {"precision": None, "recall": None, "f1": None, "support": 0, "predicted": 0}
    assert macro_f1(gold, pred, ["a", "b", "c", "d"]) == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)


def test_expected_calibration_error_and_bins_by_hand() -> None:
    confidence = [0.9, 0.9, 0.6, 0.6]
    correct = [True, False, True, True]
    # bin (0.8, 0.9]: accuracy 0.5 vs confidence 0.9; bin (0.5, 0.6]: accuracy 1.0 vs 0.6.
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    bins = {round(b["high"], 1): b for b in reliability_bins(confidence, correct) if b["count"]}
    assert bins[0.9]["accuracy"] == 0.5 and bins[0.6]["accuracy"] == 1.0


def test_coverage_curve_keeps_ties_together() -> None:
    thresholds, share, acc = coverage_curve([0.9, 0.8, 0.8, 0.1], [True, False, True, True])
    assert thresholds.tolist() == [0.9, 0.8, 0.1]
    assert share.tolist() == [0.25, 0.75, 1.0]
    assert acc.tolist() == pytest.approx([1.0, 2 / 3, 0.75])


def test_average_precision_matches_sklearn() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(4)
    scores, positive = rng.random(80), rng.random(80) < 0.3
    assert average_precision(scores, positive) == pytest.approx(average_precision_score(positive, scores))
    assert np.isnan(average_precision(scores, np.zeros(80, dtype=bool)))


def test_precision_at_recall_is_the_best_threshold_holding_recall() -> None:
    # ranked: P N P N N P -> recall 2/3 at precision 2/3, recall 1 at precision 1/2
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    positive = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    assert precision_at_recall(scores, positive, 0.3) == pytest.approx(1.0)
    assert precision_at_recall(scores, positive, 0.6) == pytest.approx(2 / 3)
    assert precision_at_recall(scores, positive, 0.95) == pytest.approx(0.5)
    assert np.isnan(precision_at_recall(scores, np.zeros(6, dtype=bool), 0.95))


def test_heads_by_hand_with_unknown_fields_left_out(taxonomy: Taxonomy) -> None:
    records = [
        record(0, "service_attitude", [], ["customer_service"]),
        record(1, "product_quality", ["fund_safety"], ["risk_control", "business"]),
        record(2, "contract_performance", ["transaction_risk"], ["business"]),
        record(3, "contract_performance", ["fund_safety"], ["business", "compliance"]),
        # category unknown: its (wrong) category must not count; flags and owner still do.
        record(4, None, ["fund_safety"], ["risk_control"], known=frozenset({"urgency_flags", "departments"})),
        # only the category is known: no flag or owner metric may use it.
        record(5, "service_attitude", known=frozenset({"category"})),
    ]
    preds = crafted(
        taxonomy,
        ["service_attitude", "product_quality", "product_quality", "contract_performance",
         "service_attitude", "service_attitude"],
        [0.9, 0.8, 0.7, 0.6, 0.99, 0.5],
        raised=[[], ["fund_safety"], [], [], ["fund_safety"], ["fund_safety"]],
        suggestions=[["customer_service"], ["business", "risk_control"], ["business"],
                     ["compliance", "business"], ["risk_control"], ["legal"]],
        needs_review=[False, False, True, True, False, False],
    )
    m = head_summary(records, preds, taxonomy)
    assert m["counts"]["category"] == {"evaluated": 5, "left_out_unknown": 1}
    assert m["counts"]["urgency_flags"] == {"evaluated": 5, "left_out_unknown": 1}
    assert m["counts"]["departments"] == {"evaluated": 5, "left_out_unknown": 1}
    # category: rows 0,1,2,3,5 -> right, right, wrong, right, right.
    assert m["category"]["accuracy"] == pytest.approx(4 / 5)
    per = m["category"]["per_class"]
    assert per["product_quality"]["precision"] == 0.5 and per["product_quality"]["recall"] == 1.0
    assert per["contract_performance"]["recall"] == 0.5 and per["contract_performance"]["precision"] == 1.0
    expected_f1 = np.mean([1.0, 2 * 0.5 * 1.0 / 1.5, 2 * 1.0 * 0.5 / 1.5])
    assert m["category"]["macro_f1"] == pytest.approx(expected_f1)
    # flags: rows 0-4; fund_safety gold in rows 1,3,4, raised in 1,4 (row 5's raise is not counted).
    fund = m["flags"]["per_flag"]["fund_safety"]
    assert (fund["support"], fund["predicted"]) == (3, 2)
    assert fund["precision"] == 1.0 and m["flags"]["fund_safety_recall"] == pytest.approx(2 / 3)
    assert m["flags"]["per_flag"]["privacy_breach"]["recall"] is None  # no support
    assert m["flags"]["per_flag"]["transaction_risk"]["recall"] == 0.0
    # urgency: gold levels normal, critical, high, critical, critical; delivered normal, critical,
    # normal, normal, critical.
    assert m["urgency"]["level_accuracy"] == pytest.approx(3 / 5)
    # owner: gold customer_service, risk_control, business, business, risk_control.
    assert m["owner"]["top1"] == pytest.approx(3 / 5)
    assert m["owner"]["top2"] == pytest.approx(5 / 5)
    # review: category rows 0,1,2,3,5 with needs_review F,F,T,T,F -> 3 auto-accepted, all right.
    assert m["review"]["auto_accepted_share"] == pytest.approx(3 / 5)
    assert m["review"]["auto_accepted_accuracy"] == 1.0
    assert m["review"]["review_accuracy"] == 0.5
    conf = [0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [True, True, False, True, True]
    assert m["calibration"]["ece"] == pytest.approx(expected_calibration_error(conf, correct))


def test_evaluate_set_slices_and_worst_errors(taxonomy: Taxonomy) -> None:
    records = [
        record(0, "service_attitude", text="短", lang="zh"),
        record(1, "product_quality", ["fund_safety"], ["risk_control"], text="x" * 200),
        record(2, "contract_performance", ["fund_safety"], ["business"], text="y" * 60),
    ]
    preds = crafted(taxonomy, ["service_attitude", "contract_performance", "product_quality"],
                    [0.6, 0.95, 0.7], raised=[[], [], ["fund_safety"]], fund_scores=[0.1, 0.2, 0.9],
                    texts=["a", "b", "c"])
    m = evaluate_set(records, preds, taxonomy, EvaluationOptions(resamples=50))
    assert set(m["slices"]) == {"language", "source", "length"}  # no channel anywhere
    assert m["slices"]["language"]["zh"]["records"] == 1
    assert list(m["slices"]["length"]) == ["<50 chars", "50-149 chars", "150-399 chars"]
    worst = m["worst_errors"]
    assert [e["id"] for e in worst["category"]] == ["r1", "r2"]  # most confident first
    assert worst["category"][0]["text"] == "b"  # the system's (redacted) text
    assert [e["id"] for e in worst["fund_safety_missed"]] == ["r1"]


# -- bootstrap -------------------------------------------------------------------------------------
def test_bootstrap_interval_sanity() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    gold = list(rng.choice(labels, 300))
    pred = [g if rng.random() < 0.7 else str(rng.choice(labels)) for g in gold]
    point = macro_f1(gold, pred, labels)
    low, high = bootstrap_macro_f1_interval(gold, pred, labels, resamples=500, seed=1)
    assert low < point < high and high - low < 0.2
    assert (low, high) == bootstrap_macro_f1_interval(gold, pred, labels, resamples=500, seed=1)
    small = bootstrap_macro_f1_interval(gold[:40], pred[:40], labels, resamples=500, seed=1)
    assert small[1] - small[0] > high - low  # fewer rows, wider interval
    assert bootstrap_macro_f1_interval(gold, gold, labels, resamples=100) == (1.0, 1.0)
    assert paired_bootstrap_macro_f1_difference(gold, pred, pred, labels, resamples=100) == (0.0, 0.0, 0.0)
    diff, d_low, d_high = paired_bootstrap_macro_f1_difference(gold, gold, pred, labels, resamples=500)
    assert diff == pytest.approx(1.0 - point) and 0 < d_low <= diff <= d_high


def test_vectorised_macro_f1_equals_the_plain_one() -> None:
    from triage._metrics import _macro_f1_over_labels

    rng = np.random.default_rng(2)
    labels = ["a", "b", "c", "d"]
    for _ in range(20):
        gold = list(rng.choice(labels[:3], 30))
        pred = [*rng.choice(labels, 29), "zzz"]  # a value outside the label set
        codes = _macro_f1_over_labels(label_codes(gold, labels), label_codes(pred, labels), 5, 4)
        assert codes[0] == pytest.approx(macro_f1(gold, pred, labels))


# -- baselines -------------------------------------------------------------------------------------
def test_baselines_train_and_answer_in_the_model_shape(taxonomy: Taxonomy) -> None:
    from evaluation.baselines import KeywordRules, TfidfLogisticRegression, is_chinese

    records = [LabelledRecord.from_json(r) for r in tiny_records()]
    for baseline in (KeywordRules(taxonomy).fit(records), TfidfLogisticRegression(taxonomy).fit(records)):
        preds = baseline.predict(records)
        assert len(preds) == len(records)
        assert set(preds.category) <= set(taxonomy.category_names)
        assert np.allclose(preds.category_scores.sum(axis=1), 1.0)
        assert all(1 <= len(s) <= 3 for s in preds.suggestions)
        m = evaluate_set(records, preds, taxonomy, EvaluationOptions(resamples=20))
        assert m["category"]["accuracy"] > 0.5  # training data: both should mostly fit it
    rules = KeywordRules(taxonomy).fit(records)
    fund = rules.predict([record(0, None, text="我的卡被盗刷了")]).raised[0, 0]
    assert fund and is_chinese("我的卡被盗刷了") and not is_chinese("my card was stolen")


# -- the report ------------------------------------------------------------------------------------
def test_report_is_written_and_escapes_complaint_text(tmp_path: Path, taxonomy: Taxonomy) -> None:
    from evaluation.report import EvaluationResult, comparison_table, write_report

    evil = "<script>alert('x')</script> 卡被盗刷"
    records = [
        record(0, "service_attitude", [], ["customer_service"], text=evil),
        record(1, "product_quality", ["fund_safety"], ["risk_control"]),
        record(2, "contract_performance", [], ["business"]),
    ]
    preds = crafted(taxonomy, ["product_quality", "product_quality", "contract_performance"],
                    [0.97, 0.8, 0.7], raised=[[], ["fund_safety"], []],
                    needs_review=[False, False, True], texts=[evil, "b", "c"], system="model/1")
    options = EvaluationOptions(resamples=50)
    base = crafted(taxonomy, ["service_attitude"] * 3, [0.5] * 3, system="tfidf_lr")
    result = EvaluationResult(
        data_path="test.jsonl", data_digest="abc", records=records, model=preds,
        metrics=evaluate_set(records, preds, taxonomy, options),
        baselines=[(base, evaluate_set(records, base, taxonomy, options))],
        model_info={"model_version": "model/1"},
    )
    page = write_report(result, tmp_path / "report")
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html and "卡被盗刷" in html
    for png in ("confusion_matrix.png", "reliability_diagram.png", "pr_curves.png", "coverage_curve.png"):
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"
        assert f'src="{png}"' in html
    doc = json.loads((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))
    assert doc["model"]["counts"]["records"] == 3 and "tfidf_lr" in doc["baselines"]
    assert (tmp_path / "report" / "worst_errors.jsonl").read_text(encoding="utf-8").count("\n") == 1
    table = comparison_table(result)
    assert table.splitlines()[0].startswith("system") and "tfidf_lr" in table


# -- the gate, on answers ----------------------------------------------------------------------
def gate_records() -> list[LabelledRecord]:
    cats = ["service_attitude", "product_quality", "contract_performance"]
    return [
        record(i, cats[i % 3], ["fund_safety"] if i % 4 == 0 else [], ["business"])
        for i in range(60)
    ]


def good_answers(taxonomy: Taxonomy, records: Sequence[LabelledRecord], system: str = "good") -> PredictionSet:
    cats = [str(r.category) for r in records]
    cats[5] = "service_attitude" if cats[5] != "service_attitude" else "product_quality"
    return crafted(taxonomy, cats, [0.9] * len(records),
                   raised=[list(r.urgency_flags) for r in records], system=system)


def test_gate_outcomes_on_answers(taxonomy: Taxonomy) -> None:
    from evaluation.gate import FORCED, PROMOTED, REFUSED, decide, gate_check

    records = gate_records()
    champion = good_answers(taxonomy, records)
    same = gate_check(records, good_answers(taxonomy, records), champion, taxonomy)
    assert same.passed and decide(same, force=False) == PROMOTED
    worse_cats = ["service_attitude"] * len(records)  # collapses to one class
    worse = crafted(taxonomy, worse_cats, [0.34] * len(records),
                    raised=[list(r.urgency_flags) for r in records])
    refused = gate_check(records, worse, champion, taxonomy)
    assert refused.failed == ["category_macro_f1"]
    f1 = refused.criteria[0]
    assert f1.extra["ci_high"] < 0 and "worse beyond noise" in f1.detail
    assert decide(refused, force=False) == REFUSED and decide(refused, force=True) == FORCED
    missing_fund = good_answers(taxonomy, records)
    missing_fund.raised[0, 0] = False
    assert gate_check(records, missing_fund, champion, taxonomy).failed == ["fund_safety_recall"]
    # Same labels, but a confidence of 0.5 where ~98% are right: calibration much worse.
    labels, flags = champion.category, [list(r.urgency_flags) for r in records]
    calibrated = crafted(taxonomy, labels, [0.98] * len(records), raised=flags)
    underconfident = crafted(taxonomy, labels, [0.5] * len(records), raised=flags)
    assert gate_check(records, underconfident, calibrated, taxonomy).failed == ["ece"]


# -- the gate, in a registry -------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Two tiny registered versions (1: champion, 2: challenger) in a temporary MLflow store."""
    import mlflow

    from training.args import DataSource, TrainingConfig
    from training.tracking import train_tracked
    from triage._registry import mlflow_client

    root = tmp_path_factory.mktemp("eval-registry")
    rows = tiny_records()
    data = {
        "train": write_jsonl(root / "data" / "train.jsonl", rows),
        "dev": write_jsonl(root / "data" / "dev.jsonl", rows),
        "test": write_jsonl(root / "data" / "test.jsonl", rows[::2]),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRIAGE_STATE_DIR", str(root / "state"))
        mp.setenv("TRIAGE_MODEL_CACHE", str(root / "cache"))
        mp.setenv("BENTOML_HOME", str(root / "state" / "bentoml"))
        mp.setenv("TRIAGE_USER", "tester")
        get_settings.cache_clear()
        config = TrainingConfig.model_validate({
            "base_model": str(tiny_base),
            "sources": [DataSource(name="tiny", train=data["train"], dev=data["dev"])],
            "max_length": 64, "trainable_top_layers": 1, "epochs": 1, "batch_size": 4, "seed": 3,
            "max_steps": 2,
        })
        first = train_tracked(config, progress=False)
        # The same model registered again as version 2 (the challenger): cheaper than retraining.
        second = mlflow.register_model(f"runs:/{first.run_id}/model", "complaint-triage")
        mlflow_client().set_registered_model_alias("complaint-triage", "challenger", second.version)
        assert (first.version, first.alias, str(second.version)) == ("1", "champion", "2")
        yield {**data, "state": root / "state", "root": root}
    get_settings.cache_clear()


def test_evaluate_command_writes_the_report_and_logs_it(registry: dict[str, Path]) -> None:
    import mlflow
    from click.testing import CliRunner

    from triage._registry import configure_mlflow, mlflow_client
    from triage.cli import main

    report = registry["root"] / "report"
    result = CliRunner().invoke(main, [
        "evaluate", "--data", str(registry["test"]), "--model", "models:/complaint-triage/1",
        "--report", str(report), "--baselines", "--train", str(registry["train"]),
        "--resamples", "100", "--latency-sample", "2",
    ])
    assert result.exit_code == 0, result.output
    assert "keyword_rules" in result.stdout and "tfidf_lr" in result.stdout
    assert "model - this macro-F1" in result.stdout
    assert "evaluated complaint-triage/1 on 8 complaints" in result.stderr
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["model"]["model_version"] == "complaint-triage/1"
    assert metrics["model"]["latency"]["ms_per_complaint"] > 0
    assert {"keyword_rules", "tfidf_lr"} <= set(metrics["baselines"])
    configure_mlflow()
    runs = mlflow.search_runs(filter_string="tags.`triage.run_kind` = 'evaluation'", output_format="list")
    assert runs and runs[0].data.tags["triage.registry_version"] == "1"
    tags = mlflow_client().get_model_version("complaint-triage", "1").tags
    assert tags["evaluation.last_run_id"] == runs[0].info.run_id
    missing = CliRunner().invoke(main, ["evaluate", "--data", str(registry["root"] / "nope.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.stderr


def test_promote_refuse_force_history_and_rollback(registry: dict[str, Path], taxonomy: Taxonomy) -> None:
    from click.testing import CliRunner

    from evaluation.gate import PromotionLog, current_champion, gate_and_record, promote
    from triage._registry import mlflow_client
    from triage.cli import main

    settings = get_settings()
    client = mlflow_client()
    # 1. The challenger is the same recipe and seed: not worse, so it is promoted.
    entry = promote("challenger", registry["test"], progress=False)
    assert entry["decision"] == "promoted" and (entry["candidate"], entry["previous"]) == ("2", "1")
    assert current_champion("complaint-triage", settings) == "2"
    assert client.get_model_version("complaint-triage", "2").tags["promotion.decision"] == "promoted"
    # 2. A worse candidate (crafted answers at the gate level) is refused; the alias stays.
    records = gate_records()
    champion, worse = good_answers(taxonomy, records), crafted(
        taxonomy, ["service_attitude"] * len(records), [0.34] * len(records),
        raised=[list(r.urgency_flags) for r in records])
    common = {"name": "complaint-triage", "candidate_version": "1", "champion_version": "2", "previous": "2"}
    refused = gate_and_record(records, worse, champion, taxonomy, **common)
    assert refused["decision"] == "refused" and refused["failed"] == ["category_macro_f1"]
    assert current_champion("complaint-triage", settings) == "2"
    with pytest.raises(InputError, match="--reason"):
        gate_and_record(records, worse, champion, taxonomy, force=True, **common)
    # 3. Forced with a reason: the alias moves and the reason is on record.
    forced = gate_and_record(records, worse, champion, taxonomy, force=True,
                             reason="hotfix for a known outage", **common)
    assert forced["decision"] == "forced" and current_champion("complaint-triage", settings) == "1"
    tags = client.get_model_version("complaint-triage", "1").tags
    assert tags["promotion.decision"] == "forced" and tags["promotion.reason"] == "hotfix for a known outage"
    assert tags["promotion.by"] == "tester"
    # 4. History: every decision, in order, readable as a table.
    entries = PromotionLog.for_settings().entries()
    assert [e["decision"] for e in entries] == ["promoted", "refused", "forced"]
    shown = CliRunner().invoke(main, ["promote", "--history"])
    assert shown.exit_code == 0 and "hotfix for a known outage" in shown.stdout
    assert [line.split()[4] for line in shown.stdout.splitlines()[2:]] == ["promoted", "refused", "forced"]
    # 5. Rollback walks back through the champions the log put in place, and is recorded.
    back = CliRunner().invoke(main, ["promote", "--rollback"])
    assert back.exit_code == 0, back.output
    assert current_champion("complaint-triage", settings) == "2"
    assert CliRunner().invoke(main, ["promote", "--rollback"]).exit_code == 0
    assert current_champion("complaint-triage", settings) == "1"
    again = CliRunner().invoke(main, ["promote", "--rollback"])
    assert again.exit_code == 2 and "nothing to roll back" in again.stderr
    decisions = [e["decision"] for e in PromotionLog.for_settings().entries()]
    assert decisions == ["promoted", "refused", "forced", "rolled_back", "rolled_back"]
    usage = CliRunner().invoke(main, ["promote", "--candidate", "challenger"])
    assert usage.exit_code == 2 and "--data" in usage.stderr


# -- the real-data benchmark's reading (no training here) --------------------------------------
def test_heimao_reader_and_dataset_taxonomy(tmp_path: Path) -> None:
    from evaluation.benchmark_real import dataset_taxonomy, load_heimao_fin6, slug

    folder = tmp_path / "heimao_fin6"
    folder.mkdir()
    (folder / "labels.csv").write_text(
        "label_id,label_zh,label_en,mech3_label_zh\n0,催收行为类,debt_collection_conduct,x\n1,其他类,other,y\n",
        encoding="utf-8",
    )
    for split in ("train", "dev", "test"):  # no header; a quoted text with a newline inside
        (folder / f"{split}.csv").write_text('催收电话太多,0\n"第一行\n第二行",1\n', encoding="utf-8")
    data = load_heimao_fin6(folder)
    assert [r.category for r in data.train] == ["debt_collection_conduct", "other"]
    assert data.test[1].text == "第一行\n第二行" and data.test[0].known == frozenset({"category"})
    taxonomy = dataset_taxonomy(data.labels)
    assert taxonomy.category_names == ["debt_collection_conduct", "other"]
    assert taxonomy.flag_names == load_taxonomy().flag_names
    assert slug("Credit reporting, credit repair services, or other") == "credit_reporting_credit_repair_services_or_other"


def test_real_benchmark_end_to_end_keeps_the_model(tmp_path: Path, tiny_base: Path) -> None:
    """Both systems run on the same test rows; --save-model leaves a loadable model folder."""
    import yaml

    from evaluation.benchmark_real import main
    from tests.conftest import TINY_TEXTS
    from triage._inference import Triager

    folder = tmp_path / "datasets" / "heimao_fin6"
    folder.mkdir(parents=True)
    (folder / "labels.csv").write_text(
        "label_id,label_zh,label_en,mech3_label_zh\n0,催收行为类,debt_collection_conduct,x\n"
        "1,价格收费类,pricing_fees,y\n", encoding="utf-8",
    )
    rows = "".join(f"{text},{int(cat == 'contract_performance')}\n"
                   for text, cat, _, _ in TINY_TEXTS["zh"])
    for split in ("train", "dev", "test"):
        (folder / f"{split}.csv").write_text(rows, encoding="utf-8")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny", "base_model": str(tiny_base), "max_length": 64, "trainable_top_layers": 1,
        "epochs": 1, "batch_size": 4, "seed": 3,
        "sources": [{"name": "replaced", "train": "unused.jsonl", "dev": "unused.jsonl"}],
    }), encoding="utf-8")
    out, kept = tmp_path / "result.json", tmp_path / "kept"
    main(["--dataset", "heimao_fin6", "--datasets-dir", str(tmp_path / "datasets"),
          "--config", str(config), "--device", "cpu", "--out", str(out), "--save-model", str(kept)])
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["test_records"] == len(TINY_TEXTS["zh"])
    assert set(result["recipe"]["per_class_f1"]) == {"debt_collection_conduct", "pricing_fees"}
    low, high = result["difference"]["paired_ci"]
    assert low <= result["difference"]["recipe_minus_tfidf_macro_f1"] <= high
    triager = Triager.from_folder(kept)
    assert triager.spec.categories == ["debt_collection_conduct", "pricing_fees"]


@pytest.mark.parametrize("kind", ["file", "non-empty folder"])
def test_real_benchmark_refuses_a_save_target_before_training(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from evaluation.benchmark_real import main

    target = tmp_path / "target"
    if kind == "file":
        target.write_text("keep me", encoding="utf-8")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:  # no data set folder needed: refused first
        main(["--datasets-dir", str(tmp_path / "absent"), "--save-model", str(target)])
    assert exit_info.value.code == 2
    assert "--save-model" in capsys.readouterr().err
    kept = target if kind == "file" else target / "notes.txt"
    assert kept.read_text(encoding="utf-8") == "keep me"

"""Mapping files and importers for the shared real data sets.

Tests on real data read ``../shared/datasets`` in place (a slice where they can) and skip
when it is absent; every text written here is synthetic.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from training.sources import (
    check_mapping,
    import_all,
    import_source,
    list_sources,
    load_mapping,
    mapping_path,
)
from training.sources._splits import stratified_split
from triage import ConfigError, Settings, load_taxonomy, read_records
from triage._validation import validate_files

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("heimao_fin6", "cfpb_sample", "banking77")
CFPB_COLUMNS = [
    "Date received",
    "Product",
    "Sub-product",
    "Issue",
    "Sub-issue",
    "Consumer complaint narrative",
    "Company public response",
    "Company",
    "State",
    "ZIP code",
    "Tags",
    "Consumer consent provided?",
    "Submitted via",
    "Date sent to company",
    "Company response to consumer",
    "Timely response?",
    "Consumer disputed?",
    "Complaint ID",
]


def shared_dir(name: str | None = None) -> Path:
    """The real shared data sets (or one of them); skips the test when absent."""
    base = Settings().shared_datasets_dir
    base = base if base.is_absolute() else ROOT / base
    folder = base / name if name else base
    if not folder.is_dir():
        pytest.skip(
            f"{folder} not found: the real shared data sets are absent (set TRIAGE_SHARED_DATASETS_DIR)"
        )
    return base


def records_by_split(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        split: [
            json.loads(line) for line in (folder / f"{split}.jsonl").read_text("utf-8").splitlines()
        ]
        for split in ("train", "dev", "test")
    }


# --- mapping files ---------------------------------------------------------------------


def test_list_sources_names_the_three_importers() -> None:
    assert list_sources() == list(SOURCES)


@pytest.mark.parametrize("name", SOURCES)
def test_mapping_file_loads_and_every_target_is_in_the_taxonomy(name: str) -> None:
    taxonomy = load_taxonomy()
    mapping = load_mapping(name)
    assert mapping_path(name).is_file() and mapping.source == name
    assert check_mapping(mapping, taxonomy) == []
    targets = [t for t in mapping.targets.values() if t is not None]
    assert targets, "a mapping that maps nothing"
    for t in targets:
        if "category" in t.known:
            assert t.category in taxonomy.category_names
        assert set(t.urgency_flags) <= set(taxonomy.flag_names)
        assert set(t.departments) <= set(taxonomy.department_names)


def test_mappings_mark_known_only_what_each_source_labels() -> None:
    heimao, cfpb, banking = (load_mapping(n) for n in SOURCES)
    heimao_targets = {k: t for k, t in heimao.targets.items() if t is not None}
    assert all(
        t.known in ({"category"}, {"category", "departments"}) for t in heimao_targets.values()
    )
    assert heimao.targets["其他类"] is None
    assert heimao_targets["催收行为类"].departments == ("compliance",)
    assert all("category" not in t.known for t in banking.targets.values() if t is not None)
    assert all("urgency_flags" in t.known for t in banking.targets.values() if t is not None)
    assert banking.targets["compromised_card"] is not None
    assert banking.targets["compromised_card"].urgency_flags == ("fund_safety",)
    assert banking.targets["transaction_charged_twice"].urgency_flags == ("transaction_risk",)  # type: ignore[union-attr]
    assert banking.targets["declined_transfer"].urgency_flags == ()  # type: ignore[union-attr]
    # CFPB: nothing by default; flags known only on the entries that name them.
    assert cfpb.known == frozenset()
    for t in cfpb.targets.values():
        assert t is not None and t.known
        assert ("urgency_flags" in t.known) == bool(t.urgency_flags)


def test_a_mapping_with_labels_outside_the_taxonomy_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "heimao_fin6.yaml"
    bad.write_text(
        "source: heimao_fin6\nlang: zh\nknown: [category]\nlabels:\n"
        "  客户服务类: {category: rudeness}\n  营销宣传类: {category: product_quality, departments: [sales]}\n",
        encoding="utf-8",
    )
    problems = check_mapping(load_mapping("heimao_fin6", bad), load_taxonomy())
    assert any("unknown category 'rudeness'" in p for p in problems)
    assert any("unknown department 'sales'" in p for p in problems)


def test_a_mapping_with_a_typo_in_a_field_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "banking77.yaml"
    bad.write_text(
        "source: banking77\nlang: en\nlabels:\n  x: {urgency_flag: []}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="urgency_flag"):
        load_mapping("banking77", bad)


# --- importers on synthetic data -------------------------------------------------------


def write_heimao_like(folder: Path) -> None:
    folder.mkdir(parents=True)
    labels = ["催收行为类", "其他类", "合同条款类", "定价收费类", "客户服务类", "营销宣传类"]
    with (folder / "labels.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label_id", "label_zh", "label_en", "mech3_label_zh"])
        w.writerows([i, zh, f"l{i}", "x"] for i, zh in enumerate(labels))
    rows = {
        "train": [
            ("催收员每天打电话骚扰我的家人，还说要上门。", 0),
            ("APP页面一直打不开，也不知道找谁。", 1),
            ("合同里写的是免年费，结果单方面改了条款。", 2),
            ("借一万要还一万八，服务费根本没说过。", 3),
            ("客服推来推去，\n打了五次电话都没人回。", 4),
            ("业务员说保本高收益，买了才知道是高风险产品。", 5),
        ],
        "dev": [("说好的提前还款不收违约金，还是扣了三百。", 3), ("系统升级，公告看不懂。", 1)],
        "test": [("催收短信辱骂我，还发到我单位。", 0)],
    }
    for split, items in rows.items():
        with (folder / f"{split}.csv").open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(items)


def test_synthetic_heimao_maps_each_class_and_drops_other(tmp_path: Path) -> None:
    write_heimao_like(tmp_path / "shared" / "heimao_fin6")
    summary = import_source(
        "heimao_fin6", datasets_dir=tmp_path / "shared", out_dir=tmp_path / "out"
    )
    assert summary.counts == {"train": 5, "dev": 1, "test": 1}
    assert summary.dropped == {"mapped_to_nothing": 2}
    out = records_by_split(tmp_path / "out" / "heimao_fin6")
    train = {r["source_label"]: r for r in out["train"]}
    assert "其他类" not in train and all(r["source_label"] != "其他类" for r in out["dev"])
    assert train["催收行为类"]["category"] == "service_attitude"
    assert train["催收行为类"]["departments"] == ["compliance"]
    assert train["催收行为类"]["known"] == ["category", "departments"]
    assert train["客户服务类"]["category"] == "service_attitude"
    assert train["客户服务类"]["text"].count("\n") == 1  # a quoted newline stays inside the text
    assert train["合同条款类"]["category"] == "contract_performance"
    assert train["定价收费类"]["category"] == "contract_performance"
    assert train["营销宣传类"]["category"] == "product_quality"
    for r in [*out["train"], *out["dev"], *out["test"]]:
        assert "urgency_flags" not in r["known"] and r["urgency_flags"] == []
        assert r["source"] == "heimao_fin6" and r["lang"] == "zh"
    assert [r["id"] for r in out["train"]] == [f"heimao_fin6-train-{i}" for i in (0, 2, 3, 4, 5)]
    assert out["dev"][0]["id"] == "heimao_fin6-dev-0"
    card = (tmp_path / "out" / "heimao_fin6" / "README.md").read_text("utf-8")
    assert summary.version in card and summary.input_sha256["train.csv"] in card
    assert summary.label_counts["category"] == {
        "contract_performance": 3,
        "product_quality": 1,
        "service_attitude": 3,
    }


def write_cfpb_like(folder: Path, rows: list[tuple[str, str, str]]) -> None:
    folder.mkdir(parents=True)
    with (folder / "complaints_sample.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CFPB_COLUMNS)
        w.writeheader()
        for i, (issue, sub, text) in enumerate(rows):
            w.writerow(
                {c: "" for c in CFPB_COLUMNS}
                | {
                    "Date received": "2019/9/4",
                    "Issue": issue,
                    "Sub-issue": sub,
                    "Consumer complaint narrative": text,
                    "Submitted via": "Web",
                    "Complaint ID": str(i),
                }
            )


def test_synthetic_cfpb_flags_stay_unknown_where_the_text_mentions_escalation(
    tmp_path: Path,
) -> None:
    write_cfpb_like(
        tmp_path / "shared" / "cfpb_sample",
        [
            ("Fraud or scam", "", "Someone emptied my account through a fake seller."),
            ("Fraud or scam", "", "I was scammed out of $500 and I filed a police report."),
            (
                "Fees or interest",
                "Problem with fees",
                "They charged a $35 fee that my agreement waives.",
            ),
            ("Fees or interest", "Problem with fees", ""),
            (
                "Incorrect information on your report",
                "Account status incorrect",
                "Wrong status on file.",
            ),
            (
                "Communication tactics",
                "Frequent or repeated calls",
                "The collector calls me ten times a day.",
            ),
        ],
    )
    summary = import_source(
        "cfpb_sample", datasets_dir=tmp_path / "shared", out_dir=tmp_path / "out"
    )
    assert summary.dropped == {"no_text": 1, "label_not_in_mapping": 1, "nothing_known_for_text": 1}
    assert summary.total == 3
    records = {
        r.extra["source_label"]: r
        for r in read_records(sorted((tmp_path / "out" / "cfpb_sample").glob("*.jsonl")))
    }
    fraud = records["Fraud or scam"]
    assert (
        fraud.known == {"urgency_flags"}
        and fraud.urgency_flags == ("fund_safety",)
        and fraud.category is None
    )
    fee = records["Fees or interest"]
    assert fee.known == {"category"} and fee.category == "contract_performance"
    calls = records["Communication tactics"]
    assert calls.category == "service_attitude" and calls.departments == ("compliance",)
    assert calls.received_at == "2019-09-04" and calls.channel == "web"


def test_stratified_split_is_deterministic_and_keeps_duplicates_together() -> None:
    items = [("a", f"complaint number {i}") for i in range(100)] + [("b", "same text")] * 5
    first = stratified_split(items, [("train", 0.8), ("dev", 0.1), ("test", 0.1)])
    assert first == stratified_split(items, [("train", 0.8), ("dev", 0.1), ("test", 0.1)])
    assert (
        sum(s == "train" for s in first[:100]) == 80 and sum(s == "test" for s in first[:100]) == 10
    )
    assert len(set(first[100:])) == 1


def test_missing_dataset_folder_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"nowhere/heimao_fin6 not found: set TRIAGE_SHARED_DATASETS_DIR"
    ):
        import_source("heimao_fin6", datasets_dir=tmp_path / "nowhere", out_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown source"):
        import_source("no_such_set", datasets_dir=tmp_path, out_dir=tmp_path / "out")


# --- importers on the real files (slices) ----------------------------------------------


@pytest.mark.parametrize("name", SOURCES)
def test_import_real_source_slice(name: str, tmp_path: Path) -> None:
    datasets = shared_dir(name)
    summary = import_source(name, datasets_dir=datasets, out_dir=tmp_path, limit=40)
    folder = tmp_path / name
    out = records_by_split(folder)
    assert summary.counts == {s: len(rows) for s, rows in out.items()}
    assert all(0 < n <= 40 for n in summary.counts.values())
    report = validate_files(sorted(folder.glob("*.jsonl")))
    assert report.problems == []
    source_card = (datasets / name / "README.md").read_text("utf-8")
    for file, digest in summary.input_sha256.items():
        assert digest in source_card, f"computed sha256 of {file} differs from the source card"
    for split, rows in out.items():
        for r in rows:
            assert (
                str(r["id"]).startswith(f"{name}-{split}-")
                and str(r["id"]).rsplit("-", 1)[1].isdigit()
            )
            assert r["source"] == name and r["lang"] == summary.lang and r["text"]
    card = (folder / "README.md").read_text("utf-8")
    assert summary.version in card and "first 40 records per split" in card


@pytest.mark.parametrize("name", SOURCES)
def test_unknown_fields_are_not_marked_known_in_real_imports(name: str, tmp_path: Path) -> None:
    summary = import_source(name, datasets_dir=shared_dir(name), out_dir=tmp_path, limit=200)
    records = read_records(sorted((tmp_path / name).glob("*.jsonl")))
    mapping = load_mapping(name)
    for r in records:
        target = mapping.targets[r.extra["source_label"]]
        assert target is not None
        assert r.known <= target.known  # never more than the mapping entry knows
        if not r.knows("category"):
            assert r.category is None
        if not r.knows("urgency_flags"):
            assert r.urgency_flags == ()
        if not r.knows("departments"):
            assert r.departments == ()
    if name == "heimao_fin6":
        assert summary.known_counts["urgency_flags"] == 0
    if name == "banking77":
        assert summary.known_counts["category"] == 0
        assert summary.known_counts["urgency_flags"] == summary.total


def test_cfpb_split_is_deterministic_on_the_real_file(tmp_path: Path) -> None:
    datasets = shared_dir("cfpb_sample")
    first = import_source("cfpb_sample", datasets_dir=datasets, out_dir=tmp_path / "a")
    second = import_source("cfpb_sample", datasets_dir=datasets, out_dir=tmp_path / "b")
    assert first.version == second.version and first.counts == second.counts
    a, b = (
        records_by_split(tmp_path / "a" / "cfpb_sample"),
        records_by_split(tmp_path / "b" / "cfpb_sample"),
    )
    assert a == b
    ids = {s: {r["id"] for r in rows} for s, rows in a.items()}
    assert not (ids["train"] & ids["dev"] or ids["train"] & ids["test"] or ids["dev"] & ids["test"])
    total = first.total
    assert (
        0.75 < first.counts["train"] / total < 0.85
        and first.counts["test"] > 0
        and first.counts["dev"] > 0
    )
    texts = {s: {r["text"] for r in rows} for s, rows in a.items()}
    assert not (texts["train"] & texts["test"]), "an identical narrative crossed train and test"


def test_banking77_dev_is_carved_from_train_only(tmp_path: Path) -> None:
    summary = import_source("banking77", datasets_dir=shared_dir("banking77"), out_dir=tmp_path)
    out = records_by_split(tmp_path / "banking77")
    train_rows = {int(str(r["id"]).rsplit("-", 1)[1]) for r in out["train"]}
    dev_rows = {int(str(r["id"]).rsplit("-", 1)[1]) for r in out["dev"]}
    assert not train_rows & dev_rows
    assert 0.08 < summary.counts["dev"] / (summary.counts["dev"] + summary.counts["train"]) < 0.12


def test_import_all_writes_every_source(tmp_path: Path) -> None:
    datasets = shared_dir()
    for name in SOURCES:
        shared_dir(name)
    summaries = import_all(datasets, tmp_path, limit=10)
    assert [s.source for s in summaries] == list(SOURCES)
    for s in summaries:
        assert (tmp_path / s.source / "README.md").is_file()
        assert len(s.version) == 16 and len(s.mapping_sha256) == 64

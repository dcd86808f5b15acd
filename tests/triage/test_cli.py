"""The command line's error path: one clear line, a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from triage.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_help_lists_the_contract_subcommands() -> None:
    code, out = run("--help")
    assert code == 0
    for name in ("predict", "train", "evaluate", "promote", "serve", "review", "data", "similar", "insight", "score"):
        assert name in out


def test_predict_missing_file_is_one_line(tmp_path: Path) -> None:
    code, out = run("predict", "--input", str(tmp_path / "none.jsonl"))
    assert code == 2
    assert out.strip().startswith("error:") and "file not found" in out
    assert "Traceback" not in out


def test_predict_unknown_model(tmp_path: Path, isolated_state: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "hello"}) + "\n")
    code, out = run("predict", "--input", str(src), "--model", "models:/nope/3")
    assert code == 3
    assert "no registered model 'nope'" in out


def test_predict_bad_model_reference(tmp_path: Path, isolated_state: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "hello"}) + "\n")
    code, out = run("predict", "--input", str(src), "--model", "not a ref")
    assert code == 3 and "not a model reference" in out


def test_train_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("epochs: [1\n")
    code, out = run("train", "--config", str(bad))
    assert code == 2 and "not valid YAML" in out


def test_data_validate_reports_file_line_field(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "text": "卡被盗刷了", "lang": "zh", "category": "product_quality", "urgency_flags": ["fund_safety"], "departments": ["risk_control"]},
        {"id": "a", "text": "", "lang": "zh", "category": "nonsense", "urgency_flags": ["fund_safty"], "departments": [],
         "known": ["category", "urgency_flags", "departments"]},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{broken\n", encoding="utf-8")
    code, out = run("data", "validate", str(path))
    assert code == 1
    assert f"{path}:2: id: duplicate id 'a'" in out
    assert f"{path}:2: text: empty or missing text" in out
    assert f"{path}:2: category: unknown category 'nonsense'" in out
    assert f"{path}:2: urgency_flags: unknown urgency flag 'fund_safty'" in out
    assert f"{path}:2: departments: needs 1 to 3 departments" in out
    assert f"{path}:3: record: invalid JSON" in out


def test_data_validate_non_utf8_and_inconsistent_level(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    good = {"id": "b", "text": "transfer stuck for days", "lang": "en", "category": "contract_performance",
            "urgency_flags": ["transaction_risk"], "departments": ["business"], "urgency_level": "critical"}
    path.write_bytes(json.dumps(good).encode() + b"\n" + '{"id": "c", "text": "坏"}'.encode("gbk") + b"\n")
    code, out = run("data", "validate", str(path))
    assert code == 1
    assert "urgency_level: 'critical' is inconsistent with flags" in out
    assert f"{path}:2: record: not UTF-8" in out


def test_data_validate_reports_leakage(tmp_path: Path) -> None:
    rec = {"id": "t1", "text": "我的信用卡昨天被盗刷了五千元，请尽快处理", "lang": "zh", "category": "product_quality",
           "urgency_flags": ["fund_safety"], "departments": ["risk_control"]}
    (tmp_path / "train.jsonl").write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    rec2 = dict(rec, id="x1", text=rec["text"] + "！")
    (tmp_path / "test.jsonl").write_text(json.dumps(rec2, ensure_ascii=False) + "\n", encoding="utf-8")
    _, out = run("data", "validate", str(tmp_path / "train.jsonl"), str(tmp_path / "test.jsonl"))
    assert "leakage" in out and "'x1'" in out


def test_console_script_exits_cleanly_on_bad_input(tmp_path: Path) -> None:
    """The installed entry point, as a user runs it."""
    exe = Path(sys.executable).with_name("triage")
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    proc = subprocess.run([str(exe), "predict", "--input", str(tmp_path / "missing.csv")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_bad_setting_names_the_variable(
    tmp_path: Path, isolated_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triage import get_settings

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "hello"}) + "\n")
    monkeypatch.setenv("TRIAGE_EVIDENCE_FALLBACK", "bogus")
    get_settings.cache_clear()
    code, out = run("predict", "--input", str(src))
    assert code == 2
    assert out.strip() == (
        "error: invalid setting TRIAGE_EVIDENCE_FALLBACK: Input should be 'ngram', 'occlusion' or 'off'"
    )

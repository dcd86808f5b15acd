"""The taxonomy/policy file: typed loading, validation errors, the urgency level and SLA policy."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from triage import ConfigError, load_taxonomy
from triage._taxonomy import default_taxonomy_path, parse_duration


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _default() -> dict[str, object]:
    return yaml.safe_load(default_taxonomy_path().read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_default_taxonomy_matches_the_label_set() -> None:
    tax = load_taxonomy()
    assert tax.category_names == ["service_attitude", "product_quality", "contract_performance"]
    assert tax.flag_names == ["fund_safety", "transaction_risk", "regulatory_escalation", "privacy_breach"]
    assert tax.department_names == ["customer_service", "business", "technology", "risk_control", "compliance", "legal"]
    assert tax.label("fund_safety").zh == "资金安全"


@pytest.mark.parametrize(
    ("flags", "level"),
    [
        ({"fund_safety", "privacy_breach"}, "critical"),
        ({"transaction_risk"}, "high"),
        ({"regulatory_escalation"}, "high"),
        (set(), "normal"),
    ],
)
def test_urgency_level_follows_policy(flags: set[str], level: str) -> None:
    assert load_taxonomy().urgency_level(flags) == level


def test_sla_deadlines() -> None:
    tax = load_taxonomy()
    received = datetime.fromisoformat("2026-11-23T08:12:00+08:00")
    respond, resolve = tax.sla.due_times("critical", received)
    assert respond - received == timedelta(hours=1)
    assert resolve - received == timedelta(hours=24)
    _, resolve = tax.sla.due_times("normal", received)
    assert resolve - received == timedelta(days=15)
    naive = datetime(2026, 11, 23, 8, 12)
    respond, _ = tax.sla.due_times("high", naive)
    assert respond.utcoffset() == timedelta(hours=8)


def test_renaming_a_label_is_configuration_only(tmp_path: Path) -> None:
    data = _default()
    data["categories"][0]["name"] = "staff_conduct"  # type: ignore[index]
    tax = load_taxonomy(_write(tmp_path, data))
    assert tax.category_names[0] == "staff_conduct"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("categories:\n  - name: a\n    zh: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid YAML at line"):
        load_taxonomy(path)


def test_unknown_flag_in_policy_rule(tmp_path: Path) -> None:
    data = _default()
    data["urgency_levels"][0]["when_any_flag"] = ["fund_safty"]  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"unknown flag.*fund_safty"):
        load_taxonomy(_write(tmp_path, data))


def test_duplicate_names(tmp_path: Path) -> None:
    data = _default()
    data["departments"].append(dict(data["departments"][0]))  # type: ignore[union-attr,index]
    with pytest.raises(ConfigError, match="duplicate departments names: customer_service"):
        load_taxonomy(_write(tmp_path, data))


def test_level_without_deadline(tmp_path: Path) -> None:
    data = _default()
    del data["sla"]["deadlines"]["high"]  # type: ignore[index]
    with pytest.raises(ConfigError, match="without an SLA deadline: high"):
        load_taxonomy(_write(tmp_path, data))


def test_bad_duration_and_unknown_key(tmp_path: Path) -> None:
    data = _default()
    data["sla"]["deadlines"]["high"]["respond_within"] = "soon"  # type: ignore[index]
    with pytest.raises(ConfigError, match="invalid duration 'soon'"):
        load_taxonomy(_write(tmp_path, data))
    data = _default()
    data["colour"] = "blue"
    with pytest.raises(ConfigError, match="colour"):
        load_taxonomy(_write(tmp_path, data))


def test_parse_duration() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("3d") == timedelta(days=3)
    assert parse_duration(2) == timedelta(hours=2)

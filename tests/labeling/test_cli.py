"""`triage review ...` commands: seeding users, import, export, Label Studio, disagreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from labeling.cli import review
from labeling.store import open_store
from tests.labeling.conftest import PASSWORD, sample_predictions
from triage import read_records


@pytest.fixture()
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'review.db'}"


def run(db: str, *args: str, **kwargs: object) -> object:
    result = CliRunner().invoke(review, ["--db", db, *args], catch_exceptions=False, **kwargs)
    return result


def test_seed_admin_from_env_prompt_and_flag(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_ADMIN_PASSWORD", PASSWORD)
    result = run(db, "seed-admin", "--username", "root")
    assert result.exit_code == 0, result.output
    store = open_store(db)
    assert store.authenticate("root", PASSWORD).role == "admin"
    again = run(db, "seed-admin", "--username", "root")
    assert again.exit_code != 0 and "exists" in again.output
    monkeypatch.delenv("TRIAGE_ADMIN_PASSWORD")
    reset = run(
        db, "seed-admin", "--username", "root", "--reset", input="new password 1\nnew password 1\n"
    )
    assert reset.exit_code == 0, reset.output
    assert store.authenticate("root", "new password 1") is not None
    short = run(db, "add-user", "tina", "--password", "short")
    assert short.exit_code == 2 and "too short" in short.output
    added = run(db, "add-user", "tina", "--role", "lead", "--password", PASSWORD)
    assert added.exit_code == 0 and store.find_user("tina").role == "lead"
    store.close()


def test_import_export_and_disagreement(db: str, tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in sample_predictions()),
        encoding="utf-8",
    )
    result = run(db, "import", str(predictions))
    assert result.exit_code == 0 and "imported 4 new case(s)" in result.output
    assert "0 new case(s), 4 already" in run(db, "import", str(predictions)).output
    missing = run(db, "import", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "file not found" in missing.output

    store = open_store(db)
    reviewer = store.add_user("alice", PASSWORD, "reviewer")
    store.decide(1, reviewer, "accept", expected_last_id=0)
    store.close()

    out = tmp_path / "datasets" / "reviewed" / "cli.jsonl"
    result = run(db, "export", "--since", "2020-01-01", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "exported 1 reviewed record(s)" in result.output
    assert [r.id for r in read_records(out)] == ["review-1"] and (
        out.parent / "cli.README.md"
    ).is_file()
    bad_date = run(db, "export", "--since", "last week", "--output", str(tmp_path / "x.jsonl"))
    assert bad_date.exit_code == 2 and "not a date" in bad_date.output

    table = run(db, "disagreement")
    assert (
        table.exit_code == 0
        and "product_quality" in table.output
        and "1 decided case(s)" in table.output
    )


def test_label_studio_commands(db: str, tmp_path: Path) -> None:
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in sample_predictions()),
        encoding="utf-8",
    )
    run(db, "import", str(predictions))
    tasks_file = tmp_path / "tasks.json"
    result = run(db, "export-labelstudio", "--output", str(tasks_file))
    assert result.exit_code == 0 and "wrote 4 Label Studio task(s)" in result.output
    tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
    for task in tasks:
        task["annotations"] = [{"id": task["id"] * 10, "result": task["predictions"][0]["result"]}]
    tasks_file.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    nobody = run(db, "import-labelstudio", str(tasks_file), "--user", "ghost")
    assert nobody.exit_code == 2 and "no active user" in nobody.output
    store = open_store(db)
    store.add_user("annotator", PASSWORD, "reviewer")
    store.close()
    result = run(db, "import-labelstudio", str(tasks_file), "--user", "annotator")
    assert result.exit_code == 0 and "4 decision(s) recorded (4 accept" in result.output


def test_mounted_under_triage() -> None:
    cli = pytest.importorskip("triage.cli")
    result = CliRunner().invoke(cli.main, ["review", "--help"])
    assert result.exit_code == 0
    for command in (
        "serve",
        "seed-admin",
        "add-user",
        "import",
        "export",
        "export-labelstudio",
        "import-labelstudio",
        "disagreement",
    ):
        assert command in result.output

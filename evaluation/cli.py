"""`triage evaluate` and `triage promote`: numbers to trust and the gate to production.

``triage.cli`` mounts these commands; everything heavy is imported inside them, so
``triage --help`` stays instant.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """The CLI's one-line error wrapper, imported when a command runs (triage.cli imports us)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from triage.cli import friendly_errors as wrap

        return wrap(func)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@click.command()
@click.option("--data", "data_path", required=True, type=click.Path(path_type=Path),
              help="Labelled JSONL or CSV (the labelled-record format).")
@click.option("--model", "model_ref", default="champion", show_default=True,
              help="champion, challenger, models:/..., or a model folder.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Report folder (default: .state/reports/<model>-<data>-<time>).")
@click.option("--baselines", is_flag=True,
              help="Also train keyword rules and TF-IDF + LR and print them beside the model.")
@click.option("--train", "train_path", type=click.Path(path_type=Path), default=None,
              help="Baselines' training data (default: datasets/starter/train.jsonl).")
@click.option("--dev", "dev_path", type=click.Path(path_type=Path), default=None,
              help="Baselines' dev data for choosing C (default: C=10).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--quantize", type=click.Choice(["none", "dynamic_int8"]), default=None,
              help="CPU fast path (default from the settings, as serving uses).")
@click.option("--resamples", default=1000, show_default=True, help="Bootstrap resamples for intervals.")
@click.option("--latency-sample", default=20, show_default=True,
              help="Complaints triaged one at a time for single-request latency (0: skip).")
@click.option("--no-log", is_flag=True, help="Do not log the evaluation to MLflow.")
@friendly_errors
def evaluate(
    data_path: Path, model_ref: str, report_dir: Path | None, baselines: bool,
    train_path: Path | None, dev_path: Path | None, batch_size: int, quantize: str | None,
    resamples: int, latency_sample: int, no_log: bool,
) -> None:
    """Metrics, plots and the worst errors for a labelled file; logged to MLflow."""
    from evaluation.metrics_report import EvaluationOptions
    from evaluation.report import comparison_table
    from evaluation.runner import evaluate_model
    from triage import InputError

    if not data_path.is_file():
        raise InputError(f"{data_path}: file not found")
    if resamples < 1:
        raise InputError("--resamples must be at least 1")
    start = time.perf_counter()
    result, page, run_id = evaluate_model(
        model_ref, data_path, report_dir=report_dir, baselines=baselines, train_path=train_path,
        dev_path=dev_path, batch_size=batch_size, quantize=quantize,
        options=EvaluationOptions(resamples=resamples), latency_sample=latency_sample,
        log_to_mlflow=not no_log,
    )
    if baselines:
        click.echo(comparison_table(result))
    m = result.metrics
    ci = m["category"].get("macro_f1_ci") or [None, None]
    review = m["review"]
    auto = (
        f"{review['auto_accepted_share']:.0%} auto-accepted at {_num(review['auto_accepted_accuracy'])} accuracy"
        if review.get("auto_accepted_share") is not None else "no review decision"
    )
    counts = m["counts"]
    click.echo(
        f"evaluated {result.model.system} on {counts['records']} complaints "
        f"(unknown left out: category {counts['category']['left_out_unknown']}, flags "
        f"{counts['urgency_flags']['left_out_unknown']}, owner {counts['departments']['left_out_unknown']}) "
        f"in {time.perf_counter() - start:.0f}s: macro-F1 {_num(m['category']['macro_f1'])} "
        f"[{_num(ci[0])}, {_num(ci[1])}], fund_safety recall {_num(m['flags']['fund_safety_recall'])} "
        f"precision {_num(m['flags'].get('fund_safety_precision'))}, "
        f"owner top-1 {_num(m['owner']['top1'])}, ECE {_num(m['calibration']['ece'])}, {auto}, "
        f"{_num(m['latency'].get('ms_per_complaint'), 1)} ms/complaint; report {page}"
        + (f"; MLflow run {run_id}" if run_id else ""),
        err=True,
    )


@click.command()
@click.option("--candidate", "candidate_ref", default=None,
              help="The model to promote: challenger, models:/NAME/VERSION or models:/NAME@ALIAS.")
@click.option("--against", "against_ref", default="champion", show_default=True,
              help="What the candidate must not be worse than.")
@click.option("--data", "data_path", type=click.Path(path_type=Path), default=None,
              help="The fixed labelled evaluation set both models are scored on.")
@click.option("--force", is_flag=True, help="Promote even if the gate refuses (needs --reason).")
@click.option("--reason", default=None, help="Why: required with --force, recorded with any decision.")
@click.option("--history", is_flag=True, help="Print the promotion log and exit.")
@click.option("--rollback", "do_rollback", is_flag=True,
              help="Restore the previous champion (from the log); recorded too.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--quantize", type=click.Choice(["none", "dynamic_int8"]), default=None)
@friendly_errors
def promote(
    candidate_ref: str | None, against_ref: str, data_path: Path | None, force: bool,
    reason: str | None, history: bool, do_rollback: bool, batch_size: int, quantize: str | None,
) -> None:
    """Move the champion alias, with a gate and a log."""
    from evaluation.gate import FORCED, PROMOTED, REFUSED, PromotionLog, history_table
    from evaluation.gate import promote as run_gate
    from evaluation.gate import rollback as run_rollback
    from triage import InputError

    if history:
        entries = PromotionLog.for_settings().entries()
        if not entries:
            click.echo("no promotion decisions recorded yet", err=True)
            return
        click.echo(history_table(entries))
        click.echo(f"{len(entries)} decision(s) in {PromotionLog.for_settings().path}", err=True)
        return
    if do_rollback:
        entry = run_rollback(reason=reason)
        click.echo(
            f"rolled back: {entry['model']} champion is version {entry['candidate']} again "
            f"(was {entry['previous']}); recorded as #{entry['seq']}",
            err=True,
        )
        return
    if not candidate_ref or not data_path:
        raise InputError("promote needs --candidate and --data (or --history, or --rollback)")
    if force and not (reason and reason.strip()):
        raise InputError("--force needs --reason: say why the gate is overridden")
    entry = run_gate(candidate_ref, data_path, against=against_ref, force=force, reason=reason,
                     batch_size=batch_size, quantize=quantize)
    for criterion in entry["criteria"]:
        mark = "ok    " if criterion["passed"] else "FAILED"
        click.echo(f"  {mark} {criterion['name']}: {criterion['detail']}", err=True)
    name, version = entry["model"], entry["candidate"]
    if entry["decision"] == PROMOTED:
        click.echo(
            f"promoted {name} version {version} to champion (was {entry['previous'] or 'none'}); "
            f"recorded as #{entry['seq']}; `triage serve` picks it up on its next start",
            err=True,
        )
    elif entry["decision"] == FORCED:
        click.echo(
            f"FORCED {name} version {version} to champion despite: {', '.join(entry['failed'])} "
            f"(reason: {entry['reason']}); recorded as #{entry['seq']}",
            err=True,
        )
    elif entry["decision"] == REFUSED:
        click.echo(
            f"refused: {name} version {version} stays out; failed {', '.join(entry['failed'])}; "
            f"champion is still version {entry['previous']}; recorded as #{entry['seq']}",
            err=True,
        )
        sys.exit(1)

"""The ``triage`` command line: the product's front door for people and scripts.

Each subcommand imports its room lazily, so ``triage --help`` is instant. Errors users can
act on print one line and exit non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from triage._errors import InputError, TriageError
from triage._offline import go_offline

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _is_settings_error(exc: Exception) -> bool:
    from pydantic import ValidationError

    return isinstance(exc, ValidationError) and exc.title == "Settings"


def _settings_message(exc: Any) -> str:
    """Name the environment variable and the problem: TRIAGE_QUANTIZE: Input should be ..."""
    err = exc.errors()[0]
    name = "TRIAGE_" + "_".join(str(p) for p in err["loc"]).upper()
    return f"invalid setting {name}: {err['msg']}"


def friendly_errors(func: F) -> F:
    """Turn exceptions into one clear line and an exit code (traceback only with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().obj and ctx.find_root().obj.get("debug"))
        try:
            return func(*args, **kwargs)
        except TriageError as exc:
            if debug:
                raise
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as exc:
            if debug:
                raise
            if _is_settings_error(exc):
                _fail(_settings_message(exc), 2)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _fail(f"{type(exc).__name__}: {first} (rerun with --debug for the traceback)", 1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="complaint-triage")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Complaint triage for financial institutions: category, urgency, owner, confidence."""
    go_offline()
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# -- predict -------------------------------------------------------------------------------
def _read_complaints(path: Path) -> Iterator[Any]:
    from pydantic import ValidationError

    from triage._records import iter_raw
    from triage._schema import Complaint

    for raw in iter_raw(path):
        if raw.obj is None:
            raise InputError(f"{raw.path}:{raw.line}: {raw.error}")
        fields = {k: v for k, v in raw.obj.items() if k in ("text", "id", "channel", "received_at")}
        fields = {k: v for k, v in fields.items() if v not in (None, "")} | {"text": raw.obj.get("text", "")}
        if fields.get("id") is not None:
            fields["id"] = str(fields["id"])
        try:
            yield Complaint.model_validate(fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "record"
            raise InputError(
                f"{raw.path}:{raw.line}: {field}: {str(err['msg']).removeprefix('Value error, ')}"
            ) from exc


def _count_lines(path: Path) -> int | None:
    try:
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip()) - (1 if path.suffix.lower() == ".csv" else 0)
    except OSError:
        return None


@main.command()
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path), help="JSONL or CSV with a text column.")
@click.option("--output", "output_path", type=click.Path(path_type=Path), help="Where to write JSONL predictions (default stdout).")
@click.option("--model", "model_ref", default="champion", show_default=True, help="champion, challenger, models:/..., or a folder.")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--quantize", type=click.Choice(["none", "dynamic_int8"]), default=None, help="CPU fast path (default TRIAGE_QUANTIZE).")
@click.option("--record", is_flag=True, help="Also record the predictions in the review store (redacted text only).")
@friendly_errors
def predict(input_path: Path, output_path: Path | None, model_ref: str, batch_size: int, quantize: str | None, record: bool) -> None:
    """Triage every complaint in a file; one JSON prediction per line, in input order."""
    from tqdm.auto import tqdm

    from triage._loading import load_triager

    if not input_path.is_file():
        raise InputError(f"{input_path}: file not found")
    total = _count_lines(input_path)
    triager = load_triager(model_ref, batch_size=batch_size, quantize=quantize)
    recorder = None
    if record:
        from labeling.recorder import PredictionRecorder
        from triage import get_settings

        settings = get_settings()
        mode = None if settings.record_mode != "off" else "all"
        recorder = PredictionRecorder(settings, mode=mode, origin="cli")
    out = output_path.open("w", encoding="utf-8") if output_path else sys.stdout
    start, count, review = time.perf_counter(), 0, 0
    levels: dict[str, int] = {}
    try:
        bar = tqdm(total=total, unit="complaint", file=sys.stderr, desc="triage")
        for prediction in triager.triage_stream(_read_complaints(input_path)):
            out.write(json.dumps(prediction.model_dump(mode="json"), ensure_ascii=False) + "\n")
            count += 1
            review += int(prediction.needs_review)
            levels[prediction.urgency.level] = levels.get(prediction.urgency.level, 0) + 1
            if recorder is not None:
                recorder.record([prediction])
            bar.update(1)
        bar.close()
    finally:
        if output_path:
            out.close()
        if recorder is not None:
            recorder.close()
    took = time.perf_counter() - start
    summary = ", ".join(f"{k} {v}" for k, v in sorted(levels.items()))
    click.echo(
        f"triaged {count} complaints in {took:.1f}s ({count / max(took, 1e-9):.0f}/s) with "
        f"{triager.model_version}: {summary}; {review} need review"
        + (f"; written to {output_path}" if output_path else "")
        + (f"; review store: {recorder.stats.as_dict()}" if recorder is not None else ""),
        err=True,
    )


# -- train ---------------------------------------------------------------------------------
@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=Path("training/configs/default.yaml"), show_default=True)
@click.option("--no-register", is_flag=True, help="Log the run but do not register a model version.")
@friendly_errors
def train(config_path: Path, no_register: bool) -> None:
    """Fine-tune, track the run in MLflow, register a model version."""
    from training.args import load_training_config

    config = load_training_config(config_path)
    if no_register:
        config = config.model_copy(update={"register_model": False})
    from training.tracking import train_tracked

    start = time.perf_counter()
    run = train_tracked(config, config_path=config_path)
    m = run.test_metrics or run.dev_metrics
    split = "test" if run.test_metrics else "dev"
    where = f"{run.model_name} version {run.version} (@{run.alias})" if run.version else "not registered"
    click.echo(
        f"trained in {time.perf_counter() - start:.0f}s: {where}; {split} category macro-F1 "
        f"{m.get('category_macro_f1', 0):.3f}, fund_safety recall {m.get('fund_safety_recall', 0):.3f}, "
        f"owner top-1 {m.get('owner_top1', 0):.3f}; run {run.run_id}"
    )


# -- serve ---------------------------------------------------------------------------------
@main.command()
@click.option("--port", default=None, type=int, help="Port (default 3000 or TRIAGE_PORT).")
@click.option("--host", default=None, help="Host (default 127.0.0.1 or TRIAGE_HOST).")
@click.option("--model", "model_ref", default="champion", show_default=True)
@friendly_errors
def serve(port: int | None, host: str | None, model_ref: str) -> None:
    """The BentoML prediction service (imports the champion first if it is newer)."""
    from serving.launch import serve_forever

    serve_forever(model_ref=model_ref, host=host, port=port)


# -- data ----------------------------------------------------------------------------------
@main.group()
def data() -> None:
    """Check, summarise and import labelled data."""


@data.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--taxonomy", type=click.Path(path_type=Path), default=None)
@friendly_errors
def data_validate(files: tuple[Path, ...], taxonomy: Path | None) -> None:
    """Check labelled files against the taxonomy; report file, line and field of each problem."""
    from triage._validation import validate_files

    report = validate_files(list(files), taxonomy_path=taxonomy)
    for problem in report.problems:
        click.echo(str(problem))
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
    click.echo(
        f"{report.records} records in {len(files)} file(s): {len(report.problems)} problem(s), "
        f"{len(report.warnings)} warning(s)"
    )
    if report.problems:
        sys.exit(1)


@data.command("stats")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@friendly_errors
def data_stats(files: tuple[Path, ...]) -> None:
    """Counts per label, language, source and text length, as plain tables."""
    from triage._validation import stats_table

    click.echo(stats_table(list(files)))


@data.command("import")
@click.argument("names", nargs=-1)
@click.option("--all", "all_sources", is_flag=True, help="Import every known source.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=Path("datasets/imported"), show_default=True)
@click.option("--limit", type=int, default=None, help="Keep the first N records per split (a quick look).")
@friendly_errors
def data_import(names: tuple[str, ...], all_sources: bool, out_dir: Path, limit: int | None) -> None:
    """Turn the shared real data sets into labelled records through their mapping files."""
    from training.sources import import_source, list_sources
    from triage import get_settings

    chosen = list_sources() if all_sources or not names else list(names)
    root = get_settings().shared_datasets_dir
    for name in chosen:
        summary = import_source(name, datasets_dir=root, out_dir=out_dir, limit=limit)
        counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
        click.echo(f"{name}: {counts} (version {summary.version}) -> {out_dir / name}")


def _attach_rooms() -> None:
    """The evaluation and review rooms own their commands; the CLI only mounts them."""
    from evaluation.cli import evaluate, promote
    from labeling.cli import review

    main.add_command(evaluate)
    main.add_command(promote)
    main.add_command(review)


_attach_rooms()


def _planned(name: str, issue_hint: str) -> Callable[..., None]:
    def run(**_: Any) -> None:
        _fail(f"`triage {name}` is planned and not available in this version ({issue_hint})", 2)

    return run


main.add_command(click.Command("similar", callback=_planned("similar", "similar-complaint search"),
                               help="(planned) The most similar recorded complaints.",
                               params=[click.Option(["--text"])]))
main.add_command(click.Command("insight", callback=_planned("insight", "trends and spike alerts"),
                               help="(planned) Trends, spike alerts, deadlines at risk."))
main.add_command(click.Command("score", callback=_planned("score", "batch scoring at scale; use `triage predict`"),
                               help="(planned) Batch scoring at scale.",
                               params=[click.Option(["--engine"]), click.Option(["--input"]), click.Option(["--output"])]))


if __name__ == "__main__":  # pragma: no cover
    main()

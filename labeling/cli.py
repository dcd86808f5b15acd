"""`triage review ...`: the reviewers' application and its import/export commands."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(func: F) -> F:
    """One clear line and a non-zero exit instead of a traceback (unless --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from triage._errors import TriageError

        root = click.get_current_context().find_root()
        debug = bool(isinstance(root.obj, dict) and root.obj.get("debug"))
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, SystemExit, KeyboardInterrupt):
            raise
        except TriageError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            if debug:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            click.echo(
                f"error: {type(exc).__name__}: {first} (rerun with --debug for the traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _store(ctx: click.Context) -> Any:
    from labeling.store import open_store

    obj = ctx.find_object(dict) or {}
    return open_store(obj.get("review_db"))


def _user(store: Any, username: str) -> Any:
    from triage._errors import InputError

    user = store.find_user(username)
    if user is None or not user.active:
        raise InputError(f"no active user {username!r}: add one with `triage review add-user`")
    return user


def _date(value: str | None, option: str) -> datetime | None:
    from triage._errors import InputError
    from triage._taxonomy import load_taxonomy

    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{option}: {value!r} is not a date (use YYYY-MM-DD)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=load_taxonomy().sla.tzinfo)


def _password(given: str | None, *, confirm: bool = True) -> str:
    if given:
        return given
    env = os.environ.get("TRIAGE_ADMIN_PASSWORD")
    if env:
        return env
    return str(click.prompt("password", hide_input=True, confirmation_prompt=confirm))


def _serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    import uvicorn

    from labeling._config import load_review_config
    from labeling.app import create_app

    config = load_review_config()
    store = _store(ctx)
    host = host or config.host
    port = port or config.port
    if not store.list_users():
        click.echo("no users yet: run `triage review seed-admin --username admin` first", err=True)
    click.echo(f"review application on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    app = create_app(store, config, close_store=True)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


@click.group(invoke_without_command=True)
@click.option(
    "--db",
    "review_db",
    default=None,
    help="Review store URL (default: TRIAGE_REVIEW_DB_URL or sqlite in the state folder).",
)
@click.pass_context
def review(ctx: click.Context, review_db: str | None) -> None:
    """The reviewers' web application (`triage review export ...` writes reviewed cases).

    Plain `triage review` serves the application on http://127.0.0.1:8300.
    """
    ctx.ensure_object(dict)
    ctx.obj["review_db"] = review_db
    if ctx.invoked_subcommand is None:
        _friendly(_serve)(ctx, None, None)


@review.command("serve")
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default 8300).")
@click.pass_context
@_friendly
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the review application (sign-in, queue, cases, dashboard)."""
    _serve(ctx, host, port)


@review.command("seed-admin")
@click.option("--username", default="admin", show_default=True)
@click.option("--password", default=None, help="Default: TRIAGE_ADMIN_PASSWORD, else a prompt.")
@click.option("--reset", is_flag=True, help="Set a new password if the user exists.")
@click.pass_context
@_friendly
def seed_admin(ctx: click.Context, username: str, password: str | None, reset: bool) -> None:
    """Create the first admin user (or reset its password with --reset)."""
    from triage._errors import InputError

    store = _store(ctx)
    existing = store.find_user(username)
    if existing and not reset:
        raise InputError(f"user {username!r} exists; use --reset to set a new password")
    secret = _password(password)
    if existing:
        store.set_password(username, secret)
        store.update_user(existing.id, role="admin", active=True)
        click.echo(f"admin {username!r}: password reset")
    else:
        store.add_user(username, secret, "admin")
        click.echo(f"admin {username!r} created; open the app with `triage review`")


@review.command("add-user")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["reviewer", "lead", "admin"]),
    default="reviewer",
    show_default=True,
)
@click.option("--password", default=None, help="Default: a prompt.")
@click.option("--display-name", default="")
@click.pass_context
@_friendly
def add_user(
    ctx: click.Context, username: str, role: str, password: str | None, display_name: str
) -> None:
    """Add a reviewer, lead or admin."""
    store = _store(ctx)
    secret = password or str(click.prompt("password", hide_input=True, confirmation_prompt=True))
    store.add_user(username, secret, role, display_name)
    click.echo(f"{role} {username!r} added")


@review.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
@_friendly
def import_cmd(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Add cases from predictions (`triage predict` output) or labelled/unlabelled records."""
    from labeling.importer import import_file

    store = _store(ctx)
    added = dupes = 0
    for file in files:
        summary = import_file(store, file)
        click.echo(summary.line(file))
        added += summary.added
        dupes += summary.duplicates
    click.echo(
        f"imported {added} new case(s) from {len(files)} file(s); {dupes} already in the store"
    )


@review.command("export")
@click.option(
    "--output", required=True, type=click.Path(path_type=Path), help="datasets/reviewed/NAME.jsonl"
)
@click.option("--since", default=None, help="Decisions on or after this date (YYYY-MM-DD).")
@click.option("--until", default=None, help="Decisions before this date.")
@click.option(
    "--by",
    "by_user",
    default=None,
    help="Record the export under this user (default: the OS user).",
)
@click.pass_context
@_friendly
def export_cmd(
    ctx: click.Context, output: Path, since: str | None, until: str | None, by_user: str | None
) -> None:
    """Write decided cases as a dataset version (labelled records + card)."""
    from labeling.export import export_reviewed

    store = _store(ctx)
    user = _user(store, by_user) if by_user else None
    result = export_reviewed(
        store,
        output,
        since=_date(since, "--since"),
        until=_date(until, "--until"),
        created_by=user.username if user else None,
        user_id=user.id if user else None,
    )
    click.echo(
        f"exported {result.records} reviewed record(s) to {result.path} (version {result.version}, "
        f"export #{result.export_id}); card {result.card_path}"
    )


@review.command("export-labelstudio")
@click.option("--output", required=True, type=click.Path(path_type=Path))
@click.option(
    "--status",
    type=click.Choice(["todo", "open", "escalated", "decided", "all"]),
    default="todo",
    show_default=True,
)
@click.pass_context
@_friendly
def export_labelstudio(ctx: click.Context, output: Path, status: str) -> None:
    """Write cases as Label Studio tasks with predictions (and the labeling config beside)."""
    from labeling.labelstudio import export_tasks
    from labeling.store import UserInfo

    store = _store(ctx)
    operator = UserInfo(id=0, username="cli", display_name="", role="lead")
    count = export_tasks(store, operator, output, status=status)
    click.echo(
        f"wrote {count} Label Studio task(s) to {output}; labeling config {output.with_name(output.stem + '.label_config.xml')}"
    )


@review.command("import-labelstudio")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--user", "username", required=True, help="The reviewer the annotations are recorded under."
)
@click.pass_context
@_friendly
def import_labelstudio(ctx: click.Context, file: Path, username: str) -> None:
    """Record Label Studio annotations as review decisions by a named user."""
    from labeling.labelstudio import import_annotations

    store = _store(ctx)
    summary = import_annotations(store, file, _user(store, username))
    click.echo(f"{file}: {summary.line()}")


@review.command("disagreement")
@click.pass_context
@_friendly
def disagreement_cmd(ctx: click.Context) -> None:
    """Per label: where reviewers disagree with the model (a plain table)."""
    from labeling.stats import disagreement, disagreement_table

    click.echo(disagreement_table(disagreement(_store(ctx))))


if __name__ == "__main__":  # pragma: no cover
    review()

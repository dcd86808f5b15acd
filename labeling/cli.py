"""`triage review ...`: the reviewers' application and its import/export commands."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
@click.pass_context
def review(ctx: click.Context) -> None:
    """The reviewers' web application (`triage review export ...` writes reviewed cases)."""
    if ctx.invoked_subcommand is None:
        raise click.ClickException("the review application is being built")

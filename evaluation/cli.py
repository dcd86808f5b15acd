"""`triage evaluate` and `triage promote`: numbers to trust and the gate to production."""

from __future__ import annotations

import click


@click.command()
@click.option("--data", "data_path", required=True)
def evaluate(data_path: str) -> None:
    """Metrics and plots for a labelled file."""
    raise click.ClickException("evaluation is being built")


@click.command()
def promote() -> None:
    """Move the champion alias, with a gate and a log."""
    raise click.ClickException("promotion is being built")

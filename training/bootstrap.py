"""First-run preparation: make sure a champion model exists, training the default if not."""

from __future__ import annotations

import sys
from pathlib import Path

from triage import ModelNotFoundError, get_settings, go_offline
from triage._registry import CHAMPION, registry_version


def ensure_champion(config_path: Path | None = None) -> str:
    """Return the champion's version, training and registering the first-run recipe if none."""
    settings = get_settings()
    config_path = config_path or settings.first_run_config
    try:
        name, version = registry_version(CHAMPION, settings)
        print(f"champion is {name}/{version}: reusing it", file=sys.stderr)
        return version
    except ModelNotFoundError:
        pass
    from training.args import load_training_config
    from training.tracking import train_tracked

    print(f"no champion registered yet: training the default model ({config_path})", file=sys.stderr)
    run = train_tracked(load_training_config(config_path), config_path=config_path)
    m = run.test_metrics
    print(
        f"registered {run.model_name}/{run.version} as @{run.alias}: test category macro-F1 "
        f"{m.get('category_macro_f1', 0):.3f}, fund_safety recall {m.get('fund_safety_recall', 0):.3f}, "
        f"owner top-1 {m.get('owner_top1', 0):.3f}",
        file=sys.stderr,
    )
    return str(run.version)


def main() -> None:
    go_offline()
    from triage import TriageError

    try:
        ensure_champion()
    except TriageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()

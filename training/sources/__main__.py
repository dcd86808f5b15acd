"""``python -m training.sources [NAME ...]``: import shared data sets into datasets/imported/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.sources import import_source, list_sources
from triage import TriageError, get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.sources", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"sources (default: all of {list_sources()})"
    )
    parser.add_argument(
        "--datasets-dir",
        type=Path,
        default=None,
        help="shared data sets (default: TRIAGE_SHARED_DATASETS_DIR or ../shared/datasets)",
    )
    parser.add_argument("--out-dir", type=Path, default=Path("datasets/imported"))
    parser.add_argument("--limit", type=int, default=None, help="first N records per split")
    args = parser.parse_args(argv)
    datasets_dir = args.datasets_dir or get_settings().shared_datasets_dir
    try:
        for name in args.names or list_sources():
            s = import_source(
                name, datasets_dir=datasets_dir, out_dir=args.out_dir, limit=args.limit
            )
            counts = " ".join(f"{k}={v}" for k, v in s.counts.items())
            print(
                f"{name}: {counts} dropped={sum(s.dropped.values())} version={s.version} -> {s.out_dir}"
            )
    except TriageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m animind_trainer.hub_rows DATASET [--config NAME] [--split S] [--max-rows N] [--cache-dir D]`

Prints the first N rows of a Hugging Face dataset (a hub id, resolved through the HF cache
first, or a local dataset folder) as JSON lines on stdout, for the TypeScript sources of the
general instruction mix and the English-retention texts, which normalise them. A dataset that
cannot be loaded is one line on stderr and exit code 3, so the caller can fall back (dry run)
or stop with that line.
"""

from __future__ import annotations

import argparse
import json
import sys

CANNOT_LOAD = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m animind_trainer.hub_rows")
    parser.add_argument("dataset")
    parser.add_argument("--config", default=None)
    parser.add_argument("--split", default="train")
    parser.add_argument("--max-rows", type=int, default=0, help="0: every row")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    try:
        import datasets
    except ImportError:
        print("the Python package 'datasets' is not installed in the trainer's environment", file=sys.stderr)
        return CANNOT_LOAD
    datasets.disable_progress_bars()
    split = f"{args.split}[:{args.max_rows}]" if args.max_rows > 0 else args.split
    try:
        rows = datasets.load_dataset(args.dataset, args.config, split=split, cache_dir=args.cache_dir or None)
    except Exception as exc:  # offline, not cached, no such dataset: the caller decides what follows
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"cannot load {args.dataset}: {first_line}", file=sys.stderr)
        return CANNOT_LOAD
    out = sys.stdout
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, default=str))
        out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

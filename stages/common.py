"""What every stage entry point shares: its command line and params.yaml, checked before any work."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline.params_check import load_valid_params


def stage_params(description: str, argv: list[str] | None = None, *,
                 positional: tuple[str, str, str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse `[<positional>] [--params params.yaml]`, load the params file and check all of it
    (`params_check`). `positional` is (name, help, section) of a stage's one positional argument, an entry
    of that params section (an extractor, a head entry). A mistake exits 2 with one line each, before
    anything is written."""
    parser = argparse.ArgumentParser(description=description)
    if positional is not None:
        parser.add_argument(positional[0], help=positional[1])
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    args = parser.parse_args(argv)
    params = load_valid_params(args.params)
    if positional is not None:
        name, _, section = positional
        entry = getattr(args, name)
        if entry not in params[section]:
            print(f"{args.params}: no entry {section}.{entry} (entries: {', '.join(params[section])})",
                  file=sys.stderr)
            raise SystemExit(2)
    return args, params


def config_error(stage: str, exc: Exception) -> int:
    """A setting the stage found unusable as it started: one line, exit status 2."""
    print(f"[{stage}] {exc}", file=sys.stderr)
    return 2

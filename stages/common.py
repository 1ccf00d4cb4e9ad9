"""What every stage entry point shares: its command line and the parsed params.yaml."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.config import load_params


def stage_params(description: str, argv: list[str] | None = None, *,
                 positional: tuple[str, str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse `[<positional>] [--params params.yaml]` and load the params file.
    `positional` is (name, help) of a stage's one positional argument (an extractor, a head entry)."""
    parser = argparse.ArgumentParser(description=description)
    if positional is not None:
        parser.add_argument(positional[0], help=positional[1])
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    args = parser.parse_args(argv)
    return args, load_params(args.params)

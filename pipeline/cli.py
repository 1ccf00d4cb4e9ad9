"""The `vemo` command: helpers around the DVC pipeline that a researcher runs by hand.

    vemo manifest --list            the manifest builders and their options
    vemo probe VIDEO...             what the decode stage will see in each file
    vemo weights list|fetch ...     the official checkpoints: where to get them, download and verify
    vemo cache verify CACHE.h5...   read every entry, check its configuration hash and sha256
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable


def _manifest(args: argparse.Namespace) -> int:
    from pipeline.manifests import get_builder, list_builders

    for name in list_builders():
        builder = get_builder(name)
        options = [str(p) for p in inspect.signature(builder).parameters.values()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY]
        doc = (inspect.getdoc(builder) or inspect.getdoc(inspect.getmodule(builder)) or "").splitlines()
        print(f"{name:15s} {doc[0] if doc else ''}  options: {', '.join(options) or 'none'}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    from pipeline.media.probe import probe_video

    bad = 0
    for path in args.videos:
        info = probe_video(path)
        bad += not info.ok
        print(json.dumps(info.as_row()))
    return 1 if bad else 0


def _weights(args: argparse.Namespace) -> int:
    from pipeline.weights import main as weights_main

    return weights_main(args.rest)


def _cache_verify(args: argparse.Namespace) -> int:
    from pipeline.cache.verify import verify_cache

    reports = [verify_cache(path) for path in args.caches]
    for report in reports:
        print("\n".join(report.lines()))
    return 0 if all(r.ok for r in reports) else 1


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "cache": (_cache_verify, "verify cache files entry by entry (exit 1 naming the bad entries)"),
    "manifest": (_manifest, "list the manifest builders (--list)"),
    "probe": (_probe, "probe video files as the decode stage does, one JSON line each"),
    "weights": (_weights, "official checkpoints: list, fetch and verify"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vemo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("manifest", help=COMMANDS["manifest"][1])
    m.add_argument("--list", action="store_true", required=True)
    p = sub.add_parser("probe", help=COMMANDS["probe"][1])
    p.add_argument("videos", nargs="+")
    w = sub.add_parser("weights", help=COMMANDS["weights"][1], add_help=False)
    w.add_argument("rest", nargs=argparse.REMAINDER)
    c = sub.add_parser("cache", help=COMMANDS["cache"][1])
    c.add_argument("action", choices=["verify"])
    c.add_argument("caches", nargs="+", help="cache .h5 files")
    args = parser.parse_args(argv)
    return COMMANDS[args.command][0](args)


if __name__ == "__main__":
    sys.exit(main())

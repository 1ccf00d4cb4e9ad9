"""The `vemo` command: helpers around the DVC pipeline that a researcher runs by hand.

    vemo list [KIND]                every registered part by name: extractors, heads, losses, ...
    vemo manifest --list            the manifest builders and their options
    vemo probe VIDEO...             what the decode stage will see in each file
    vemo weights list|fetch ...     the official checkpoints: where to get them, download and verify
    vemo cache verify CACHE.h5...   read every entry, check its configuration hash and sha256
    vemo predict VIDEO...           a trained head's top classes and attention for new videos (no DVC)
    vemo extract VIDEO... -e NAME   features of video files by named extractors (no DVC project)
    vemo graph [--check]            write stage_graph.yaml (the caches each feat@ and head stage reads)
    vemo exp [DVC_OPTION...]        dvc exp show narrowed to what a sweep compares (docs/dvc.md)
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable


def _manifest(args: argparse.Namespace) -> int:
    from pipeline.manifests.registry import get_builder, list_builders

    for name in list_builders():
        builder = get_builder(name)
        options = [str(p) for p in inspect.signature(builder).parameters.values()
                   if p.kind is inspect.Parameter.KEYWORD_ONLY]
        doc = (inspect.getdoc(builder) or inspect.getdoc(inspect.getmodule(builder)) or "").splitlines()
        print(f"{name:15s} {doc[0] if doc else ''}  options: {', '.join(options) or 'none'}")
    return 0


LIST_KINDS = ("extractor", "head", "loss", "dataset builder", "input kind", "report picture")


def _list_kind(text: str) -> str:
    """A registry kind from the command line: "extractors", "dataset-builder" and "dataset builder" alike."""
    words = text.strip().lower().replace("-", " ").replace("_", " ")
    for kind in LIST_KINDS:
        if words in (kind, f"{kind}s", f"{kind}es"):
            return kind
    raise argparse.ArgumentTypeError(f"unknown kind {text!r}; choose one of {', '.join(LIST_KINDS)}")


def _list(args: argparse.Namespace) -> int:
    import pipeline.heads  # noqa: F401  (registers every head)
    from pipeline.extractors import EXTRACTORS, get_extractor
    from pipeline.features.inputs import LOADERS
    from pipeline.heads.base import HEADS
    from pipeline.heads.losses import LOSSES
    from pipeline.manifests.registry import BUILDERS
    from pipeline.report.pictures import STRIPS

    registries = {r.kind: r for r in (EXTRACTORS, HEADS, LOSSES, BUILDERS, LOADERS, STRIPS)}
    for kind in [args.kind] if args.kind else LIST_KINDS:
        names = registries[kind].names()
        print(f"{kind}{'es' if kind.endswith('s') else 's'} ({len(names)}):")
        for name in names:
            detail = ""
            if kind == "extractor":
                # Listing extractors imports every backbone module; one that fails to import is reported
                # on its line, so the rest of the listing still prints.
                try:
                    detail = f"input: {get_extractor(name).input_kind}"
                except Exception as e:
                    detail = f"cannot import: {type(e).__name__}: {e}"
            print(f"  {name:18s} {detail}".rstrip())
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


def _predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.decode.config import decode_config
    from pipeline.errors import ConfigError
    from pipeline.faces.config import face_config
    from pipeline.features.config import extractor_specs
    from pipeline.inference.plan import make_plan
    from pipeline.inference.predict import predict_videos, summary_lines
    from pipeline.params_check import load_valid_params
    from pipeline.training.trained import load_trained

    params = load_valid_params(args.params)
    if not args.checkpoint and args.head not in params["heads"]:
        raise ConfigError(f"--head {args.head}: no entry heads.{args.head} in {args.params} "
                          f"(entries: {', '.join(params['heads'])})")
    checkpoint = Path(args.checkpoint or f"models/{params['dataset']['name']}/{args.head}/run_00/best.pt")
    head = load_trained(checkpoint).build()
    plan = make_plan({s.cache for s in head.inputs().values()}, decode=decode_config(params),
                     faces=face_config(params), specs=extractor_specs(params))
    summary = predict_videos([Path(v) for v in args.videos], checkpoint=checkpoint, plan=plan,
                             out_dir=Path(args.out), top_k=args.top, device=args.device, strict=args.strict,
                             keep_cache=Path(args.keep_cache) if args.keep_cache else None)
    print("\n".join(summary_lines(summary)))
    print(f"written: {Path(args.out) / 'predictions.json'}")
    return 1 if any(v["status"] != "ok" for v in summary["videos"]) else 0


def _extract(args: argparse.Namespace) -> int:
    from pipeline.extract import run_command

    return run_command(args.videos, video_list=args.list, extractors=args.extractor, weights=args.weights,
                       out=args.out, fmt=args.format, device=args.device, workers=args.workers,
                       params=args.params, overrides=args.set, train_views=args.train_views)


def _graph(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.dvc_graph import stage_graph_text
    from pipeline.graph import STAGE_GRAPH_FILE
    from pipeline.params_check import load_valid_params

    text = stage_graph_text(load_valid_params(args.params))
    out = Path(args.params).parent / STAGE_GRAPH_FILE
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current != text:
            print(f"{out} is out of date with {args.params}: run `vemo graph`", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


EXP_VIEW = ("--only-changed", "--drop", ".*/")
"""`vemo exp`'s narrowing of `dvc exp show`, which has a column for every leaf of params.yaml and every
dependency file or folder (docs/dvc.md says why DVC cannot be told otherwise): only the params and scores
that differ between the rows, and no dependency hashes (every column whose name has a `/` is a path; no
param or score name has one)."""


def _exp(args: argparse.Namespace) -> int:
    import subprocess

    return subprocess.run([sys.executable, "-m", "dvc", "exp", "show", *EXP_VIEW, *args.rest]).returncode


def _cache_verify(args: argparse.Namespace) -> int:
    from pipeline.cache.verify import verify_cache

    reports = [verify_cache(path) for path in args.caches]
    for report in reports:
        print("\n".join(report.lines()))
    return 0 if all(r.ok for r in reports) else 1


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "cache": (_cache_verify, "verify cache files entry by entry (exit 1 naming the bad entries)"),
    "list": (_list, "list every registered part by kind: extractors, heads, losses, dataset builders, ..."),
    "manifest": (_manifest, "list the manifest builders (--list)"),
    "probe": (_probe, "probe video files as the decode stage does, one JSON line each"),
    "weights": (_weights, "official checkpoints: list, fetch and verify"),
    "graph": (_graph, "write stage_graph.yaml, the caches each feat@ and head stage of dvc.yaml reads"),
    "predict": (_predict, "predict new videos with a trained head: top classes, attention JSON and pictures"),
    "extract": (_extract, "features of video files by named extractors, into HDF5 caches or .npy files"),
    "exp": (_exp, "dvc exp show with the columns a sweep compares: changed params and scores, accuracies"),
}


EXAMPLES: dict[str, str] = {
    "cache": "example:\n  vemo cache verify cache/demo/decode.h5 cache/demo/r3d101_conv5.h5",
    "list": "examples:\n  vemo list\n  vemo list extractors\n  vemo list dataset-builders",
    "manifest": "example:\n  vemo manifest --list",
    "probe": "example:\n  vemo probe data/demo/videos/joy/joy_01.mp4 clip.mkv",
    "weights": "examples:\n  vemo weights list\n  vemo weights fetch alexnet_imagenet",
    "graph": "examples:\n  vemo graph\n  vemo graph --check --params params.yaml",
    "exp": "examples:\n  vemo exp\n  vemo exp --keep '.*\\.accuracy$'   (and every head's accuracy)"
           "\n  vemo exp --csv > experiments.csv",
    "predict": "examples:\n  vemo predict clip.mp4\n  vemo predict a.mp4 b.mp4 --head caan --out predict/caan"
               "\n  vemo predict clip.mp4 --checkpoint models/demo/vaanet/run_00/best.pt --device cpu",
}
"""Examples at the end of each subcommand's --help (`vemo weights` has its own, in pipeline/weights.py)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vemo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    lst = sub.add_parser("list", help=COMMANDS["list"][1])
    lst.add_argument("kind", nargs="?", type=_list_kind, metavar="KIND",
                     help=f"one kind only: {', '.join(k.replace(' ', '-') for k in LIST_KINDS)}")
    m = sub.add_parser("manifest", help=COMMANDS["manifest"][1])
    m.add_argument("--list", action="store_true", required=True)
    p = sub.add_parser("probe", help=COMMANDS["probe"][1])
    p.add_argument("videos", nargs="+")
    w = sub.add_parser("weights", help=COMMANDS["weights"][1], add_help=False)
    w.add_argument("rest", nargs=argparse.REMAINDER)
    r = sub.add_parser("predict", help=COMMANDS["predict"][1],
                       description="Decode the videos, run the extractors the head needs and the head, in "
                       "this process (no DVC; the dataset's caches are not touched). Exit status 1 if a "
                       "video failed.")
    r.add_argument("videos", nargs="+", help="video files")
    r.add_argument("--head", default="vaanet", help="entry of `heads:` in params.yaml (default: vaanet)")
    r.add_argument("--checkpoint", help="default: models/<dataset.name>/<head>/run_00/best.pt")
    r.add_argument("--out", default="predict", help="folder for predictions.json and the pictures")
    r.add_argument("--params", default="params.yaml",
                   help="decode, faces and features settings (default: params.yaml)")
    r.add_argument("--top", type=int, default=3, help="classes printed per video (default: 3)")
    r.add_argument("--device", default="auto", help="device of the head: auto, cpu, cuda[:N]")
    r.add_argument("--strict", action="store_true",
                   help="refuse (instead of warn) when the cache configuration differs from the checkpoint's")
    r.add_argument("--keep-cache", help="write the videos' caches to this folder instead of a temporary one")
    e = sub.add_parser(
        "extract", help=COMMANDS["extract"][1], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Decode the videos and run the named extractors with their upstream stages (the DVC\n"
        "stages' code; no DVC project needed; docs/extract.md). Settings: the library's defaults (those\n"
        "of params.yaml), --params, then --set. Exit status 0 when some video has its features, 1 when\n"
        "none has; the failed videos are listed in OUT/failures.csv.",
        epilog="examples:\n  vemo extract clips/*.mp4 -e mfcc -e alexnet_fc7 --format npy --out feats\n"
        "  vemo extract --list videos.txt -e vggface_fc6 --weights weights/vgg_face_dag.pth "
        "--set decode.face_rate=2")
    e.add_argument("videos", nargs="*", help="video files")
    e.add_argument("--list", help="a file listing video paths, one a line (# comments)")
    e.add_argument("-e", "--extractor", action="append", required=True, help="an extractor (`vemo list "
                   "extractors`); repeat for several")
    e.add_argument("--weights", action="append", help="checkpoint: PATH (the one named extractor with "
                   "weights) or NAME=PATH; repeatable; default random (labelled RANDOM WEIGHTS)")
    e.add_argument("--out", default="features", help="output folder (default: features)")
    e.add_argument("--format", choices=["h5", "npy"], default="h5",
                   help="h5: OUT/cache/NAME.h5 (default); npy: also OUT/NAME/VIDEO_ID.ARRAY.npy")
    e.add_argument("--device", help="auto, cpu, cuda or cuda:N for every extractor (default: settings')")
    e.add_argument("--workers", type=int, help="Dask worker processes (default: dask.workers, 2)")
    e.add_argument("--params", help="a params.yaml whose seed/dask/decode/faces/features sections to use")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one setting, e.g. decode.segments=4; repeatable")
    e.add_argument("--train-views", action="store_true",
                   help="also the decode.train_views random training views (default: the test view only)")
    g = sub.add_parser("graph", help=COMMANDS["graph"][1],
                       description="Write stage_graph.yaml beside the params file, from its `features:` and "
                       "`heads:` entries and the library's stage graph; dvc.yaml reads it. Run it after "
                       "adding or removing an entry.")
    g.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    g.add_argument("--check", action="store_true", help="exit 1 when the file is out of date, write nothing")
    x = sub.add_parser("exp", help=COMMANDS["exp"][1],
                       description=f"Run `dvc exp show {' '.join(EXP_VIEW)}` with the options given after "
                       "it (any of `dvc exp show --help`'s; a --drop or --keep of yours adds to these): the "
                       "params and scores that differ between the experiments (docs/dvc.md).")
    x.add_argument("rest", nargs=argparse.REMAINDER, metavar="DVC_OPTION")
    c = sub.add_parser("cache", help=COMMANDS["cache"][1])
    c.add_argument("action", choices=["verify"])
    c.add_argument("caches", nargs="+", help="cache .h5 files")
    for name, subparser in sub.choices.items():
        if name in EXAMPLES:          # every subcommand's --help ends with examples (tests/test_cli.py)
            subparser.epilog, subparser.formatter_class = EXAMPLES[name], argparse.RawDescriptionHelpFormatter
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["weights"]:
        # its own parser: `vemo weights --help` and `vemo weights fetch --help` are its help, not vemo's
        return _user_errors(lambda: _weights(argparse.Namespace(rest=argv[1:])))
    if argv[:1] == ["exp"] and not {"-h", "--help"} & set(argv[1:]):
        return _exp(argparse.Namespace(rest=argv[1:]))   # its options are dvc's, which vemo's parser refuses
    args = parser.parse_args(argv)
    if args.command == "extract" and not (args.videos or args.list):
        parser.error("extract: give video files or --list FILE")
    return _user_errors(lambda: COMMANDS[args.command][0](args))


def _user_errors(run: Callable[[], int]) -> int:
    """`run()`, with a mistake the user can fix (a setting, a file that is not there) as one line on stderr
    and exit status 2 instead of a traceback."""
    from pipeline.errors import ConfigError

    try:
        return run()
    except (ConfigError, FileNotFoundError) as exc:
        print(f"vemo: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

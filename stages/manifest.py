"""DVC stage ``manifest``: build the dataset's manifest with the builder that params.yaml names.

    python -m stages.manifest [--params params.yaml] [--out reports/<dataset.name>]

Reads ``dataset`` (name, builder, root, lists, optional options), ``seed``, ``train`` (polarity, target,
protocol) and each ``heads`` entry's loss; writes ``<out>/manifest.csv`` (+ ``manifest.classes.txt``),
``<out>/inventory.csv`` (size and content fingerprint of each video: what ``decode`` depends on instead of
the folder) and ``<out>/manifest_report.json``. Missing, unlisted and rejected entries (a FIFO or a dangling
link named like a video) are reported, not fatal, and so are videos holding the same bytes (in two splits,
under two labels, or twice in one: ``pipeline/manifests/duplicates.py``). The stage fails, in seconds
and naming the cause, when the manifest would be empty, when a list is malformed (naming the file and the
line), when a head trains with PCCE on classes that have no polarity, or when ``train.protocol: ve8_runs``
meets a class with a single video; a class with a single video under the other protocols is a warning.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.evaluation.detection import GroundTruthError, read_ground_truth
from pipeline.file_memo import FileMemo, sha256_of
from pipeline.manifests.common import scan_folder
from pipeline.manifests.duplicates import Duplicates, find_duplicates, with_copies
from pipeline.manifests.format import Manifest, read_manifest
from pipeline.manifests.inventory import take_inventory
from pipeline.manifests.polarity import missing_polarity
from pipeline.manifests.protocols import RANDOM_PROTOCOLS, Units, ensure_split
from pipeline.manifests.registry import run_builder
from pipeline.manifests.report import format_summary, write_outputs
from pipeline.manifests.result import BuildResult, ManifestError
from pipeline.params_check import exit_on, load_valid_params
from pipeline.params_names import registry_problems
from pipeline.paths import dataset_paths
from pipeline.preflight import preflight


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the dataset manifest.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=None, help="default: reports/<dataset.name>")
    return parser.parse_args(argv)


def build(params: dict[str, Any], source: Path,
          out: Path) -> tuple[BuildResult, list[tuple[str, int, str]], Duplicates]:
    """The checked result, the inventory rows (``pipeline.manifests.inventory``) and the videos holding
    the same bytes, marked in the manifest before a split is drawn for a dataset without one, so that it
    keeps each clip's copies on one side; `params` passed `params_check`, so the dataset section has its
    keys."""
    ds = params["dataset"]
    root = Path(ds["root"])
    if not root.is_dir():
        raise ManifestError(f"{source}: dataset.root {root} is not a folder (the demo's is made by "
                            "`dvc repro demo`)")
    result = run_builder(ds["builder"], root, ds.get("lists"), ds.get("options") or {})
    scan = scan_folder(root)
    rejected = dict(scan.rejected) | dict(result.rejected)
    result, inventory = take_inventory(replace(result, rejected=sorted(rejected.items()), others=scan.others),
                                       root)
    duplicates = duplicates_of(result, inventory, params, out)
    result = replace(result, manifest=with_copies(result.manifest, list(duplicates.groups)))
    result = ensure_split(result, seed=int(params.get("seed", 0)))
    check_single_videos(result, params, source)
    check_targets(result, params, source)
    check_polarity(result, params, source)
    return result, inventory, duplicates


def random_protocol(params: dict[str, Any]) -> str:
    """The protocol that draws train and test at random from all videos when every head trains under one
    (``train.protocol`` or a head's override), or "" when some head uses the manifest's split column."""
    trains = list(head_trains(params).values()) or [params.get("train") or {}]
    protocols = {str(t.get("protocol", "fixed")) for t in trains}
    return sorted(protocols)[0] if protocols <= set(RANDOM_PROTOCOLS) else ""


# Beside the manifest, not a DVC output (.gitignore): the full hashes of the duplicates found last run,
# so that an unchanged dataset is not read in full again on every `dvc repro`; a machine without it (a
# colleague's, a fresh clone) reads those files once.
HASH_CACHE = ".content_hashes.json"


def duplicates_of(result: BuildResult, inventory: list[tuple[str, int, str]],
                  params: dict[str, Any], out: Path) -> Duplicates:
    """The manifest's groups of videos holding the same bytes: said, never fatal (docs/dataset.md)."""
    protocol = random_protocol(params)
    cache = FileMemo.load(out / HASH_CACHE)
    targets = tuple(sorted({"label"} | {str(t.get("target", "label")) for t in head_trains(params).values()}))
    groups = find_duplicates(result.manifest.records, Path(params["dataset"]["root"]), inventory,
                             random_split=bool(protocol), cache=cache, targets=targets)
    cache.save(out / HASH_CACHE)
    return Duplicates(tuple(groups), protocol)


# Beside it (.gitignore): the checkpoints found to fit their extractors, kept while each file is unchanged.
WEIGHTS_MEMO = ".weights_checked.json"


def check_runnable(params: dict[str, Any], manifest: Manifest, out: Path, source: Path) -> None:
    """Raise naming what would stop a later stage on this machine (`pipeline/preflight.py`: checkpoints,
    devices), before any video is decoded; say what would stop a stage whose outputs are already there."""
    memo = FileMemo.load(out / WEIGHTS_MEMO)
    found = preflight(params, {r.video_id for r in manifest.records}, dataset_paths(params), memo)
    memo.save(out / WEIGHTS_MEMO)
    for line in found.warnings:
        print(f"manifest: warning: {line}", file=sys.stderr)
    if found.stops:
        raise ManifestError("\n".join(f"{source}: {line}" for line in found.stops))


# Beside the manifest, a DVC output that every evaluate@ stage depends on: the sha256 of each detection
# ground-truth CSV a head's evaluation reads. The CSV is named by a param (a path, which may be null), not
# a DVC dependency, so without this an edited CSV at the same path left the detection mAP stale.
GROUND_TRUTH = "ground_truth.json"


def ground_truth_files(params: dict[str, Any], manifest: Manifest, source: Path,
                       warnings: list[str]) -> dict[str, str]:
    """Path -> sha256 of each `detection_ground_truth` CSV some head's evaluation reads, each read and
    checked now (ManifestError naming the file and line), not by evaluate@ after the training; a CSV that
    names no video of the manifest is a warning (its mAP would be computed over nothing)."""
    found: dict[str, str] = {}
    ids = {r.video_id for r in manifest.records}
    for key, merged in head_trains(params).items():
        path = merged.get("detection_ground_truth")
        if not path or str(path) in found:
            continue
        where = "train.detection_ground_truth" if (params.get("train") or {}).get("detection_ground_truth") \
            == path else f"heads.{key}.train.detection_ground_truth"
        try:
            truth = read_ground_truth(path)
            found[str(path)] = sha256_of(path)
        except FileNotFoundError:
            raise ManifestError(f"{source}: {where}: {path} not found") from None
        except (GroundTruthError, OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{source}: {where}: {exc}") from None
        if not set(truth) & ids:
            warnings.append(f"{where}: {path} names no video of the manifest (its first: "
                            f"{next(iter(truth), 'none')!r}): the detection mAP has nothing to score")
    return found


def write_ground_truth(files: dict[str, str], out: Path) -> None:
    tmp = out / f"{GROUND_TRUTH}.tmp"
    tmp.write_text(json.dumps({"files": dict(sorted(files.items()))}, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out / GROUND_TRUTH)


def target_classes(manifest: Manifest, target: str) -> list[str]:
    """The classes a head trains on: the labels, or the values of another manifest column (as
    ``pipeline.training.stage`` reads them)."""
    if target == "label":
        return list(manifest.classes)
    return sorted({r.extra.get(target, "") for r in manifest.records} - {""})


def loss_of(entry: dict[str, Any]) -> str:
    """The loss a head entry trains with: its ``loss`` option, else its head's default (the heads are only
    imported here, for an entry that names none)."""
    options = entry.get("options") or {}
    if "loss" in options:
        return str(options["loss"])
    import inspect

    from pipeline.heads.base import HEADS

    parameter = inspect.signature(HEADS.get(entry["head"])).parameters.get("loss")
    return "" if parameter is None else str(parameter.default)


def head_trains(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per head entry, its `train` settings: the shared section with the entry's non-null overrides (null
    under heads.<key>.train keeps the shared value; pipeline/training/config.py: train_overrides)."""
    train = params.get("train") or {}
    return {key: {**train, **{k: v for k, v in (entry.get("train") or {}).items() if v is not None}}
            for key, entry in (params.get("heads") or {}).items()}


def check_targets(result: BuildResult, params: dict[str, Any], source: Path) -> None:
    """Raise naming a `train.target` that is not a column of the manifest with a value for every video:
    ``train@`` would otherwise fail on it only after the whole extraction."""
    columns = sorted({k for r in result.manifest.records for k in r.extra})
    for key, merged in head_trains(params).items():
        target = str(merged.get("target", "label"))
        if target == "label":
            continue
        where = "train.target" if (params.get("train") or {}).get("target") == target else \
            f"heads.{key}.train.target"
        if target not in columns:
            raise ManifestError(f"{source}: {where} {target!r} is not a column of the manifest (columns "
                                f"besides label: {', '.join(columns) or 'none'})")
        if not all(r.extra.get(target) for r in result.manifest.records):
            raise ManifestError(f"{source}: {where} {target!r}: some videos have no value in that manifest "
                                "column")


def check_polarity(result: BuildResult, params: dict[str, Any], source: Path) -> None:
    """Raise naming the classes without a polarity and the heads that need one (PCCE), before any video is
    decoded; ``train@`` would otherwise fail only after the whole extraction."""
    for key, merged in head_trains(params).items():
        entry = params["heads"][key]
        classes = target_classes(result.manifest, str(merged.get("target", "label")))
        given = merged.get("polarity") or {}
        stray = sorted(set(given) - set(classes))
        if stray and (said := f"train.polarity names {stray}, which are no class of the manifest "
                               f"(classes: {', '.join(classes)}): ignored") not in result.warnings:
            result.warnings.append(said)      # a misspelt class keeps its default polarity, so say it
        missing = missing_polarity(classes, given or None)
        if missing and loss_of(entry) == "pcce":
            example = ", ".join(f"{c}: 1" for c in missing)
            raise ManifestError(
                f"{source}: heads.{key} trains with PCCE (loss: pcce), which needs the polarity of each "
                f"class, and classes {missing} have none; add them to train.polarity in {source} "
                f"(e.g. `polarity: {{{example}}}`, 1 positive, -1 negative, 0 neutral), or give "
                f"heads.{key} `loss: ce`")


def check_single_videos(result: BuildResult, params: dict[str, Any], source: Path) -> None:
    """A class with one video can be trained on or tested, never both: an error under ``ve8_runs`` (its
    stratified splits need two), a warning naming the class otherwise."""
    counts = Counter(Units(result.manifest.records).label_list())    # a clip's copies count once
    single = sorted(c for c, n in counts.items() if n == 1)
    if not single:
        return
    protocol = (params.get("train") or {}).get("protocol", "fixed")
    if protocol == "ve8_runs":
        raise ManifestError(f"{source}: classes {single} have a single video; train.protocol ve8_runs "
                            "needs at least two per class (add videos, or drop the class)")
    result.warnings.append(f"classes {single} have a single video: it is either trained on or tested, "
                           "never both")


def kept_without_videos(params: dict[str, Any], out: Path) -> bool:
    """A colleague who pulled the manifest and the feature caches has no dataset folder (docs/team.md):
    the manifest they pulled stays (said in one line) and the stages downstream of the caches run; the
    stages that read videos are skipped by `dvc repro --allow-missing`, or fail naming each file."""
    root = Path(params["dataset"]["root"])
    if root.exists() or not (out / "manifest.csv").is_file() or not (out / "inventory.csv").is_file():
        return False
    videos = len((out / "manifest.csv").read_text(encoding="utf-8").splitlines()) - 1
    print(f"manifest: dataset.root {root} does not exist on this machine: keeping {out / 'manifest.csv'} "
          f"({videos} videos, pulled or listed before); decode cannot run here, the heads can "
          "(set dataset.root in params.local.yaml where the videos are)", file=sys.stderr)
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # the first stage of a run checks everything, the names and options of every extractor and head too
    params = load_valid_params(args.params)
    exit_on(registry_problems(params), args.params)
    out = args.out or Path("reports") / params["dataset"]["name"]
    try:
        if kept_without_videos(params, out):
            # the heads still run here, so the ground truth they read is this machine's file
            write_ground_truth(ground_truth_files(params, read_manifest(out / "manifest.csv"), args.params,
                                                  []), out)
            return 0
        result, inventory, duplicates = build(params, args.params, out)
        check_runnable(params, result.manifest, out, args.params)
        truths = ground_truth_files(params, result.manifest, args.params, result.warnings)
    except (ValueError, OSError) as e:       # ManifestError, or a pulled manifest that is malformed
        for line in str(e).splitlines():      # one line per problem found
            print(f"manifest: {line}", file=sys.stderr)
        return 2
    ds = params["dataset"]
    print(format_summary(result, duplicates=duplicates))
    if not len(result.manifest):
        print(f"manifest: no video of {ds['root']} made it into the manifest", file=sys.stderr)
        return 1
    print(f"wrote {write_outputs(result, out, inventory, duplicates)}")
    write_ground_truth(truths, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

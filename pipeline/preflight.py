"""What would stop a later stage of the run on this machine, found by its first stage (`manifest`) before
any video is decoded, instead of by `feat@<name>` or `train@<key>` after hours of extraction: the
checkpoints params.yaml names (missing, no checkpoint, one that does not fit its extractor) and the devices
it asks for (a CUDA device that is not here).

A stage whose outputs are all there already (an extractor's cache holding every video of the manifest, a
head with a trained model) runs no network and needs neither: a colleague who pulled them (docs/team.md)
gets a warning, not a stop."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pipeline.cache.reader import CacheReader
from pipeline.devices import this_machine
from pipeline.errors import ConfigError
from pipeline.extractors import get_extractor, list_extractors
from pipeline.features.config import check_runnable, extractor_specs
from pipeline.file_memo import FileMemo
from pipeline.paths import DatasetPaths

CHECKPOINT_ERRORS = (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError)
"""What reading a file that is no fitting checkpoint raises (torch's loader, a strict load, the extractors'
own format checks): the feature stage would stop on the same."""


def weights_problems(params: dict[str, Any], memo: FileMemo | None = None) -> dict[str, str]:
    """The `features.<name>.weights` files that the feature stage would refuse (`checkpoint_problem`),
    one line per extractor name. Found by the run's first stage, not by `feat@<name>` after hours of
    decoding. `memo` keeps the verdict of a file that fits while it is unchanged: the first stage runs on
    every `dvc repro`, and VGG16's file is half a gigabyte. Entries whose name is unknown are left to
    `registry_problems`."""
    problems: dict[str, str] = {}
    for name, section in params["features"].items():
        if name not in list_extractors():
            continue
        weights = str(section["weights"])
        problem = checkpoint_problem(name, weights, section.get("options") or {}, memo)
        if problem:
            problems[name] = f"features.{name}.weights: {Path(weights).expanduser()} {problem}"
    return problems


def checkpoint_problem(name: str, weights: str, options: dict[str, Any],
                       memo: FileMemo | None = None) -> str | None:
    """Why extractor `name` with `options` would refuse `weights` (a checkpoint path): missing, a folder,
    unreadable, no checkpoint, or one whose keys and shapes do not fit (read and loaded into the
    architecture on the meta device, through the extractor's own loader); None when it loads, or for
    "random" / "none"."""
    if weights in ("random", "none"):        # before the class: its module imports torch
        return None
    cls = get_extractor(name)
    if cls.recorded_weights("random") == "none":
        return None
    options = {k: v for k, v in options.items() if k != "precision"}
    path = Path(weights).expanduser()
    if not path.exists():
        return ("not found (`vemo weights list` says where to get each checkpoint; `weights: random` runs "
                "without one, labelled as such)")
    if not path.is_file():
        return "is not a file"
    salt = f"{name}:{cls.version}:{sorted(options.items())!r}"
    try:
        (memo or FileMemo()).get(path, partial(_fits, cls, options=options), salt=salt)
    except CHECKPOINT_ERRORS as exc:
        said = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"does not load into {name}: {_first_lines(said)}"
    return None


def _fits(cls: type, path: Path, *, options: dict[str, Any]) -> str:
    cls.check_checkpoint(path, **options)
    return "fits"


def _first_lines(message: str, limit: int = 300) -> str:
    """A loader's message on one line: torch's strict load lists every missing key on lines of its own."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def device_problems(params: dict[str, Any]) -> dict[str, list[str]]:
    """Per stage (`feat@<name>`, `train@<key>`), the devices it asks for that this machine lacks: an
    extractor's on a LocalCluster (the workers of an external cluster are elsewhere: not checked here),
    and each head's `train.device` (training runs in the DVC process). One line each."""
    problems: dict[str, list[str]] = {}
    specs = extractor_specs(params)
    # the cluster's kind matters only to a cuda device or a reduced precision (Dask's import: 0.5 s)
    external = any(s.device.startswith("cuda") or s.options.get("precision", "fp32") != "fp32"
                   for s in specs.values()) and external_cluster(params)
    for name, spec in specs.items():
        try:
            check_runnable(spec, external=external)
        except ConfigError as exc:
            problems.setdefault(f"feat@{name}", []).append(str(exc))
    shared = (params.get("train") or {}).get("device", "auto")
    for key, entry in (params.get("heads") or {}).items():
        own = (entry.get("train") or {}).get("device")
        device = str(own if own is not None else shared)
        try:
            this_machine(device)
        except (ValueError, RuntimeError) as exc:
            where = f"heads.{key}.train.device" if own is not None else "train.device"
            problems.setdefault(f"train@{key}", []).append(f"{where}: {exc}")
    return problems


def external_cluster(params: dict[str, Any]) -> bool:
    from pipeline.engine.cluster import cluster_config

    return cluster_config(params).external


@dataclass
class Preflight:
    stops: list[str] = field(default_factory=list)      # the run cannot go on
    warnings: list[str] = field(default_factory=list)   # a stage whose outputs are there would stop if run


def preflight(params: dict[str, Any], video_ids: set[str], paths: DatasetPaths,
              memo: FileMemo | None = None) -> Preflight:
    """Every problem of `weights_problems` and `device_problems`, sorted into stops and warnings by whether
    the stage's outputs are already there (for the manifest's `video_ids`)."""
    problems = {f"feat@{name}": [line] for name, line in weights_problems(params, memo).items()}
    for stage, lines in device_problems(params).items():
        problems.setdefault(stage, []).extend(lines)
    found = Preflight()
    for stage, lines in problems.items():
        kind, name = stage.split("@")
        done = video_ids <= cached_ids(paths.cache_file(name)) if kind == "feat" else \
            any((Path("models") / paths.name / name).glob("run_*/best.pt"))
        if done:
            found.warnings += [f"{line}; the outputs of {stage} are all there, so it needs this only if it "
                               "runs again" for line in lines]
        else:
            found.stops += lines
    return found


def cached_ids(path: Path) -> set[str]:
    """The complete entries of a cache file; none when it is absent or cannot be read."""
    if not path.is_file():
        return set()
    try:
        with CacheReader(path) as reader:
            return set(reader.ids())
    except (OSError, ValueError, KeyError):
        return set()

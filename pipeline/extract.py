"""`vemo extract`: features of a list of video files, without a DVC project, by the stages' own drivers.

    VIDEO... ─plan (inference.plan: the named extractors and everything upstream of them)─>
      decode ─> [faces] ─> [mfcc] ─> extractors     each by its stage's driver (`run_decode`, `run_faces`,
                                                    `run_features`) on one LocalCluster shared by all
      <out>/cache/<name>.h5    one cache per stage or extractor, the stages' format and configuration
      <out>/reports/           the stages' summaries, failure lists and probe table
      <out>/failures.csv       one line per failed video: video_id, path, stage, reason
      <out>/<extractor>/       with --format npy: <video_id>.<array>.npy per video and cache array
                               (<output>.npy and <output>_times_ms.npy), extractor.json, index.json

Decisions, recorded here and in docs/extract.md:
- Same code as the stages: each cache is written by the stage's own driver, so the cache layout, the resume
  (a video already complete in a cache, from the same file and configuration, is skipped), the progress bar
  and the failure lists are the stages'. `pipeline.inference` supplies the plan (`make_plan`) and the
  reduced decode configuration (`predict_decode_config`): only the decode outputs the named extractors read
  are decoded and, unless `train_views`, only the deterministic test view. Each output is computed on its
  own, so the features equal those of a DVC project's caches (view 0) for the same settings.
- Settings: `pipeline.defaults` (the library's copy of params.yaml's seed, dask, decode, faces and features
  sections; no params.yaml is read unless given), then `overrides` ("decode.segments=4", as `dvc exp run
  -S`), checked like params.yaml (one line per mistake).
- Weights: "random" unless given. A bare path is for the one named extractor that loads weights; with
  several, NAME=PATH each. Random-weight features are labelled as the stages label them (the cache header,
  the NOTE line) and in `extractor.json` and the Python API's `random_weights`.
- Failures: a video that fails at a stage is not given to the later ones; `failures.csv` lists it once,
  with that stage. The exit status is the stages': 0 when at least one video has every named extractor's
  features, 1 when none has. A user's mistake (unknown extractor, missing weights file, bad setting) is a
  `ConfigError` before any video is read (`vemo` prints one line, exit 2).
"""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipeline.cache import CacheReader
from pipeline.decode.config import decode_config, decode_storage
from pipeline.decode.stage import run_decode
from pipeline.defaults import FALLBACK_FEATURE, SECTIONS, default_settings
from pipeline.engine.cluster import ClusterConfig, cluster_config, local_cluster
from pipeline.engine.summary import StageSummary
from pipeline.errors import ConfigError
from pipeline.extractors import list_extractors
from pipeline.faces.config import face_config
from pipeline.faces.stage import run_faces
from pipeline.features.config import ExtractorSpec, check_runnable, extractor_spec
from pipeline.features.stage import run_features
from pipeline.graph import STAGE_SOURCES, cache_order, sources_of
from pipeline.inference.extract import predict_decode_config
from pipeline.inference.plan import Plan, make_plan
from pipeline.inference.predict import video_ids
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.params_check import check_settings, load_yaml
from pipeline.preflight import checkpoint_problem

FORMATS = ("h5", "npy")
FAILURE_COLUMNS = ("video_id", "path", "stage", "reason")
RANDOM_NOTE = "RANDOM WEIGHTS: features of an untrained network, they exercise the pipeline only"


@dataclass(frozen=True)
class StageFailure:
    video_id: str
    path: str
    stage: str
    reason: str


@dataclass
class ExtractResult:
    """What an extract run left in `out`: the videos (id -> file), the cache of every stage and extractor
    it ran, the named extractors' weights ("random", "none" or sha256) and the failed videos."""

    out: Path
    videos: dict[str, Path]
    extractors: tuple[str, ...]
    caches: dict[str, Path]
    weights: dict[str, str] = field(default_factory=dict)
    failures: list[StageFailure] = field(default_factory=list)

    @property
    def ok(self) -> list[str]:
        """The ids of the videos with every named extractor's features."""
        failed = {f.video_id for f in self.failures}
        return [v for v in self.videos if v not in failed]

    @property
    def random_weights(self) -> list[str]:
        return [name for name in self.extractors if self.weights.get(name) == "random"]

    def exit_code(self) -> int:
        """The stages' rule: 0 when some video has its features (`StageSummary.exit_code`)."""
        return 0 if self.ok else 1


# ---- settings ---------------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str], Any]:
    """"decode.segments=4" -> (["decode", "segments"], 4); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. decode.segments=4")
    try:
        parsed = load_yaml(value)
    except yaml.YAMLError:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML") from None
    return key.strip().split("."), parsed


def extract_settings(params: Mapping[str, Any] | None = None,
                     overrides: Iterable[str] | Mapping[str, Any] = ()) -> dict[str, Any]:
    """The seed, dask, decode, faces and features sections: the shipped defaults (`pipeline.defaults`), or
    those of a parsed params.yaml, with `overrides` ("section.key=value" strings, or a mapping of the same
    dotted keys to values) applied; ConfigError listing every mistake."""
    settings = default_settings()
    if params is not None:
        settings.update({k: params[k] for k in SECTIONS if k in params})
    pairs = (overrides.items() if isinstance(overrides, Mapping)
             else (parse_override(text) for text in overrides))
    for key, value in pairs:
        _set(settings, key.split(".") if isinstance(key, str) else list(key), value)
    problems = check_settings(settings)
    if problems:
        raise ConfigError("; ".join(f"setting {p}" for p in problems))
    return settings


def _set(settings: dict[str, Any], path: list[str], value: Any) -> None:
    """settings[a][b]... = value, creating sections on the way (a new `features.<name>` starts as the
    fallback entry, so that one key of it can be given)."""
    node = settings
    for depth, part in enumerate(path[:-1]):
        if part not in node:
            node[part] = {**FALLBACK_FEATURE} if depth == 1 and path[0] == "features" else {}
        if not isinstance(node[part], dict):
            where = ".".join(path[:depth + 1])
            raise ConfigError(f"setting {'.'.join(path)}: {where} is a value, not a section")
        node = node[part]
    node[path[-1]] = value


def check_extractors(names: Sequence[str]) -> tuple[str, ...]:
    """The names, once each, in order; ConfigError naming an unknown one and listing the valid ones."""
    known = list_extractors()
    for name in names:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ConfigError(f"unknown extractor {name!r} ({hint}valid: {', '.join(known)})")
    if not names:
        raise ConfigError(f"name at least one extractor (valid: {', '.join(known)})")
    return tuple(dict.fromkeys(names))


def weights_map(extractors: Sequence[str], weights: str | Sequence[str] | Mapping[str, str] | None,
                settings: Mapping[str, Any]) -> dict[str, str]:
    """Extractor -> checkpoint path from `--weights` values: PATH (the one named extractor that loads
    weights) or NAME=PATH; every file must exist (ConfigError otherwise)."""
    if weights is None:
        return {}
    items = [weights] if isinstance(weights, str) else weights
    given: dict[str, str] = dict(items) if isinstance(items, Mapping) else {}
    loading = [n for n in extractors if _feature_section(settings, n)["weights"] != "none"]
    for item in ([] if isinstance(items, Mapping) else items):
        name, sep, path = item.partition("=")
        if sep and name in list_extractors():
            given[name] = path
        elif len(loading) == 1:
            given[loading[0]] = item
        else:
            which = f"several load weights ({', '.join(loading)})" if loading else "none loads weights"
            raise ConfigError(f"--weights {item}: of the named extractors {which}; give NAME=PATH")
    for name, path in given.items():
        if name not in extractors:
            raise ConfigError(f"--weights {name}={path}: {name} is not one of the named extractors "
                              f"({', '.join(extractors)})")
        if path != "random" and not Path(path).is_file():
            raise ConfigError(f"--weights {name}={path}: no such file (see `vemo weights list`)")
    return given


def _feature_section(settings: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {**FALLBACK_FEATURE, **settings["features"].get(name, {})}


def extractor_specs_for(order: Sequence[str], settings: Mapping[str, Any], *, weights: Mapping[str, str],
                        device: str | None) -> dict[str, ExtractorSpec]:
    """The spec of every extractor of `order` from the settings (the fallback entry for an extractor they
    do not list), with the given weights and device."""
    specs = {}
    for name in order:
        if name in STAGE_SOURCES:
            continue
        section = {**_feature_section(settings, name)}
        if name in weights:
            section["weights"] = weights[name]
        if device is not None:
            section["device"] = device
        specs[name] = extractor_spec({"seed": settings["seed"], "features": {name: section},
                                      "precision": settings.get("precision", "fp32")}, name)
    return specs


def read_video_list(path: str | Path) -> list[Path]:
    """One video path a line (blank lines and lines starting with # skipped), as given: relative paths
    are relative to the current folder, as a shell would read them."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:      # a folder, an unreadable or a binary file
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"--list {path}: cannot be read ({reason})") from None
    return [Path(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]


# ---- the run ----------------------------------------------------------------------------------------


def make_extract_plan(extractors: Sequence[str], settings: Mapping[str, Any], *,
                      weights: Mapping[str, str] | None = None, device: str | None = None) -> Plan:
    """The caches to compute for `extractors` (with their upstream: faces before vggface_fc6, mfcc before
    mfcc_resnet18) and the configurations to compute them with."""
    order = cache_order(set(extractors))
    specs = extractor_specs_for(order, settings, weights=weights or {}, device=device)
    return make_plan(set(extractors), decode=decode_config(dict(settings)), faces=face_config(dict(settings)),
                     specs=specs)


def extract_videos(videos: Sequence[str | Path], extractors: Sequence[str], *, out: str | Path,
                   settings: Mapping[str, Any] | None = None, weights: Mapping[str, str] | None = None,
                   device: str | None = None, workers: int | None = None, fmt: str = "h5",
                   train_views: bool = False) -> ExtractResult:
    """Compute `extractors` for `videos` into `out` (layout: module docstring); returns what was written.

    `settings`: `extract_settings()` by default. `weights`: extractor -> checkpoint ("random" when not
    given). `device`: every extractor's device (auto, cpu, cuda[:N]); None keeps the settings'. `workers`:
    LocalCluster worker processes (None: settings' dask.workers). `fmt`: "h5" (the caches only) or "npy"
    (also one .npy per video and array). `train_views`: also decode and extract the decode settings'
    random training views, as the decode stage does (default: the deterministic test view only)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    names = check_extractors(list(extractors))
    settings = dict(settings or extract_settings())
    plan = make_extract_plan(names, settings, weights=weights, device=device)
    cluster = cluster_config(settings)
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"--workers {workers}: give at least 1")
        cluster = replace(cluster, workers=workers)
    for name, spec in plan.specs.items():
        # a wrong device or precision, a checkpoint that does not fit: before any video is read
        check_runnable(spec, external=cluster.external)
        if problem := checkpoint_problem(name, spec.weights, spec.options):
            raise ConfigError(f"--weights {name}={spec.weights}: {problem}")
    out = Path(out)
    try:       # before any worker starts: --out naming a file, or a folder that cannot be made
        (out / "cache").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot make the output folder there ({exc.strerror or exc})") \
            from None
    ids = {video_id: path.absolute() for video_id, path in video_ids([Path(v) for v in videos]).items()}
    if not ids:
        raise ConfigError("no video given")
    result = ExtractResult(out, ids, names, {n: out / "cache" / f"{n}.h5" for n in plan.order})
    decode_cfg = predict_decode_config(plan, test_view_only=not train_views)
    # no more workers than videos: each stage's tasks hold one video or more, and every worker would
    # import torch and build each network
    with (nullcontext(None) if cluster.external else local_cluster(cluster, tasks=len(ids))) as running:
        shared = cluster if running is None else replace(cluster, scheduler=running.scheduler_address)
        _run_plan(plan, result, decode_cfg, shared, decode_storage(settings))
    _write_failures(out / "failures.csv", result.failures)
    for name in names:
        if result.caches[name].is_file():
            with CacheReader(result.caches[name]) as reader:
                result.weights[name] = str(reader.metadata.get("weights", ""))
    if fmt == "npy":
        for name in names:
            export_npy(result, name)
    return result


def _run_plan(plan: Plan, result: ExtractResult, decode_cfg: Any, cluster: ClusterConfig,
              storage: dict[str, Any]) -> None:
    """Each cache of the plan by its stage's driver, upstream first, each given the videos that have not
    failed so far in this run."""
    reports = result.out / "reports"
    hashes: dict[str, str] = {}
    failed: set[str] = set()
    for name in plan.order:
        records = [VideoRecord(v, str(p), "") for v, p in result.videos.items() if v not in failed]
        if not records:
            break
        manifest, path = Manifest(records, []), result.caches[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "decode":
            summary = run_decode(manifest=manifest, root="/", cache_path=path, reports_dir=reports,
                                 cfg=decode_cfg, cluster=cluster, **storage)
        elif name == "faces":
            summary = run_faces(manifest=manifest, root="/", decode_path=result.caches["decode"],
                                decode_hash=hashes["decode"], cache_path=path, reports_dir=reports,
                                cfg=plan.faces, cluster=cluster)
        else:
            sources = {s: str(result.caches[s]) for s in sources_of(name)}
            summary = run_features(spec=plan.specs[name], manifest=manifest, root="/", sources=sources,
                                   upstream={s: hashes[s] for s in sources}, cache_path=path,
                                   reports_dir=reports, cluster=cluster)
        with CacheReader(path) as reader:
            hashes[name] = str(reader.metadata["config_hash"])
        _note_failures(result, summary, name, failed)


def _note_failures(result: ExtractResult, summary: StageSummary, stage: str, failed: set[str]) -> None:
    for f in summary.failures:
        if f.video_id not in failed:
            failed.add(f.video_id)
            result.failures.append(StageFailure(f.video_id, f.path, stage, f.reason))


def _write_failures(path: Path, failures: list[StageFailure]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(FAILURE_COLUMNS)
        for x in sorted(failures, key=lambda x: x.video_id):
            writer.writerow((x.video_id, x.path, x.stage, x.reason))


def export_npy(result: ExtractResult, name: str) -> Path:
    """`<out>/<name>/<video_id>.<array>.npy` for every array of every video's entry (each output and its
    `<output>_times_ms`), as stored in the cache (float16 features, int64 times). An entry already exported
    unchanged (its sha256 in index.json) is not written again. Also extractor.json (weights, configuration)
    and index.json (video id -> file, entry sha256)."""
    folder = result.out / name
    folder.mkdir(parents=True, exist_ok=True)
    index_path = folder / "index.json"
    index: dict[str, Any] = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {}
    with CacheReader(result.caches[name]) as reader:
        meta = reader.metadata
        for video_id in result.ok:
            attrs = reader.attrs(video_id)
            digest = str(attrs.get("sha256", ""))
            if index.get(video_id, {}).get("sha256") == digest and digest:
                continue
            for array in reader.names(video_id):
                np.save(folder / f"{video_id}.{array}.npy", reader.read(video_id, array))
            index[video_id] = {"path": str(result.videos[video_id]), "sha256": digest,
                               "arrays": sorted(reader.names(video_id))}
    weights = str(meta.get("weights", ""))
    info = {"extractor": name, "weights": weights, "random_weights": weights == "random",
            "note": RANDOM_NOTE if weights == "random" else "",
            "config_hash": meta.get("config_hash"), "config": meta.get("config"),
            "cache": str(result.caches[name])}
    (folder / "extractor.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def summary_lines(result: ExtractResult, fmt: str) -> list[str]:
    """What `vemo extract` prints when done."""
    lines = []
    for name in result.extractors:
        label = " -- RANDOM WEIGHTS" if result.weights.get(name) == "random" else ""
        where = result.out / name if fmt == "npy" else result.caches[name]
        lines.append(f"{name}: {len(result.ok)} of {len(result.videos)} videos in {where}{label}")
    if result.failures:
        lines.append(f"{len(result.failures)} video(s) failed: {result.out / 'failures.csv'}")
    return lines


def run_command(videos: Sequence[str], *, video_list: str | None, extractors: Sequence[str],
                weights: Sequence[str] | None, out: str, fmt: str, device: str | None, workers: int | None,
                params: str | None, overrides: Sequence[str], train_views: bool) -> int:
    """`vemo extract`: the run, then one line per extractor and the failure count; the exit status."""
    from pipeline.params_check import load_valid_params

    names = check_extractors(list(extractors))
    settings = extract_settings(load_valid_params(params) if params else None, overrides)
    given = [*videos, *(read_video_list(video_list) if video_list else [])]
    result = extract_videos(given, names, out=out, settings=settings,
                            weights=weights_map(names, weights, settings), device=device, workers=workers,
                            fmt=fmt, train_views=train_views)
    print("\n".join(summary_lines(result, fmt)))
    return result.exit_code()

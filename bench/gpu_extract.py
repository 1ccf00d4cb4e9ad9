"""Issue 27: decode and every feat@ stage on the device they are meant for, one Markdown table.

    python -m bench.gpu_extract [--device auto|cpu|cuda] [--quick] [--out FILE] [--workers N]
        [--threads-per-worker N] [--videos N] [--extractors NAME ...] [--set KEY=VALUE ...] [--keep DIR]

In a scratch project folder: the demo generator writes a small dataset (`stages.demo`), then the
project's own stage entry points run on it, each with its params file, in this process's working
folder: `stages.manifest`, `stages.decode`, `stages.faces`, and `stages.features <name>` for every entry
of params.yaml's `features:` with `device` as given (default auto: CUDA when torch sees a GPU) and with
every precision the device offers (CUDA: fp32, bf16, fp16; CPU: fp32, and bf16 only where the CPU has
native bfloat16, elsewhere it is about 100x slower: bench/README.md, 3b). MFCC has no precision option.

All stages share one LocalCluster (`dask.workers` x `dask.threads_per_worker`, default on CUDA: the
machine's cores in workers of 2 threads, at most 8 workers, every one on GPU 0), started before and
reached by address, so its start is not timed; before each feature stage every worker builds its
extractor (`extractor_identity`, the stage's own first step: the "one-off" column, CUDA context
included), so the timed wall is the steady pipeline: reading the upstream cache, preprocessing, the
forward passes, compressing and writing. Between stages the workers drop their extractors.

Columns: rows per second of the stage; GPU utilisation, `nvidia-smi` sampled every 200 ms during the
stage (n/a without a GPU); forward only, the same extractor in this process on the same device, inputs
read and preprocessed and moved to the device beforehand, timed over up to `--forward-rows` rows in the
stage's batches, scaled to all rows; wall / forward only (target on the GPU: <= 1.3 for
r3d101_conv5); "waited" = the share of the wall outside the model's forward passes, i.e. the time the
model waited for its inputs (HDF5 read, decompression, preprocessing: the feature stage's "decode"),
called a wait when wall / forward > 1.3; the minimum cosine over every row of every output between the
reduced precision's cache and fp32's (target >= 0.999; caches store float16). Then a projection to
VideoEmotion-8 (1,101 videos of about 107 s): per stage, rows per video scaled from the demo by the rule
of its input kind (fixed per video for snippets, audio, MFCC; one per second for keyframes and
spectrograms; faces sampled at `decode.face_rate` up to `decode.face_max_frames`), hours at the
measured rows per second, and the dominant stage.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from dask.distributed import Client

from bench.common import REPO, machine_line, table, verdict
from pipeline.cache import CacheReader, CacheWriter
from pipeline.config import load_params
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.extractors import get_extractor
from pipeline.extractors.base import native_cpu_bf16
from pipeline.features import worker as feature_worker
from pipeline.features.config import extractor_spec
from pipeline.features.device import device_for
from pipeline.features.inputs import load_inputs
from pipeline.features.stage import extractor_identity
from pipeline.graph import STAGE_GRAPH_FILE, input_kind, sources_of
from pipeline.manifests.format import Manifest, read_manifest, write_manifest
from stages import features as features_stage

VE8_VIDEOS, VE8_SECONDS = 1101, 107.0
RATIO_TARGET, COSINE_TARGET = 1.3, 0.999
FIXED_KINDS = ("snippets", "audio", "mfcc")          # rows per video do not grow with its length
FACE_KINDS = ("frames", "face_crops")                # sampled at face_rate, capped at face_max_frames
SMI = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"]


@dataclass
class Run:
    stage: str
    precision: str = "-"
    device: str = "cpu"
    videos: int = 0
    rows: int = 0
    wall: float = 0.0
    one_off: float = 0.0
    forward: float | None = None
    util: list[int] = field(default_factory=list)
    util_note: str = "n/a"
    cosine: float | None = None
    cache: Path | None = None

    @property
    def ratio(self) -> float | None:
        return self.wall / self.forward if self.forward else None


class GpuSampler:
    """`nvidia-smi` in a subprocess, one utilisation sample of GPU `index` every 200 ms."""

    def __init__(self, device: torch.device) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.samples: list[int] = []
        self.active = device.type == "cuda" and shutil.which("nvidia-smi") is not None
        self.index = str(device.index or 0)

    def __enter__(self) -> GpuSampler:
        if self.active:
            self.proc = subprocess.Popen([*SMI, "-i", self.index], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        self.samples = [int(v) for v in out.split() if v.strip().isdigit()]


@contextmanager
def working_dir(path: Path) -> Iterator[None]:
    """The stages resolve params.yaml's relative paths (data/, cache/, reports/) against the cwd."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def parse_value(text: str) -> tuple[list[str], Any]:
    key, _, value = text.partition("=")
    if not key or not _:
        raise SystemExit(f"--set {text!r}: expected KEY=VALUE, e.g. features.r3d101_conv5.batch_size=32")
    return key.split("."), yaml.safe_load(value)


def apply_set(params: dict[str, Any], key: list[str], value: Any) -> None:
    node = params
    for part in key[:-1]:
        node = node.setdefault(part, {})
    node[key[-1]] = value


def default_workers(device: torch.device) -> tuple[int, int]:
    """(workers, threads each): on CUDA the machine's cores feed the one GPU; on the CPU params.yaml's."""
    cores = len(os.sched_getaffinity(0))
    if device.type != "cuda":
        return 2, 1
    workers = max(1, min(8, cores // 2))
    return workers, max(1, cores // workers)


def prepared(work: Path) -> bool:
    """Whether `work` holds a dataset decoded by an earlier run (`--prepare-only`, or `--keep`)."""
    return all((work / p).is_file() for p in ("params.yaml", "reports/bench/manifest.csv",
                                              "cache/bench/decode.h5", "cache/bench/faces.h5"))


def scratch_params(args: argparse.Namespace, device_req: str, workers: tuple[int, int],
                   work: Path) -> dict[str, Any]:
    """params.yaml at bench size in the scratch project: paths inside it, the demo's size, the device;
    a prepared folder's own params (its dataset and decode settings) where there is one."""
    if prepared(work):
        params = load_params(work / "params.yaml")
        params["dask"]["scheduler"] = None
        return finish_params(params, args, device_req, workers)
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    demo = params["demo"]
    demo.update(videos="data/demo/videos", lists="data/demo/lists")
    params["dataset"].update(name="bench", root="data/demo/videos", lists="data/demo/lists")
    if args.quick:
        demo.update(classes=["anger", "joy"], clips_per_class=2, min_seconds=1.0, max_seconds=1.5)
        params["decode"].update(segments=2, train_views=0, face_max_frames=4)
    else:
        per_class = max(1, args.videos // len(demo["classes"]))
        demo.update(clips_per_class=per_class, min_seconds=args.seconds[0], max_seconds=args.seconds[1])
    params["features"]["mfcc_resnet50"].setdefault("options", {})["segments"] = params["decode"]["segments"]
    return finish_params(params, args, device_req, workers)


def finish_params(params: dict[str, Any], args: argparse.Namespace, device_req: str,
                  workers: tuple[int, int]) -> dict[str, Any]:
    for name, section in params["features"].items():
        if name != "mfcc":                        # librosa, on the CPU whatever it says
            section["device"] = device_req
    params["dask"].update(workers=workers[0], threads_per_worker=workers[1])
    for text in args.set or []:
        apply_set(params, *parse_value(text))
    return params


def write_params(work: Path, params: dict[str, Any], name: str = "params.yaml") -> str:
    (work / name).write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return name


def precisions_for(name: str, params: dict[str, Any], device: torch.device, wanted: list[str] | None
                   ) -> list[str]:
    if "precision" not in (params["features"][name].get("options") or {}):
        return ["-"]
    offered = ["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32"] + (
        ["bf16"] if native_cpu_bf16() else [])
    return [p for p in offered if wanted is None or p in wanted or p == "fp32"]


def run_stage(main: Callable[[list[str]], int | None], argv: list[str]) -> float:
    """Seconds of one stage entry point; a stage that fails stops the bench (its stderr says why)."""
    start = time.perf_counter()
    with redirect_stdout(sys.stderr):               # the stages' own lines; stdout is the Markdown
        code = main(argv)
    seconds = time.perf_counter() - start
    if code not in (0, None):
        raise SystemExit(f"{argv}: exit {code}")
    return seconds


def replicate(work: Path, times: int) -> None:
    """Every entry of the upstream caches and the manifest copied under `times` ids (`<id>.rK`), as
    bench.extract_bound does: a device run gets a larger workload than the folder it was carried in."""
    def copies(video_id: str) -> list[str]:
        return [video_id] + [f"{video_id}.r{k}" for k in range(1, times)]

    reports = work / "reports" / "bench"
    manifest = read_manifest(reports / "manifest.csv")
    if any(r.video_id.endswith(".r1") for r in manifest.records):
        return                                            # replicated by an earlier run of this folder
    records = [replace(r, video_id=v) for r in manifest.records for v in copies(r.video_id)]
    write_manifest(Manifest(records, manifest.classes), reports / "manifest.csv")
    for name in ("decode", "faces", "mfcc"):
        path = work / "cache" / "bench" / f"{name}.h5"
        if not path.is_file():
            continue
        grown = path.with_suffix(".grown.h5")
        with CacheReader(path) as reader:
            meta = reader.metadata
            with CacheWriter(grown, stage=str(meta["stage"]), config=meta["config"],
                             config_hash=str(meta["config_hash"]), weights=str(meta.get("weights", "none")),
                             compression="gzip", level=1) as writer:
                for video_id in reader.ids():
                    arrays = {n: reader.read(video_id, n) for n in reader.names(video_id)}
                    for copy_id in copies(video_id):
                        writer.write(copy_id, arrays, reader.attrs(video_id))
        grown.replace(path)


def drop_extractors() -> None:
    """Worker side: free the extractors of the stage before (GPU memory of every precision adds up)."""
    feature_worker._EXTRACTORS.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def video_ids(work: Path) -> list[str]:
    with CacheReader(work / "cache" / "bench" / "decode.h5") as reader:
        return reader.ids()


def durations_s(work: Path) -> list[float]:
    with CacheReader(work / "cache" / "bench" / "decode.h5") as reader:
        return [float(reader.attrs(v)["duration_ms"]) / 1000 for v in reader.ids()]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_only(name: str, params: dict[str, Any], work: Path, max_rows: int) -> tuple[float, int]:
    """(forward seconds scaled to every row, rows): the stage's extractor in this process on its device,
    inputs read, preprocessed and moved beforehand, batched as the stage batches them."""
    spec = extractor_spec(params, name)
    device = device_for(spec.device)
    extractor = feature_worker.build_extractor(spec, device)
    readers = {s: CacheReader(work / "cache" / "bench" / f"{s}.h5") for s in sources_of(name)}
    total, kept = 0, []
    try:
        for video_id in video_ids(work):
            rows = load_inputs(extractor.input_kind, readers, video_id).rows
            total += len(rows)
            if len(rows) and sum(len(r) for r in kept) < max_rows:
                kept.append(rows)
    finally:
        for reader in readers.values():
            reader.close()
    if not kept:
        return 0.0, total
    classes: dict[tuple[Any, ...], list[np.ndarray]] = {}
    for rows in kept:
        classes.setdefault((rows.shape[1:], rows.dtype.str), []).append(rows)
    xs = [extractor.preprocess(b).to(device) for parts in classes.values()
          for b in feature_worker.batches(parts, spec.batch_size)]
    counted = sum(len(x) for x in xs)
    with torch.inference_mode():
        extractor.forward(extractor.module, xs[0])          # warm: kernels chosen, caches filled
        sync(device)
        start = time.perf_counter()
        for x in xs:
            extractor.forward(extractor.module, x)
        sync(device)
        seconds = time.perf_counter() - start
    return seconds / counted * total, total


def min_cosine(name: str, reduced: Path, full: Path) -> float:
    """The smallest cosine, over every row of every output, between two caches of extractor `name`;
    rows that are zero in both (no face, no audio) are skipped."""
    shapes = get_extractor(name).outputs
    worst = 1.0
    with CacheReader(reduced) as a, CacheReader(full) as b:
        for video_id in b.ids():
            for out, shape in shapes.items():
                x = a.read(video_id, out).astype(np.float64).reshape(-1, int(np.prod(shape)))
                y = b.read(video_id, out).astype(np.float64).reshape(-1, int(np.prod(shape)))
                nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
                live = (nx > 0) | (ny > 0)
                if live.any():
                    cos = (x * y).sum(1)[live] / np.maximum(nx[live] * ny[live], 1e-300)
                    worst = min(worst, float(cos.min()))
    return worst


def feature_runs(work: Path, params: dict[str, Any], client: Client, args: argparse.Namespace,
                 device: torch.device) -> list[Run]:
    runs: list[Run] = []
    cache_dir = work / "cache" / "bench"
    names = [n for n in params["features"] if args.extractors is None or n in args.extractors]
    if "mfcc_resnet18" in names and "mfcc" not in names and not (cache_dir / "mfcc.h5").is_file():
        names.insert(0, "mfcc")                          # its source
    sources = {s for n in names for s in sources_of(n)}
    for name in names:
        fp32_cache: Path | None = None
        for precision in precisions_for(name, params, device, args.precisions):
            staged = copy.deepcopy(params)
            if precision != "-":
                staged["features"][name]["options"]["precision"] = precision
            spec = extractor_spec(staged, name)
            path = write_params(work, staged, f"params_{name}_{precision}.yaml")
            client.run(drop_extractors)
            start = time.perf_counter()
            extractor_identity(client, spec)              # every worker builds it: the stage's first step
            one_off = time.perf_counter() - start
            run_device = device_for(spec.device) if name != "mfcc" else torch.device("cpu")
            print(f"feat@{name} {precision} on {run_device} ...", file=sys.stderr, flush=True)
            with GpuSampler(run_device) as sampler:
                wall = run_stage(features_stage.main, [name, "--params", path])
            forward, rows = forward_only(name, staged, work, args.forward_rows)
            if name == "mfcc":                            # librosa in preprocess: no model forward to bound
                forward = 0.0
            run = Run(f"feat@{name}", precision, str(run_device), len(video_ids(work)), rows, wall, one_off,
                      forward or None, sampler.samples, "n/a" if not sampler.active else "no samples")
            cache = cache_dir / f"{name}.h5"
            if name not in sources:                       # keep each precision's cache for the cosine
                run.cache = cache.rename(cache_dir / f"{name}.{precision}.h5")
            if precision == "fp32":
                fp32_cache = run.cache
            elif precision != "-" and fp32_cache is not None and run.cache is not None:
                run.cosine = min_cosine(name, run.cache, fp32_cache)
            runs.append(run)
    client.run(drop_extractors)
    return runs


def util_cell(run: Run) -> str:
    if not run.util:
        return run.util_note
    return f"{np.mean(run.util):.0f} (max {max(run.util)}, n={len(run.util)})"


def result_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for r in runs:
        ratio = r.ratio
        waited = "-" if ratio is None else (
            f"{'yes' if ratio > RATIO_TARGET else 'no'}: {max(0.0, 1 - 1 / ratio):.0%} of wall")
        target = ""
        if ratio is not None and r.stage == "feat@r3d101_conv5" and r.device.startswith("cuda"):
            target = f"ratio <= {RATIO_TARGET}: {verdict(ratio <= RATIO_TARGET)}"
        if r.cosine is not None:
            met = verdict(r.cosine >= COSINE_TARGET)
            target += ("; " if target else "") + f"cos >= {COSINE_TARGET}: {met}"
        rows.append([f"`{r.stage}`", r.precision, r.device, r.videos, r.rows, f"{r.wall:.1f}",
                     f"{r.rows / r.wall:.1f}" if r.wall else "-", f"{r.one_off:.1f}" if r.one_off else "-",
                     util_cell(r), "-" if r.forward is None else f"{r.forward:.2f}",
                     "-" if ratio is None else f"**{ratio:.2f}**", waited,
                     "-" if r.cosine is None else f"{r.cosine:.5f}", target or "-"])
    return rows


def ve8_scale(stage: str, params: dict[str, Any], durations: list[float]) -> float:
    """Rows (or work) per VE-8 video over the demo's mean per video, by the rule of the stage's input."""
    mean = float(np.mean(durations))
    rate, cap = float(params["decode"]["face_rate"]), int(params["decode"]["face_max_frames"])
    capped = float(np.mean([min(d * rate, cap) for d in durations]))
    if stage in ("decode",):
        return VE8_SECONDS / mean                        # keyframes, audio and face frames grow with length
    if stage == "faces":
        return min(VE8_SECONDS * rate, cap) / capped
    kind = input_kind(stage.split("@", 1)[1])
    if kind in FIXED_KINDS:
        return 1.0
    if kind in FACE_KINDS:
        return min(VE8_SECONDS * rate, cap) / capped
    return VE8_SECONDS / mean                            # keyframes, spectrograms: one a second


def projection(runs: list[Run], params: dict[str, Any], durations: list[float]) -> tuple[str, str]:
    """Per stage: VE-8 hours at fp32 and at the fastest precision whose cosine meets the target."""
    by_stage: dict[str, list[Run]] = {}
    for r in runs:
        by_stage.setdefault(r.stage, []).append(r)
    rows, totals = [], {"fp32": 0.0, "best": 0.0}
    for stage, group in by_stage.items():
        fp32 = next((r for r in group if r.precision in ("fp32", "-")), group[0])
        ok = [r for r in group if r.precision in ("fp32", "-") or (r.cosine or 0) >= COSINE_TARGET]
        best = min(ok, key=lambda r: r.wall)
        hours = {k: ve8_scale(stage, params, durations) * r.wall / max(r.videos, 1) * VE8_VIDEOS / 3600
                 for k, r in (("fp32", fp32), ("best", best))}
        totals["fp32"] += hours["fp32"]
        totals["best"] += hours["best"]
        rows.append([f"`{stage}`", f"{hours['fp32']:.2f}", f"{hours['best']:.2f} ({best.precision})"])
    top = max(rows, key=lambda row: float(row[1]))
    rows.append(["**all**", f"**{totals['fp32']:.2f}**", f"**{totals['best']:.2f}**"])
    return table(["stage", "VE-8 hours, fp32", "VE-8 hours, fastest precision with cos >= 0.999"], rows), \
        top[0]


def prepare(work: Path, base: str) -> list[Run]:
    """The demo, its manifest, decode and faces (CPU stages: ffmpeg, PyAV, MTCNN), timed; the stages are
    imported here, so that a device run on a prepared folder needs none of their packages."""
    from stages import decode as decode_stage
    from stages import faces as faces_stage

    runs = [Run("decode", device="cpu", wall=run_stage(decode_stage.main, ["--params", base]))]
    runs.append(Run("faces", device="cpu", wall=run_stage(faces_stage.main, ["--params", base])))
    for r in runs:
        r.videos = r.rows = len(video_ids(work))
    return runs


CUDA_TESTS = ("tests/test_cuda.py", "tests/test_features_device.py")


def cuda_tests() -> str:
    """The CUDA-only tests (skipped on CPU-only machines) and the device test, run here: their last line."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider",
                           *CUDA_TESTS], cwd=REPO, capture_output=True, text=True)
    print(done.stdout[-3000:], file=sys.stderr)
    last = (done.stdout.strip().splitlines() or ["no output"])[-1].strip("= ")
    return f"`pytest {' '.join(CUDA_TESTS)}`: {last} (exit {done.returncode})"


def generate(work: Path, params: dict[str, Any]) -> float:
    from stages import demo as demo_stage
    from stages import manifest as manifest_stage

    base = write_params(work, params)
    seconds = run_stage(demo_stage.main, ["--params", base])
    run_stage(manifest_stage.main, ["--params", base])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="features.<name>.device of every extractor but mfcc (default auto)")
    parser.add_argument("--quick", action="store_true", help="4 clips of 1-1.5 s, 2 snippets a video")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--videos", type=int, default=64, help="demo clips (not --quick)")
    parser.add_argument("--seconds", type=float, nargs=2, default=(6.0, 10.0), metavar=("MIN", "MAX"),
                        help="demo clip lengths (not --quick)")
    parser.add_argument("--workers", type=int, help="dask workers (default: CUDA cores//2 up to 8; CPU 2)")
    parser.add_argument("--threads-per-worker", type=int)
    parser.add_argument("--extractors", nargs="+", help="only these features: entries")
    parser.add_argument("--precisions", nargs="+", choices=["bf16", "fp16"], help="only these (and fp32)")
    parser.add_argument("--forward-rows", type=int, default=512, help="rows timed for forward only")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="any params.yaml value, e.g. features.r3d101_conv5.batch_size=32 (repeatable)")
    parser.add_argument("--keep", type=Path, help="scratch project folder to use and keep (default: a temp); "
                        "one prepared before is reused: no demo, decode or faces run again")
    parser.add_argument("--prepare-only", action="store_true",
                        help="generate, decode and detect faces into --keep, then stop (to carry it)")
    parser.add_argument("--replicate", type=int, default=1,
                        help="copy every decoded video this many times before the feature stages")
    parser.add_argument("--tests", action="store_true", help="first run the CUDA-only tests (" +
                        ", ".join(CUDA_TESTS) + ") and report their result")
    args = parser.parse_args()
    tested = cuda_tests() if args.tests else ""
    try:
        device = device_for(args.device)
    except RuntimeError as exc:                      # --device cuda on a machine without one
        raise SystemExit(f"gpu_extract: {exc}") from None
    workers = default_workers(device)
    workers = (args.workers or workers[0], args.threads_per_worker or workers[1])
    torch.set_num_threads(workers[0] * workers[1])  # forward only: the stage's core budget
    keep = args.keep.resolve() if args.keep else None
    if args.prepare_only and keep is None:
        raise SystemExit("--prepare-only needs --keep DIR (the folder to carry)")
    with tempfile.TemporaryDirectory(prefix="vemo-gpu-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        reused = prepared(work)
        params = scratch_params(args, args.device, workers, work)
        shutil.copy(REPO / STAGE_GRAPH_FILE, work / STAGE_GRAPH_FILE)
        started, runs = time.perf_counter(), []
        with working_dir(work):
            gen = None if reused else generate(work, params)
            cfg = ClusterConfig(workers=workers[0], threads_per_worker=workers[1])
            with local_cluster(cfg) as cluster, Client(cluster) as client:
                staged = {**params, "dask": {**params["dask"], "scheduler": cluster.scheduler_address}}
                if not reused:
                    runs = prepare(work, write_params(work, staged, "params_stages.yaml"))
                if not args.prepare_only:
                    if args.replicate > 1:
                        replicate(work, args.replicate)
                    runs += feature_runs(work, staged, client, args, device)
            durations = durations_s(work)
            write_params(work, params)               # the folder's own, as prepared (no scheduler)
        minutes = (time.perf_counter() - started) / 60
    made = "reused from --keep" if gen is None else f"generated in {gen:.0f} s"
    command = "python -m bench.gpu_extract " + " ".join(sys.argv[1:])
    text = (f"### GPU extraction (issue 27)\n\n{machine_line()}; device `{args.device}` -> {device}; "
            f"{workers[0]} workers x {workers[1]} threads; {len(durations)} demo clips of "
            f"{min(durations):.1f}-{max(durations):.1f} s ({made}); random weights; "
            f"{minutes:.1f} min in all\n\n    {command.strip()}\n\n"
            + table(["stage", "precision", "device", "videos", "rows", "wall (s)", "rows / s", "one-off (s)",
                     "GPU util % mean", "forward only (s)", "wall / forward", "GPU waited on input",
                     "min cosine vs fp32", "target"], result_rows(runs)))
    if runs:
        proj, dominant = projection(runs, params, durations)
        text += (f"\n\nProjection to VideoEmotion-8 ({VE8_VIDEOS} videos of about {VE8_SECONDS:.0f} s) "
                 f"on this machine, from the rows per second above (stages not run here are missing); "
                 f"dominant stage: {dominant}\n\n{proj}")
    if tested:
        text += f"\n\nTests on this machine: {tested}"
    print(text + "\n")
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

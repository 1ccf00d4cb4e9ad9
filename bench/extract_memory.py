"""Does extraction run in flat memory? Peak RSS of the driver and of the Dask workers over N videos.

    .venv/bin/python bench/extract_memory.py [--sizes 10 100 1000] [--extractors alexnet_fc7 alexnet_fc7_spec]

1. Three short clips (ffmpeg test pattern + tone, 1, 1.5 and 2 s, 320x240) are decoded once with the real
   `decode_video` (keyframes and 44.1 kHz audio only), and their entries are copied under max(sizes)
   video ids into a decode cache with the real `CacheWriter`: a cheap N-video upstream cache.
2. For every (extractor, N) a fresh child process starts a LocalCluster of this pipeline
   (`engine.cluster.local_cluster`), runs the real feature stage (`run_features`, random weights, the default
   `videos_per_task` and a fresh feature cache) over the first N videos, and reports its own peak RSS
   (VmHWM: the driver, which also hosts the scheduler and writes the cache), the workers' peak RSS (read in
   each worker process), and the stage's seconds. A fresh process per row, because VmHWM only grows.

The Markdown table goes to stdout. Flat memory means the peaks do not grow with N.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pipeline.cache import CacheReader, CacheWriter
from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import decode_video
from pipeline.engine.cluster import ClusterConfig, dask_client, local_cluster
from pipeline.features.config import ExtractorSpec
from pipeline.features.stage import run_features
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.media.probe import probe_video

REPO = Path(__file__).resolve().parents[1]

CLIP_SECONDS = (1.0, 1.5, 2.0)
DECODE = DecodeConfig(outputs=("keyframes", "audio"), audio_rates=(44100,))


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_clip(path: Path, seconds: float) -> Path:
    """An H.264 + AAC test clip made with ffmpeg."""
    lavfi = [f"testsrc=size=320x240:rate=25:duration={seconds}", f"sine=frequency=440:duration={seconds}"]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", lavfi[0], "-f", "lavfi",
                    "-i", lavfi[1], "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(path)], check=True)
    return path


def video_id(i: int) -> str:
    return f"bench/v{i:05d}"


def build_decode_cache(work: Path, n: int) -> Path:
    """Decode the clips once, then write their entries under n video ids."""
    decoded = []
    for k, seconds in enumerate(CLIP_SECONDS):
        clip = make_clip(work / f"clip{k}.mp4", seconds)
        decoded.append(decode_video(clip, f"clip{k}", probe_video(clip), DECODE))
    path = work / "decode.h5"
    with CacheWriter(path, stage="decode", config={"bench": True}, config_hash="bench", level=1) as writer:
        for i in range(n):
            entry = decoded[i % len(decoded)]
            writer.write(video_id(i), entry.arrays, entry.attrs)
    return path


def rss_mib() -> float:
    """This process's resident set size now (VmRSS), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def run_one(extractor: str, n: int, work: Path, workers: int, threads: int,
            videos_per_task: int) -> dict[str, float]:
    """Child process: one feature stage over n videos on a fresh LocalCluster; peaks and seconds."""
    manifest = Manifest([VideoRecord(video_id(i), f"{video_id(i)}.mp4", "x") for i in range(n)], ["x"])
    out = work / f"{extractor}_{n}.h5"
    out.unlink(missing_ok=True)
    spec = ExtractorSpec(name=extractor, batch_size=32, device="cpu", videos_per_task=videos_per_task)
    config = ClusterConfig(workers=workers, threads_per_worker=threads)
    with local_cluster(config) as cluster:
        external = ClusterConfig(scheduler=cluster.scheduler_address)
        before = rss_mib()
        start = time.perf_counter()
        summary = run_features(spec=spec, manifest=manifest, root=work,
                               sources={"decode": str(work / "decode.h5")}, upstream={"decode": "bench"},
                               cache_path=out, reports_dir=work / "reports", cluster=external)
        seconds = time.perf_counter() - start
        with dask_client(external) as client:
            worker_peaks = list(client.run(peak_rss_mib).values())
    with CacheReader(out) as cache:
        written = len(cache.ids())
    return {"extractor": extractor, "n": n, "done": summary.done, "written": written, "seconds": seconds,
            "driver_before_mib": before, "driver_mib": peak_rss_mib(), "worker_mib": max(worker_peaks),
            "videos_per_task": spec.videos_per_task}


def table(rows: list[dict[str, float]], workers: int, threads: int) -> str:
    lines = [f"{workers} workers x {threads} thread, batch_size 32, random weights, CPU", "",
             "| extractor | videos_per_task | videos | seconds | videos/s | driver RSS before (MiB) "
             "| driver peak RSS (MiB) | worker peak RSS (MiB, max) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['extractor']}` | {r['videos_per_task']} | {r['n']} | {r['seconds']:.1f} | "
                     f"{r['n'] / r['seconds']:.1f} | {r['driver_before_mib']:.0f} | {r['driver_mib']:.0f} | "
                     f"{r['worker_mib']:.0f} |")
    return "\n".join(lines)


def measure(name: str, n: int, videos_per_task: int, work: Path, workers: int, threads: int) -> dict:
    """One row, measured in a child process (`--one`)."""
    child = subprocess.run([sys.executable, __file__, "--workers", str(workers), "--threads", str(threads),
                            "--videos-per-task", str(videos_per_task), "--one", name, str(n), str(work)],
                           check=True, capture_output=True, text=True, cwd=REPO)
    row = json.loads(child.stdout.strip().splitlines()[-1])
    if row["done"] != n or row["written"] != n:
        raise RuntimeError(f"{name} over {n} videos wrote {row['written']}:\n{child.stdout}")
    print(f"{name} videos_per_task={videos_per_task} N={n}: {row['seconds']:.1f} s", file=sys.stderr)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--extractors", nargs="+", default=["alexnet_fc7", "alexnet_fc7_spec"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--videos-per-task", type=int, nargs="+", default=[8])
    parser.add_argument("--one", nargs=3, metavar=("EXTRACTOR", "N", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, n, work = args.one
        row = run_one(name, int(n), Path(work), args.workers, args.threads, args.videos_per_task[0])
        print(json.dumps(row))
        return 0
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        build_decode_cache(work, max(args.sizes))
        print(f"decode cache of {max(args.sizes)} videos built in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
        rows = []
        for name, per_task, n in itertools.product(args.extractors, args.videos_per_task, args.sizes):
            rows.append(measure(name, n, per_task, work, args.workers, args.threads))
    print(f"{time.strftime('%Y-%m-%d')}, {len(os.sched_getaffinity(0))} cores, {platform.machine()}, "
          f"Python {platform.python_version()}, torch {torch.__version__}\n")
    print(table(rows, args.workers, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())

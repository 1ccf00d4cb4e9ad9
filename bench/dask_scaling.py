"""Deliverable 4: decode-stage throughput on a LocalCluster of 1 and of 2 workers (1 thread each).

    .venv/bin/python -m bench.dask_scaling [--quick] [--videos 8] [--seconds 4] [--repeats 3]

N distinct test clips (640x360, 25 fps, 2 s GOP, with audio) decoded by the real decode stage
(`run_decode`, the default DecodeConfig: every output) into a fresh cache, on a LocalCluster started
beforehand (its start excluded). Speed-up = videos/s with 2 workers over videos/s with 1. A worker's
thread budget (`threads_per_worker`) also caps its ffmpeg's threads; the row 1 x 2 shows one worker
given both cores (two tasks at a time, each ffmpeg with 2 threads). The shapes run in turn, `--repeats`
rounds, and each keeps its fastest round: a burst from another tenant of the VM then spoils one round of
one shape, not the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from bench.common import clip_manifest, machine_line, table, verdict
from pipeline.decode.config import DecodeConfig
from pipeline.decode.stage import run_decode
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.manifests.format import Manifest


def decode_seconds(work: Path, manifest: Manifest, workers: int, threads: int) -> float:
    cache = work / f"decode_{workers}x{threads}.h5"
    cache.unlink(missing_ok=True)
    with local_cluster(ClusterConfig(workers=workers, threads_per_worker=threads)) as cluster:
        start = time.perf_counter()
        external = ClusterConfig(scheduler=cluster.scheduler_address, threads_per_worker=threads)
        with redirect_stdout(sys.stderr):   # the stage's own lines; stdout is the Markdown
            summary = run_decode(manifest=manifest, root=work, cache_path=cache, reports_dir=work / "reports",
                                 cfg=DecodeConfig(), cluster=external)
        seconds = time.perf_counter() - start
    if summary.done != len(manifest.records):
        raise RuntimeError(f"{summary.done} of {len(manifest.records)} decoded")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 clips of 2 s")
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, seconds, repeats = (4, 2.0, 1) if args.quick else (args.videos, args.seconds, args.repeats)
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        work = Path(tmp)
        manifest = clip_manifest(work, n, seconds)
        times = {shape: float("inf") for shape in ((1, 1), (2, 1), (1, 2))}
        for _ in range(repeats):
            for shape in times:
                times[shape] = min(times[shape], decode_seconds(work, manifest, *shape))
    speedup = times[1, 1] / times[2, 1]
    rows = [[f"{w} x {t}", f"{times[w, t]:.1f}", f"{n / times[w, t]:.2f}"] for w, t in times]
    print(f"### 4. Dask scaling of the decode stage\n\n{machine_line()}; {n} clips of {seconds:g} s, "
          f"640x360, fastest of {repeats} rounds\n\n"
          f"    .venv/bin/python -m bench.dask_scaling{' --quick' if args.quick else ''}\n")
    print(table(["workers x threads", "seconds", "videos/s"], rows))
    print(f"\nSpeed-up 2 x 1 vs 1 x 1: **{speedup:.2f}x** (target >= 1.6x: {verdict(speedup >= 1.6)})\n")


if __name__ == "__main__":
    main()

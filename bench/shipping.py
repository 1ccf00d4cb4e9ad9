"""Section 8: workers without a shared file system (inputs shipped with each task) against a shared one,
and the projection to 10,000 videos on a 4-node cluster.

    .venv/bin/python -m bench.shipping [--quick] [--videos 6] [--seconds 107] [--repeats 1]

N test clips (640x360, 25 fps, audio; VideoEmotion-8's mean duration by default) go through the real stages
(decode with params.yaml's settings, then feat@r3d101_conv5, feat@alexnet_fc7 and feat@mfcc with random
weights) on a LocalCluster of 2 workers x 1 thread started beforehand (its start excluded), once with
`shared_filesystem: true` (workers open the files) and once with `false` (the driver reads each task's video
or upstream entries and sends them; the worker writes them to its temporary folder). On one machine this
measures what shipping adds in the driver and the workers (reads, an in-memory HDF5 copy, serialisation,
temporary files); on a real network the bytes per video in the table cross the wire too, which the
projection adds. The two modes run in turn, `--repeats` rounds, each keeping its fastest round.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

from bench.common import clip_manifest, machine_line, table, timed
from pipeline.config import load_params
from pipeline.decode.config import decode_config
from pipeline.decode.stage import run_decode
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.engine.summary import StageSummary
from pipeline.features.config import extractor_spec
from pipeline.features.stage import run_features
from pipeline.graph import sources_of
from pipeline.manifests.format import Manifest

REPO = Path(__file__).resolve().parents[1]
EXTRACTORS = ("r3d101_conv5", "alexnet_fc7", "mfcc")
STAGES = ("decode", *(f"feat@{e}" for e in EXTRACTORS))
VE8_SECONDS = 107.0        # VideoEmotion-8's mean duration
NODES, CORES = 4, 16       # the projected cluster
NETWORKS = {"1 GbE": 125e6, "10 GbE": 1.25e9}   # the driver's link, bytes/s


def run_stages(work: Path, manifest: Manifest,
               cluster: ClusterConfig) -> dict[str, tuple[float, StageSummary]]:
    """Seconds and summary of each stage, into fresh caches under `work`."""
    params = load_params(REPO / "params.yaml")
    caches = work / "cache"
    for old in caches.glob("*.h5"):
        old.unlink()
    caches.mkdir(exist_ok=True)
    results = {}
    with redirect_stdout(sys.stderr):       # the stages' own lines; stdout is the Markdown
        results["decode"] = timed(lambda: run_decode(
            manifest=manifest, root=work, cache_path=caches / "decode.h5", reports_dir=work / "reports",
            cfg=decode_config(params), cluster=cluster))
        for name in EXTRACTORS:
            sources = {s: str(caches / f"{s}.h5") for s in sources_of(name)}
            spec = replace(extractor_spec(params, name), weights="random")
            results[f"feat@{name}"] = timed(lambda spec=spec, sources=sources, name=name: run_features(
                spec=spec, manifest=manifest, root=work, sources=sources, upstream=dict.fromkeys(sources, ""),
                cache_path=caches / f"{name}.h5", reports_dir=work / "reports", cluster=cluster))
    for stage, (_, summary) in results.items():
        if summary.done != len(manifest.records):
            raise RuntimeError(f"{stage}: {summary.done} of {len(manifest.records)} done")
    return results


def projection(n_videos: int, clip_seconds: float, per_video: dict[str, dict[str, float]]) -> list[str]:
    """Markdown lines: 10,000 VE-8-length videos on NODES x CORES, per stage and mode."""
    scale = VE8_SECONDS / clip_seconds
    videos, cores = 10_000, NODES * CORES
    rows, lines = [], []
    for stage in STAGES:
        m = per_video[stage]
        core_s = m["shared_s"] * 2 * scale            # 2 busy workers here: core-seconds per video
        compute_h = videos * core_s / cores / 3600
        rate = cores / core_s                          # videos/s the cluster computes
        shared_bytes = m["written"] * scale            # driver: results in, written to the caches
        shipped_bytes = (m["written"] + m["shipped"]) * scale
        need_shared, need_shipped = rate * shared_bytes, rate * shipped_bytes
        rows.append([stage, f"{core_s:.1f}", f"{compute_h:.2f}",
                     f"{videos * m['shipped'] * scale / 1e9:.0f}", f"{videos * shared_bytes / 1e9:.0f}",
                     f"{videos * shipped_bytes / 1e9:.0f}", f"{need_shared / 1e6:.0f}",
                     f"{need_shipped / 1e6:.0f}",
                     ", ".join(k for k, bw in NETWORKS.items() if need_shipped > bw) or "none"])
    lines.append(table(["stage", "core-s / video", f"compute h ({NODES}x{CORES} cores)",
                        "GB of inputs (workers read, or the driver ships)", "GB to the driver (shared FS)",
                        "GB through the driver (shipped)", "driver MB/s needed (shared)",
                        "driver MB/s needed (shipped)", "links the shipped mode saturates"], rows))
    lines.append(f"\nArithmetic: core-s / video = the stage's wall time per video here x 2 (both workers "
                 f"busy) x {VE8_SECONDS:g} / {clip_seconds:g} (VE-8's mean duration over these clips'); "
                 f"compute hours = 10,000 x core-s / {cores} cores; the cluster then finishes {cores} / "
                 "core-s videos per second, and the driver must take that many videos' results (and, "
                 "shipped, also read and send that many videos' inputs) per second. Bytes per video scale "
                 "with duration by the same factor (exact for decode, keyframes and audio; r3d101_conv5 "
                 "reads a fixed T x views snippets per video, so measure at the real duration, the "
                 f"default, where the factor is 1); measured on {n_videos} clips.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 clips of 4 s, one round")
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=VE8_SECONDS)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    n, seconds, repeats = (3, 4.0, 1) if args.quick else (args.videos, args.seconds, args.repeats)
    best: dict[bool, dict[str, tuple[float, StageSummary]]] = {}
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        work = Path(tmp)
        manifest = clip_manifest(work, n, seconds)
        video_bytes = sum((work / r.path).stat().st_size for r in manifest.records) / n
        sizes: dict[str, float] = {}
        for _ in range(repeats):
            for shared in (True, False):   # each on a fresh cluster: no extractor built by the other mode
                with local_cluster(ClusterConfig()) as cluster:
                    external = ClusterConfig(scheduler=cluster.scheduler_address, shared_filesystem=shared)
                    results = run_stages(work, manifest, external)
                for stage, timing in results.items():
                    if stage not in best.get(shared, {}) or timing[0] < best[shared][stage][0]:
                        best.setdefault(shared, {})[stage] = timing
                sizes = {s: (work / "cache" / f"{s.removeprefix('feat@')}.h5").stat().st_size / n
                         for s in STAGES}
    per_video = {s: {"shared_s": best[True][s][0] / n, "shipped_s": best[False][s][0] / n,
                     "shipped": best[False][s][1].shipped_bytes / n, "written": sizes[s]}
                 for s in STAGES}
    rows = [[s, f"{m['shared_s']:.2f}", f"{m['shipped_s']:.2f}", f"{m['shipped_s'] / m['shared_s']:.2f}",
             f"{m['shipped'] / 1e6:.2f}", f"{m['written'] / 1e6:.2f}"]
            for s, m in per_video.items()]
    total = {mode: sum(best[mode][s][0] for s in STAGES) for mode in (True, False)}
    print(f"### 8. Without a shared file system\n\n{machine_line()}; {n} clips of {seconds:g} s, 640x360 "
          f"with audio ({video_bytes / 1e6:.2f} MB each), LocalCluster 2 x 1, fastest of {repeats} rounds\n\n"
          f"    .venv/bin/python -m bench.shipping{' --quick' if args.quick else ''}\n")
    print(table(["stage", "shared FS s/video", "shipped s/video", "ratio",
                 "inputs MB/video (read, or shipped)", "cache MB/video (to the driver)"], rows))
    print(f"\nAll four stages: {total[True]:.1f} s shared, {total[False]:.1f} s shipped "
          f"(**{total[False] / total[True]:.2f}x**).\n")
    print(f"#### Projection: 10,000 videos of {VE8_SECONDS:g} s on {NODES} nodes x {CORES} cores\n")
    print("\n".join(projection(n, seconds, per_video)))


if __name__ == "__main__":
    main()

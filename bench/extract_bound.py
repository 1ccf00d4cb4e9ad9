"""Deliverable 3: each extractor stage's wall time over the pure model forward on the same batches.

    .venv/bin/python -m bench.extract_bound [--quick] [--r3d-videos 8] [--alexnet-videos 400]
        [--alexnet-seconds 10]

Per extractor, a decode cache of N videos (one 320x240 test clip, 4 s for r3d101_conv5 and 10 s for
AlexNet, whose LSTM fusion paper uses MediaEval 2015's 8-12 s excerpts; decoded once with the real
`decode_video`, with only the output that extractor reads, its entry written under N ids) feeds the
real feature stage (`run_features`, random weights, the batch size and videos_per_task of params.yaml)
on a LocalCluster of 2 workers x 1 thread (the pipeline's default; cluster start excluded). The model
bound: the same extractor in this process with 2 torch threads, its inputs read and preprocessed
beforehand, timing only `forward` over the same batches, once just before the stage and once just
after (this VM's speed drifts by several percent over minutes). Ratio = stage wall / the mean of the
two. The stage's one-off costs (each worker imports torch and torchvision and builds its extractor:
about 2-3 s here) weigh more at these sizes (240 snippets, 4,000 keyframes) than on a real dataset
(VideoEmotion-8 or MediaEval 2015 hold over 100,000 keyframes).
Then forward seconds per row at a few batch sizes: how the batch size was chosen.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch

from bench.common import machine_line, make_clip, table, timed, verdict
from pipeline.cache import CacheReader, CacheWriter
from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import decode_video
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.features.config import ExtractorSpec
from pipeline.features.inputs import load_inputs
from pipeline.features.stage import run_features
from pipeline.features.worker import batches, build_extractor
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.media.probe import probe_video

STAGES = {"r3d101_conv5": (8, 1), "alexnet_fc7": (32, 8)}     # params.yaml: batch_size, videos_per_task
OUTPUT = {"r3d101_conv5": "snippets", "alexnet_fc7": "keyframes"}
SWEEP = {"r3d101_conv5": (1, 8), "alexnet_fc7": (1, 8, 32, 64)}


def decode_cache(work: Path, n: int, cfg: DecodeConfig, seconds: int = 4) -> Path:
    clip = make_clip(work / f"clip_{seconds}s.mp4", width=320, height=240, seconds=seconds, gop=50)
    decoded = decode_video(clip, "clip", probe_video(clip), cfg)
    path = work / "decode.h5"
    path.unlink(missing_ok=True)
    with CacheWriter(path, stage="decode", config={}, config_hash="bench", level=1) as writer:
        for i in range(n):
            writer.write(f"v{i:05d}", decoded.arrays, decoded.attrs)
    return path


def stage_seconds(work: Path, name: str, n: int, spec: ExtractorSpec) -> float:
    manifest = Manifest([VideoRecord(f"v{i:05d}", f"v{i:05d}.mp4", "x") for i in range(n)], ["x"])
    with local_cluster(ClusterConfig(workers=2, threads_per_worker=1)) as cluster:
        external = ClusterConfig(scheduler=cluster.scheduler_address)
        start = time.perf_counter()
        sources = {"decode": str(work / "decode.h5")}
        with redirect_stdout(sys.stderr):   # the stage's own lines; stdout is the Markdown
            summary = run_features(spec=spec, manifest=manifest, root=work, sources=sources,
                                   upstream={"decode": "bench"}, cache_path=work / f"{name}.h5",
                                   reports_dir=work / "reports", cluster=external)
        seconds = time.perf_counter() - start
    if summary.done != n:
        raise RuntimeError(f"{name}: {summary.done} of {n} videos done")
    return seconds


def forward_seconds(name: str, n: int, batch_size: int, work: Path) -> tuple[float, int]:
    """(seconds of forward only over all rows of n videos, rows)."""
    extractor = build_extractor(ExtractorSpec(name), "cpu")
    with CacheReader(work / "decode.h5") as reader:
        rows = [load_inputs(extractor.input_kind, {"decode": reader}, f"v{i:05d}").rows for i in range(n)]
    xs = [extractor.preprocess(b) for b in batches(rows, batch_size)]
    with torch.inference_mode():
        extractor.forward(extractor.module, xs[0])    # warm: a full batch, as every timed one
        seconds = timed(lambda: [extractor.forward(extractor.module, x) for x in xs])[0]
    return seconds, sum(len(r) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 + 10 videos, 2 snippets a video")
    parser.add_argument("--r3d-videos", type=int, default=8)
    parser.add_argument("--alexnet-videos", type=int, default=400)
    parser.add_argument("--alexnet-seconds", type=int, default=10, help="length of AlexNet's clip")
    parser.add_argument("--extractors", nargs="+", choices=list(STAGES), default=list(STAGES))
    args = parser.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    counts = {"r3d101_conv5": 2, "alexnet_fc7": 10} if args.quick else {
        "r3d101_conv5": args.r3d_videos, "alexnet_fc7": args.alexnet_videos}
    small = {"segments": 2, "train_views": 0} if args.quick else {}
    clip_seconds = {"r3d101_conv5": 4, "alexnet_fc7": args.alexnet_seconds}
    rows, sweep = [], []
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        work = Path(tmp)
        for name in args.extractors:
            batch_size, per_task = STAGES[name]
            n = counts[name]
            decode_cache(work, n, DecodeConfig(outputs=(OUTPUT[name],), **small), clip_seconds[name])
            spec = ExtractorSpec(name, batch_size=batch_size, videos_per_task=per_task, device="cpu")
            before, n_rows = forward_seconds(name, n, batch_size, work)
            wall = stage_seconds(work, name, n, spec)
            after, _ = forward_seconds(name, n, batch_size, work)
            ratio = wall / ((before + after) / 2)
            rows.append([f"`{name}`", n, n_rows, batch_size, per_task, f"{wall:.1f}", f"{before:.1f} / "
                         f"{after:.1f}", f"**{ratio:.2f}**", f"<= 1.3: {verdict(ratio <= 1.3)}"])
            for size in SWEEP[name]:
                few = min(n, 1 if name.startswith("r3d") else 8)
                seconds, counted = forward_seconds(name, few, size, work)
                sweep.append([f"`{name}`", size, f"{seconds / counted * 1000:.1f}"])
    print(f"### 3. Extraction near the model bound\n\n{machine_line()}; stage on 2 workers x 1 thread, "
          f"forward with {torch.get_num_threads()} threads, random weights, fp32\n\n    .venv/bin/python -m "
          f"bench.extract_bound{' --quick' if args.quick else ''}\n")
    print(table(["extractor", "videos", "rows", "batch_size", "videos_per_task", "stage wall (s)",
                 "forward only (s), before / after", "wall / mean forward", "target"], rows))
    print("\nForward only, ms per row by batch size:\n")
    print(table(["extractor", "batch_size", "ms per row"], sweep))
    print()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

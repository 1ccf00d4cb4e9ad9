"""Deliverable 6: bytes per video of each cache with and without compression, and the read throughput
of one VAANet head epoch from the cache files.

    .venv/bin/python -m bench.cache_size [--quick] [--videos 8]

One 10 s 640x360 test clip is decoded (every output) and run through r3d101_conv5, mfcc, mfcc_resnet18
and alexnet_fc7 (random weights: activations of a random network; real features may compress
differently). Each entry is written with the real `CacheWriter` as gzip (the level the stage uses: 1 for
decode, 4 for features), lzf and uncompressed; bytes per video = the file's growth per entry over N
entries. Read: one epoch of the head's batches (`iter_batches` over a `FeatureTable` with
`preload=False`, so every batch is read from the file) for the VAANet inputs (conv5 + mfcc_resnet18).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.common import machine_line, make_clip, table, timed
from bench.head_epoch import VE8
from pipeline.cache import CacheWriter
from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import decode_video
from pipeline.extractors.base import get_extractor
from pipeline.features.config import ExtractorSpec
from pipeline.features.worker import build_extractor, run_batched
from pipeline.heads.base import build_head
from pipeline.heads.polarity import polarity_for
from pipeline.media.probe import probe_video
from pipeline.training.data import FeatureTable, iter_batches

CODECS = {"gzip": "gzip", "lzf": "lzf", "none": None}


def entries(work: Path, train_views: int) -> dict[str, dict[str, np.ndarray]]:
    clip = make_clip(work / "clip.mp4", width=640, height=360, seconds=10, gop=50)
    decoded = decode_video(clip, "clip", probe_video(clip), DecodeConfig(train_views=train_views))
    a = decoded.arrays
    snippets = a["snippets"]
    conv5 = run_batched(build_extractor(ExtractorSpec("r3d101_conv5"), "cpu"),
                        snippets.reshape(-1, *snippets.shape[2:]), 8)
    mfcc = get_extractor("mfcc")()(a["audio_44100"][None])
    heard = build_extractor(ExtractorSpec("mfcc_resnet18"), "cpu")(mfcc["mfcc"][0])
    alex = run_batched(build_extractor(ExtractorSpec("alexnet_fc7"), "cpu"), a["keyframes"], 32)
    views, times = snippets.shape[:2], np.zeros((16, 2), np.int64)
    return {
        "decode": a,
        "r3d101_conv5": {"conv5": conv5["conv5"].reshape(*views, 2048, 1, 4, 4).astype(np.float16),
                         "conv5_times_ms": a["snippets_times_ms"],
                         "pooled": conv5["pooled"].reshape(*views, 2048).astype(np.float16)},
        "mfcc": {"mfcc": mfcc["mfcc"][0], "mfcc_times_ms": times},
        "mfcc_resnet18": {"features": heard["features"].astype(np.float16), "features_times_ms": times},
        "alexnet_fc7": {"fc7": alex["fc7"].astype(np.float16),
                        "fc7_times_ms": a["keyframes_times_ms"]},
    }


def write(path: Path, arrays: dict[str, np.ndarray], ids: list[str], codec: str | None, level: int) -> int:
    with CacheWriter(path, stage=path.stem, config={}, config_hash="b", compression=codec, level=level) as w:
        w.write(ids[0], arrays, {"has_audio": True})
        first = path.stat().st_size
        for v in ids[1:]:
            w.write(v, arrays, {"has_audio": True})
    return (path.stat().st_size - first) // max(1, len(ids) - 1)


def read_epoch(folder: Path, ids: list[str]) -> tuple[float, int]:
    """(seconds, bytes of float32 batches) of one epoch of VAANet batches read from the files."""
    head = build_head("vaanet", num_classes=len(VE8), polarity=polarity_for(VE8))
    labels = {v: 0 for v in ids}
    with FeatureTable(head.inputs(), folder, ids, preload=False) as features:
        batches = lambda: [b for _, b in iter_batches(features, ids, labels, batch_size=32,  # noqa: E731
                                                       rng=np.random.default_rng(0))]
        seconds, read = timed(batches)
    return seconds, sum(t.numel() * 4 for b in read for k, t in b.items() if k in ("visual", "audio"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 videos, test view only")
    parser.add_argument("--videos", type=int, default=8)
    args = parser.parse_args()
    n, views = (4, 0) if args.quick else (args.videos, 2)
    torch.set_num_threads(2)
    ids = [f"v{i:05d}" for i in range(n)]
    rows, reads = [], []
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        work = Path(tmp)
        for name, arrays in entries(work, views).items():
            sizes = {}
            for codec, compression in CODECS.items():
                folder = work / codec
                folder.mkdir(exist_ok=True)
                level = 1 if name == "decode" else 4
                sizes[codec] = write(folder / f"{name}.h5", arrays, ids, compression, level)
            raw = sum(np.asarray(x).nbytes for x in arrays.values())
            rows.append([f"`{name}`", f"{raw / 1e6:.2f}", *(f"{sizes[c] / 1e6:.2f}" for c in CODECS),
                         f"{sizes['none'] / sizes['gzip']:.2f}x"])
        for codec in CODECS:
            seconds, size = read_epoch(work / codec, ids)
            reads.append([codec, n, f"{seconds:.2f}", f"{n / seconds:.0f}", f"{size / seconds / 1e6:.0f}"])
    print(f"### 6. Cache size and read throughput\n\n{machine_line()}; one 10 s 640x360 clip, "
          f"{1 + views} snippet views, {n} entries per file\n\n    .venv/bin/python -m bench.cache_size"
          f"{' --quick' if args.quick else ''}\n")
    print(table(["cache", "arrays (MB)", "gzip (MB/video)", "lzf (MB/video)", "none (MB/video)",
                 "none / gzip"], rows))
    print("\nOne VAANet head epoch read from the files (conv5 of one view + mfcc_resnet18, batch 32):\n")
    print(table(["compression", "videos", "seconds", "videos/s", "MB/s (float32 batches)"], reads))
    print()


if __name__ == "__main__":
    main()

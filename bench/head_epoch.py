"""Deliverable 1: a VAANet head epoch on the cache vs the end-to-end epoch that recomputes the frozen
3D ResNet-101 on every clip of every batch, with the one-off extraction cost and the break-even epochs.

    .venv/bin/python -m bench.head_epoch [--quick] [--videos 64] [--steps 1] [--batch 4]

One test clip (10 s, 640x360, 25 fps, 2 s GOP, 440 Hz tone) stands for every video: it is decoded once
with the real `decode_video` (3 snippet views and 44.1 kHz audio), its features are computed once with
the real extractors (random weights: a speed check), and its entry is written under N video ids with
the real `CacheWriter` (gzip 4, as the feature stages write).

- cached: `training.loop.train_epoch` over a `FeatureTable` of those caches (the head's own loop),
  best of 2 epochs;
- end-to-end ("decoded frames"): the same head and batches, but each step runs the frozen r3d101
  extractor (eval, inference mode) on the T snippets of the drawn view of every video of the batch;
- end-to-end ("authors' JPEG"): as above, the frames of each step loaded from a JPEG dump
  (`ffmpeg -i V -vf scale=-1:240 DIR/%06d.jpg`) with PIL, 10 x 16 per video, short side 112, centre crop.
A few steps of each are timed and extrapolated to the epoch of N videos. Both audio modes of the head:
`cached` (frozen mfcc_resnet18 features) and `mfcc` (the head trains VAANet's audio ResNet-18).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.common import best_of, machine_line, make_clip, table, timed, verdict
from pipeline.cache import CacheWriter
from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import decode_video
from pipeline.extractors.base import get_extractor
from pipeline.features.config import ExtractorSpec
from pipeline.features.worker import build_extractor, run_batched
from pipeline.heads.base import build_head
from pipeline.heads.polarity import polarity_for
from pipeline.media.probe import probe_video
from pipeline.media.sampling import snippet_frames
from pipeline.training.data import FeatureTable, collate, training_views
from pipeline.training.loop import train_epoch

VE8 = ("Anger", "Anticipation", "Disgust", "Fear", "Joy", "Sadness", "Surprise", "Trust")
CLASSES = len(VE8)
TARGETS = {"cached": 100.0, "mfcc": 5.0}


Entries = dict[str, dict[str, np.ndarray]]


def extract_once(clip: Path, train_views: int,
                 segments: int) -> tuple[Entries, dict[str, float], dict[str, float]]:
    """One video's cache entries (r3d101_conv5, mfcc, mfcc_resnet18), the seconds of each step and the
    seconds of the first mfcc call.

    Each extractor is timed warm, as a stage's worker runs it on every video after its first: the CNNs
    after one call (oneDNN builds its kernels then), the MFCC after one whole call, whose first run in a
    process loads (on a fresh install, compiles) librosa's numba kernels. That first call is reported
    apart: it is paid once per worker, not once per video."""
    seconds, decoded = timed(lambda: decode_video(clip, "clip", probe_video(clip),
                                                  DecodeConfig(outputs=("snippets", "audio"),
                                                               train_views=train_views, segments=segments)))
    cost = {"decode": seconds}
    first_call: dict[str, float] = {}
    snippets = decoded.arrays["snippets"]
    r3d = build_extractor(ExtractorSpec("r3d101_conv5"), "cpu")
    rows = snippets.reshape(-1, *snippets.shape[2:])
    r3d(rows[:1])
    cost["r3d101_conv5"], visual = timed(lambda: run_batched(r3d, rows, 8))
    audio = decoded.arrays["audio_44100"][None]
    mfcc_of = get_extractor("mfcc")()
    first_call["mfcc"], _ = timed(lambda: mfcc_of(audio))
    cost["mfcc"], mfcc = timed(lambda: mfcc_of(audio))
    resnet = build_extractor(ExtractorSpec("mfcc_resnet18"), "cpu")
    resnet(mfcc["mfcc"][0])
    cost["mfcc_resnet18"], heard = timed(lambda: resnet(mfcc["mfcc"][0]))
    views = snippets.shape[:2]
    entries = {
        "r3d101_conv5": {"conv5": visual["conv5"].reshape(*views, 2048, 1, 4, 4).astype(np.float16),
                         "conv5_times_ms": decoded.arrays["snippets_times_ms"]},
        "mfcc": {"mfcc": mfcc["mfcc"][0], "mfcc_times_ms": np.zeros((16, 2), np.int64)},
        "mfcc_resnet18": {"features": heard["features"].astype(np.float16),
                          "features_times_ms": np.zeros((16, 2), np.int64)},
        "snippets": {"snippets": snippets},
    }
    return entries, cost, first_call


def write_caches(work: Path, entries: dict[str, dict[str, np.ndarray]], ids: list[str]) -> None:
    for name in ("r3d101_conv5", "mfcc", "mfcc_resnet18"):
        with CacheWriter(work / f"{name}.h5", stage=name, config={}, config_hash="bench", level=4) as writer:
            for v in ids:
                writer.write(v, entries[name], {"has_audio": True})


def jpeg_dump(clip: Path, out: Path) -> float:
    """The authors' preprocessing of one video; seconds."""
    out.mkdir(parents=True, exist_ok=True)
    return timed(lambda: subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-vf",
                                         "scale=-1:240", str(out / "%06d.jpg")], check=True))[0]


def load_jpeg_snippets(folder: Path, frames: np.ndarray) -> np.ndarray:
    """(T, k) 0-based frame indices -> uint8 (T, k, 112, 112, 3): PIL load, short side 112, centre crop."""
    def one(i: int) -> np.ndarray:
        image = Image.open(folder / f"{i + 1:06d}.jpg").convert("RGB")
        w, h = image.size
        scale = 112 / min(w, h)
        image = image.resize((max(112, round(w * scale)), max(112, round(h * scale))), Image.BILINEAR)
        left, top = (image.size[0] - 112) // 2, (image.size[1] - 112) // 2
        return np.asarray(image.crop((left, top, left + 112, top + 112)))
    return np.stack([np.stack([one(int(i)) for i in row]) for row in frames])


def end_to_end_steps(head: torch.nn.Module, table: FeatureTable, ids: list[str], *, batch: int, steps: int,
                     clips: Callable[[str, int], np.ndarray]) -> float:
    """Mean seconds of a training step whose visual input is recomputed by the frozen r3d101."""
    r3d = build_extractor(ExtractorSpec("r3d101_conv5"), "cpu")
    optimizer = torch.optim.Adam(head.parameters(), lr=2e-4)
    rng = np.random.default_rng(0)
    head.train()

    def one_step(chunk: list[str], views: np.ndarray) -> None:
        out = collate(table, chunk, [0] * len(chunk), views)
        frames = np.concatenate([clips(v, view) for v, view in zip(chunk, views, strict=True)])
        conv5 = run_batched(r3d, frames, 8)["conv5"]
        out["visual"] = torch.from_numpy(conv5.reshape(len(chunk), -1, 2048, 1, 4, 4))
        parts = head.loss(head(out), out)
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        optimizer.step()

    chunks = [ids[i * batch:(i + 1) * batch] for i in range(steps)]
    times = [timed(partial(one_step, c, training_views(table, len(c), rng)))[0] for c in chunks]
    return float(np.mean(times))


def measure(work: Path, n: int, steps: int, batch: int, train_views: int,
            segments: int) -> tuple[list[list[str]], dict[str, float], dict[str, float]]:
    clip = make_clip(work / "clip.mp4", width=640, height=360, seconds=10, gop=50)
    entries, cost, first_call = extract_once(clip, train_views, segments)
    cost["jpeg_dump"] = jpeg_dump(clip, work / "jpeg")
    n_frames = len(list((work / "jpeg").glob("*.jpg")))
    ids = [f"v{i:05d}" for i in range(n)]
    write_caches(work, entries, ids)
    labels = {v: i % CLASSES for i, v in enumerate(ids)}
    snippets = entries["snippets"]["snippets"]
    centre = snippet_frames(n_frames, segments, 16, None)
    flavours = {
        "decoded frames": lambda v, view: snippets[view],
        "authors' JPEG + PIL": lambda v, view: load_jpeg_snippets(work / "jpeg", centre),
    }
    one_off = cost["decode"] + cost["r3d101_conv5"] + cost["mfcc"]
    rows = []
    for mode in ("cached", "mfcc"):
        torch.manual_seed(0)
        head = build_head("vaanet", num_classes=CLASSES, polarity=polarity_for(VE8), audio_mode=mode,
                          segments=segments)
        with FeatureTable(head.inputs(), work, ids) as features:
            optimizer = torch.optim.Adam(head.parameters(), lr=2e-4)
            epoch = partial(train_epoch, head, optimizer, features, ids, labels, batch_size=batch,
                            rng=np.random.default_rng(0), device=torch.device("cpu"))
            cached = best_of(epoch, 2)
            extraction = n * (one_off + (cost["mfcc_resnet18"] if mode == "cached" else 0.0))
            for flavour, clips in flavours.items():
                step = end_to_end_steps(head, features, ids, batch=batch, steps=steps, clips=clips)
                e2e = step * math.ceil(n / batch)
                ratio = e2e / cached
                prep = n * cost["jpeg_dump"] if flavour.startswith("authors") else 0.0
                rows.append([f"`{mode}`", flavour, f"{step:.2f}", f"{e2e:.1f}", f"{cached:.3f}",
                             f"**{ratio:.0f}x**", f"{extraction:.0f}", f"{prep:.0f}",
                             f"{extraction / (e2e - cached):.1f}", f">= {TARGETS[mode]:.0f}x: "
                             f"{verdict(ratio >= TARGETS[mode])}"])
    return rows, cost, first_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 videos, 1 step, batch 2, 2 segments, test view only")
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    n, steps, batch, views, segments = ((4, 1, 2, 0, 2) if args.quick
                                         else (args.videos, args.steps, args.batch, 2, 10))
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        rows, cost, first_call = measure(Path(tmp), n, steps, batch, views, segments)
    print(f"### 1. Head epoch: cached vs end-to-end\n\n{machine_line()}; {n} videos (one 10 s 640x360 "
          f"clip under {n} ids), batch {batch}, end-to-end extrapolated from {steps} step(s), random "
          f"weights, {segments} segments, CPU, {torch.get_num_threads()} torch threads\n\n"
          f"    .venv/bin/python -m bench.head_epoch{' --quick' if args.quick else ''}\n")
    print(table(["audio_mode", "end-to-end input", "e2e s/step", "e2e epoch (s)", "cached epoch (s)",
                 "ratio", "one-off extraction (s)", "JPEG dump (s)", "break-even epochs", "target"], rows))
    per_video = ", ".join(f"{k} {v:.2f} s" for k, v in cost.items())
    print(f"\nOne-off cost per video: {per_video} (extraction = decode + r3d101 over (1 + train views) x T "
          "snippets + mfcc, + mfcc_resnet18 for `cached`). "
          "Break-even = extraction / (e2e epoch - cached epoch). "
          f"Paid once per worker, not per video: the first mfcc call, {first_call['mfcc']:.2f} s "
          "(librosa's numba kernels; compiled on a fresh install, loaded from their cache after).\n")


if __name__ == "__main__":
    main()

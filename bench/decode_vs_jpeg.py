"""Deliverable 2: decode what the 3D ResNet needs vs the authors' JPEG dump + PIL reload, per video.

    .venv/bin/python -m bench.decode_vs_jpeg [--quick] [--seconds 60] [--repeats 2]

Clips: ffmpeg testsrc2 + tone, 25 fps, H.264 (B-frames) with a keyframe every 10 s or every 2 s,
1280x720 and 640x360. Per clip, each route `--repeats` times (the fastest is kept, the least disturbed):

- floor: every frame decoded once, to nothing, by `ffmpeg -i V -map 0:v -f null -` and by PyAV's
  FFmpeg (the library our seeking route decodes with) on frame threads over every core; the faster
  of the two is the floor;
- JPEG route: `ffmpeg -i V -vf scale=-1:240 DIR/%06d.jpg`, then PIL loads of the 10 x 16 frames of the
  centre snippets (short side 112, centre crop 112): seconds, bytes and files written;
- ours: what the decode stage runs per video: its worker's `probe_and_decode` (probe, packet listing,
  decode, gzip 1 of the entry) on every core, as the floor may use them (a seeking plan split over
  single-thread decoders side by side, chunks deflated on every core), with `outputs: [snippets]`,
  for the test view alone (10 snippets of 16 x 112 x 112: what evaluation and `vemo predict` read) and
  for the 3 views the training default caches; and with every output (snippets, face frames,
  keyframes, audio); then its driver's `CacheWriter` copies the entry into the file: seconds, bytes
  of the entry, image files (none).
  torch runs on one thread, as in the decode stage's Dask workers.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import av
import torch

from bench.common import best_of, dir_bytes, machine_line, make_clip, table, verdict
from bench.head_epoch import load_jpeg_snippets
from pipeline.cache import CacheWriter
from pipeline.decode import OUTPUTS, DecodeConfig
from pipeline.decode_run import probe_and_decode
from pipeline.media.sampling import snippet_frames

SIZES = ((1280, 720), (640, 360))
GOPS_S = (10, 2)
FPS = 25
GZIP_LEVEL = 1        # the decode stage's default (params.yaml cache.compression_level)


def ffmpeg_floor_seconds(clip: Path, repeats: int) -> float:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-map", "0:v", "-f", "null", "-"]
    return best_of(lambda: subprocess.run(cmd, check=True), repeats)


def pyav_floor_seconds(clip: Path, repeats: int) -> float:
    def decode_all() -> None:
        with av.open(str(clip)) as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"             # frame and slice threads, as many as cores
            for _ in container.decode(video):
                pass
    return best_of(decode_all, repeats)


def jpeg_route(clip: Path, out: Path, repeats: int) -> tuple[float, int, int]:
    """(seconds, bytes, files) of the dump and the reload of the centre snippets."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-vf", "scale=-1:240", str(out / "%06d.jpg")]

    def route() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        subprocess.run(cmd, check=True)
        load_jpeg_snippets(out, snippet_frames(len(list(out.glob("*.jpg"))), 10, 16, None))
    seconds = best_of(route, repeats)
    size, files = dir_bytes(out)
    shutil.rmtree(out)
    return seconds, size, files


def ours(clip: Path, out: Path, cfg: DecodeConfig, repeats: int) -> tuple[float, int, int]:
    """(seconds, bytes, image files) of probing and decoding into a fresh decode cache."""

    def route() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        decoded = probe_and_decode("v", str(clip), cfg, gzip_level=GZIP_LEVEL).decoded
        with CacheWriter(out / "decode.h5", stage="decode", config={}, config_hash="b",
                         level=GZIP_LEVEL) as writer:
            writer.write("v", decoded.arrays, decoded.attrs)
    seconds = best_of(route, repeats)
    size, files = dir_bytes(out)
    shutil.rmtree(out)
    return seconds, size, files - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one 6 s 360p clip per GOP, once")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    seconds, repeats = (6.0, 1) if args.quick else (args.seconds, args.repeats)
    sizes = SIZES[1:] if args.quick else SIZES
    torch.set_num_threads(1)
    routes = {"test view": DecodeConfig(outputs=("snippets",), train_views=0),
              "3 views": DecodeConfig(outputs=("snippets",)), "every output": DecodeConfig(outputs=OUTPUTS)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        work = Path(tmp)
        for (w, h), gop in ((s, g) for s in sizes for g in GOPS_S):
            clip = make_clip(work / f"{h}p_{gop}.mp4", width=w, height=h, seconds=seconds, gop=gop * FPS)
            floors = {"ffmpeg": ffmpeg_floor_seconds(clip, repeats),
                      "PyAV": pyav_floor_seconds(clip, repeats)}
            floor = min(floors.values())
            jpeg = jpeg_route(clip, work / "jpeg", repeats)
            for at, (decoder, took) in enumerate(floors.items()):
                rows.append([f"{h}p" if at == 0 else "", f"{gop} s" if at == 0 else "",
                             f"floor: decode every frame ({decoder})", f"{took:.2f}", "-", "-",
                             f"{took / floor:.2f}", "-", "-"])
            rows.append(["", "", "JPEG dump + reload", f"{jpeg[0]:.2f}", f"{jpeg[1] / 1e6:.1f}", jpeg[2],
                         f"{jpeg[0] / floor:.2f}", "1.00x", "-"])
            for name, cfg in routes.items():
                took, size, files = ours(clip, work / "ours", cfg, repeats)
                target = "-"
                if name != "every output":
                    target = (f"<= floor: {verdict(took <= floor)}"
                              + (f"; >= 3x JPEG: {verdict(jpeg[0] / took >= 3)}" if gop == 2 else ""))
                rows.append(["", "", f"ours, {name}", f"{took:.2f}", f"{size / 1e6:.1f}", files,
                             f"{took / floor:.2f}", f"**{jpeg[0] / took:.2f}x**", target])
    print(f"### 2. Decode what is needed vs JPEG dump + reload\n\n{machine_line()}; {seconds:g} s clips at "
          f"{FPS} fps, seconds per video (probe and cache write included), fastest of {repeats}\n\n"
          f"    .venv/bin/python -m bench.decode_vs_jpeg{' --quick' if args.quick else ''}\n")
    print(table(["size", "keyframe every", "route", "seconds", "MB written", "image files", "/ floor",
                 "JPEG / route", "target"], rows))
    print()


if __name__ == "__main__":
    main()

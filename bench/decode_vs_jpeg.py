"""Deliverable 2: decode what the 3D ResNet needs vs the authors' JPEG dump + PIL reload, per video.

    .venv/bin/python -m bench.decode_vs_jpeg [--quick] [--seconds 60] [--repeats 3]

Clips: ffmpeg testsrc2 + tone, 25 fps, H.264 (B-frames) with a keyframe every 10 s or every 2 s,
1280x720 and 640x360. Per clip, `--repeats` rounds of every route, the routes in turn (each keeps its
fastest, the least disturbed; a burst of load then slows one run of each route, not all of one):

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import torch

from bench.common import dir_bytes, fastest_in_turn, machine_line, make_clip, table, verdict
from bench.head_epoch import load_jpeg_snippets
from pipeline.cache import CacheWriter
from pipeline.decode.config import OUTPUTS, DecodeConfig
from pipeline.decode.worker import probe_and_decode
from pipeline.media.sampling import snippet_frames

SIZES = ((1280, 720), (640, 360))
GOPS_S = (10, 2)
FPS = 25
GZIP_LEVEL = 1        # the decode stage's default (params.yaml cache.compression_level)
ROUTES = {"test view": DecodeConfig(outputs=("snippets",), train_views=0),
          "3 views": DecodeConfig(outputs=("snippets",)), "every output": DecodeConfig(outputs=OUTPUTS)}


def ffmpeg_floor(clip: Path) -> Callable[[], Any]:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-map", "0:v", "-f", "null", "-"]
    return lambda: subprocess.run(cmd, check=True)


def pyav_floor(clip: Path) -> Callable[[], Any]:
    def decode_all() -> None:
        with av.open(str(clip)) as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"             # frame and slice threads, as many as cores
            for _ in container.decode(video):
                pass
    return decode_all


def jpeg_route(clip: Path, out: Path) -> Callable[[], Any]:
    """The dump into `out` and the reload of the centre snippets."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-vf", "scale=-1:240", str(out / "%06d.jpg")]

    def route() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        subprocess.run(cmd, check=True)
        load_jpeg_snippets(out, snippet_frames(len(list(out.glob("*.jpg"))), 10, 16, None))
    return route


def ours(clip: Path, out: Path, cfg: DecodeConfig) -> Callable[[], Any]:
    """Probing and decoding into a fresh decode cache in `out`."""

    def route() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        decoded = probe_and_decode("v", str(clip), cfg, gzip_level=GZIP_LEVEL).decoded
        with CacheWriter(out / "decode.h5", stage="decode", config={}, config_hash="b",
                         level=GZIP_LEVEL) as writer:
            writer.write("v", decoded.arrays, decoded.attrs)
    return route


def clip_rows(clip: Path, work: Path, label: list[str], gop: int, repeats: int) -> list[list[str]]:
    """The table rows of one clip: every route timed in turn, `repeats` rounds, fastest kept."""
    outs = {name: work / f"out {name}" for name in ROUTES}
    routes = {"ffmpeg": ffmpeg_floor(clip), "PyAV": pyav_floor(clip), "JPEG": jpeg_route(clip, work / "jpeg"),
              **{name: ours(clip, outs[name], cfg) for name, cfg in ROUTES.items()}}
    took = fastest_in_turn(routes, repeats)
    floor = min(took["ffmpeg"], took["PyAV"])
    jpeg_bytes, jpeg_files = dir_bytes(work / "jpeg")
    rows = [[*(label if at == 0 else ["", ""]), f"floor: decode every frame ({decoder})",
             f"{took[decoder]:.2f}", "-", "-", f"{took[decoder] / floor:.2f}", "-", "-"]
            for at, decoder in enumerate(("ffmpeg", "PyAV"))]
    rows.append(["", "", "JPEG dump + reload", f"{took['JPEG']:.2f}", f"{jpeg_bytes / 1e6:.1f}", jpeg_files,
                 f"{took['JPEG'] / floor:.2f}", "1.00x", "-"])
    for name in ROUTES:
        size, files = dir_bytes(outs[name])
        target = "-"
        if name != "every output":
            target = (f"<= floor: {verdict(took[name] <= floor)}"
                      + (f"; >= 3x JPEG: {verdict(took['JPEG'] / took[name] >= 3)}" if gop == 2 else ""))
        rows.append(["", "", f"ours, {name}", f"{took[name]:.2f}", f"{size / 1e6:.1f}", files - 1,
                     f"{took[name] / floor:.2f}", f"**{took['JPEG'] / took[name]:.2f}x**", target])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one 6 s 360p clip per GOP, once")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds, repeats = (6.0, 1) if args.quick else (args.seconds, args.repeats)
    sizes = SIZES[1:] if args.quick else SIZES
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        work = Path(tmp)
        for (w, h), gop in ((s, g) for s in sizes for g in GOPS_S):
            clip = make_clip(work / f"{h}p_{gop}.mp4", width=w, height=h, seconds=seconds, gop=gop * FPS)
            rows += clip_rows(clip, work, [f"{h}p", f"{gop} s"], gop, repeats)
    print(f"### 2. Decode what is needed vs JPEG dump + reload\n\n{machine_line()}; {seconds:g} s clips at "
          f"{FPS} fps, seconds per video (probe and cache write included), fastest of {repeats} rounds "
          "(the routes in turn)\n\n"
          f"    .venv/bin/python -m bench.decode_vs_jpeg{' --quick' if args.quick else ''}\n")
    print(table(["size", "keyframe every", "route", "seconds", "MB written", "image files", "/ floor",
                 "JPEG / route", "target"], rows))
    print()


if __name__ == "__main__":
    main()

"""Deliverable 2: decode what the 3D ResNet needs vs the authors' JPEG dump + PIL reload, per video.

    .venv/bin/python -m bench.decode_vs_jpeg [--quick] [--seconds 10]

Clips: ffmpeg testsrc2 + tone, 25 fps, H.264 with a keyframe every 10 s or every 2 s, 1280x720 and
640x360. Per clip, each route once:

- floor: `ffmpeg -i V -map 0:v -f null -`, every frame decoded once, to nothing;
- JPEG route: `ffmpeg -i V -vf scale=-1:240 DIR/%06d.jpg`, then PIL loads of the 10 x 16 frames of the
  centre snippets (short side 112, centre crop 112): seconds, bytes and files written;
- ours: the real `decode_video` with `outputs: [snippets]` (the r3d101 input: 3 views x 10 snippets of
  16 x 112 x 112) and with every output (snippets, face frames, keyframes, audio), written with the real
  `CacheWriter` (gzip 1, as the decode stage): seconds, bytes of the entry, image files (none). torch runs
  on one thread, as in the decode stage's Dask workers (OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from bench.common import dir_bytes, machine_line, make_clip, table, timed, verdict
from bench.head_epoch import load_jpeg_snippets
from pipeline.cache import CacheWriter
from pipeline.decode import OUTPUTS, DecodeConfig, decode_video
from pipeline.media.probe import probe_video
from pipeline.media.sampling import snippet_frames

SIZES = ((1280, 720), (640, 360))
GOPS_S = (10, 2)
FPS = 25


def floor_seconds(clip: Path) -> float:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-map", "0:v", "-f", "null", "-"]
    return timed(lambda: subprocess.run(cmd, check=True))[0]


def jpeg_route(clip: Path, out: Path) -> tuple[float, int, int]:
    """(seconds, bytes, files) of the dump and the reload of the centre snippets."""
    out.mkdir(parents=True)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-vf", "scale=-1:240", str(out / "%06d.jpg")]

    def route() -> None:
        subprocess.run(cmd, check=True)
        load_jpeg_snippets(out, snippet_frames(len(list(out.glob("*.jpg"))), 10, 16, None))
    seconds = timed(route)[0]
    size, files = dir_bytes(out)
    shutil.rmtree(out)
    return seconds, size, files


def ours(clip: Path, out: Path, outputs: tuple[str, ...]) -> tuple[float, int, int]:
    """(seconds, bytes, image files) of decoding into a fresh decode cache."""
    out.mkdir(parents=True)
    cfg = DecodeConfig(outputs=outputs)

    def route() -> None:
        decoded = decode_video(clip, "v", probe_video(clip), cfg)
        with CacheWriter(out / "decode.h5", stage="decode", config={}, config_hash="b", level=1) as writer:
            writer.write("v", decoded.arrays, decoded.attrs)
    seconds = timed(route)[0]
    size, files = dir_bytes(out)
    shutil.rmtree(out)
    return seconds, size, files - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s clips, 360p only")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    seconds = 4.0 if args.quick else args.seconds
    sizes = SIZES[1:] if args.quick else SIZES
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vemo-bench-") as tmp:
        work = Path(tmp)
        for (w, h), gop in ((s, g) for s in sizes for g in GOPS_S):
            clip = make_clip(work / f"{h}p_{gop}.mp4", width=w, height=h, seconds=seconds, gop=gop * FPS)
            floor = floor_seconds(clip)
            jpeg = jpeg_route(clip, work / "jpeg")
            snip = ours(clip, work / "ours", ("snippets",))
            every = ours(clip, work / "ours", OUTPUTS)
            target = (f"<= floor: {verdict(snip[0] <= floor)}"
                      + (f"; >= 3x JPEG: {verdict(jpeg[0] / snip[0] >= 3)}" if gop == 2 else ""))
            rows.append([f"{h}p", f"{gop} s", f"{floor:.2f}", f"{jpeg[0]:.2f}", f"{jpeg[1] / 1e6:.1f}",
                         jpeg[2], f"{snip[0]:.2f}", f"{snip[1] / 1e6:.1f}", snip[2],
                         f"**{jpeg[0] / snip[0]:.2f}x**", f"{snip[0] / floor:.2f}", f"{every[0]:.2f}",
                         f"{every[1] / 1e6:.1f}", target])
    print(f"### 2. Decode what is needed vs JPEG dump + reload\n\n{machine_line()}; {seconds:g} s clips at "
          f"{FPS} fps, seconds per video\n\n    .venv/bin/python -m bench.decode_vs_jpeg"
          f"{' --quick' if args.quick else ''}\n")
    print(table(["size", "keyframe every", "floor: decode all (s)", "JPEG route (s)", "JPEG MB", "JPEG files",
                 "ours, snippets (s)", "ours MB", "image files", "JPEG / ours", "ours / floor",
                 "ours, every output (s)", "every output MB", "target"], rows))
    print()


if __name__ == "__main__":
    main()

"""Issue 25: where `decode_video`'s time above the decode floor goes, step by step, on one VE-8 stand-in.

    .venv/bin/python -m bench.decode_profile [--seconds 107] [--rounds 2]

CPU seconds on one thread (steadier than wall time on a shared machine), the routes taken in turn each
round, the fastest kept: ffmpeg's floor (video only, audio only), PyAV decoding every frame to nothing,
the same plus the keyframe histogram's 32x32 sample grid taken three ways (the filter graph
`decode_video` uses, a persistent swscale `VideoReformatter`, numpy on the Y/U/V planes without any
colour conversion), and `decode_video` itself with every output of params.yaml.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from bench.common import machine_line, table
from bench.ve8_standins import REPO, cpu_seconds, make_standin
from pipeline.config import load_params
from pipeline.decode.config import decode_config
from pipeline.decode.video import decode_video
from pipeline.media.keyframes import HISTOGRAM_FLAGS, HISTOGRAM_SIDE
from pipeline.media.probe import probe_video

SIDE = HISTOGRAM_SIDE


def _floor(path: Path, *only: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(path), *only,
                    "-f", "null", "-"], check=True)


def _decode_each(path: Path, make: Callable[[av.VideoStream], Callable[[av.VideoFrame], object]]) -> None:
    """Decode every frame on one thread and hand each to the step `make(stream)` returns."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        step = make(stream)
        for frame in container.decode(stream):
            step(frame)


def _nothing(_stream: av.VideoStream) -> Callable[[av.VideoFrame], object]:
    return lambda frame: None


def _graph(stream: av.VideoStream) -> Callable[[av.VideoFrame], object]:
    graph = av.filter.Graph()
    chain = [graph.add_buffer(template=stream), graph.add("scale", f"{SIDE}:{SIDE}:flags={HISTOGRAM_FLAGS}"),
             graph.add("format", "rgb24"), graph.add("buffersink")]
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()

    def step(frame: av.VideoFrame) -> object:
        graph.push(frame)
        return graph.pull().to_ndarray()
    return step


def _reformatter(_stream: av.VideoStream) -> Callable[[av.VideoFrame], object]:
    reformatter = VideoReformatter()
    return lambda frame: reformatter.reformat(frame, width=SIDE, height=SIDE, format="rgb24",
                                              interpolation=Interpolation.POINT).to_ndarray()


def _planes(stream: av.VideoStream) -> Callable[[av.VideoFrame], object]:
    height, width = stream.codec_context.height, stream.codec_context.width
    ys, xs = np.arange(SIDE) * height // SIDE, np.arange(SIDE) * width // SIDE

    def step(frame: av.VideoFrame) -> object:
        planes = frame.planes
        luma = np.frombuffer(planes[0], np.uint8).reshape(height, -1)[np.ix_(ys, xs)]
        chroma = [np.frombuffer(p, np.uint8).reshape(height // 2, -1)[np.ix_(ys // 2, xs // 2)]
                  for p in planes[1:3]]
        return luma, chroma
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=107.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cfg = decode_config(load_params(REPO / "params.yaml"))
    with tempfile.TemporaryDirectory() as work:
        path = make_standin(Path(work) / "v.mp4", args.seconds, None)
        info = probe_video(path, packets=True)
        routes: dict[str, Callable[[], None]] = {
            "floor: ffmpeg -f null, video and audio": lambda: _floor(path),
            "floor: video only (-an)": lambda: _floor(path, "-an"),
            "floor: audio only (-vn)": lambda: _floor(path, "-vn"),
            "PyAV: decode every frame": lambda: _decode_each(path, _nothing),
            "+ grid by the filter graph (decode_video's)": lambda: _decode_each(path, _graph),
            "+ grid by a persistent VideoReformatter": lambda: _decode_each(path, _reformatter),
            "+ grid read off the YUV planes (numpy)": lambda: _decode_each(path, _planes),
            "decode_video, every output": lambda: decode_video(path, "v", info, cfg, threads=1),
        }
        best = dict.fromkeys(routes, float("inf"))
        for _ in range(args.rounds):
            for name, route in routes.items():
                start = cpu_seconds()
                route()
                best[name] = min(best[name], cpu_seconds() - start)
    floor = best["floor: ffmpeg -f null, video and audio"]
    print(machine_line())
    print(f"one stand-in of {args.seconds:g} s (640x360, 30 fps, AAC), CPU s on one thread, fastest of "
          f"{args.rounds} in turn\n")
    print(table(["step", "CPU s", "x floor"], [[n, f"{s:.2f}", f"{s / floor:.2f}"] for n, s in best.items()]))


if __name__ == "__main__":
    main()

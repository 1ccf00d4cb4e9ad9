"""Issue 25: vemo against v-iashin/video_features on the same videos, the same number of 3D-CNN clips per
video, side by side in one run.

    .venv/bin/python -m bench.peer_video_features [--quick] [--videos 4] [--seconds 107]
        [--video-features ../video_features]

The peer is video_features' own code, imported in-process from a checkout placed next to the project
(`--video-features`; bench/README.md, "Against video_features", says how to get it). Nothing is fetched:
with torchvision's R(2+1)D-18 Kinetics checkpoint in torch's hub cache the peer loads it, else its network
is built with random weights (the table says which; the time is the same).

Which model: vemo's video feature is `r3d101_conv5`, a 3D ResNet on 16 x 112 x 112 clips. video_features'
analog is `r21d` (`r2plus1d_18_16_kinetics`: torchvision's R(2+1)D-18, a 3D ResNet with factorised
convolutions, on 16-frame clips centre-cropped to 112 x 112); its `i3d` is an Inception network on
224 x 224 that wants optical flow beside RGB.

Same clips: vemo computes (1 + decode.train_views) x decode.segments snippets of decode.frames_per_segment
frames per video (params.yaml: 2 views x 10 segments = 20 clips of 16 frames), each through the 3D ResNet
once. The peer slides a window of `stack_size` = 16 frames by `step_size` frames over every decoded frame
(`utils.utils.form_slices`): step_size is set per video, from the stand-in's frame count, to the step
that gives exactly the same number of windows (20), spread over the whole video, and the number of rows
it returns is checked. That needs (clips - 1) x clips + 16 frames (396 = 13.2 s at 30 fps).

What is timed, per video, both cores busy, one-off costs included on both sides and divided by the
number of videos (so use 4 or more for a per-video figure):
- the peer: its network build, then its per-video entry `_extract` (read every frame with torchvision's
  `read_video`, to float, resize to 128 x 171, normalise, crop, the network on each window, `save_numpy`),
  the videos one after another in this process with torch on both cores, as its `main.py` loops. It holds
  every frame of a video as float32 at once (about 30 bytes per pixel at the peak): 640x360 at 30 fps is
  about 2 GB per 10 s of video, so 107 s stand-ins need about 23 GB. The installed torchvision (0.29)
  ships no `read_video` (the peer pins 0.16): then a stand-in of the same contract is put in its place
  (PyAV decodes every frame to RGB, and the audio, as torchvision's did), and the table says so.
- vemo: the decode stage (every output of params.yaml, and snippets only) and `feat@r3d101_conv5` (random
  weights, fp32) on a LocalCluster of 2 workers x 1 thread started after the peer's run (its start is
  excluded; each stage's fixed cost, the workers' imports and network build, is included), as
  bench/ve8_standins.py runs them.
The per-model-FLOP ratio divides the speed ratio by the ratio of the two networks' FLOPs per clip
(torch.utils.flop_counter, a multiply-add = 2): how much faster vemo is per unit of network work.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import types
from contextlib import ExitStack, redirect_stdout
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from bench.common import machine_line, peak_rss_mib, table, timed
from bench.ve8_standins import VE8_SECONDS, extractors, feature_stage, standins
from pipeline.config import load_params
from pipeline.decode.config import DecodeConfig, decode_config
from pipeline.decode.stage import run_decode
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.extractors.base import get_extractor
from pipeline.manifests.format import Manifest
from pipeline.media.probe import probe_video

REPO = Path(__file__).resolve().parents[1]
PEER_URL = "https://github.com/v-iashin/video_features"
PEER_COMMIT = "a2f61b7"            # the commit this script was written against
PEER_MODEL = "r2plus1d_18_16_kinetics"
PEER_FILES = ("models/r21d/extract_r21d.py", "models/_base/base_extractor.py", "utils/utils.py",
              "configs/r21d.yml")
PEER_MODULES = {"cv2": "opencv-python-headless", "omegaconf": "omegaconf", "tqdm": "tqdm", "av": "av"}
VEMO_MODEL = "r3d101_conv5"
STANDIN_FPS, STANDIN_PIXELS = 30, 640 * 360                     # bench.ve8_standins.make_standin's


class Unusable(Exception):
    """What the user must fix before the comparison can run; its message is the one line printed."""


def get_peer(root: Path) -> str:
    return (f"get it with: git clone {PEER_URL} {root} && git -C {root} checkout {PEER_COMMIT} "
            "(bench/README.md, 'Against video_features')")


def check_checkout(root: Path) -> None:
    """`root` holds video_features' code (the files the r21d extractor imports)."""
    if not root.is_dir():
        raise Unusable(f"no video_features checkout at {root}: {get_peer(root)}")
    missing = [f for f in PEER_FILES if not (root / f).is_file()]
    if missing:
        raise Unusable(f"{root} is not a video_features checkout ({', '.join(missing)} missing): "
                       f"{get_peer(root)}")


def check_modules() -> None:
    """The modules the peer imports that vemo does not need."""
    missing = [pip for module, pip in PEER_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise Unusable(f"video_features needs {', '.join(missing)}, not installed: "
                       f"{sys.executable} -m pip install {' '.join(missing)}  (or pip install -e '.[peer]')")


def peer_commit(root: Path) -> str:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"], capture_output=True,
                         text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown (not a git checkout)"


def _read_video(filename: str, start_pts: float = 0, end_pts: float | None = None, pts_unit: str = "pts",
                output_format: str = "THWC") -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Stand-in for torchvision's removed `read_video` on a whole file (the only call the peer makes):
    every frame as uint8 (T, H, W, 3) RGB, the first audio track as float (C, N), the rates."""
    import av
    if start_pts != 0 or end_pts is not None or output_format != "THWC":
        raise NotImplementedError("this read_video stand-in reads whole files as THWC only")
    with av.open(filename) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        info = {"video_fps": float(container.streams.video[0].average_rate)}
    audio = np.zeros((1, 0), np.float32)
    with av.open(filename) as container:              # a second pass, as torchvision's made
        if container.streams.audio:
            audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
            info["audio_fps"] = float(container.streams.audio[0].rate)
    return torch.from_numpy(np.stack(frames)), torch.from_numpy(audio), info


def ensure_read_video() -> str:
    """torchvision's `read_video` where it has one, else `_read_video` in its place; says which."""
    try:
        from torchvision.io.video import read_video  # noqa: F401
        return "torchvision's read_video"
    except ImportError:
        stand_in = types.ModuleType("torchvision.io.video")
        stand_in.read_video = _read_video  # type: ignore[attr-defined]
        sys.modules["torchvision.io.video"] = stand_in
        torchvision.io.video = stand_in  # type: ignore[attr-defined]
        return (f"read_video: a PyAV stand-in (torchvision {torchvision.__version__} has none; the peer pins "
                "0.16)")


def import_peer(root: Path) -> type:
    """video_features' ExtractR21D, imported from `root`: its packages `models` and `utils` are top-level
    names, so `root` goes first on sys.path and each must resolve there."""
    sys.path.insert(0, str(root))
    for package in ("models", "utils"):
        spec = importlib.util.find_spec(package)
        where = [] if spec is None else list(spec.submodule_search_locations or [])
        if str(root / package) not in where:
            raise Unusable(f"another package named {package!r} ({spec.origin if spec else None}) shadows "
                           f"video_features' {root / package}: run where it is not importable")
    try:
        return importlib.import_module("models.r21d.extract_r21d").ExtractR21D
    except (ImportError, AttributeError) as e:
        raise Unusable(f"video_features' r21d does not import here ({e}): check out commit {PEER_COMMIT}; "
                       f"{get_peer(root)}") from None


def _refuse_download(url: str, *args: Any, **kwargs: Any) -> None:
    raise RuntimeError(f"bench.peer_video_features fetches nothing; it was asked for {url}")


def peer_extractor(extract_r21d: type, root: Path, out: Path, videos: list[Path],
                   device: str) -> tuple[Any, str, float]:
    """The peer's extractor (`import_peer`) as its main.py builds it (its r21d.yml, `sanity_check`),
    saving .npy under `out`; the label of its weights (the Kinetics checkpoint when torch's hub cache
    holds it); the seconds its build took."""
    from omegaconf import OmegaConf
    from utils.utils import sanity_check
    args = OmegaConf.merge(OmegaConf.load(root / "configs" / "r21d.yml"), OmegaConf.create({
        "model_name": PEER_MODEL, "device": device, "on_extraction": "save_numpy",
        "output_path": str(out / "output"), "tmp_path": str(out / "tmp"),
        "video_paths": [str(v) for v in videos]}))
    with redirect_stdout(sys.stderr):
        sanity_check(args)
    weights = torchvision.models.get_model_weights("r2plus1d_18").DEFAULT
    on_disk = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(torch.hub, "download_url_to_file", _refuse_download))
        if on_disk.is_file():
            label = f"Kinetics-400 weights ({on_disk.name})"
        else:
            get_model = torchvision.models.get_model
            def random_weights(name: str, **kwargs: Any) -> torch.nn.Module:
                return get_model(name, **{**kwargs, "weights": None})
            stack.enter_context(mock.patch.object(torchvision.models, "get_model", random_weights))
            label = "RANDOM WEIGHTS"
        seconds, extractor = timed(lambda: extract_r21d(args))
    return extractor, label, seconds


def check_memory(seconds: float, meminfo: Path = Path("/proc/meminfo")) -> None:
    """The peer holds a whole stand-in as float32 at its peak (about 30 bytes per pixel with the uint8
    copies: peak RSS 4.0, 7.3 and 23.3 GB for 14, 30 and 107 s here); refuse a length this machine cannot
    hold rather than have the kernel kill the run, or the machine's other processes."""
    need = seconds * STANDIN_FPS * STANDIN_PIXELS * 30 + 1e9            # + torch, the networks, Python
    for line in meminfo.read_text().splitlines() if meminfo.is_file() else []:
        if line.startswith("MemAvailable:"):
            available = int(line.split()[1]) * 1024
            if need > available:
                raise Unusable(f"video_features would need about {need / 1e9:.0f} GB of memory for "
                               f"stand-ins of {seconds:g} s (it holds every frame in float32), "
                               f"{available / 1e9:.0f} GB are available: use shorter ones (--seconds)")


def peer_step(n_frames: int, stack: int, clips: int) -> int:
    """The step of `form_slices` that cuts exactly `clips` windows of `stack` frames from `n_frames`."""
    span = n_frames - stack
    step = span // (clips - 1) if clips > 1 else max(span, 1)
    if step < 1 or span // step + 1 != clips:
        raise Unusable(f"{n_frames} frames give no step with exactly {clips} windows of {stack}: use longer "
                       f"videos (--seconds, at least {((clips - 1) * clips + stack) / STANDIN_FPS:.1f})")
    return step


def run_peer(extractor: Any, videos: list[Path], clips: int) -> float:
    """Seconds per video of the peer's `_extract`, each video's windows set to `clips`; every output file
    is checked (its `_extract` prints an error and carries on where a video fails)."""
    from utils.utils import make_path
    shutil.rmtree(extractor.output_path, ignore_errors=True)     # it skips videos whose output exists
    steps = {v: peer_step(probe_video(v).n_frames, extractor.stack_size, clips) for v in videos}
    total = 0.0
    for video in videos:
        extractor.step_size = steps[video]
        with redirect_stdout(sys.stderr):
            seconds, _ = timed(lambda video=video: extractor._extract(str(video)))
        total += seconds
        out = Path(make_path(extractor.output_path, str(video), extractor.feature_type, ".npy"))
        if not out.is_file() or np.load(out).shape[0] != clips:
            raise RuntimeError(f"video_features wrote no {clips} rows for {video.name} (its output above)")
    return total / len(videos)


def run_vemo(work: Path, manifest: Manifest, cfg: DecodeConfig, cluster: ClusterConfig) -> dict[str, float]:
    """Seconds per video of the decode stage (every output; snippets only) and feat@r3d101_conv5."""
    caches, reports, n = work / "cache", work / "reports", len(manifest.records)
    caches.mkdir(exist_ok=True)
    for old in caches.glob("*.h5"):                                # a stage skips videos already cached
        old.unlink()
    seconds: dict[str, float] = {}
    with redirect_stdout(sys.stderr):
        for label, outputs, name in (("decode, every output", cfg.outputs, "decode"),
                                     ("decode, snippets only", ("snippets",), "decode_snippets")):
            seconds[label], summary = timed(lambda outputs=outputs, name=name: run_decode(
                manifest=manifest, root=work, cache_path=caches / f"{name}.h5", reports_dir=reports / name,
                cfg=replace(cfg, outputs=tuple(outputs)), cluster=cluster))
            if summary.done != n:
                raise RuntimeError(f"{label}: {summary.done} of {n} done")
        spec = extractors(load_params(REPO / "params.yaml"), "fp32")[VEMO_MODEL]
        seconds[f"feat@{VEMO_MODEL}"], summary = timed(lambda: feature_stage(work, manifest, spec, cluster))
        if summary.done != n:
            raise RuntimeError(f"feat@{VEMO_MODEL}: {summary.done} of {n} done")
    return {stage: s / n for stage, s in seconds.items()}


def gflops(fn: Any) -> float:
    """GFLOPs (a multiply-add counts 2) of one call of `fn`."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def clip_gflops(peer: Any, cfg: DecodeConfig) -> tuple[float, float]:
    """(peer, vemo) network GFLOPs for one clip of `frames_per_segment` x 112 x 112."""
    k, side = cfg.frames_per_segment, cfg.crop_size
    model = peer.name2module["model"].cpu()
    spec = extractors(load_params(REPO / "params.yaml"), "fp32")[VEMO_MODEL]
    vemo = get_extractor(VEMO_MODEL)(**spec.options)
    clip = np.zeros((1, k, side, side, 3), np.uint8)
    return (gflops(lambda: model(torch.zeros(1, 3, k, side, side))),
            gflops(lambda: vemo.forward(vemo.module, vemo.preprocess(clip))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 stand-ins of 14 s")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=VE8_SECONDS)
    parser.add_argument("--rounds", type=int, default=1,
                        help="each side this many times in turn, the fastest kept (a shared machine)")
    parser.add_argument("--video-features", type=Path, default=REPO.parent / "video_features",
                        help="video_features' checkout (default: ../video_features, beside the project)")
    args = parser.parse_args(argv)
    n, seconds = (2, 14.0) if args.quick else (args.videos, args.seconds)
    root = args.video_features.resolve()
    cfg = decode_config(load_params(REPO / "params.yaml"))
    clips = (1 + cfg.train_views) * cfg.segments
    try:
        check_checkout(root)
        check_modules()
        peer_step(round(seconds * STANDIN_FPS), cfg.frames_per_segment, clips)
        check_memory(seconds)
        reader = ensure_read_video()
        extract_r21d = import_peer(root)                 # before any stand-in is made: fail fast
        with tempfile.TemporaryDirectory(prefix="vemo-peer-") as tmp:
            work = Path(tmp)
            manifest = standins(work, n, 0, seconds)
            videos = [work / r.path for r in manifest.records]
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
            peer, weights, build = peer_extractor(extract_r21d, root, work / "peer", videos, device)
            cores = ClusterConfig().workers * ClusterConfig().threads_per_worker
            torch.set_num_threads(cores)
            peer_s, vemo = float("inf"), {}
            for _ in range(args.rounds):           # each side in turn: a burst of load slows one of each
                peer_s = min(peer_s, run_peer(peer, videos, clips) + build / n)
                with local_cluster(ClusterConfig()) as cluster:  # a new one: each round pays the build
                    one = run_vemo(work, manifest, cfg, ClusterConfig(scheduler=cluster.scheduler_address))
                vemo = {k: min(v, vemo.get(k, v)) for k, v in one.items()}
            peer_rss = peak_rss_mib()
            peer_gf, vemo_gf = clip_gflops(peer, cfg)
    except Unusable as e:
        print(f"bench.peer_video_features: {e}", file=sys.stderr)
        return 2
    feat = vemo[f"feat@{VEMO_MODEL}"]
    totals = {label: vemo[f"decode, {label}"] + feat for label in ("every output", "snippets only")}
    flop_ratio = peer_gf / vemo_gf
    command = " ".join(["bench.peer_video_features", *(sys.argv[1:] if argv is None else argv)])
    print(f"### Issue 25: against video_features ({PEER_URL}, commit {peer_commit(root)}; written against "
          f"{PEER_COMMIT})\n\n{machine_line()}; {n} stand-ins of {seconds:g} s (640x360, 30 fps, AAC, as "
          f"bench/ve8_standins.py; synthetic), {clips} clips of {cfg.frames_per_segment} x {cfg.crop_size} x "
          f"{cfg.crop_size} per video on each side, fastest of {args.rounds} round(s) in turn. Peer: in this "
          f"process, {cores} torch threads, {weights}, {reader}. vemo: LocalCluster "
          f"{ClusterConfig().workers} x {ClusterConfig().threads_per_worker} (start excluded), "
          f"RANDOM WEIGHTS, fp32. Device {device}.\n\n    .venv/bin/python -m {command}\n")
    rows = [[f"video_features `r21d` ({PEER_MODEL}, {weights})", f"{peer_s:.2f}", "-", f"{peer_gf:.1f}",
             "-", "-"]]
    for label in ("every output", "snippets only"):
        ratio = peer_s / totals[label]
        rows.append([f"vemo: decode ({label}) {vemo[f'decode, {label}']:.2f} + feat@{VEMO_MODEL} {feat:.2f}",
                     f"{totals[label]:.2f}", f"**{ratio:.1f}x**", f"{vemo_gf:.1f}", f"{flop_ratio:.2f}",
                     f"**{ratio / flop_ratio:.1f}x**"])
    print(table(["route", "s/video", "peer / vemo", "GFLOPs per clip", "peer / vemo FLOPs",
                 "per model FLOP"], rows))
    print(f"\nOne-off costs are in both, divided by the {n} videos: the peer's network build "
          f"({build:.1f} s), each vemo stage's fixed cost. Per model FLOP = (peer / vemo seconds) / "
          "(peer / vemo FLOPs per clip). Peak RSS of this process (the peer runs in it; vemo's workers are "
          f"other processes): {peer_rss:.0f} MiB.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

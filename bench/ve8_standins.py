"""Issue 25: every extraction stage on stand-ins of VideoEmotion-8's videos, per video, in each precision,
projected to VE-8's 1,101 videos, with decode's ratio to the decode floor.

    .venv/bin/python -m bench.ve8_standins [--quick] [--videos 16] [--faces 4] [--seconds 107]
        [--precisions fp32,bf16]

Stand-ins: ffmpeg's testsrc2 at 640x360, 30 fps, x264 `veryfast` with its default keyframe interval (as a
downloaded clip has), AAC audio, `--seconds` long (VE-8's mean duration by default); the first `--faces`
of them show a real photographed face (scikit-image's astronaut, as in the demo) moving across the frame,
so that the faces stage and the face extractors have work. The real stages run on them (params.yaml's
decode and faces settings, every extractor of params.yaml with random weights) on a LocalCluster of
2 workers x 1 thread started beforehand (its start is excluded: bench/stage_overhead.py measures the
fixed cost per stage). Each stage's time is divided by the number of videos: seconds per video with
both cores busy, so 1,101 x the sum is the projected time of VE-8 on this machine.

The decode floor is ffmpeg decoding every frame of the same files to nothing (`-f null`, video and
audio, one thread), two files at a time like the two workers. A precision the CPU does not run natively
(bf16 without AVX512-BF16 or AMX) is skipped with the reason: there it runs about 100x slower.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from bench.common import machine_line, table, timed
from pipeline.config import config_hash, load_params
from pipeline.decode.config import DecodeConfig, decode_cache_config, decode_config
from pipeline.decode.stage import run_decode
from pipeline.decode.video import _decode_frames, decode_video
from pipeline.demo.faces import face_photo
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.engine.summary import StageSummary
from pipeline.extractors.base import native_cpu_bf16
from pipeline.faces.config import face_config
from pipeline.faces.stage import run_faces
from pipeline.features.config import ExtractorSpec, extractor_spec
from pipeline.features.stage import run_features
from pipeline.graph import sources_of
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.media.ffmpeg_io import read_audio
from pipeline.media.probe import probe_video

REPO = Path(__file__).resolve().parents[1]
VE8_VIDEOS = 1101
VE8_SECONDS = 107.0


def make_standin(path: Path, seconds: float, face: Path | None) -> Path:
    """A 640x360 30 fps H.264 + AAC clip of testsrc2, with `face` (a PNG) moving across it if given."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=30:duration={seconds}",
              "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={seconds}"]
    video = []
    if face is not None:
        inputs += ["-loop", "1", "-i", str(face)]
        video = ["-filter_complex", "[0:v][2:v]overlay=x='mod(t*40,480)':y=80:shortest=1[v]",
                 "-map", "[v]", "-map", "1:a"]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, *video, "-c:v", "libx264",
                    "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
                   check=True)
    return path


def standins(work: Path, n: int, faces: int, seconds: float) -> Manifest:
    """`n` stand-ins in `work` (each 40 ms longer than the last: distinct files), the first `faces` with
    a face, as a one-class manifest."""
    photo = face_photo("astronaut")
    face = work / "face.png"
    Image.fromarray(photo).resize((128, round(128 * photo.shape[0] / photo.shape[1]))).save(face)
    records = []
    for i in range(n):
        name = f"v{i:03d}.mp4"
        make_standin(work / name, seconds + 0.04 * i, face if i < faces else None)
        records.append(VideoRecord(f"v{i:03d}", name, "x"))
    return Manifest(records, ["x"])


def decode_floor(paths: list[Path], workers: int = 2) -> float:
    """Seconds per file for ffmpeg to decode every frame (and the audio) to nothing, `workers` at a time."""
    def one(path: Path) -> None:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(path), "-f", "null",
                        "-"], check=True)
    with ThreadPoolExecutor(workers) as pool:
        seconds, _ = timed(lambda: list(pool.map(one, paths)))
    return seconds / len(paths)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: steadier than wall time on a shared machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def decode_routes(path: Path, cfg: DecodeConfig, rounds: int = 3) -> dict[str, float]:
    """CPU seconds, one thread, fastest of `rounds` taken in turn: the decode floor, `decode_video` (the
    in-process route a constant-rate file takes), and the same outputs by the ffmpeg command's one pass
    (`seek=False`: the route of any other file, and the only one before issue 25)."""
    info = probe_video(path, packets=True)
    fps = info.fps

    def floor() -> None:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-i", str(path), "-f", "null",
                        "-"], check=True)

    def command() -> None:
        _decode_frames(path, info, cfg, fps, info.n_frames, "v", [], seek=False, threads=1)
        read_audio(path, cfg.audio_rates[0], info.audio_stream)
    routes = {"decode floor": floor, "decode_video": lambda: decode_video(path, "v", info, cfg, threads=1),
              "ffmpeg command route": command}
    best = dict.fromkeys(routes, float("inf"))
    for _ in range(rounds):
        for name, route in routes.items():
            start = cpu_seconds()
            route()
            best[name] = min(best[name], cpu_seconds() - start)
    return best


def extractors(params: dict, precision: str) -> dict[str, object]:
    """Every extractor of params.yaml with random weights, at `precision` where it has that option."""
    specs = {}
    for name in params["features"]:
        spec = extractor_spec(params, name)
        options = dict(spec.options)
        if "precision" in options:
            options["precision"] = precision
        specs[name] = replace(spec, weights="random" if spec.weights != "none" else "none", options=options)
    return specs


def feature_stage(work: Path, manifest: Manifest, spec: ExtractorSpec,
                  cluster: ClusterConfig) -> StageSummary:
    """`feat@<spec.name>` on `manifest`, reading and writing the caches in `work`/cache (its inputs made
    by the stages run before it there)."""
    caches = work / "cache"
    sources = {s: str(caches / f"{s}.h5") for s in sources_of(spec.name)}
    return run_features(spec=spec, manifest=manifest, root=work, sources=sources,
                        upstream=dict.fromkeys(sources, ""), cache_path=caches / f"{spec.name}.h5",
                        reports_dir=work / "reports", cluster=cluster)


def run_all(work: Path, manifest: Manifest, precision: str, cluster: ClusterConfig,
            with_video_stages: bool) -> dict[str, float]:
    """Seconds per video of each stage; decode and faces only when `with_video_stages` (they do not
    depend on the precision), reusing their caches otherwise."""
    params = load_params(REPO / "params.yaml")
    caches, reports, n = work / "cache", work / "reports", len(manifest.records)
    caches.mkdir(exist_ok=True)
    cfg = decode_config(params)
    decode_hash = config_hash(decode_cache_config(cfg))
    seconds: dict[str, float] = {}
    with redirect_stdout(sys.stderr):               # the stages' own lines; stdout is the Markdown
        if with_video_stages:
            for old in caches.glob("*.h5"):
                old.unlink()
            seconds["decode"], _ = timed(lambda: run_decode(
                manifest=manifest, root=work, cache_path=caches / "decode.h5", reports_dir=reports, cfg=cfg,
                cluster=cluster))
            seconds["faces"], _ = timed(lambda: run_faces(
                manifest=manifest, root=work, decode_path=caches / "decode.h5", decode_hash=decode_hash,
                cache_path=caches / "faces.h5", reports_dir=reports, cfg=face_config(params),
                cluster=cluster))
        for name, spec in extractors(params, precision).items():
            (caches / f"{name}.h5").unlink(missing_ok=True)
            seconds[f"feat@{name}"], summary = timed(lambda spec=spec: feature_stage(work, manifest, spec,
                                                                                     cluster))
            if summary.done + summary.failed != n:
                raise RuntimeError(f"feat@{name}: {summary.done} of {n} done")
    return {stage: s / n for stage, s in seconds.items()}


def precisions_to_run(asked: list[str]) -> tuple[list[str], list[str]]:
    """(precisions run here, lines saying why the others are not)."""
    run, skipped = [], []
    for precision in asked:
        if precision == "bf16" and not torch.cuda.is_available() and not native_cpu_bf16():
            skipped.append("bf16 not run: this CPU has neither AVX512-BF16 nor AMX, where bf16 is about 100x "
                           "slower than fp32 (bench/README.md, 3b)")
        elif precision == "fp16":
            skipped.append("fp16 not run: CUDA only")
        else:
            run.append(precision)
    return run, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 stand-ins of 8 s, 2 with a face")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--faces", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=VE8_SECONDS)
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    n, faces, seconds = (4, 2, 8.0) if args.quick else (args.videos, args.faces, args.seconds)
    precisions, skipped = precisions_to_run(args.precisions.split(","))
    per_video: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="vemo-ve8-") as tmp:
        work = Path(tmp)
        manifest = standins(work, n, faces, seconds)
        floor = decode_floor([work / r.path for r in manifest.records])
        cfg = decode_config(load_params(REPO / "params.yaml"))
        routes = decode_routes(work / manifest.records[-1].path, cfg)
        with local_cluster(ClusterConfig()) as cluster:
            external = ClusterConfig(scheduler=cluster.scheduler_address)
            for i, precision in enumerate(precisions):
                per_video[precision] = run_all(work, manifest, precision, external, with_video_stages=i == 0)
    first = per_video[precisions[0]]
    for precision in precisions[1:]:
        per_video[precision] = {**{s: first[s] for s in ("decode", "faces")}, **per_video[precision]}
    stages = list(first)
    rows = [[stage, *(f"{per_video[p][stage]:.2f}" for p in precisions)] for stage in stages]
    rows.append(["decode floor (ffmpeg -f null)", *(f"{floor:.2f}" for _ in precisions)])
    scale = VE8_SECONDS / seconds
    totals = {p: sum(per_video[p].values()) * scale for p in precisions}
    rows.append([f"projected: {VE8_VIDEOS} videos of {VE8_SECONDS:g} s, hours",
                 *(f"{VE8_VIDEOS * totals[p] / 3600:.2f}" for p in precisions)])
    print(f"### Issue 25: VE-8 stand-ins, every stage\n\n{machine_line()}; {n} stand-ins of {seconds:g} s "
          f"(640x360, 30 fps, AAC; {faces} with a face), LocalCluster 2 x 1 (start excluded); "
          "synthetic videos, every extractor with RANDOM WEIGHTS (speed only: the features mean nothing)\n\n"
          f"    .venv/bin/python -m bench.ve8_standins{' --quick' if args.quick else ''}\n")
    print(table(["stage", *(f"{p} s/video" for p in precisions)], rows))
    print(f"\nDecode: **{first['decode'] / floor:.2f}x** the decode floor. Projection: {VE8_VIDEOS} x "
          f"the sum of s/video{f' x {scale:.1f} (VE-8 length over these clips)' if scale != 1 else ''}, "
          "without the fixed cost per stage.")
    for line in skipped:
        print(f"\n{line}.")
    print("\nDecode routes on one stand-in without a face, CPU s on one thread, fastest of 3 in turn:\n")
    floor_cpu = routes["decode floor"]
    print(table(["route", "CPU s", "x floor"],
                [[name, f"{cpu:.2f}", f"{cpu / floor_cpu:.2f}"] for name, cpu in routes.items()]))

if __name__ == "__main__":
    main()

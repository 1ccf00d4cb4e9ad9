"""A tiny trained run for the predict and report tests: 4 demo clips (2 classes), real ffmpeg, real HDF5
caches filled by `pipeline.inference.extract.build_caches` (the stages' per-video functions, in this
process) with the full decode configuration (a training view too, as the decode stage writes it),
random-weight extractors on small inputs (2 segments x 8 frames), VAANet and CAAN trained for 2 epochs with
`train_head` and scored by `evaluate_head`.

The 4th clip has neither audio nor a face (no_audio_every = no_face_every = 4).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import load_params
from pipeline.decode.config import decode_config
from pipeline.demo import generate_demo
from pipeline.faces.config import face_config
from pipeline.features.config import extractor_specs
from pipeline.inference.extract import build_caches
from pipeline.inference.plan import Plan, make_plan
from pipeline.manifests.format import Manifest
from pipeline.manifests.registry import run_builder
from pipeline.training.config import HeadSetup, TrainConfig
from pipeline.training.stage import evaluate_head, train_head

REPO = Path(__file__).resolve().parents[1]
HEADS = {  # key -> (head, caches, options)
    "vaanet": ("vaanet", ("r3d101_conv5", "mfcc_resnet18"), {"segments": 2}),
    "caan": ("caan", ("vggface_fc6", "vgg16_fc6"), {}),
}


@dataclass
class TinyRun:
    root: Path
    params: dict[str, Any]
    params_path: Path
    manifest: Manifest
    videos: dict[str, Path]  # manifest video id -> file
    cache_dir: Path
    model_dirs: dict[str, Path]
    report_dirs: dict[str, Path]
    live_dirs: dict[str, Path]
    plain: str  # a test clip with audio and a face
    bare: str  # a clip with neither

    def checkpoint(self, key: str) -> Path:
        return self.model_dirs[key] / "run_00" / "best.pt"


def tiny_params(path: Path, *, segments: int = 2) -> dict[str, Any]:
    """params.yaml at test size (`segments` snippets of 8 frames, one training view, CPU), saved to `path`."""
    params = copy.deepcopy(load_params(REPO / "params.yaml"))
    params["decode"].update(segments=segments, frames_per_segment=8, train_views=1, face_rate=1.0)
    params["features"]["mfcc_resnet50"]["options"]["segments"] = segments
    for section in params["features"].values():
        section["device"] = "cpu"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def plan_for(params: dict[str, Any], caches: set[str]) -> Plan:
    return make_plan(caches, decode=decode_config(params), faces=face_config(params),
                     specs=extractor_specs(params))


def build(root: Path) -> TinyRun:
    clips = generate_demo(root / "videos", root / "lists", classes=["anger", "joy"], clips_per_class=2,
                          min_seconds=1.0, max_seconds=1.2, width=320, height=240, no_audio_every=4,
                          no_face_every=4, seed=0, workers=2)
    manifest = run_builder("ucf", root / "videos", root / "lists").manifest
    videos = {r.video_id: r.resolve(root / "videos") for r in manifest.records}
    params = tiny_params(root / "params.yaml")
    caches = {c for _, cs, _ in HEADS.values() for c in cs}
    failures = build_caches(plan_for(params, caches), videos, root / "cache", test_view_only=False)
    assert not failures, failures
    run = TinyRun(root, params, root / "params.yaml", manifest, videos, root / "cache",
                  {k: root / "models" / k for k in HEADS}, {k: root / "reports" / k for k in HEADS},
                  {k: root / "reports" / k / "live" for k in HEADS},
                  plain=next(c.clip_id for c in clips if c.has_audio and c.has_face and c.split == "test"),
                  bare=next(c.clip_id for c in clips if not (c.has_audio or c.has_face)))
    for key, (head, heads_caches, options) in HEADS.items():
        setup = HeadSetup(key=key, head=head, caches=heads_caches, options=options, selection="last",
                          train=TrainConfig(epochs=2, batch_size=4, device="cpu"))
        train_head(setup, manifest, cache_dir=run.cache_dir, model_dir=run.model_dirs[key],
                   live_dir=run.live_dirs[key])
        evaluate_head(setup, manifest, cache_dir=run.cache_dir, model_dir=run.model_dirs[key],
                      out_dir=run.report_dirs[key])
    return run

"""Faces and feature stages through their library entry points, on real decoded demo clips."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.cache import CacheReader
from pipeline.decode import DecodeConfig
from pipeline.decode_run import run_decode
from pipeline.demo import generate_demo
from pipeline.faces.detect import FaceConfig
from pipeline.faces.run import run_faces
from pipeline.features import compute
from pipeline.features.compute import ExtractorSpec
from pipeline.features.run import run_features
from pipeline.manifests import run_builder
from pipeline.runner import ClusterConfig

CLUSTER = ClusterConfig(workers=1, threads_per_worker=2)


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("demo")
    clips = generate_demo(root / "videos", root / "lists", classes=["anger"], clips_per_class=3,
                          min_seconds=1.0, max_seconds=2.0, width=320, height=240, no_audio_every=3,
                          face_every=2, seed=0)
    manifest = run_builder("ucf", root / "videos", root / "lists").manifest
    cfg = DecodeConfig(segments=2, frames_per_segment=4, train_views=0, face_rate=2.0)
    run_decode(manifest=manifest, root=root / "videos", cache_path=root / "decode.h5",
               reports_dir=root / "reports", cfg=cfg, cluster=CLUSTER)
    faces = run_faces(manifest=manifest, root=root / "videos", decode_path=root / "decode.h5",
                      decode_hash="h", cache_path=root / "faces.h5", reports_dir=root / "reports",
                      cfg=FaceConfig(), cluster=CLUSTER)
    assert faces.done == 3
    return {"root": root, "manifest": manifest, "clips": clips}


def features(decoded: dict, name: str, out: str) -> tuple:
    compute._EXTRACTORS.clear()
    root = decoded["root"]
    spec = ExtractorSpec(name=name, batch_size=3, seed=0)
    summary = run_features(spec=spec, manifest=decoded["manifest"], root=root / "videos",
                           sources={"decode": str(root / "decode.h5"), "faces": str(root / "faces.h5")},
                           upstream={"decode": "h"}, cache_path=root / out, reports_dir=root / "reports",
                           cluster=CLUSTER)
    return summary, CacheReader(root / out)


def test_mtcnn_finds_the_photographed_face_and_nothing_elsewhere(decoded: dict) -> None:
    with CacheReader(decoded["root"] / "faces.h5") as faces:
        for clip in decoded["clips"]:
            video_id = clip.path.rsplit(".", 1)[0]
            found = faces.read(video_id, "probs")
            crops = faces.read(video_id, "face_crops")
            if clip.has_face:
                assert np.all(found > 0.95) and crops.shape[1:] == (224, 224, 3)
            else:
                assert np.isnan(found).all() and len(crops) == 0


def test_same_input_same_features_and_cached_videos_are_skipped(decoded: dict) -> None:
    first, a = features(decoded, "alexnet_fc7", "a.h5")
    second, b = features(decoded, "alexnet_fc7", "b.h5")
    assert (first.done, second.done) == (3, 3)
    for video_id in a.ids():
        np.testing.assert_array_equal(a.read(video_id, "fc7"), b.read(video_id, "fc7"))
        assert a.read(video_id, "fc7").dtype == np.float16
    assert a.metadata["weights"] == "random" and a.random_weights
    a.close()
    again, _ = features(decoded, "alexnet_fc7", "a.h5")
    assert (again.done, again.skipped) == (0, 3)


def test_videos_without_faces_get_empty_entries(decoded: dict) -> None:
    summary, cache = features(decoded, "vggface_fc6", "vggface.h5")
    assert (summary.done, summary.failed) == (3, 0)
    rows = {c.has_face: cache.read(c.path.rsplit(".", 1)[0], "fc6").shape[0] for c in decoded["clips"]}
    assert rows[False] == 0 and rows[True] > 0

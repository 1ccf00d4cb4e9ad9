"""Faces and feature stages through their library entry points, on real decoded demo clips."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from pipeline.cache import CacheReader
from pipeline.cache.verify import verify_cache
from pipeline.decode.config import DecodeConfig
from pipeline.decode.stage import run_decode
from pipeline.demo import generate_demo
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.errors import ConfigError
from pipeline.extractors.base import Extractor
from pipeline.faces.config import FaceConfig
from pipeline.faces.stage import run_faces
from pipeline.features import stage as feature_stage
from pipeline.features import worker as feature_worker
from pipeline.features.config import ExtractorIdentity, ExtractorSpec
from pipeline.features.stage import agreed_identity, run_features
from pipeline.features.worker import batches, run_across_videos
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.manifests.registry import run_builder
from tests.test_extractors_alexnet import seeded_state

CLUSTER = ClusterConfig(workers=1, threads_per_worker=2)


@pytest.fixture(scope="module")
def decoded(module_tmp: Callable[[str], Path]) -> dict:
    root = module_tmp("demo")
    clips = generate_demo(root / "videos", root / "lists", classes=["anger"], clips_per_class=3,
                          min_seconds=1.0, max_seconds=2.0, width=320, height=240, no_audio_every=3,
                          no_face_every=2, seed=0)
    manifest = run_builder("ucf", root / "videos", root / "lists").manifest
    cfg = DecodeConfig(segments=2, frames_per_segment=4, train_views=0, face_rate=2.0)
    run_decode(manifest=manifest, root=root / "videos", cache_path=root / "decode.h5",
               reports_dir=root / "reports", cfg=cfg, cluster=CLUSTER)
    faces = run_faces(manifest=manifest, root=root / "videos", decode_path=root / "decode.h5",
                      decode_hash="h", cache_path=root / "faces.h5", reports_dir=root / "reports",
                      cfg=FaceConfig(), cluster=CLUSTER)
    assert faces.done == 3
    return {"root": root, "manifest": manifest, "clips": clips}


@pytest.fixture(scope="module")
def shared() -> Iterator[ClusterConfig]:
    """A LocalCluster kept for several runs (workers keep their extractors: no rebuild per run)."""
    with local_cluster(CLUSTER) as cluster:
        yield ClusterConfig(scheduler=cluster.scheduler_address)


def features(decoded: dict, name: str, out: str, *, videos_per_task: int = 8,
             manifest: Manifest | None = None, cluster: ClusterConfig = CLUSTER) -> tuple:
    feature_worker._EXTRACTORS.clear()
    root = decoded["root"]
    spec = ExtractorSpec(name=name, batch_size=3, seed=0, videos_per_task=videos_per_task, device="cpu")
    summary = run_features(spec=spec, manifest=manifest or decoded["manifest"], root=root / "videos",
                           sources={"decode": str(root / "decode.h5"), "faces": str(root / "faces.h5")},
                           upstream={"decode": "h"}, cache_path=root / out, reports_dir=root / "reports",
                           cluster=cluster)
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


def test_same_input_same_features_and_cached_videos_are_skipped(decoded: dict,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    first, a = features(decoded, "alexnet_fc7", "a.h5")
    second, b = features(decoded, "alexnet_fc7", "b.h5")
    assert (first.done, second.done) == (3, 3)
    for video_id in a.ids():
        np.testing.assert_array_equal(a.read(video_id, "fc7"), b.read(video_id, "fc7"))
        assert a.read(video_id, "fc7").dtype == np.float16
    assert a.metadata["weights"] == "random" and a.random_weights
    fc7 = a._entry(a.ids()[0])["fc7"]      # compressed by the worker, an ordinary gzip dataset here
    assert (fc7.compression, fc7.compression_opts, fc7.shuffle) == ("gzip", 4, True)
    a.close()
    assert verify_cache(decoded["root"] / "a.h5").ok     # each entry's sha256, as the worker computed it
    # every video cached: the LocalCluster is not even started (its workers would build the network)
    monkeypatch.setattr(feature_stage, "dask_client", lambda *a, **k: pytest.fail("a cluster was started"))
    again, _ = features(decoded, "alexnet_fc7", "a.h5")
    assert (again.done, again.skipped) == (0, 3)


def test_videos_without_faces_get_empty_entries(decoded: dict, shared: ClusterConfig) -> None:
    summary, cache = features(decoded, "vggface_fc6", "vggface.h5", cluster=shared)
    assert (summary.done, summary.failed) == (3, 0)
    rows = {c.has_face: cache.read(c.path.rsplit(".", 1)[0], "fc6").shape[0] for c in decoded["clips"]}
    assert rows[False] == 0 and rows[True] > 0


class RowSums(Extractor):
    """Not registered: the sum of each row, recording the size of every batch it is given."""

    name = "row_sums"
    input_kind = "frames"
    outputs = {"sum": (1,)}

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        super().__init__()

    def build(self) -> nn.Module:
        return nn.Identity()

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        self.batch_sizes.append(len(batch))
        return torch.from_numpy(batch.reshape(len(batch), -1).astype(np.float64))

    def forward(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"sum": module(x).sum(dim=1, keepdim=True)}


def test_rows_of_one_shape_share_batches_across_videos_and_split_back() -> None:
    rng = np.random.default_rng(0)
    shapes = [(2, 2, 2, 3), (0, 2, 2, 3), (3, 4, 4, 3), (2, 2, 2, 3)]
    rows = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    extractor = RowSums()
    per_video = run_across_videos(extractor, rows, batch_size=3)
    assert extractor.batch_sizes == [3, 1, 3]     # 2x2 frames: 2 + 0 + 2 rows; 4x4 frames: 3 rows
    for r, out in zip(rows, per_video, strict=True):
        np.testing.assert_array_equal(out["sum"], r.sum(axis=(1, 2, 3), dtype=np.float64)[:, None])
    assert [b.tolist() for b in batches([np.arange(4), np.arange(0), np.arange(3)], 3)] == [
        [0, 1, 2], [3, 0, 1], [2]]


def assert_equal_to_fp16_rounding(a: np.ndarray, b: np.ndarray) -> None:
    """Equal, or one float16 step apart, or within float32 summation noise. A row's float32 features can
    differ in the last bits when its batch holds other rows (BLAS picks its blocking by batch size):
    rounding to float16 then lands on the neighbouring value now and then, and a small output that sums
    large terms of both signs carries their absolute error (about 1e-6 of the largest output; seen:
    1.138e-4 vs 1.137e-4 where outputs reach 0.2). A wrong row or batch differs by 0.01 or more."""
    assert a.dtype == b.dtype == np.float16 and a.shape == b.shape and a.size > 0
    step = np.spacing(np.maximum(np.abs(a), np.abs(b))).astype(np.float32)
    noise = 2e-6 * float(np.abs(b.astype(np.float32)).max())
    assert (np.abs(a.astype(np.float32) - b.astype(np.float32)) <= np.maximum(step, noise)).all()
    assert (a == b).mean() > 0.99


def test_batching_across_videos_gives_the_one_video_per_task_features(decoded: dict,
                                                                      shared: ClusterConfig) -> None:
    """1-2 keyframes a clip and batches of 3: with 3 videos per task, batches span clips."""
    one, single = features(decoded, "alexnet_fc7", "one.h5", videos_per_task=1, cluster=shared)
    three, grouped = features(decoded, "alexnet_fc7", "three.h5", videos_per_task=3, cluster=shared)
    assert (one.done, three.done) == (3, 3)
    with single, grouped:
        assert single.metadata["config_hash"] == grouped.metadata["config_hash"]
        assert single.ids() == grouped.ids() and len(single.ids()) == 3
        for video_id in single.ids():
            np.testing.assert_array_equal(single.read(video_id, "fc7_times_ms"),
                                          grouped.read(video_id, "fc7_times_ms"))
            assert_equal_to_fp16_rounding(single.read(video_id, "fc7"), grouped.read(video_id, "fc7"))


def test_a_bad_video_fails_alone_and_the_rest_of_its_group_is_written(decoded: dict,
                                                                       shared: ClusterConfig) -> None:
    records = list(decoded["manifest"].records)
    missing = VideoRecord("anger/never_decoded", "anger/never_decoded.mp4", "anger")
    manifest = Manifest([records[0], missing, *records[1:]], decoded["manifest"].classes)
    summary, cache = features(decoded, "alexnet_fc7", "with_bad.h5", manifest=manifest, cluster=shared)
    assert (summary.done, summary.failed) == (3, 1)
    [failure] = summary.failures
    assert failure.video_id == "anger/never_decoded" and failure.path.endswith("anger/never_decoded.mp4")
    assert "no decode entry" in failure.reason
    with cache:
        assert cache.ids() == sorted(r.video_id for r in records)
    failures = (decoded["root"] / "reports" / "feat_alexnet_fc7_failures.csv").read_text()
    assert "anger/never_decoded.mp4,no decode entry" in failures


def test_a_video_whose_features_overflow_fails_alone_naming_the_array(decoded: dict, shared: ClusterConfig,
                                                                     tmp_path: Path) -> None:
    """An AlexNet checkpoint in torchvision's layout with one fc7 unit that passes float16's 65504 for one
    video only (fc7 is ReLU(W x + b): scaling a row of W and its bias scales that unit): that video's entry
    would hold inf. It fails in the stage, the reason naming the array and the count; the others are
    cached."""
    root, state = decoded["root"], seeded_state(torchvision.models.alexnet, 3)
    (tmp_path / "plain").mkdir()
    torch.save(state, plain := tmp_path / "plain" / "alexnet-owt-7be5be79.pth")
    sources = {"decode": str(root / "decode.h5")}
    spec = ExtractorSpec(name="alexnet_fc7", weights=str(plain), batch_size=3, device="cpu")
    ids = [r.video_id for r in decoded["manifest"].records]
    peaks = np.stack([feature_worker.extract_video(v, "", spec=spec, sources=sources)[0]["fc7"].max(axis=0)
                      for v in ids]).astype(np.float64)        # (videos, 4096): each unit's peak per video
    feature_worker._EXTRACTORS.clear()
    top = np.sort(peaks, axis=0)
    unit = int(np.argmax(top[-1] / (top[-2] + 1e-3)))
    assert top[-1, unit] > 4 * top[-2, unit], "no unit is much higher for one video than for the others"
    scale = 2 * 65504 / top[-1, unit]            # that video's peak -> 131008, the others' below 32752
    weight, bias = state["classifier.4.weight"].clone(), state["classifier.4.bias"].clone()
    weight[unit] *= scale
    bias[unit] *= scale
    state = {**state, "classifier.4.weight": weight, "classifier.4.bias": bias}
    (tmp_path / "loud").mkdir()
    torch.save(state, loud := tmp_path / "loud" / "alexnet-owt-7be5be79.pth")
    summary = run_features(spec=ExtractorSpec(**{**spec.__dict__, "weights": str(loud)}),
                           manifest=decoded["manifest"], root=root / "videos", sources=sources,
                           upstream={"decode": "h"}, cache_path=tmp_path / "loud.h5", reports_dir=tmp_path,
                           cluster=shared)
    overflowed = ids[int(np.argmax(peaks[:, unit]))]
    assert (summary.done, summary.failed) == (2, 1)
    [failure] = summary.failures
    assert failure.video_id == overflowed
    assert re.match(r"array 'fc7' holds 0 NaN and [1-9]\d* inf of its \d+ values: not cached", failure.reason)
    with CacheReader(tmp_path / "loud.h5") as cache:
        assert cache.ids() == sorted(set(ids) - {overflowed})
        assert all(np.isfinite(cache.read(v, "fc7")).all() for v in cache.ids())
    assert "not cached" in (tmp_path / "feat_alexnet_fc7_failures.csv").read_text()


def test_a_missing_checkpoint_stops_the_stage_before_any_video(decoded: dict, shared: ClusterConfig,
                                                              tmp_path) -> None:
    """The workers build their extractors (and load the checkpoint) before the cache is opened: the
    stage fails once, naming the file, and records no video as failed."""
    root = decoded["root"]
    spec = ExtractorSpec(name="alexnet_fc7", weights=str(tmp_path / "alexnet.pth"), device="cpu")
    with pytest.raises(ConfigError, match=f"weights file {tmp_path / 'alexnet.pth'} not found"):
        run_features(spec=spec, manifest=decoded["manifest"], root=root / "videos",
                     sources={"decode": str(root / "decode.h5")}, upstream={"decode": "h"},
                     cache_path=tmp_path / "never.h5", reports_dir=tmp_path, cluster=shared)
    assert not (tmp_path / "never.h5").exists() and not list(tmp_path.glob("*failures.csv"))


def test_workers_must_agree_on_the_weights_and_the_code() -> None:
    spec = ExtractorSpec(name="alexnet_fc7", weights="/ckpt/alexnet.pth")
    ab, cd = ExtractorIdentity("ab12", (("extractor", 1),)), ExtractorIdentity("cd34", (("extractor", 1),))
    assert agreed_identity(spec, [ab, ab]) == ab
    disagree = r"different weights from /ckpt/alexnet.pth \(sha256 \['ab12', 'cd34'\]"
    with pytest.raises(ConfigError, match=disagree):
        agreed_identity(spec, [ab, cd, ab])
    with pytest.raises(ConfigError, match="different versions of the extractor's code"):
        agreed_identity(spec, [ab, ExtractorIdentity("ab12", (("extractor", 2),))])


def test_a_pool_worker_keeps_one_network_and_a_stage_worker_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker of a pool kept between stages (`dask.keep_alive`) would otherwise hold every stage's
    network; a stage's own worker (or `vemo predict`, which builds every extractor first) keeps them all."""
    from pipeline.engine.warm_pool import POOL_WORKER_ENV

    specs = [ExtractorSpec("mfcc"), ExtractorSpec("mfcc_resnet18")]
    feature_worker._EXTRACTORS.clear()
    monkeypatch.delenv(POOL_WORKER_ENV, raising=False)
    built = [feature_worker.extractor_for(spec) for spec in specs]
    assert len(feature_worker._EXTRACTORS) == 2 and feature_worker.extractor_for(specs[0]) is built[0]
    feature_worker._EXTRACTORS.clear()
    monkeypatch.setenv(POOL_WORKER_ENV, "1")
    first = feature_worker.extractor_for(specs[0])
    assert feature_worker.extractor_for(specs[0]) is first          # the same stage: kept
    feature_worker.extractor_for(specs[1])
    assert list(feature_worker._EXTRACTORS) == [specs[1].key()]     # the next stage's: the first goes
    feature_worker._EXTRACTORS.clear()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where torch sees no CUDA device")
def test_a_device_or_precision_this_machine_lacks_stops_the_stage_before_any_worker() -> None:
    """The driver skips torch for `auto`/`cpu` in fp32, not for what it must check here."""
    from pipeline.features.config import check_runnable

    with pytest.raises(ConfigError, match="device 'cuda': torch sees no CUDA device here"):
        check_runnable(ExtractorSpec("alexnet_fc7", device="cuda"), external=False)
    with pytest.raises(ConfigError, match="precision 'fp16' is not one of"):
        check_runnable(ExtractorSpec("alexnet_fc7", options={"precision": "fp16"}, device="cpu"),
                       external=False)
    check_runnable(ExtractorSpec("alexnet_fc7", device="cuda"), external=True)

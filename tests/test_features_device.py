"""Device choice for the extractors: the pure rule, the LocalCluster worker index, cpu and auto end to end."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.cache import CacheReader, CacheWriter
from pipeline.engine.cluster import ClusterConfig, dask_client, local_cluster
from pipeline.extractors import base, get_extractor
from pipeline.extractors.base import check_precision, native_cpu_bf16
from pipeline.features import worker as feature_worker
from pipeline.features.config import ExtractorSpec
from pipeline.features.device import check_device_name, choose_device, device_for, worker_index
from pipeline.features.stage import run_features
from pipeline.manifests.format import Manifest, VideoRecord

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


def choose(requested: str, *, gpus: int = 0, worker: int | None = None) -> torch.device:
    return choose_device(requested, cuda_available=gpus > 0, device_count=gpus, worker_index=worker)


@pytest.mark.parametrize(("requested", "gpus", "worker", "expected"), [
    ("auto", 0, None, CPU),
    ("auto", 0, 3, CPU),
    ("cpu", 4, 1, CPU),
    ("auto", 1, None, GPU),
    ("auto", 4, None, GPU),                         # the driver, or a worker of an external cluster
    ("auto", 4, 5, torch.device("cuda", 1)),        # LocalCluster worker 5 of 4 GPUs
    ("cuda", 2, 0, torch.device("cuda", 0)),
    ("cuda", 2, 1, torch.device("cuda", 1)),
    ("cuda", 2, 2, torch.device("cuda", 0)),
    ("cuda:1", 2, 0, torch.device("cuda", 1)),      # an explicit index wins over the worker's
])
def test_choose_device(requested: str, gpus: int, worker: int | None, expected: torch.device) -> None:
    assert choose(requested, gpus=gpus, worker=worker) == expected


@pytest.mark.parametrize(("requested", "gpus", "error", "match"), [
    ("cuda", 0, RuntimeError, "no CUDA device"),
    ("cuda:0", 0, RuntimeError, "no CUDA device"),
    ("cuda:2", 2, RuntimeError, "only 2 CUDA"),
    ("gpu", 1, ValueError, "not one of auto, cpu, cuda, cuda:N"),
    ("cuda:x", 1, ValueError, "not one of"),
])
def test_impossible_devices_are_errors_not_a_silent_cpu(requested: str, gpus: int, error: type,
                                                        match: str) -> None:
    with pytest.raises(error, match=match):
        choose(requested, gpus=gpus, worker=0)


def test_this_machine_and_the_driver() -> None:
    assert check_device_name("cuda:3") == "cuda:3"
    assert worker_index() is None                    # not inside a Dask worker
    assert device_for("cpu") == CPU
    expected = GPU if torch.cuda.is_available() else CPU
    assert device_for("auto") == expected


def cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n")
    return path


def test_native_bf16_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    assert native_cpu_bf16(cpuinfo(tmp_path, "avx512f amx_bf16 avx512_bf16")) == ["amx_bf16", "avx512_bf16"]
    assert native_cpu_bf16(cpuinfo(tmp_path, "avx512f")) == []
    assert native_cpu_bf16(tmp_path / "absent") is None


@pytest.mark.parametrize(("flags", "warns"), [("avx512f", True), ("avx512_bf16", False), ("amx_bf16", False)])
def test_bf16_on_a_cpu_without_native_bfloat16_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      flags: str, warns: bool) -> None:
    monkeypatch.setattr(base, "CPUINFO", cpuinfo(tmp_path, flags))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_precision("r3d101_conv5", "bf16", CPU)
        check_precision("r3d101_conv5", "fp32", CPU)
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert messages == (["r3d101_conv5: precision 'bf16' on a CPU without native bfloat16 (none of amx_bf16, "
                         f"avx512_bf16, bf16 in {tmp_path / 'cpuinfo'}) runs far slower than fp32; use fp32 "
                         "on this machine"] if warns else [])


def test_fp16_is_for_cuda_only() -> None:
    check_precision("x", "fp16", GPU)
    with pytest.raises(ValueError, match="fp16 runs on CUDA devices only"):
        check_precision("x", "fp16", CPU)
    with pytest.raises(ValueError, match="alexnet_fc7: precision 'fp16' is not one of"):
        get_extractor("alexnet_fc7")(precision="fp16", device="cpu")


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterConfig]:
    """One LocalCluster of this pipeline (2 workers) for the module, reached by its address."""
    with local_cluster(ClusterConfig(workers=2, threads_per_worker=1)) as running:
        yield ClusterConfig(scheduler=running.scheduler_address)


def test_local_cluster_workers_know_their_index(cluster: ClusterConfig) -> None:
    with dask_client(cluster) as client:
        workers = list(client.scheduler_info()["workers"])
        found = {client.submit(worker_index, pure=False, workers=[w]).result() for w in workers}
    assert found == {0, 1}


@pytest.fixture(scope="module")
def keyframes(module_tmp: Callable[[str], Path]) -> dict:
    """A hand-written decode cache: 3 videos of 1, 2 and 3 random 256x256 keyframes."""
    root = module_tmp("device")
    rng = np.random.default_rng(0)
    records = []
    with CacheWriter(root / "decode.h5", stage="decode", config={}, config_hash="d") as writer:
        for n in (1, 2, 3):
            video_id = f"c/v{n}"
            times = np.stack([np.arange(n) * 1000, np.arange(1, n + 1) * 1000], axis=1).astype(np.int64)
            frames = rng.integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)
            writer.write(video_id, {"keyframes": frames, "keyframes_times_ms": times},
                         {"fps": 25.0, "source_fps": 25.0, "duration_ms": n * 1000})
            records.append(VideoRecord(video_id, f"{video_id}.mp4", "c"))
    return {"root": root, "manifest": Manifest(records, ["c"])}


def alexnet_on(keyframes: dict, cluster: ClusterConfig, device: str, out: str) -> tuple:
    feature_worker._EXTRACTORS.clear()
    root = keyframes["root"]
    spec = ExtractorSpec(name="alexnet_fc7", batch_size=2, device=device)
    summary = run_features(spec=spec, manifest=keyframes["manifest"], root=root,
                           sources={"decode": str(root / "decode.h5")}, upstream={"decode": "d"},
                           cache_path=root / out, reports_dir=root / "reports",
                           cluster=cluster)
    return summary, CacheReader(root / out)


def test_cpu_and_auto_run_end_to_end_with_the_same_values_and_hash(keyframes: dict,
                                                                   cluster: ClusterConfig) -> None:
    cpu_summary, cpu = alexnet_on(keyframes, cluster, "cpu", "cpu.h5")
    auto_summary, auto = alexnet_on(keyframes, cluster, "auto", "auto.h5")
    assert (cpu_summary.done, auto_summary.done) == (3, 3)
    with cpu, auto:
        assert cpu.metadata["config"]["device"] == "cpu" and auto.metadata["config"]["device"] == "auto"
        assert cpu.metadata["config_hash"] == auto.metadata["config_hash"], "the device is not hashed"
        for video_id in cpu.ids():
            assert cpu.read(video_id, "fc7").shape == (int(video_id[-1]), 4096)
            if torch.cuda.is_available():      # auto ran on the GPU: TF32 convolutions, close not equal
                np.testing.assert_allclose(cpu.read(video_id, "fc7"), auto.read(video_id, "fc7"),
                                           rtol=0.02, atol=0.02)
            else:
                np.testing.assert_array_equal(cpu.read(video_id, "fc7"), auto.read(video_id, "fc7"))

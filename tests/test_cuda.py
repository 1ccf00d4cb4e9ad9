"""CUDA only (issue 27): skipped, with the reason, where torch sees no GPU. `python -m bench.gpu_extract`
runs the stages on a GPU; these check the parts it relies on: an extractor on CUDA agrees with the CPU,
reduced precision stays within cosine 0.999 of fp32, and LocalCluster workers pick the GPU on `auto`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.engine.cluster import ClusterConfig, dask_client, local_cluster
from pipeline.features.config import ExtractorSpec
from pipeline.features.device import device_for
from pipeline.features.worker import build_extractor

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="CUDA only: torch sees no GPU here (bench/gpu_extract.py runs these)")


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def features(name: str, device: str, batch: np.ndarray, precision: str = "fp32") -> dict[str, np.ndarray]:
    return build_extractor(ExtractorSpec(name, options={"precision": precision}), device)(batch)


def test_alexnet_on_cuda_matches_the_cpu() -> None:
    keyframes = np.random.default_rng(0).integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
    cpu, gpu = features("alexnet_fc7", "cpu", keyframes), features("alexnet_fc7", "cuda", keyframes)
    assert cpu.keys() == gpu.keys()
    for name in cpu:                                # TF32 convolutions: close, not equal
        assert min_cosine(cpu[name], gpu[name]) >= 0.9999, name


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_r3d_reduced_precision_on_cuda_keeps_cosine_0999(precision: str) -> None:
    clips = np.random.default_rng(0).integers(0, 256, (2, 16, 112, 112, 3), dtype=np.uint8)
    full = features("r3d101_conv5", "cuda", clips)
    reduced = features("r3d101_conv5", "cuda", clips, precision)
    for name in full:
        assert min_cosine(full[name], reduced[name]) >= 0.999, name


def test_local_cluster_workers_choose_the_gpu_on_auto() -> None:
    with local_cluster(ClusterConfig(workers=2, threads_per_worker=1)) as running, \
            dask_client(ClusterConfig(scheduler=running.scheduler_address)) as client:
        workers = list(client.scheduler_info()["workers"])
        found = {str(client.submit(device_for, "auto", pure=False, workers=[w]).result()) for w in workers}
    count = torch.cuda.device_count()
    assert found == {f"cuda:{i % count}" for i in range(2)}

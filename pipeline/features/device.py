"""Which torch device a feature extractor runs on: `device: auto | cpu | cuda | cuda:N`.

    auto     CUDA when torch.cuda.is_available(), else the CPU
    cpu      the CPU
    cuda     a GPU: in a LocalCluster started by this pipeline, worker i takes cuda:(i % device_count), so
             n workers share out the visible GPUs one each; anywhere else (an external cluster, the driver)
             cuda:0, i.e. the first GPU the process sees: start each external worker with its own
             CUDA_VISIBLE_DEVICES, as dask-cuda does
    cuda:N   that GPU, in every worker

The choice is made once per worker process, when the extractor is built; `choose_device`
(`pipeline/devices.py`, shared with training) is the pure rule.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dask.distributed import get_worker

from pipeline.devices import check_device_name, choose_device, this_machine
from pipeline.engine.cluster import LOCAL_WORKER_ENV

__all__ = ["check_device_name", "choose_device", "device_for", "worker_index"]

if TYPE_CHECKING:
    import torch

def worker_index() -> int | None:
    """This process's index in a LocalCluster started by `engine.cluster.local_cluster` (workers are named
    0..n-1 there), or None: in the driver, and in workers of an external cluster."""
    if os.environ.get(LOCAL_WORKER_ENV) != "1":
        return None
    try:
        name = get_worker().name
    except ValueError:       # not inside a Dask task
        return None
    return int(name) if str(name).isdigit() else None


def device_for(requested: str) -> torch.device:
    """`choose_device` with this machine's and this process's facts."""
    return this_machine(requested, worker_index=worker_index())

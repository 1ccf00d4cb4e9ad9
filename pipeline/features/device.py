"""Which torch device a feature extractor runs on: `device: auto | cpu | cuda | cuda:N`.

    auto     CUDA when torch.cuda.is_available(), else the CPU
    cpu      the CPU
    cuda     a GPU: in a LocalCluster started by this pipeline, worker i takes cuda:(i % device_count), so
             n workers share out the visible GPUs one each; anywhere else (an external cluster, the driver)
             cuda:0, i.e. the first GPU the process sees: start each external worker with its own
             CUDA_VISIBLE_DEVICES, as dask-cuda does
    cuda:N   that GPU, in every worker

The choice is made once per worker process, when the extractor is built; `choose_device` is the pure rule.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from dask.distributed import get_worker

from pipeline.engine.cluster import LOCAL_WORKER_ENV

if TYPE_CHECKING:
    import torch

_FORM = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(requested: str) -> str:
    """`requested` if it is one of auto, cpu, cuda, cuda:N; else ValueError."""
    if not _FORM.fullmatch(str(requested)):
        raise ValueError(f"device {requested!r} is not one of auto, cpu, cuda, cuda:N")
    return str(requested)


def choose_device(requested: str, *, cuda_available: bool, device_count: int,
                  worker_index: int | None) -> torch.device:
    """The device for `requested` given the machine's CUDA facts and this process's LocalCluster worker
    index (None outside a LocalCluster of ours). Asking for CUDA where there is none is an error, never a
    silent fall-back to the CPU."""
    import torch  # here: a feature stage's driver checks the device's name without torch

    check_device_name(requested)
    if requested == "cpu" or (requested == "auto" and not cuda_available):
        return torch.device("cpu")
    if not cuda_available or device_count < 1:
        raise RuntimeError(f"device {requested!r}: torch sees no CUDA device here (use cpu or auto)")
    if requested.startswith("cuda:"):
        index = int(requested.split(":")[1])
        if index >= device_count:
            raise RuntimeError(f"device {requested!r}: only {device_count} CUDA device(s) visible")
        return torch.device("cuda", index)
    return torch.device("cuda", (worker_index or 0) % device_count)


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
    import torch

    available = torch.cuda.is_available()
    return choose_device(requested, cuda_available=available,
                         device_count=torch.cuda.device_count() if available else 0,
                         worker_index=worker_index())

"""The torch device a `device:` setting names (auto, cpu, cuda or cuda:N), shared by the feature extractors
(`pipeline/features/device.py`, which adds a LocalCluster worker's share of the GPUs) and training.
Asking for CUDA where there is none is an error, never a silent fall-back to the CPU. torch is imported
only when a device is chosen: a stage's driver checks the name without it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

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
    import torch

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


def this_machine(requested: str, *, worker_index: int | None = None) -> torch.device:
    """`choose_device` with this machine's CUDA facts."""
    import torch

    available = torch.cuda.is_available()
    return choose_device(requested, cuda_available=available,
                         device_count=torch.cuda.device_count() if available else 0,
                         worker_index=worker_index)

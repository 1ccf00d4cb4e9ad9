"""Checkpoints written atomically (temporary file, then rename), so a kill never leaves a half-written one
that a later stage would load."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint this project wrote: plain tensors, numbers, strings and lists, so it loads with
    weights_only (no code runs on load)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} not found: run the train stage first")
    return torch.load(path, map_location="cpu", weights_only=True)

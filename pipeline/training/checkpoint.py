"""Checkpoints written atomically (temporary file, then rename), so a kill never leaves a half-written one
that a later stage would load."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import ConfigError


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
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, RuntimeError, pickle.UnpicklingError) as exc:
        # an empty or truncated file, a Git LFS pointer, or someone else's pickle: named, not a traceback
        raise ConfigError(f"{path}: not a checkpoint this project can read ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'the file ends early'})") from None

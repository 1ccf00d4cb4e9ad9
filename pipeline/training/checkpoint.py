"""Checkpoints written atomically (temporary file, then rename), so a kill never leaves a half-written one
that a later stage would load."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import ConfigError


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` whole or not at all; a write the disk refuses (full, a quota) is one line
    naming the file and the OS's reason, and the previous checkpoint stays. Serialised in memory first
    (a head's checkpoint is megabytes), so the write is plain file I/O with the OS's error, not torch's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(buffer.getbuffer())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write checkpoint {path} ({exc.strerror or exc}): free space on its disk "
                          "(or raise the quota) and re-run; any previous checkpoint is kept") from exc


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

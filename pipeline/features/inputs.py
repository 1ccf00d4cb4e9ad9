"""Where each extractor input kind comes from, as rows for the network plus their times.

An input loader gets the readers of the upstream caches (by name: "decode", "faces", "mfcc") and a
video id, and returns an `Inputs`: `rows` (N, ...) fed to the extractor in batches, `layout` (the
leading shape the N rows fold back into, e.g. (V, T) for snippet views) and `times_ms` (*layout, 2).
A video whose inputs are absent (decode failed, no face, no audio) raises VideoError naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from pipeline.cache import CacheReader
from pipeline.errors import VideoError


@dataclass
class Inputs:
    rows: np.ndarray
    layout: tuple[int, ...]
    times_ms: np.ndarray
    attrs: dict[str, object]


Loader = Callable[[Mapping[str, CacheReader], str], Inputs]
_LOADERS: dict[str, Loader] = {}
SOURCES: dict[str, tuple[str, ...]] = {}


def input_loader(kind: str, *sources: str) -> Callable[[Loader], Loader]:
    """Register the loader of one input kind and the upstream caches it reads."""
    def register(fn: Loader) -> Loader:
        _LOADERS[kind], SOURCES[kind] = fn, sources
        return fn
    return register


def load_inputs(kind: str, readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    return _LOADERS[kind](readers, video_id)


def require_entry(reader: CacheReader, video_id: str, what: str) -> dict[str, object]:
    if video_id not in reader:
        raise VideoError(video_id, f"no {what} entry in {reader.path} (see that stage's failure list)")
    return reader.attrs(video_id)


def _face_rows(readers: Mapping[str, CacheReader], video_id: str) -> tuple[np.ndarray, np.ndarray]:
    faces = readers["faces"]
    require_entry(faces, video_id, "faces")
    index = faces.read(video_id, "face_frame_index")
    if index.size == 0:
        raise VideoError(video_id, "no face detected in any sampled frame")
    return index, faces.read(video_id, "face_crops_times_ms")


@input_loader("snippets", "decode")
def snippets(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    decode = readers["decode"]
    attrs = require_entry(decode, video_id, "decode")
    clips = decode.read(video_id, "snippets")
    return Inputs(clips.reshape(-1, *clips.shape[2:]), clips.shape[:2],
                  decode.read(video_id, "snippets_times_ms"), attrs)


@input_loader("keyframes", "decode")
def keyframes(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    decode = readers["decode"]
    attrs = require_entry(decode, video_id, "decode")
    rows = decode.read(video_id, "keyframes")
    return Inputs(rows, rows.shape[:1], decode.read(video_id, "keyframes_times_ms"), attrs)


@input_loader("face_crops", "faces")
def face_crops(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    _, times = _face_rows(readers, video_id)
    rows = readers["faces"].read(video_id, "face_crops")
    return Inputs(rows, rows.shape[:1], times, readers["faces"].attrs(video_id))


@input_loader("frames", "decode", "faces")
def context_frames(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    """Whole frames, only those with a detected face (CAAN uses the same frames for face and context)."""
    index, times = _face_rows(readers, video_id)
    attrs = require_entry(readers["decode"], video_id, "decode")
    rows = readers["decode"].read(video_id, "frames")[np.sort(index)]
    return Inputs(rows, rows.shape[:1], times, attrs)

"""Worker side of a feature stage: one extractor instance per worker process, inputs read lazily."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from pipeline.cache import CacheReader
from pipeline.extractors.base import Extractor, get_extractor
from pipeline.features.inputs import SOURCES, load_inputs


@dataclass(frozen=True)
class ExtractorSpec:
    """What a worker needs to rebuild the same extractor: name, options, weights ("random" or path)."""

    name: str
    weights: str = "random"
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16
    seed: int = 0

    def key(self) -> tuple[str, str, str]:
        return self.name, self.weights, repr(sorted(self.options.items()))


K = TypeVar("K")
T = TypeVar("T")

_EXTRACTORS: dict[tuple[str, str, str], Extractor] = {}
_READERS: dict[str, CacheReader] = {}
_BUILDING = threading.Lock()


def once_per_worker(store: dict[K, T], key: K, build: Callable[[], T]) -> T:
    """`store[key]`, built on first use. The lock matters: two tasks on one worker's threads would
    otherwise build at the same time, and draws from torch's global generator would interleave, so
    each would get different "seeded" random weights."""
    with _BUILDING:
        if key not in store:
            store[key] = build()
        return store[key]


def extractor_for(spec: ExtractorSpec) -> Extractor:
    """Build (random weights seeded by `spec.seed`, so every worker builds the same) and load once."""

    def build() -> Extractor:
        torch.manual_seed(spec.seed)
        extractor = get_extractor(spec.name)(**spec.options)
        extractor.load_weights(spec.weights)
        return extractor

    return once_per_worker(_EXTRACTORS, spec.key(), build)


def reader_for(path: str) -> CacheReader:
    if path not in _READERS:
        _READERS[path] = CacheReader(path)
    return _READERS[path]


def run_batched(extractor: Extractor, rows: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    if len(rows) == 0:
        return {name: np.zeros((0, *shape), np.float32) for name, shape in extractor.outputs.items()}
    parts = [extractor(rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def extract_video(video_id: str, path: str, *, spec: ExtractorSpec,
                  sources: dict[str, str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Features of one video shaped (*layout, *feature shape), stored as the extractor's `store_dtype`
    (float16 unless it says otherwise), each with its times."""
    extractor = extractor_for(spec)
    kind = extractor.input_kind
    readers = {name: reader_for(sources[name]) for name in SOURCES[kind]}
    inputs = load_inputs(kind, readers, video_id)
    features = run_batched(extractor, inputs.rows, spec.batch_size)
    times = extractor.times_ms(inputs)
    whole = np.array([[0, inputs.attrs.get("duration_ms", times.max(initial=0))]], np.int64)
    arrays: dict[str, np.ndarray] = {}
    for name, values in features.items():
        values = values.reshape(*inputs.layout, *values.shape[1:]).astype(extractor.store_dtype)
        arrays[name] = values
        # rows of `times` where the output has them; a per-video output (a flag) spans the whole video
        arrays[f"{name}_times_ms"] = times if values.shape[: times.ndim - 1] == times.shape[:-1] else whole
    kept = ("source_fps", "fps", "duration_ms", "has_audio")
    attrs = {k: inputs.attrs[k] for k in kept if k in inputs.attrs}
    return arrays, {**attrs, "input_kind": kind}

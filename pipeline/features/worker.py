"""Worker side of a feature stage: one extractor instance per worker process, inputs read lazily.

A task is a group of videos (`videos_per_task`). The worker loads every video's input rows, runs them
through the network in full batches of `batch_size` rows that may span videos (only videos whose rows
share a shape and dtype share a batch: whole frames of two resolutions, or two soundtracks, cannot), and
splits the outputs back per video:

    video a: rows a0 a1 a2 ─┐                                                ┌─> a: a0' a1' a2'
    video b: rows b0 b1    ─┼─> [a0 a1 a2 b0] [b1 c0 c1 c2] [c3] ─> network ─┼─> b: b0' b1'
    video c: rows c0 .. c3 ─┘                                                └─> c: c0' .. c3'
                                   (batch_size 4)

A video whose inputs cannot be read (a VideoError) fails alone; the rest of its group is computed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from pipeline.cache import CacheReader
from pipeline.cache.packed import PackedEntry, pack_entry
from pipeline.engine.dask_map import Outcome, VideoTask, video_outcome
from pipeline.engine.warm_pool import POOL_WORKER_ENV
from pipeline.engine.worker_state import once_per_worker, reader_for
from pipeline.extractors.base import Extractor, get_extractor
from pipeline.features.config import ExtractorIdentity, ExtractorSpec
from pipeline.features.device import device_for
from pipeline.features.inputs import Inputs, load_inputs, recorded_identity
from pipeline.graph import INPUT_SOURCES

_EXTRACTORS: dict[tuple[str, str, str, str], Extractor] = {}


def build_extractor(spec: ExtractorSpec, device: torch.device | str) -> Extractor:
    """A new extractor on `device` with `spec.weights`: random ones seeded by `spec.seed` (drawn on the
    CPU, so the same on every worker and device), or the checkpoint's."""
    torch.manual_seed(spec.seed)
    return get_extractor(spec.name).with_weights(spec.weights, **spec.options, device=device)


def extractor_for(spec: ExtractorSpec) -> Extractor:
    """This process's extractor for `spec`, built once on the device `spec.device` picks here. A worker of
    a pool kept between stages (`warm_pool`) holds one network at a time: stage after stage, they would
    add up to gigabytes."""
    if os.environ.get(POOL_WORKER_ENV) and spec.key() not in _EXTRACTORS:
        _EXTRACTORS.clear()
    return once_per_worker(_EXTRACTORS, spec.key(), lambda: build_extractor(spec, device_for(spec.device)))


def identity_of(extractor: Extractor) -> ExtractorIdentity:
    return class_identity(type(extractor), extractor.weights)


def class_identity(cls: type[Extractor], weights: str) -> ExtractorIdentity:
    """What a cache records of an extractor of class `cls` whose loaded weights are recorded as `weights`
    (`Extractor.recorded_weights`): known without building the network."""
    return recorded_identity(cls.version, cls.input_kind, weights)


def worker_identity(spec: ExtractorSpec) -> ExtractorIdentity:
    """Worker side: this worker's extractor for `spec` (built now if need be), as its cache records it."""
    return identity_of(extractor_for(spec))


def batches(parts: Sequence[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive batches of `batch_size` rows (the last may be smaller) drawn across `parts` in order;
    only a batch that spans parts is copied."""
    held: list[np.ndarray] = []
    count = 0
    for part in parts:
        start = 0
        while start < len(part):
            take = min(batch_size - count, len(part) - start)
            held.append(part[start:start + take])
            count, start = count + take, start + take
            if count == batch_size:
                yield held[0] if len(held) == 1 else np.concatenate(held)
                held, count = [], 0
    if held:
        yield held[0] if len(held) == 1 else np.concatenate(held)


def run_batched(extractor: Extractor, rows: np.ndarray | Sequence[np.ndarray],
                batch_size: int) -> dict[str, np.ndarray]:
    """Outputs (N, *shape) of all N rows of `rows` (one array, or several of one row shape, in order)."""
    parts = [rows] if isinstance(rows, np.ndarray) else list(rows)
    outs = [extractor(batch) for batch in batches(parts, batch_size)]
    if not outs:
        return {name: np.zeros((0, *shape), np.float32) for name, shape in extractor.outputs.items()}
    return {name: np.concatenate([o[name] for o in outs]) for name in outs[0]}


def run_across_videos(extractor: Extractor, rows: Sequence[np.ndarray],
                      batch_size: int) -> list[dict[str, np.ndarray]]:
    """Per video, the outputs of its rows (N_i, ...) -> {name: (N_i, *shape)}; videos whose rows have one
    shape and dtype are batched together, in order."""
    classes: dict[tuple[tuple[int, ...], str], list[int]] = {}
    for i, r in enumerate(rows):
        classes.setdefault((r.shape[1:], r.dtype.str), []).append(i)
    per_video: list[dict[str, np.ndarray]] = [{} for _ in rows]
    for members in classes.values():
        outputs = run_batched(extractor, [rows[i] for i in members], batch_size)
        bounds = np.cumsum([len(rows[i]) for i in members])[:-1]
        for name, values in outputs.items():
            for i, piece in zip(members, np.split(values, bounds), strict=True):
                per_video[i][name] = piece
    return per_video


def feature_entry(extractor: Extractor, inputs: Inputs,
                  features: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One video's cache entry: each output shaped (*layout, *feature shape), stored as the extractor's
    `store_dtype` (float16 unless it says otherwise), each with its times."""
    times = extractor.times_ms(inputs)
    whole = np.array([[0, inputs.attrs.get("duration_ms", times.max(initial=0))]], np.int64)
    arrays: dict[str, np.ndarray] = {}
    for name, values in features.items():
        values = values.reshape(*inputs.layout, *values.shape[1:]).astype(extractor.store_dtype)
        arrays[name] = values
        # rows of `times` where the output has them; a per-video output (a flag) spans the whole video
        arrays[f"{name}_times_ms"] = times if values.shape[: times.ndim - 1] == times.shape[:-1] else whole
    kept = ("source_fps", "fps", "duration_ms", "has_audio", "source")   # source: the upstream entry's file
    attrs = {k: inputs.attrs[k] for k in kept if k in inputs.attrs}
    return arrays, {**attrs, "input_kind": extractor.input_kind}


def _readers(extractor: Extractor, sources: dict[str, str]) -> dict[str, CacheReader]:
    return {name: reader_for(sources[name]) for name in INPUT_SOURCES[extractor.input_kind]}


def packed_entry(extractor: Extractor, inputs: Inputs, features: dict[str, np.ndarray],
                 gzip_level: int) -> tuple[PackedEntry, dict[str, Any]]:
    """`feature_entry`, its arrays compressed here (pipeline/cache/packed.py): the driver only copies."""
    arrays, attrs = feature_entry(extractor, inputs, features)
    return pack_entry(arrays, gzip_level), attrs


def extract_group(group: Sequence[VideoTask], *, spec: ExtractorSpec, sources: dict[str, str],
                  gzip_level: int | None = None) -> list[Outcome]:
    """Worker side: the cache entry of every video of `group` (see the module docstring), as Outcomes;
    with a `gzip_level`, compressed by this worker."""
    extractor = extractor_for(spec)
    readers = _readers(extractor, sources)
    outcomes = [video_outcome(partial(load_inputs, extractor.input_kind, readers, t.video_id)) for t in group]
    ok = [i for i, (status, _) in enumerate(outcomes) if status == "ok"]
    features = run_across_videos(extractor, [outcomes[i][1].rows for i in ok], spec.batch_size)
    entry = feature_entry if gzip_level is None else partial(packed_entry, gzip_level=gzip_level)
    for i, values in zip(ok, features, strict=True):
        outcomes[i] = video_outcome(partial(entry, extractor, outcomes[i][1], values))
    return outcomes


def extract_video(video_id: str, path: str, *, spec: ExtractorSpec,
                  sources: dict[str, str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The cache entry of one video (raises VideoError when its inputs cannot be read)."""
    extractor = extractor_for(spec)
    inputs = load_inputs(extractor.input_kind, _readers(extractor, sources), video_id)
    return feature_entry(extractor, inputs, run_batched(extractor, inputs.rows, spec.batch_size))


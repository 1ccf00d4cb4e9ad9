"""The cached tensors a head reads, batched.

    cache/<dataset>/<cache>.h5 ──FeatureTable──> per video: {batch key: array}  (fp16 as cached)
                                      │
                  iter_batches(ids, view="train"|"test")  (training views drawn per epoch, seeded)
                                      │
                                   collate ──> {"label", <key>, <key>_mask, "audio_present"} float32 tensors

A video is usable only when every cache the head reads holds a complete entry for it; the others are listed
in `FeatureTable.missing` with the reason (extraction failed or has not run), never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.cache import CacheReader
from pipeline.errors import ConfigError
from pipeline.heads.base import InputSpec


@dataclass(frozen=True)
class CacheInfo:
    """What a report says about a cache a head read: its file, configuration, weights and last write."""

    path: str
    config_hash: str
    weights: str  # "random", "none" (no network, e.g. MFCC) or the checkpoint's sha256
    updated: str = ""  # when an entry was last written: new entries mean new training data

    @property
    def random(self) -> bool:
        return self.weights == "random"


@dataclass(frozen=True)
class FeatureNorm:
    """x -> (x - shift) / scale, applied to the real rows of one input; an all-zero row (padding, a video
    without audio, a frame-less video) stays zero, so masks and `audio_present` keep their meaning.

    `shift` and `scale` are scalars ("rms": shift 0, scale the root mean square) or (D,) vectors over the
    last axis ("standard": each feature dimension's mean and standard deviation)."""

    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def identity(cls) -> FeatureNorm:
        return cls(np.float32(0.0), np.float32(1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = (x.astype(np.float32) - self.shift) / self.scale
        if not np.any(self.shift):
            return y  # a pure scale keeps zeros zero by itself
        real = np.any(x != 0, axis=-1, keepdims=True)
        return np.where(real, y, np.float32(0.0))

    def to_saved(self) -> dict[str, Any]:
        return {"shift": np.asarray(self.shift).tolist(), "scale": np.asarray(self.scale).tolist()}

    @classmethod
    def from_saved(cls, value: float | Mapping[str, Any]) -> FeatureNorm:
        """From `to_saved`'s dict, or a bare float (the scale of checkpoints written before shifts)."""
        if isinstance(value, Mapping):
            return cls(np.asarray(value["shift"], np.float32), np.asarray(value["scale"], np.float32))
        return cls(np.float32(0.0), np.float32(value))


def norms_from_saved(saved: Mapping[str, Any]) -> dict[str, FeatureNorm]:
    return {k: FeatureNorm.from_saved(v) for k, v in saved.items()}


def norms_to_saved(norms: Mapping[str, FeatureNorm]) -> dict[str, dict[str, Any]]:
    return {k: v.to_saved() for k, v in norms.items()}


class FeatureTable:
    """The arrays of the head's `inputs` for the videos `ids`, read from `cache_dir`; in memory when
    `preload`."""

    def __init__(
        self, inputs: dict[str, InputSpec], cache_dir: Path, ids: Sequence[str], *, preload: bool = True
    ) -> None:
        self.inputs = inputs
        self.readers = {
            name: CacheReader(Path(cache_dir) / f"{name}.h5")
            for name in sorted({s.cache for s in inputs.values()})
        }
        for name, reader in self.readers.items():
            if not reader.path.is_file():
                raise FileNotFoundError(f"cache {reader.path} not found: run `dvc repro feat@{name}` first")
        self.missing = self._find_missing(ids)
        self.ids = [v for v in ids if v not in self.missing]
        self.audio_present = {v: self._has_audio(v) for v in self.ids}
        self.norms: dict[str, FeatureNorm] = {k: FeatureNorm.identity() for k in inputs}
        self._memory = {(v, k): self._read(v, k, ()) for v in self.ids for k in inputs} if preload else None

    def close(self) -> None:
        """Release the cache files (a reader reopens on its next read), so a stage may write them again."""
        for reader in self.readers.values():
            reader.close()

    def __enter__(self) -> FeatureTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _find_missing(self, ids: Sequence[str]) -> dict[str, str]:
        missing = {}
        for reader in self.readers.values():
            held = set(reader.ids())
            for v in ids:
                if v not in held and v not in missing:
                    missing[v] = f"no entry in {reader.path}"
        return missing

    def _has_audio(self, video_id: str) -> bool:
        flags = [r.attrs(video_id).get("has_audio") for r in self.readers.values()]
        return all(bool(f) for f in flags if f is not None)

    def _read(self, video_id: str, key: str, index: tuple) -> np.ndarray:
        """One input of one video; a NaN or inf in it stops the stage here, naming the cache, the video and
        the array, before it could make the norms and every prediction NaN (the stages' writer refuses
        such entries, pipeline/cache/finite.py; an older version's file, or one written by other code,
        may still hold them)."""
        spec = self.inputs[key]
        reader = self.readers[spec.cache]
        value = reader.read(video_id, spec.array, index)
        if value.dtype.kind == "f" and not (finite := np.isfinite(value)).all():
            raise ConfigError(
                f"cache {reader.path}: video {video_id!r}, array {spec.array!r} holds "
                f"{int(value.size - finite.sum())} NaN or inf value(s) of {value.size}: delete that entry "
                f"(or the file) and run its stage (`dvc repro feat@{spec.cache}`) again"
            )
        return value

    def caches(self) -> dict[str, CacheInfo]:
        return {
            name: CacheInfo(
                str(r.path),
                str(r.metadata.get("config_hash", "")),
                str(r.metadata.get("weights", "none")),
                str(r.metadata.get("updated", "")),
            )
            for name, r in self.readers.items()
        }

    def rows(self, video_id: str, key: str) -> np.ndarray:
        """(rows, *row shape) float64 of one video's input: every view's rows for a "views" input."""
        x = self.get(video_id, key).astype(np.float64)
        lead = 2 if self.inputs[key].kind == "views" else 1
        return x.reshape(-1, *x.shape[lead:])

    def fit_norms(self, ids: Sequence[str], rule: str) -> dict[str, FeatureNorm]:
        """Per input, from its real rows (every view) over the videos `ids`:

        - "rms": one positive scalar, the root mean square of the values. A head's first linear layer can
          represent the same functions; it only puts features of any backbone on a common scale.
        - "standard": for inputs whose rows are vectors (pooled features, fc6/fc7), each dimension's mean and
          standard deviation, as scikit-learn's StandardScaler; inputs whose rows are maps (conv5, MFCC) get
          "rms". Features of a deep network, random ones above all, share a large common component (for the
          random 3D ResNet-101 the mean row carries 99.99% of each row's norm): removing it lets a head
          without a normalisation layer (TEN, CAAN, LSTM fusion) see the part that differs between videos.
        - "none": raw features, as the papers feed them.

        All-zero rows (padding, absent audio, no face) are left out of the statistics and stay zero."""
        if rule not in ("rms", "standard", "none"):
            raise ValueError(f"train.feature_scale {rule!r} is not one of rms, standard, none")
        norms = {}
        for key in self.inputs:
            if rule == "none":
                norms[key] = FeatureNorm.identity()
                continue
            rows = [r for v in ids for r in [self.rows(v, key)] if len(r)]
            stacked = np.concatenate(rows) if rows else np.zeros((0, 1))
            stacked = stacked[np.any(stacked.reshape(len(stacked), -1) != 0, axis=1)]
            norms[key] = _fit_one(stacked, per_dimension=rule == "standard" and stacked.ndim == 2)
        return norms

    def n_views(self, key: str) -> int:
        return int(self.get(self.ids[0], key).shape[0])

    def get(self, video_id: str, key: str, view: int | None = None) -> np.ndarray:
        """The array of one video; for a "views" input, `view` picks one (None: all views)."""
        index = () if view is None else (view,)
        if self._memory is not None:
            return self._memory[(video_id, key)][index]
        return self._read(video_id, key, index)

    def times_ms(self, video_id: str, key: str) -> np.ndarray:
        """(rows, 2) start and end of each row of a video's input (the test view's, for "views")."""
        spec = self.inputs[key]
        times = self.readers[spec.cache].read(video_id, f"{spec.array}_times_ms")
        return times[0] if spec.kind == "views" else times


def _fit_one(rows: np.ndarray, *, per_dimension: bool) -> FeatureNorm:
    """The norm of one input from its real rows (N, *row shape) float64; identity when there are none."""
    if not len(rows):
        return FeatureNorm.identity()
    rms = float(np.sqrt(np.mean(np.square(rows))))
    if not per_dimension:
        return FeatureNorm(np.float32(0.0), np.float32(rms if rms > 0 else 1.0))
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    # a constant dimension (a unit that never fires) is only shifted: (x - mean) is already 0 there
    std = np.where(std > 1e-6 * max(rms, 1e-12), std, 1.0)
    return FeatureNorm(mean.astype(np.float32), std.astype(np.float32))


def pad_rows(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(B, L, ...) zero-padded rows and the (B, L) mask of real rows; L >= 1 so no dimension is empty."""
    length = max(1, max(len(a) for a in arrays))
    out = np.zeros((len(arrays), length, *arrays[0].shape[1:]), np.float32)
    mask = np.zeros((len(arrays), length), bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
        mask[i, : len(a)] = True
    return out, mask


def collate(
    table: FeatureTable, ids: Sequence[str], labels: Sequence[int], views: Sequence[int]
) -> dict[str, torch.Tensor]:
    """One batch: `views[i]` is the view read for video i from every "views" input."""
    batch = {
        "label": torch.as_tensor(np.asarray(labels), dtype=torch.long),
        "audio_present": torch.as_tensor([table.audio_present[v] for v in ids], dtype=torch.bool),
    }
    for key, spec in table.inputs.items():
        norm = table.norms[key]
        rows = [
            norm.apply(table.get(v, key, view if spec.kind == "views" else None))
            for v, view in zip(ids, views, strict=True)
        ]
        if spec.kind == "sequence":
            values, mask = pad_rows(rows)
            batch[f"{key}_mask"] = torch.from_numpy(mask)
        else:
            values = np.stack(rows).astype(np.float32)
        batch[key] = torch.from_numpy(values)
    return batch


def training_views(table: FeatureTable, n: int, rng: np.random.Generator) -> np.ndarray:
    """A training view per video: one of the cached training views 1..V-1 (view 0 when only the test
    view is cached). Heads without a "views" input get zeros, which nothing reads."""
    keys = [k for k, s in table.inputs.items() if s.kind == "views"]
    n_views = table.n_views(keys[0]) if keys and table.ids else 1
    return rng.integers(1, n_views, size=n) if n_views > 1 else np.zeros(n, np.int64)


def iter_batches(
    table: FeatureTable,
    ids: Sequence[str],
    labels: dict[str, int],
    *,
    batch_size: int,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[list[str], dict[str, torch.Tensor]]]:
    """Batches over `ids`. With `rng` (training): shuffled, a training view per video. Without: in order,
    the deterministic test view."""
    order = list(ids) if rng is None else [ids[i] for i in rng.permutation(len(ids))]
    views = np.zeros(len(order), np.int64) if rng is None else training_views(table, len(order), rng)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        yield chunk, collate(table, chunk, [labels[v] for v in chunk], views[start : start + batch_size])

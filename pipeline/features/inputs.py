"""Where each extractor input kind comes from, as rows for the network plus their times.

An input loader gets the readers of the upstream caches (by name: "decode", "faces", "mfcc") and a
video id, and returns an `Inputs`: `rows` (N, ...) fed to the extractor in batches, `layout` (the
leading shape the N rows fold back into, e.g. (V, T) for snippet views) and `times_ms` (*layout, 2).
A video whose upstream entry is absent (its decode failed) raises VideoError naming it. A video without
a face gives zero rows (a complete, empty entry: the heads decide what to do with it), and one without
audio gives an empty soundtrack (the audio extractors say how they encode that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from pipeline.cache import CacheReader
from pipeline.cache.reader import require_entry
from pipeline.errors import VideoError
from pipeline.features.config import ExtractorIdentity
from pipeline.graph import INPUT_SOURCES
from pipeline.registry import Registry


@dataclass
class Inputs:
    rows: np.ndarray
    layout: tuple[int, ...]
    times_ms: np.ndarray
    attrs: dict[str, object]


Loader = Callable[[Mapping[str, CacheReader], str], Inputs]
_VERSIONS: dict[str, int] = {}
_ARRAYS: dict[str, dict[str, tuple[str, ...]]] = {}
LOADERS: Registry[Loader] = Registry("input kind")


def input_loader(kind: str, *, version: int = 1,
                 arrays: Mapping[str, tuple[str, ...]] | None = None) -> Callable[[Loader], Loader]:
    """Register the loader of one input kind of the stage graph (`graph.INPUT_SOURCES`: the caches whose
    readers it is given). `version`: bump it when the rows it gives change for the same caches (it enters
    the feature caches' configuration hash; tests/test_golden.py fails when they change and it did not).
    `arrays`: per source cache, the prefixes of the array names it reads, so that workers without a shared
    file system are sent only those (`engine.shipping`); without it they get whole entries."""
    if kind not in INPUT_SOURCES:
        raise ValueError(f"input kind {kind!r} is not in the stage graph (pipeline/graph.py INPUT_SOURCES)")
    _VERSIONS[kind] = version
    _ARRAYS[kind] = dict(arrays or {})
    return LOADERS.register(kind)


def input_version(kind: str) -> int:
    LOADERS.get(kind)
    return _VERSIONS[kind]


def input_arrays(kind: str) -> dict[str, tuple[str, ...]]:
    """Per source cache, the prefixes of the arrays the loader of `kind` reads (absent: all of them)."""
    LOADERS.get(kind)
    return _ARRAYS[kind]


def load_inputs(kind: str, readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    return LOADERS.get(kind)(readers, video_id)


def _face_rows(readers: Mapping[str, CacheReader], video_id: str) -> tuple[np.ndarray, np.ndarray]:
    faces = readers["faces"]
    require_entry(faces, video_id, "faces")
    return faces.read(video_id, "face_frame_index"), faces.read(video_id, "face_crops_times_ms")


@input_loader("snippets", arrays={"decode": ("snippets",)})
def snippets(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    decode = readers["decode"]
    attrs = require_entry(decode, video_id, "decode")
    clips = decode.read(video_id, "snippets")
    return Inputs(clips.reshape(-1, *clips.shape[2:]), clips.shape[:2],
                  decode.read(video_id, "snippets_times_ms"), attrs)


def _rows(reader: CacheReader, video_id: str, stage: str, name: str) -> Inputs:
    """Array `name` of one video, one input row per leading index, with `name_times_ms`."""
    attrs = require_entry(reader, video_id, stage)
    rows = reader.read(video_id, name)
    return Inputs(rows, rows.shape[:1], reader.read(video_id, f"{name}_times_ms"), attrs)


@input_loader("keyframes", arrays={"decode": ("keyframes",)})
def keyframes(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    return _rows(readers["decode"], video_id, "decode", "keyframes")


@input_loader("face_crops", arrays={"faces": ("face_crops", "face_frame_index")})
def face_crops(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    _, times = _face_rows(readers, video_id)
    rows = readers["faces"].read(video_id, "face_crops")
    return Inputs(rows, rows.shape[:1], times, readers["faces"].attrs(video_id))


@input_loader("frames", arrays={"faces": ("face_crops_times_ms", "face_frame_index"),
                                "decode": ("frames",)})
def context_frames(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    """Whole frames, only those with a detected face (CAAN uses the same frames for face and context)."""
    index, times = _face_rows(readers, video_id)
    attrs = require_entry(readers["decode"], video_id, "decode")
    rows = readers["decode"].read(video_id, "frames")[np.sort(index)]
    return Inputs(rows, rows.shape[:1], times, attrs)


AUDIO_RATE = 44100


def _audio(decode: CacheReader, video_id: str) -> tuple[np.ndarray, dict[str, object]]:
    """int16 PCM at 44.1 kHz, empty for a video without (decodable) audio. Sample 0 is at the video's first
    frame (decode puts the audio on the video's clock, docs/decoding.md), so windows cut from it by time
    line up with the frames and snippets of the same times."""
    attrs = require_entry(decode, video_id, "decode")
    name = f"audio_{AUDIO_RATE}"
    if not attrs.get("has_audio"):
        return np.zeros(0, np.int16), attrs
    if name not in decode.names(video_id):
        raise VideoError(video_id, f"the decode cache has no {name}: add {AUDIO_RATE} to decode.audio_rates")
    return decode.read(video_id, name), attrs


@input_loader("audio", arrays={"decode": ("audio_",)})
def audio(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    """The whole soundtrack as one row (1, n); the extractor says how it splits into segments."""
    samples, attrs = _audio(readers["decode"], video_id)
    return Inputs(samples[None], (), np.array([[0, attrs["duration_ms"]]], np.int64), attrs)


@input_loader("spectrograms", arrays={"decode": ("audio_",)})
def spectrograms(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    """One spectrogram image per 1-second slice, paired with the keyframes (same times)."""
    from pipeline.media.spectrogram import spectrogram_images  # torch: in the worker, not the driver

    samples, attrs = _audio(readers["decode"], video_id)
    images, times = spectrogram_images(samples, AUDIO_RATE, n_frames=int(attrs["n_frames"]),
                                       fps=float(attrs["fps"]))
    return Inputs(images, images.shape[:1], times, attrs)


@input_loader("mfcc", arrays={"mfcc": ("mfcc",)})
def mfcc_segments(readers: Mapping[str, CacheReader], video_id: str) -> Inputs:
    return _rows(readers["mfcc"], video_id, "mfcc", "mfcc")


def recorded_identity(version: int, input_kind: str, weights: str) -> ExtractorIdentity:
    """What a cache records of an extractor: its recorded weights and the versions of its network's code
    and of its input loader."""
    return ExtractorIdentity(weights, (("extractor", version), ("inputs", input_version(input_kind))))

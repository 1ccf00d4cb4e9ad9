"""What the decode stage is asked to produce, and the configuration its cache records and hashes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OUTPUTS = ("snippets", "frames", "keyframes", "audio")
CODE_VERSION = 7
"""Bump when the decoded values change for the same configuration (the sampling, the scaling, which
stream is read): it enters the configuration hash, so entries of the older code are decoded again instead
of being mixed with new ones. tests/test_golden.py fails when the values change and this did not.
1: snippets and keyframes scaled by ffmpeg (area); 2: one audio track (never every track interleaved);
3: one clock (audio shifted to the video's start; a variable rate seen in the timestamps, and a stream
without a stated duration, sampled over the timestamps' span); 4: the clock starts at the first frame
shown, not at frames an edit list discards; 5: keyframes chosen by histograms of a 32x32 sample grid of
each frame, no longer of every 4th pixel of its 256x256 copy; 6: non-square pixels scaled to square ones
(the display size), and audio samples placed at their timestamps (a gap in the stream is silence, not
closed up); 7: audio that goes on after the last frame is kept, the last frame held to its end (it was
cut at the last frame: a still picture under a song kept 40 ms of the song)."""


@dataclass(frozen=True)
class DecodeConfig:
    fps: float | None = None          # constant output rate; None keeps the stream's average rate
    segments: int = 10                # T
    frames_per_segment: int = 16      # k
    train_views: int = 2
    short_side: int = 112
    crop_size: int = 112
    work_max_side: int = 640          # working size of decoded frames (face detection uses it)
    face_rate: float = 1.0            # frames per second kept for face detection
    face_max_frames: int = 64
    keyframe_size: int = 256
    audio_rates: tuple[int, ...] = (44100,)
    outputs: tuple[str, ...] = OUTPUTS
    seed: int = 0
    max_seconds: float | None = None  # longer videos are rejected (None: no limit)
    audio_stream: int | None = None   # which audio track (0-based among them); None: the default one

    def __post_init__(self) -> None:
        unknown = set(self.outputs) - set(OUTPUTS)
        if unknown:
            raise ValueError(f"unknown decode outputs {sorted(unknown)}; choose from {OUTPUTS}")

    @property
    def may_seek(self) -> bool:
        """No output needs every frame (keyframes do), so input seeking may pay."""
        return "keyframes" not in self.outputs



def decode_cache_config(cfg: DecodeConfig) -> dict[str, Any]:
    """The hashed configuration, with the code's version."""
    return {**asdict(cfg), "audio_rates": list(cfg.audio_rates), "outputs": list(cfg.outputs),
            "code_version": CODE_VERSION}


DECODE_STORAGE = ("compression", "compression_level")   # how the decode cache is stored, not what it holds


def decode_config(params: dict[str, Any]) -> DecodeConfig:
    """The `decode` section of parsed params.yaml (and the seed), as the stage and `vemo predict` use it."""
    section = {k: v for k, v in params["decode"].items() if k not in DECODE_STORAGE}
    return DecodeConfig(**{**section, "audio_rates": tuple(section["audio_rates"]),
                           "outputs": tuple(section["outputs"]), "seed": params["seed"]})


def decode_storage(params: dict[str, Any]) -> dict[str, Any]:
    """`compression` and `compression_level` of the decode cache."""
    return {k: params["decode"][k] for k in DECODE_STORAGE}

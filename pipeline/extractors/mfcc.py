"""MFCC of the soundtrack, as VAANet feeds its audio ResNet-18 (and as TEN's ResNet-50 images).

VAANet (facts from the authors' code, maysonma/VAANet `datasets/ve8.py` and `models/vaanet.py`):

    int16 PCM ──/32768──> y ──librosa.feature.mfcc(sr=44100, n_mfcc=32), other arguments default──> (32, F)
      ──transpose──> (F, 32) time-major ──tile k = 4096 // F + 1 times, keep the first 4096──> (4096, 32)
      ──16 consecutive chunks──> (16, 256, 32)        one 256 x 32 "image" per audio segment

- librosa defaults: n_fft 2048, hop 512 (11.6 ms), 128 mel bands, power_to_db(top_db=80) over the whole clip,
  DCT-II ortho. The authors pinned librosa 0.6.1, whose STFT pads with `reflect`; librosa >= 0.9 pads with
  zeros, so `pad_mode="reflect"` is passed here to reproduce their values.
- Tiling and cutting both start at the first frame: a clip longer than 4096 frames (47.5 s) keeps only its
  first 47.5 s (the paper says "center-crop"; the code takes the start, and so do we).
- A segment is 256 frames = 2.97 s. For a clip shorter than 47.5 s, segments repeat the clip.

No-audio policy (a video without an audio stream, or with an undecodable or empty one): the MFCC is all
zeros and `has_audio` is 0. Real audio never gives an all-zero MFCC (digital silence gives c0 = -1131), so
"all-zero segment" and "no audio" are the same thing downstream; the audio CNNs keep that: zero in, zero out.
A head must mask the audio branch of such videos (or drop them, saying so), never treat zeros as sound.

TEN (paper, section 4): MFCC "resized to 224 x 224" per segment, T segments as the visual stream. No released
code computes that. (The earlier WECL release reads no audio, `need_audio=False`; TEN's released code,
nku-zhichengzhang/CTEN, does read the soundtrack, `need_audio=True` in `core/dataset.py`, but as a Kaldi
fbank of 128 mel bins, 16 segments of 100 frames, into a ResNet-18 it trains, not as MFCC images: see
`pipeline/heads/ten.py`, "Not reproduced".) So the details are ours: the whole-clip MFCC above (not tiled),
cut at each segment's time span, resized bilinearly (antialiased) to 224 x 224, time along the height and
coefficients along the width, as VAANet's 256 x 32 layout. See `ten_mfcc_images`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.extractors.base import Extractor, register_extractor

SR = 44100
N_MFCC = 32
HOP = 512              # librosa's default hop_length, which VAANet relies on
LENGTH = 4096          # MFCC frames kept per clip (VAANet `timeseries_length`)
SEGMENTS = 16          # VAANet `audio_n_segments`
SEGMENT_FRAMES = LENGTH // SEGMENTS
TEN_SIZE = 224


def pcm_to_float(audio: np.ndarray) -> np.ndarray:
    """(n,) int16 PCM -> float32 in [-1, 1), scaled as librosa.load scales 16-bit audio."""
    if audio.dtype != np.int16:
        raise TypeError(f"expected int16 PCM, got {audio.dtype}")
    return audio.astype(np.float32) / 32768.0


def compute_mfcc(audio: np.ndarray, *, sr: int = SR, pad_mode: str = "reflect") -> np.ndarray:
    """(n,) int16 PCM (n > 0) -> (F, 32) float32 time-major MFCC of the whole clip, F = 1 + n // 512."""
    import librosa  # here, in the workers: a stage's driver imports this module for the class's version

    mfcc = librosa.feature.mfcc(y=pcm_to_float(audio), sr=sr, n_mfcc=N_MFCC, pad_mode=pad_mode)
    return np.ascontiguousarray(mfcc.T, dtype=np.float32)


def n_mfcc_frames(n_samples: int) -> int:
    """Frames librosa gives for n samples (centred frames): 1 + n // hop; 0 when there is no audio."""
    return 1 + n_samples // HOP if n_samples > 0 else 0


def vaanet_frame_index(n_frames: int, length: int = LENGTH) -> np.ndarray:
    """(length,) index into the F MFCC frames of each kept frame: tiled length // F + 1 times, then cut."""
    reps = length // n_frames + 1
    return np.tile(np.arange(n_frames), reps)[:length]


def vaanet_segments(mfcc: np.ndarray) -> np.ndarray:
    """(F, 32) -> (16, 256, 32): tiled or cut to 4096 frames, then 16 consecutive segments."""
    fixed = mfcc[vaanet_frame_index(len(mfcc))]
    return fixed.reshape(SEGMENTS, SEGMENT_FRAMES, mfcc.shape[1])


def vaanet_mfcc(audio: np.ndarray, *, pad_mode: str = "reflect") -> np.ndarray:
    """(n,) int16 PCM -> (16, 256, 32) float32; all zeros when n == 0 (no audio)."""
    if audio.size == 0:
        return np.zeros((SEGMENTS, SEGMENT_FRAMES, N_MFCC), np.float32)
    return vaanet_segments(compute_mfcc(audio, pad_mode=pad_mode))


def equal_spans_ms(duration_ms: float, segments: int) -> np.ndarray:
    """(segments, 2) int64 [start, end) of equal segments of [0, duration_ms]."""
    bounds = np.round(np.arange(segments + 1) * duration_ms / segments).astype(np.int64)
    return np.stack([bounds[:-1], bounds[1:]], axis=1)


def vaanet_segment_times_ms(n_samples: int, *, sr: int = SR, duration_ms: float | None = None) -> np.ndarray:
    """(16, 2) int64 time span of each VAANet segment in the original clip, on the video's clock (the
    decoded audio's sample 0 is the first frame's time).

    A segment spans its frames' hop cells [i * hop, (i + 1) * hop), clipped to the clip. For a tiled clip
    a segment may wrap from the end back to the start: its span is then the hull of the frames it holds
    (the whole clip when it holds both the last and the first frame). Without audio: 16 equal spans of
    `duration_ms` (the video's), or zeros when that is unknown.
    """
    if n_samples == 0:
        return equal_spans_ms(duration_ms or 0, SEGMENTS)
    index = vaanet_frame_index(n_mfcc_frames(n_samples)).reshape(SEGMENTS, SEGMENT_FRAMES)
    starts, stops = index.min(axis=1) * HOP, np.minimum((index.max(axis=1) + 1) * HOP, n_samples)
    return np.round(np.stack([starts, stops], axis=1) * 1000.0 / sr).astype(np.int64)


def _frame_range(span_ms: np.ndarray, n_frames: int, sr: int) -> tuple[int, int]:
    """[first, stop) MFCC frames whose hop cells meet the span; at least one frame."""
    first = min(int(np.floor(span_ms[0] * sr / 1000.0 / HOP)), n_frames - 1)
    stop = int(np.ceil(span_ms[1] * sr / 1000.0 / HOP))
    return max(first, 0), min(max(stop, first + 1), n_frames)


def resize_2d(image: np.ndarray, size: int) -> np.ndarray:
    """(h, w) float -> (size, size) float32, bilinear, antialiased when shrinking."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y[0, 0].numpy()


def ten_mfcc_images(mfcc: np.ndarray, spans_ms: np.ndarray, *, sr: int = SR,
                    size: int = TEN_SIZE) -> np.ndarray:
    """(F, 32) whole-clip MFCC + (T, 2) segment spans in ms -> (T, size, size) float32 raw MFCC images.

    Each image is the MFCC frames of one span (time along the height, coefficients along the width) resized
    to size x size. Spans should be the visual segments' (e.g. `equal_spans_ms(duration_ms, T)`, the T
    equal segments whose centre snippets the decode cache holds). An empty MFCC (no audio) gives zeros.
    """
    if len(mfcc) == 0:
        return np.zeros((len(spans_ms), size, size), np.float32)
    crops = [mfcc[slice(*_frame_range(span, len(mfcc), sr))] for span in np.asarray(spans_ms)]
    return np.stack([resize_2d(crop, size) for crop in crops])


@register_extractor
class Mfcc(Extractor):
    """VAANet audio input: per video (one row of int16 PCM), 16 MFCC segments of 256 x 32 and `has_audio`.

    Input rows: (1, n) int16 at 44100 Hz, n = 0 for a video without audio. Outputs per row:
    `mfcc` (16, 256, 32) and `has_audio` (1,) in {0, 1}, cached as float32, with the segments' times
    (`times_ms`, (16, 2)). No weights: `load_weights` records "none".
    Option `pad_mode` ("reflect", the authors' librosa 0.6.1 behaviour; "constant" for librosa >= 0.9).
    Runs on the CPU (librosa) whatever `device` says.
    """

    name = "mfcc"
    input_kind = "audio"
    outputs = {"mfcc": (SEGMENTS, SEGMENT_FRAMES, N_MFCC), "has_audio": (1,)}
    store_dtype = np.float32     # an input representation (c0 reaches -1131), not a feature: kept exact

    def __init__(self, pad_mode: str = "reflect", *, device: str | torch.device = "cpu") -> None:
        if pad_mode not in ("reflect", "constant"):
            raise ValueError(f"mfcc: pad_mode must be 'reflect' or 'constant', not {pad_mode!r}")
        self.pad_mode = pad_mode
        super().__init__(device="cpu", pad_mode=pad_mode)
        self.weights = "none"

    def build(self) -> nn.Module:
        return nn.Identity()

    @classmethod
    def recorded_weights(cls, weights: str) -> str:
        """MFCC has no weights, whatever `weights` says."""
        return "none"

    def load_weights(self, weights: str) -> str:
        self.weights = self.recorded_weights(weights)
        return self.weights

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """(B, n) int16 -> (B, 16, 256, 32) float32."""
        return torch.from_numpy(np.stack([vaanet_mfcc(row, pad_mode=self.pad_mode) for row in batch]))

    def forward(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        has_audio = x.flatten(1).abs().amax(dim=1, keepdim=True) > 0
        return {"mfcc": module(x), "has_audio": has_audio.float()}

    def times_ms(self, inputs: Any) -> np.ndarray:
        """(16, 2) segment spans of the video in `inputs` (rows (1, n); attrs with its duration_ms)."""
        return vaanet_segment_times_ms(inputs.rows.shape[-1], duration_ms=inputs.attrs.get("duration_ms"))

"""One spectrogram image per second of audio (LSTM audio-visual fusion paper, MediaEval 2015).

The paper: "window 40 ms, hop 20 ms, a spectrogram every second, short-time Fourier transform with a Hamming
window; the resulting image is resized to 256 x 256" for AlexNet. What it leaves open is decided here:

    slice s of the video (the keyframes' 1-second slices, `sampling.second_slices`)
      ──> 1 s of audio from the slice's first frame (zeros past the end of the audio: the last partial
          second is padded, so every image has the same time scale)
      ──> |STFT|, periodic Hamming window of 40 ms, hop 20 ms, no centring (49 frames at 44.1 kHz),
          n_fft = window (25 Hz bins), magnitude scaled so a full-scale sine reads 0 dB
      ──> dB, clipped to [-100, 0] dBFS and mapped linearly to [0, 255]: a fixed scale, not per image, so
          loudness (an arousal cue) survives; -100 dBFS and below (digital silence, padding) is black
      ──> image with frequency rising upwards (row 0 = Nyquist, last row = 0 Hz), time left to right,
          resized (bilinear, antialiased) to 256 x 256, grey replicated to 3 channels (no colour map: the
          paper names none, and grey keeps one value per time-frequency cell)

Output: images uint8 (S, 256, 256, 3) and times_ms int64 (S, 2), the same times as the decode cache's
`keyframes_times_ms`, so audio and visual steps pair one to one. A video without audio gives black images
(digital silence); whether to use them is the head's call (decode attrs `has_audio`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.media import sampling

WINDOW_MS = 40.0
HOP_MS = 20.0
DB_RANGE = (-100.0, 0.0)
SIZE = 256


def stft_db(audio: np.ndarray, sr: int, *, window_ms: float = WINDOW_MS,
            hop_ms: float = HOP_MS) -> np.ndarray:
    """(n,) float audio in [-1, 1] (n >= one window) -> (window // 2 + 1, frames) magnitude in dBFS."""
    from scipy.signal import get_window  # here, not at the top: scipy.signal costs a worker ~1 s to import

    win, hop = round(sr * window_ms / 1000), round(sr * hop_ms / 1000)
    window = get_window("hamming", win, fftbins=True)
    frames = np.lib.stride_tricks.sliding_window_view(audio, win)[::hop]
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1)).T * (2.0 / window.sum())
    return 20.0 * np.log10(np.maximum(magnitude, 10 ** (DB_RANGE[0] / 20)))


def render(db: np.ndarray, size: int = SIZE, db_range: tuple[float, float] = DB_RANGE) -> np.ndarray:
    """(bins, frames) dB -> (size, size, 3) uint8 grey image, low frequencies at the bottom."""
    low, high = db_range
    scaled = (np.clip(db, low, high) - low) * (255.0 / (high - low))
    x = torch.from_numpy(np.ascontiguousarray(scaled[::-1], dtype=np.float32))[None, None]
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    grey = y[0, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    return np.repeat(grey[:, :, None], 3, axis=2)


def second_windows(n_frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """The keyframes' 1-second slices: (S,) start times in seconds and (S, 2) int64 times_ms."""
    slices = sampling.second_slices(n_frames, fps)
    return slices[:, 0] / fps, sampling.span_times_ms(slices - [0, 1], fps)


def one_second(audio: np.ndarray, start: int, sr: int) -> np.ndarray:
    """(sr,) float32 samples [start, start + sr) of int16 `audio`, zero-padded past its end."""
    out = np.zeros(sr, np.float32)
    chunk = audio[start:start + sr]
    out[: len(chunk)] = chunk.astype(np.float32) / 32768.0
    return out


def spectrogram_images(audio: np.ndarray | None, sr: int, *, n_frames: int, fps: float,
                       size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(n,) int16 PCM (or None / empty: no audio) of a video of `n_frames` at `fps`
    -> images uint8 (S, size, size, 3), times_ms int64 (S, 2), one per 1-second slice."""
    audio = np.zeros(0, np.int16) if audio is None else audio
    starts, times = second_windows(n_frames, fps)
    images = [render(stft_db(one_second(audio, round(t * sr), sr), sr), size) for t in starts]
    return np.stack(images), times

"""The sound of a demo clip: a hummed tone at the clip's pitch, mono float32 at 44.1 kHz.

- the tone: fundamental at ``clip.pitch_hz`` (from the class's sound factor, see ``plan.py``) with a slight
  vibrato and harmonics 2-4 that are always weaker than the fundamental (amplitude at most 0.9 / k), so the
  spectrum's peak is that pitch; harmonics at or above the Nyquist frequency are left out (no aliasing);
- an envelope of "syllables" of random lengths with short gaps and smooth attack and release;
- a distractor: a quieter tone at a random pitch, present for part of the clip;
- white noise at the clip's signal-to-noise ratio (``clip.snr_db``).
"""

from __future__ import annotations

import numpy as np

from pipeline.demo.clip import SAMPLE_RATE, ClipInfo

RAMP_S = 0.02
VIBRATO_MAX = 0.006  # largest relative pitch deviation of the vibrato


def n_samples(clip: ClipInfo) -> int:
    return round(clip.seconds * SAMPLE_RATE)


def harmonic_tone(pitch: float, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    vibrato = 1.0 + rng.uniform(0.002, VIBRATO_MAX) * np.sin(2 * np.pi * rng.uniform(4.0, 6.0) * t)
    phase = 2 * np.pi * np.cumsum(pitch * vibrato) / SAMPLE_RATE
    tone = np.sin(phase)
    for k in (2, 3, 4):
        # drawn for every k, kept or not, so the random stream does not depend on the pitch
        amplitude, offset = rng.uniform(0.2, 0.9) / k, rng.uniform(0, 2 * np.pi)
        if k * pitch * (1.0 + VIBRATO_MAX) < SAMPLE_RATE / 2:
            tone += amplitude * np.sin(k * phase + offset)
    return tone


def syllables(
    n: int, rng: np.random.Generator, on: tuple[float, float], off: tuple[float, float]
) -> np.ndarray:
    """An envelope in [0, 1]: runs of ``on`` seconds separated by gaps of ``off`` seconds, smooth edges."""
    gate = np.zeros(n)
    pos = round(rng.uniform(*off) * SAMPLE_RATE)
    while pos < n:
        length = round(rng.uniform(*on) * SAMPLE_RATE)
        gate[pos:pos + length] = 1.0
        pos += length + round(rng.uniform(*off) * SAMPLE_RATE)
    ramp = np.hanning(2 * round(RAMP_S * SAMPLE_RATE) + 1)
    return np.convolve(gate, ramp / ramp.sum(), mode="same")


def tone(clip: ClipInfo, rng: np.random.Generator) -> np.ndarray:
    """The clip's sound track, float32 in [-1, 1], ``round(seconds * 44100)`` samples."""
    n = n_samples(clip)
    voice = harmonic_tone(clip.pitch_hz, n, rng) * syllables(n, rng, (0.3, 0.9), (0.03, 0.15))
    other = np.sin(2 * np.pi * rng.uniform(150.0, 1500.0) * np.arange(n) / SAMPLE_RATE)
    other *= rng.uniform(0.1, 0.35) * syllables(n, rng, (0.2, 0.6), (0.3, 1.0))
    signal = voice + other
    rms = np.sqrt(np.mean(voice**2)) if n else 0.0
    signal += rng.normal(0.0, rms * 10 ** (-clip.snr_db / 20), n)
    peak = np.max(np.abs(signal)) if n else 0.0
    return (signal * (rng.uniform(0.3, 0.7) / max(peak, 1e-9))).astype(np.float32)

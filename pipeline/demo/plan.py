"""Deciding every clip's facts (class cues, frame rate, size, length, audio, face, split) from the seed.

Class cues are spread evenly over their range, so any number of classes stays separable:

- hue: ``360 * c / n`` degrees, jittered per clip by at most 15% of the spacing;
- motion: the blob moves at ``360 * c / n + 45`` degrees, at a per-clip random speed;
- pitch: ``220 Hz * 2 ** (2 * c / n)`` (two octaves shared out), jittered by at most 15% of the spacing.

Every number comes from ``numpy.random.SeedSequence([seed, class index, clip index, purpose])``, so a clip
does not change when clips are added to other classes, and video and audio draw independent streams.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from pipeline.demo.clip import ClipInfo

FPS_CYCLE = ("30000/1001", "25", "30", "24000/1001", "15")
FACE_SOURCES = ("astronaut", "camera")
SAME_STEM = "clip_same"       # the second clip of each of the first two classes has this stem
BASE_PITCH_HZ = 220.0
PITCH_OCTAVES = 2.0
JITTER = 0.15                 # per-clip jitter of hue and pitch, as a fraction of the class spacing
PLAN, VIDEO, AUDIO, SPLIT = 0, 1, 2, 3  # purposes of the random streams


def clip_rng(seed: int, class_index: int, clip_index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, class_index, clip_index, purpose]))


def class_hue(class_index: int, n_classes: int) -> float:
    return 360.0 * class_index / n_classes


def class_motion(class_index: int, n_classes: int) -> float:
    return (360.0 * class_index / n_classes + 45.0) % 360.0


def class_pitch(class_index: int, n_classes: int) -> float:
    return BASE_PITCH_HZ * 2.0 ** (PITCH_OCTAVES * class_index / n_classes)


def hex_colour(hue_deg: float) -> str:
    r, g, b = colorsys.hsv_to_rgb(hue_deg / 360.0, 1.0, 1.0)
    return "#" + "".join(f"{round(v * 255):02x}" for v in (r, g, b))


def _even(value: int) -> int:
    return max(2, value - value % 2)


def clip_size(number: int, width: int, height: int) -> tuple[int, int]:
    """Even sizes: mostly the configured one; every 4th clip 2 pixels larger each way (322x242 for
    320x240, no multiple of 16), and every 4th, shifted by one, portrait (height x width)."""
    w, h = _even(width), _even(height)
    variant = number % 4
    if variant == 3:
        return _even(w + 2), _even(h + 2)
    if variant == 0:
        return h, w
    return w, h


def held_out(n_clips: int, seed: int, class_index: int) -> set[int]:
    """Which clip indices of a class are test clips: a seeded third (rounded), the rest train."""
    rng = clip_rng(seed, class_index, 0, SPLIT)
    return {int(i) for i in rng.permutation(n_clips)[: round(n_clips / 3)]}


def clip_stem(label: str, class_index: int, clip_index: int) -> str:
    return SAME_STEM if class_index < 2 and clip_index == 1 else f"{label}_{clip_index + 1:02d}"


def _every(number: int, k: int) -> bool:
    return k > 0 and number % k == 0


def jittered_cues(class_index: int, n_classes: int, rng: np.random.Generator) -> tuple[float, float]:
    """(hue in degrees, pitch in Hz) of one clip: the class's, moved by at most JITTER of the spacing."""
    step = 1.0 / n_classes
    hue = (class_hue(class_index, n_classes) + 360.0 * step * rng.uniform(-JITTER, JITTER)) % 360.0
    pitch = class_pitch(class_index, n_classes) * 2.0 ** (PITCH_OCTAVES * step * rng.uniform(-JITTER, JITTER))
    return hue, pitch


def plan_clip(
    label: str, class_index: int, clip_index: int, *, n_classes: int, clips_per_class: int,
    min_seconds: float, max_seconds: float, width: int, height: int, no_audio_every: int, face_every: int,
    seed: int, test: bool,
) -> ClipInfo:
    rng = clip_rng(seed, class_index, clip_index, PLAN)
    number = class_index * clips_per_class + clip_index + 1
    fps = FPS_CYCLE[(number - 1) % len(FPS_CYCLE)]
    w, h = clip_size(number, width, height)
    n_frames = max(1, round(rng.uniform(min_seconds, max_seconds) * Fraction(fps)))
    hue, pitch = jittered_cues(class_index, n_classes, rng)
    has_face = _every(number, face_every)
    return ClipInfo(
        clip_id=f"{label}/{clip_stem(label, class_index, clip_index)}", label=label,
        class_index=class_index, index_in_class=clip_index, number=number,
        split="test" if test else "train", fps=fps, width=w, height=h, n_frames=n_frames,
        has_audio=not _every(number, no_audio_every), has_face=has_face,
        face_source=FACE_SOURCES[number // face_every % len(FACE_SOURCES)] if has_face else "",
        hue_deg=round(hue, 3), colour=hex_colour(hue), saturation=round(rng.uniform(0.35, 0.9), 3),
        motion_deg=class_motion(class_index, n_classes), speed=round(rng.uniform(0.15, 0.35), 3),
        pitch_hz=round(pitch, 3), snr_db=round(rng.uniform(0.0, 20.0), 2),
    )


def plan_clips(
    classes: Sequence[str], *, clips_per_class: int, min_seconds: float, max_seconds: float,
    width: int, height: int, no_audio_every: int, face_every: int, seed: int,
) -> list[ClipInfo]:
    """All clips, class-major, with their facts decided (nothing is rendered here)."""
    _check(classes, clips_per_class, min_seconds, max_seconds)
    clips = []
    for c, label in enumerate(classes):
        test = held_out(clips_per_class, seed, c)
        for j in range(clips_per_class):
            clips.append(plan_clip(
                label, c, j, n_classes=len(classes), clips_per_class=clips_per_class,
                min_seconds=min_seconds, max_seconds=max_seconds, width=width, height=height,
                no_audio_every=no_audio_every, face_every=face_every, seed=seed, test=j in test,
            ))
    return clips


def _check(classes: Sequence[str], clips_per_class: int, min_seconds: float, max_seconds: float) -> None:
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"demo classes must be a non-empty list of distinct names, got {list(classes)}")
    bad = [c for c in classes if not c or "/" in c or c != c.strip() or any(ch.isspace() for ch in c)]
    if bad:
        raise ValueError(f"demo class names must be folder names without spaces or '/': {bad}")
    if clips_per_class < 1:
        raise ValueError(f"demo clips_per_class must be at least 1, got {clips_per_class}")
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"demo needs 0 < min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")

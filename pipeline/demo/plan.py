"""Deciding every clip's facts (class cues, frame rate, size, length, audio, face, split) from the seed.

**Cue factors** (``class_factors``). The class index ``c`` of ``n`` classes is split into two factors,
``scene = c // n_sound`` and ``sound = c % n_sound``. ``n_sound`` is the largest divisor of ``n`` in
``[2, sqrt(n)]``, so the classes fill a full grid: 4 classes = 2 scenes x 2 sounds, 6 = 3 x 2, 8 = 4 x 2,
9 = 3 x 3, 12 = 4 x 3. When ``n`` is prime ``n_sound = max(2, isqrt(n))`` and the last scene holds fewer
classes (3 classes: scenes {0, 1} and {2}; 5: {0, 1}, {2, 3}, {4}), so a class there is alone in its scene or
its sound. (scene, sound) always identifies the class. The sound factor takes the smaller count because the
face can show only a few values (see below).

``cues = "complementary"`` (the default): each modality carries one factor, never the class.

- picture: the background hue is ``360 * scene / n_scene`` degrees and the blob moves at
  ``360 * scene / n_scene + 45`` degrees (per-clip random speed): the scene factor only;
- sound: the tone's fundamental is ``4 kHz * 2 ** (2 * sound / n_sound)`` (two octaves shared out; 4 and
  8 kHz for 2 sounds): the sound factor only. So high because the LSTM fusion's spectrogram images have a
  linear frequency axis up to 22 kHz (86 Hz a pixel row at 256 rows): tones from 880 Hz sat in the bottom
  10-20 rows, and a linear probe on random-weight AlexNet fc7 of those images told the two sounds apart in
  78-84% of the test clips, 97-100% from 4 kHz (``scripts/probe_demo_pitch.py``); MFCC and the face do not
  care;
- face (in the clips that show one): the photograph is ``astronaut`` for an even sound value and ``camera``
  for an odd one, so the face carries the sound factor, which the background does not. There are only these
  two photographs: with more than 2 sound values a weaker cue is added, the photograph is mirrored left-right
  when ``sound // 2`` is odd, which gives 4 distinct looks; a face-identity network hardly tells a mirrored
  face from the original, hence "weaker". Sound values 4 apart (0 and 4) look the same.

A model that reads one factor can tell that factor's values apart and nothing inside one value, so on balanced
classes its accuracy is at most (values of its factor) / n: with the default 4 classes (2 x 2) a single cue
separates 2 of the 4 classes, a ceiling of 50% against 25% chance, while scene and sound together give 100%.
For 6 classes (3 x 2): 50% from the picture, 33% from the sound, chance 17%. With 2 classes no split is
complementary: there is one scene (one hue, one direction) and the sound carries the class.
The face is drawn into the frame, so a model of whole frames (rather than of the background) also sees the
photograph: on face clips it can read both factors. With 2 x 2 and ``no_face_every: 5`` (4 clips in 5 show a
face) a whole-frame model can reach about 4/5 * 100% + 1/5 * 50% = 90%. The other way round holds: a face
crop (MTCNN box plus the default 20% margin) lies inside the photograph's opaque oval (measured on the
default demo: at most about 1% of its pixels are background), so a face-only model sees the sound factor.

``cues = "redundant"``: the earlier demo. scene = sound = c, so hue, motion and pitch each carry the whole
class, and the face photograph alternates with the clip number, independent of the class.

Hue and pitch are jittered per clip by at most 15% of the spacing between two values of their factor.
Every number comes from ``numpy.random.SeedSequence([seed, class index, clip index, purpose])``, so a clip
does not change when clips are added to other classes, and video and audio draw independent streams.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from pipeline.demo.clip import ClipInfo

CUES = ("complementary", "redundant")
FPS_CYCLE = ("30000/1001", "25", "30", "24000/1001", "15")
FACE_SOURCES = ("astronaut", "camera")
SAME_STEM = "clip_same"       # the second clip of each of the first two classes has this stem
BASE_PITCH_HZ = 4000.0         # the lowest class pitch (module docstring: why so high)
PITCH_OCTAVES = 2.0
JITTER = 0.15                 # per-clip jitter of hue and pitch, as a fraction of the spacing of their factor
PLAN, VIDEO, AUDIO, SPLIT = 0, 1, 2, 3  # purposes of the random streams


@dataclass(frozen=True)
class Factors:
    """Which values of the two cue factors a class shows, and how many values each factor has."""

    scene: int      # drives the background hue and the blob's direction
    n_scene: int
    sound: int      # drives the tone's pitch (and, complementary, the face photograph)
    n_sound: int


def clip_rng(seed: int, class_index: int, clip_index: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, class_index, clip_index, purpose]))


def factor_counts(n_classes: int) -> tuple[int, int]:
    """(n_scene, n_sound): the grid the classes are laid out on (n_sound <= n_scene, except for 2 classes)."""
    n_sound = next((d for d in range(math.isqrt(n_classes), 1, -1) if n_classes % d == 0), 0)
    if not n_sound:
        n_sound = min(n_classes, max(2, math.isqrt(n_classes)))
    return math.ceil(n_classes / n_sound), n_sound


def class_factors(class_index: int, n_classes: int, cues: str) -> Factors:
    """The factors a class shows under ``cues`` ("complementary" or "redundant")."""
    if cues == "redundant":
        return Factors(class_index, n_classes, class_index, n_classes)
    if cues != "complementary":
        raise ValueError(f"demo cues must be one of {CUES}, got {cues!r}")
    n_scene, n_sound = factor_counts(n_classes)
    return Factors(class_index // n_sound, n_scene, class_index % n_sound, n_sound)


def class_hue(value: int, n_values: int) -> float:
    return 360.0 * value / n_values


def class_motion(value: int, n_values: int) -> float:
    return (360.0 * value / n_values + 45.0) % 360.0


def class_pitch(value: int, n_values: int) -> float:
    return BASE_PITCH_HZ * 2.0 ** (PITCH_OCTAVES * value / n_values)


def face_look(sound: int) -> tuple[str, bool]:
    """(photograph, mirrored) for a sound value: photograph by parity, mirrored when sound // 2 is odd."""
    return FACE_SOURCES[sound % len(FACE_SOURCES)], (sound // len(FACE_SOURCES)) % 2 == 1


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


def jittered_cues(factors: Factors, rng: np.random.Generator) -> tuple[float, float]:
    """(hue in degrees, pitch in Hz) of one clip: its factor's, moved by at most JITTER of the spacing."""
    hue_step, pitch_step = 1.0 / factors.n_scene, 1.0 / factors.n_sound
    hue = class_hue(factors.scene, factors.n_scene) + 360.0 * hue_step * rng.uniform(-JITTER, JITTER)
    pitch = class_pitch(factors.sound, factors.n_sound)
    pitch *= 2.0 ** (PITCH_OCTAVES * pitch_step * rng.uniform(-JITTER, JITTER))
    return hue % 360.0, pitch


def face_of(number: int, factors: Factors, cues: str, no_face_every: int) -> tuple[bool, str, bool]:
    """(has_face, photograph or "", mirrored); every ``no_face_every``-th clip shows none (0: all do)."""
    if _every(number, no_face_every):
        return False, "", False
    if cues == "redundant":
        return True, FACE_SOURCES[number % len(FACE_SOURCES)], False
    return True, *face_look(factors.sound)


def plan_clip(
    label: str, class_index: int, clip_index: int, *, n_classes: int, clips_per_class: int,
    min_seconds: float, max_seconds: float, width: int, height: int, no_audio_every: int,
    no_face_every: int, cues: str, seed: int, test: bool,
) -> ClipInfo:
    rng = clip_rng(seed, class_index, clip_index, PLAN)
    number = class_index * clips_per_class + clip_index + 1
    fps = FPS_CYCLE[(number - 1) % len(FPS_CYCLE)]
    w, h = clip_size(number, width, height)
    n_frames = max(1, round(rng.uniform(min_seconds, max_seconds) * Fraction(fps)))
    factors = class_factors(class_index, n_classes, cues)
    hue, pitch = jittered_cues(factors, rng)
    has_face, face_source, mirrored = face_of(number, factors, cues, no_face_every)
    return ClipInfo(
        clip_id=f"{label}/{clip_stem(label, class_index, clip_index)}", label=label,
        class_index=class_index, index_in_class=clip_index, number=number,
        split="test" if test else "train", fps=fps, width=w, height=h, n_frames=n_frames,
        has_audio=not _every(number, no_audio_every), has_face=has_face,
        face_source=face_source, face_mirrored=mirrored, scene=factors.scene, sound=factors.sound,
        hue_deg=round(hue, 3), colour=hex_colour(hue), saturation=round(rng.uniform(0.35, 0.9), 3),
        motion_deg=class_motion(factors.scene, factors.n_scene), speed=round(rng.uniform(0.15, 0.35), 3),
        pitch_hz=round(pitch, 3), snr_db=round(rng.uniform(0.0, 20.0), 2),
    )


def plan_clips(
    classes: Sequence[str], *, clips_per_class: int, min_seconds: float, max_seconds: float,
    width: int, height: int, no_audio_every: int, no_face_every: int, seed: int,
    cues: str = "complementary",
) -> list[ClipInfo]:
    """All clips, class-major, with their facts decided (nothing is rendered here)."""
    _check(classes, clips_per_class, min_seconds, max_seconds)
    _check_rules(no_audio_every=no_audio_every, no_face_every=no_face_every, cues=cues)
    clips = []
    for c, label in enumerate(classes):
        test = held_out(clips_per_class, seed, c)
        for j in range(clips_per_class):
            clips.append(plan_clip(
                label, c, j, n_classes=len(classes), clips_per_class=clips_per_class,
                min_seconds=min_seconds, max_seconds=max_seconds, width=width, height=height,
                no_audio_every=no_audio_every, no_face_every=no_face_every, cues=cues, seed=seed,
                test=j in test,
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


def _check_rules(*, no_audio_every: int, no_face_every: int, cues: str) -> None:
    for name, k in (("no_audio_every", no_audio_every), ("no_face_every", no_face_every)):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"demo {name} must be a whole number >= 0 (0 = never), got {k!r}")
    if cues not in CUES:
        raise ValueError(f"demo cues must be one of {CUES}, got {cues!r}")

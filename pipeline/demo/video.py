"""The pictures of a demo clip, rendered frame by frame with numpy (RGB uint8, (height, width, 3)).

A clip shows, over a textured background of its scene hue (the colour cue; ``plan.py`` says which factor
of the class the scene is):

- a soft disc moving in the scene's direction at a per-clip speed (the motion cue), of a random colour;
- sometimes a square of random colour drifting in a random direction (a distractor);
- for face clips, a real photographed face (``faces.py``, mirrored when ``clip.face_mirrored``), drawn on top
  and swaying by a few pixels;
- a slow random brightness flicker and Gaussian pixel noise.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from pipeline.demo.clip import ClipInfo
from pipeline.demo.faces import face_sprite

NOISE_BANK = 6  # distinct noise frames per clip, drawn in a seeded random order


@dataclass(frozen=True)
class Mover:
    """A sprite moving in a straight line and wrapping round the frame (it leaves fully, then re-enters)."""

    rgb: np.ndarray        # (h, w, 3) float32, or (1, 1, 3) for a flat colour
    alpha: np.ndarray      # (h, w, 1) float32
    start: tuple[float, float]      # top-left (x, y) at t = 0, pixels
    velocity: tuple[float, float]   # pixels per second, y down

    def top_left(self, t: float, width: int, height: int) -> tuple[int, int]:
        h, w = self.alpha.shape[:2]
        x = (self.start[0] + self.velocity[0] * t + w) % (width + w) - w
        y = (self.start[1] + self.velocity[1] * t + h) % (height + h) - h
        return round(x), round(y)


@dataclass(frozen=True)
class Swayer:
    """A sprite swaying round a fixed place: offset = amplitude * sin(2 pi f t + phase), per axis."""

    rgb: np.ndarray
    alpha: np.ndarray
    centre: tuple[float, float]
    amplitude: tuple[float, float]
    freq: float
    phase: tuple[float, float]

    def top_left(self, t: float, width: int, height: int) -> tuple[int, int]:
        h, w = self.alpha.shape[:2]
        dx = self.amplitude[0] * math.sin(2 * math.pi * self.freq * t + self.phase[0])
        dy = self.amplitude[1] * math.sin(2 * math.pi * self.freq * t + self.phase[1])
        return round(self.centre[0] + dx - w / 2), round(self.centre[1] + dy - h / 2)


@dataclass(frozen=True)
class Scene:
    background: np.ndarray            # (H, W, 3) float32, 0..255
    sprites: tuple[Mover | Swayer, ...]   # drawn in order, the last on top
    flicker: tuple[float, float, float]   # depth, frequency (Hz), phase
    noise: np.ndarray                 # (NOISE_BANK, H, W, 3) float32
    noise_order: np.ndarray           # (n_frames,) index into the noise bank


def rgb255(hue_deg: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue_deg / 360.0 % 1.0, saturation, value), np.float32) * 255.0


def background(clip: ClipInfo, rng: np.random.Generator) -> np.ndarray:
    """The scene hue at the clip's saturation, its brightness shaded by a gradient and soft waves."""
    y = np.linspace(-1.0, 1.0, clip.height, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, clip.width, dtype=np.float32)[None, :]
    fx, fy, px, py = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), *rng.uniform(0, 2 * np.pi, 2)
    waves = np.sin(np.pi * fx * x + px) * np.cos(np.pi * fy * y + py)
    shade = 1.0 + rng.uniform(-0.15, 0.15) * y + 0.1 * waves
    base = rgb255(clip.hue_deg, clip.saturation, rng.uniform(0.55, 0.8))
    return (shade[:, :, None] * base).astype(np.float32)


def disc(radius: int) -> np.ndarray:
    """Alpha (2r, 2r, 1) of a disc with a one-pixel soft edge."""
    c = np.arange(2 * radius, dtype=np.float32) + 0.5 - radius
    d = np.sqrt(c[:, None] ** 2 + c[None, :] ** 2)
    return np.clip(radius - d, 0.0, 1.0)[:, :, None]


def random_colour(rng: np.random.Generator) -> np.ndarray:
    return rgb255(rng.uniform(0, 360), rng.uniform(0.5, 1.0), rng.uniform(0.7, 1.0))[None, None, :]


def blob(clip: ClipInfo, rng: np.random.Generator) -> Mover:
    """The motion-cue disc: direction from the scene, speed from the clip, colour random."""
    size = min(clip.width, clip.height)
    speed = clip.speed * clip.height
    angle = math.radians(clip.motion_deg)
    start = (rng.uniform(0, clip.width), rng.uniform(0, clip.height))
    alpha = disc(round(size * rng.uniform(0.1, 0.15)))
    return Mover(random_colour(rng), alpha, start, (speed * math.cos(angle), -speed * math.sin(angle)))


def distractor(clip: ClipInfo, rng: np.random.Generator) -> Mover:
    side = round(min(clip.width, clip.height) * rng.uniform(0.08, 0.14))
    speed, angle = rng.uniform(0.05, 0.3) * clip.height, rng.uniform(0, 2 * np.pi)
    start = (rng.uniform(0, clip.width), rng.uniform(0, clip.height))
    alpha = np.ones((side, side, 1), np.float32)
    return Mover(random_colour(rng), alpha, start, (speed * math.cos(angle), speed * math.sin(angle)))


def face(clip: ClipInfo, rng: np.random.Generator) -> Swayer:
    height = round(min(clip.width, clip.height) * 0.62)
    rgb, alpha = face_sprite(clip.face_source, height, mirrored=clip.face_mirrored)
    centre = (clip.width * rng.uniform(0.42, 0.58), clip.height * rng.uniform(0.45, 0.55))
    amplitude = tuple(rng.uniform(2.0, 5.0, 2))
    return Swayer(rgb, alpha, centre, amplitude, rng.uniform(0.2, 0.6), tuple(rng.uniform(0, 2 * np.pi, 2)))


def make_scene(clip: ClipInfo, rng: np.random.Generator) -> Scene:
    bg = background(clip, rng)
    sprites: list[Mover | Swayer] = [blob(clip, rng)]
    if rng.uniform() < 0.6:
        sprites.append(distractor(clip, rng))
    if clip.has_face:
        sprites.append(face(clip, rng))
    flicker = (rng.uniform(0.02, 0.06), rng.uniform(0.3, 2.0), rng.uniform(0, 2 * np.pi))
    sigma = rng.uniform(3.0, 8.0)
    noise = rng.normal(0.0, sigma, (NOISE_BANK, *bg.shape)).astype(np.float32)
    order = rng.integers(0, NOISE_BANK, clip.n_frames)
    return Scene(bg, tuple(sprites), flicker, noise, order)


def paste(image: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, left: int, top: int) -> None:
    """Alpha-blend a sprite into ``image`` in place, clipped to the frame."""
    h, w = alpha.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, image.shape[0]), min(left + w, image.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    a = alpha[y0 - top:y1 - top, x0 - left:x1 - left]
    src = rgb if rgb.shape[:2] == (1, 1) else rgb[y0 - top:y1 - top, x0 - left:x1 - left]
    region = image[y0:y1, x0:x1]
    region += a * (src - region)


def render(scene: Scene, index: int, t: float) -> np.ndarray:
    depth, freq, phase = scene.flicker
    image = scene.background * np.float32(1.0 + depth * math.sin(2 * math.pi * freq * t + phase))
    height, width = image.shape[:2]
    for sprite in scene.sprites:
        paste(image, sprite.rgb, sprite.alpha, *sprite.top_left(t, width, height))
    image += scene.noise[scene.noise_order[index]]
    return np.clip(image, 0.0, 255.0, out=image).astype(np.uint8)


def frames(clip: ClipInfo, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The clip's frames in order, RGB uint8 (height, width, 3)."""
    scene = make_scene(clip, rng)
    step = 1 / Fraction(clip.fps)
    for i in range(clip.n_frames):
        yield render(scene, i, float(i * step))


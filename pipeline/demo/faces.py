"""Real photographed faces for the demo, taken from the sample images inside the scikit-image wheel.

``skimage.data.astronaut()`` (Eileen Collins, NASA, public domain) and ``skimage.data.camera()`` (a man
with a camera, CC0, photographer Lav Varshney) are files inside the installed package, so nothing is
downloaded. (Some other skimage samples, e.g. ``eagle``, are fetched on first use; none is used here.)
The other bundled photographs (coffee, chelsea, rocket, ...) show no person; MTCNN finds no face in them.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from skimage import data as skdata

# Head-and-shoulders crop of each photograph (rows, columns), the face roughly in the middle.
CROPS = {
    "astronaut": (slice(20, 240), slice(125, 325)),
    "camera": (slice(80, 240), slice(145, 305)),
}


@functools.cache
def face_photo(name: str) -> np.ndarray:
    """The cropped photograph as RGB uint8, (h, w, 3)."""
    if name not in CROPS:
        raise ValueError(f"unknown face photograph {name!r}; known: {sorted(CROPS)}")
    image = getattr(skdata, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    rows, cols = CROPS[name]
    return np.ascontiguousarray(image[rows, cols, :3])


def oval_mask(height: int, width: int, soft: float = 0.12) -> np.ndarray:
    """Alpha (h, w, 1) in [0, 1]: 1 inside an ellipse filling the box, fading out over ``soft`` of it."""
    y = (np.arange(height, dtype=np.float32) + 0.5) / height * 2.0 - 1.0
    x = (np.arange(width, dtype=np.float32) + 0.5) / width * 2.0 - 1.0
    r = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)
    return np.clip((1.0 - r) / soft, 0.0, 1.0)[:, :, None]


def face_sprite(name: str, height: int, *, mirrored: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The photograph resized to ``height`` rows, flipped left-right when ``mirrored``:
    (rgb float32 (h, w, 3), alpha float32 (h, w, 1))."""
    photo = np.ascontiguousarray(face_photo(name)[:, ::-1]) if mirrored else face_photo(name)
    width = max(2, round(photo.shape[1] * height / photo.shape[0]))
    resized = Image.fromarray(photo).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32), oval_mask(height, width)

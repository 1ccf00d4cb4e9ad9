"""What one demo clip is: the facts a test or a reader of ``demo_info.json`` can rely on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

SAMPLE_RATE = 44100  # Hz, mono AAC


@dataclass(frozen=True)
class ClipInfo:
    """One synthetic clip. ``clip_id`` is its path under the videos root without the extension."""

    clip_id: str            # "<class>/<stem>", e.g. "anger/clip_same"
    label: str
    class_index: int        # 0-based position in the class list
    index_in_class: int     # 0-based position within its class; (seed, class_index, index_in_class) seeds it
    number: int             # 1-based position over all clips (class-major); drives the every-k-th rules
    split: str              # "train" or "test"
    fps: str                # exact frame rate as ffmpeg reads it: "25", "30000/1001"
    width: int
    height: int
    n_frames: int
    has_audio: bool
    has_face: bool
    face_source: str        # scikit-image sample photograph shown, "" when has_face is False
    face_mirrored: bool     # the photograph is flipped left-right (a weaker face cue, plan.face_look)
    scene: int              # scene factor of the class: drives hue and motion (plan.class_factors)
    sound: int              # sound factor of the class: drives pitch and, complementary cues, the face
    hue_deg: float          # background hue of this clip (scene hue plus a small jitter)
    colour: str             # that background colour at full saturation and value, "#rrggbb"
    saturation: float       # lower means a weaker colour cue
    motion_deg: float       # direction the blob moves in, counter-clockwise from +x (from the scene)
    speed: float            # blob speed in frame heights per second
    pitch_hz: float         # fundamental of the tone (sound pitch plus a small jitter)
    snr_db: float           # tone-to-noise ratio; lower means a weaker audio cue

    @property
    def path(self) -> str:
        """Path of the video file relative to the videos root."""
        return f"{self.clip_id}.mp4"

    @property
    def stem(self) -> str:
        return self.clip_id.rsplit("/", 1)[-1]

    @property
    def fps_value(self) -> float:
        return float(Fraction(self.fps))

    @property
    def seconds(self) -> float:
        return float(self.n_frames / Fraction(self.fps))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts, derived ones (path, fps as a number, seconds) included."""
        row = asdict(self)
        row.update(path=self.path, fps_value=round(self.fps_value, 6), seconds=round(self.seconds, 6))
        row["sample_rate"] = SAMPLE_RATE if self.has_audio else 0
        return row

"""The built-in demo dataset: short synthetic clips whose class shows in colour, motion, tone pitch and face.

    from pipeline.demo import generate_demo
    clips = generate_demo(Path("data/demo/videos"), Path("data/demo/lists"),
                          classes=["anger", "joy", "sadness", "surprise"], clips_per_class=3,
                          min_seconds=2, max_seconds=3, width=320, height=240,
                          no_audio_every=7, no_face_every=5, cues="complementary", seed=0)

With ``cues="complementary"`` the picture's colour and motion carry one factor of the class and the tone's
pitch (and the face photograph) the other, so no single modality tells all classes apart; ``"redundant"``
makes colour, motion and pitch each carry the whole class. ``plan`` documents the exact rule.

Modules: ``plan`` decides each clip's facts, ``video`` renders frames, ``audio`` the tone, ``faces`` loads
the photographed faces, ``encode`` pipes both into ffmpeg, ``layout`` writes the lists and notes,
``generate`` puts it together (``write_demo_dataset`` replaces the dataset folder atomically).
"""

from pipeline.demo.clip import SAMPLE_RATE, ClipInfo
from pipeline.demo.generate import generate_demo, write_demo_dataset
from pipeline.demo.layout import INFO_NAME, README_NAME
from pipeline.demo.plan import (
    CUES,
    Factors,
    class_factors,
    class_hue,
    class_motion,
    class_pitch,
    face_look,
    factor_counts,
    plan_clips,
)

__all__ = [
    "CUES", "INFO_NAME", "README_NAME", "SAMPLE_RATE", "ClipInfo", "Factors", "class_factors", "class_hue",
    "class_motion", "class_pitch", "face_look", "factor_counts", "generate_demo", "plan_clips",
    "write_demo_dataset",
]

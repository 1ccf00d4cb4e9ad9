"""The built-in demo dataset: short synthetic clips whose class shows in colour, motion and tone pitch.

    from pipeline.demo import generate_demo
    clips = generate_demo(Path("data/demo/videos"), Path("data/demo/lists"), classes=["anger", "joy"],
                          clips_per_class=3, min_seconds=2, max_seconds=3, width=320, height=240,
                          no_audio_every=7, face_every=3, seed=0)

Modules: ``plan`` decides each clip's facts, ``video`` renders frames, ``audio`` the tone, ``faces`` loads
the photographed faces, ``encode`` pipes both into ffmpeg, ``layout`` writes the lists and notes,
``generate`` puts it together (``write_demo_dataset`` replaces the dataset folder atomically).
"""

from pipeline.demo.clip import SAMPLE_RATE, ClipInfo
from pipeline.demo.generate import generate_demo, write_demo_dataset
from pipeline.demo.layout import INFO_NAME, README_NAME
from pipeline.demo.plan import class_hue, class_motion, class_pitch, plan_clips

__all__ = [
    "INFO_NAME", "README_NAME", "SAMPLE_RATE", "ClipInfo", "class_hue", "class_motion", "class_pitch",
    "generate_demo", "plan_clips", "write_demo_dataset",
]

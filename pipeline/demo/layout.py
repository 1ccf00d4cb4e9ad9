"""The files around the videos: UCF-101-style split lists, ``README.txt`` and ``demo_info.json``.

The lists copy the byte format of the VideoEmotion-8 split lists: ``classInd.txt`` has ``<index> <Class>``
lines (1-based) and no newline after the last one; ``trainlist01.txt`` has ``<Class>/<stem> <index>`` lines
and ``testlist01.txt`` ``<Class>/<stem>`` lines (no extension), each line ending with a newline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.demo.clip import ClipInfo
from pipeline.demo.plan import Factors, class_factors, class_hue, class_motion, class_pitch, face_look

INFO_NAME = "demo_info.json"
README_NAME = "README.txt"
GENERATOR = "pipeline.demo"


def class_index_text(classes: Sequence[str]) -> str:
    return "\n".join(f"{i} {c}" for i, c in enumerate(classes, start=1))


def train_list_text(clips: Sequence[ClipInfo]) -> str:
    return "".join(f"{c.clip_id} {c.class_index + 1}\n" for c in clips if c.split == "train")


def test_list_text(clips: Sequence[ClipInfo]) -> str:
    return "".join(f"{c.clip_id}\n" for c in clips if c.split == "test")


def write_lists(lists_dir: Path, classes: Sequence[str], clips: Sequence[ClipInfo]) -> None:
    lists_dir.mkdir(parents=True, exist_ok=True)
    (lists_dir / "classInd.txt").write_text(class_index_text(classes), encoding="utf-8")
    (lists_dir / "trainlist01.txt").write_text(train_list_text(clips), encoding="utf-8")
    (lists_dir / "testlist01.txt").write_text(test_list_text(clips), encoding="utf-8")


def info_document(
    classes: Sequence[str], clips: Sequence[ClipInfo], params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "generator": GENERATOR,
        "synthetic": True,
        "params": params,
        "classes": list(classes),
        "clips": [c.as_dict() for c in clips],
    }


def write_info(path: Path, classes: Sequence[str], clips: Sequence[ClipInfo], params: dict[str, Any]) -> None:
    text = json.dumps(info_document(classes, clips, params), indent=1, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


def readme_text(classes: Sequence[str], clips: Sequence[ClipInfo], params: dict[str, Any]) -> str:
    n_audio = sum(c.has_audio for c in clips)
    n_face = sum(c.has_face for c in clips)
    return README.format(
        n=len(clips), classes=", ".join(classes), n_audio=n_audio, n_silent=len(clips) - n_audio,
        n_face=n_face, cues=cue_text(classes, params.get("cues", "complementary")),
        params=json.dumps(params, sort_keys=True),
    )


def cue_text(classes: Sequence[str], cues: str) -> str:
    """What each modality shows, and the cue values of every class."""
    factors = [class_factors(c, len(classes), cues) for c in range(len(classes))]
    rows = "".join(f"  {label}: {class_row(f, cues)}\n" for label, f in zip(classes, factors, strict=True))
    if cues == "redundant":
        return REDUNDANT + rows
    n_scene, n_sound = len({f.scene for f in factors}), len({f.sound for f in factors})
    return COMPLEMENTARY.format(
        grid=f"{factors[0].n_scene} x {factors[0].n_sound}", n_scene=n_scene, n_sound=n_sound,
        mirror=mirror_text(n_sound), lead=(
            "No single cue tells all classes apart." if max(n_scene, n_sound) < len(classes)
            else f"With {len(classes)} classes no split is complementary: one factor is the class itself."),
        scene_ceiling=percent(n_scene / len(classes)), sound_ceiling=percent(n_sound / len(classes)),
        chance=percent(1 / len(classes)),
    ) + rows


def mirror_text(n_sound: int) -> str:
    if n_sound <= 2:
        return ""
    text = ";\n    it is mirrored left-right when sound // 2 is odd (a weaker cue)"
    return text + (", so sounds 4 apart look alike" if n_sound > 4 else "")


def class_row(f: Factors, cues: str) -> str:
    shown = (f"hue {class_hue(f.scene, f.n_scene):.0f} deg, moving at {class_motion(f.scene, f.n_scene):.0f} "
             f"deg; pitch {class_pitch(f.sound, f.n_sound):.1f} Hz")
    if cues == "redundant":
        return shown
    photo, mirrored = face_look(f.sound)
    return f"scene {f.scene}, sound {f.sound}: {shown}; face {photo}{' mirrored' if mirrored else ''}"


def percent(x: float) -> str:
    return f"{100 * x:.0f}%"


COMPLEMENTARY = """Cues: complementary. Each class is a pair (scene, sound) on a {grid} grid:
  - picture: the background hue and the direction of a moving disc (random speed and colour) show the
    scene only;
  - sound: the pitch of a hummed tone shows the sound only;
  - face: the photograph shown ("astronaut" for an even sound, "camera" for an odd one) shows the
    sound{mirror}.
{lead}
Best accuracy on balanced classes from one factor alone: scene ({n_scene} values) {scene_ceiling},
sound ({n_sound} values) {sound_ceiling}; chance {chance}; scene and sound together: 100%.
The face is part of the picture, so a model of whole frames can read both factors in clips with a face.
Per class:
"""

REDUNDANT = """Cues: redundant. The class shows in three ways, each enough alone:
  - picture: the background hue (evenly spaced round the colour wheel per class);
  - motion: a disc moving in a class-specific direction (at a random speed, of a random colour);
  - sound: a hummed tone whose fundamental is the class pitch (from 4 kHz up, evenly spaced in octaves
    over two octaves).
The face photograph alternates from clip to clip and does not depend on the class.
Per class:
"""

README = """SYNTHETIC DEMO DATA - not real emotion videos.

These {n} clips were generated by the `demo` stage (python -m stages.demo, code in pipeline/demo/) so
that the pipeline can run end to end offline. Nothing here was recorded or downloaded; a model that
scores well on it has learnt colours, motions, pitches and faces, not emotions.

Classes: {classes}.
{cues}Every cue comes with per-clip noise and distractors: hue and pitch are jittered, a square of random
colour drifts by, the tone has harmonics, a syllable-like envelope, a quieter distractor tone and noise.
{n_audio} clips have an AAC audio track; {n_silent} have no audio stream at all.
{n_face} clips show a real photographed face, swaying slightly: the "astronaut" (Eileen Collins, NASA,
public domain) and "camera" (CC0, Lav Varshney) sample photographs bundled with scikit-image.
The others show no face.
Frame rates vary (30000/1001, 25, 30, 24000/1001, 15), and so do frame sizes (one in four is not a multiple
of 16, one in four is portrait). Two clips in different classes share the file stem "clip_same".

Layout: videos/<class>/<stem>.mp4, lists/ (UCF-101-style classInd.txt, trainlist01.txt, testlist01.txt:
2/3 train, 1/3 test per class), demo_info.json (per-clip facts: class, scene and sound factors, fps, size,
seconds, audio, face, pitch, colour, motion).
Same parameters and seed give byte-identical files on the same ffmpeg/numpy build.

Parameters: {params}
"""


def write_readme(
    path: Path, classes: Sequence[str], clips: Sequence[ClipInfo], params: dict[str, Any]
) -> None:
    path.write_text(readme_text(classes, clips, params), encoding="utf-8")

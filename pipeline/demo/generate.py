"""Generating the demo dataset: plan the clips, render and encode each, write the lists and the notes.

``generate_demo`` writes into the folders it is given. ``write_demo_dataset`` builds the whole dataset in a
temporary sibling folder and swaps it in with renames, so a killed run never leaves a half-written dataset
where the pipeline reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.demo.audio import tone
from pipeline.demo.clip import ClipInfo
from pipeline.demo.encode import encode_clip
from pipeline.demo.layout import GENERATOR, INFO_NAME, README_NAME, write_info, write_lists, write_readme
from pipeline.demo.plan import AUDIO, VIDEO, clip_rng, plan_clips
from pipeline.demo.video import frames


def write_clip(clip: ClipInfo, out_root: Path, seed: int) -> Path:
    """Render and encode one clip to ``out_root / clip.path``."""
    path = out_root / clip.path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = (seed, clip.class_index, clip.index_in_class)
    audio = tone(clip, clip_rng(*key, AUDIO)) if clip.has_audio else None
    encode_clip(path, frames(clip, clip_rng(*key, VIDEO)), audio, width=clip.width, height=clip.height,
                fps=clip.fps)
    return path


def write_clips(clips: Sequence[ClipInfo], out_root: Path, seed: int, workers: int) -> None:
    """Encode clips on ``workers`` threads (each drives its own ffmpeg); the first failure stops the rest."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for _ in pool.map(lambda c: write_clip(c, out_root, seed), clips):
            pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def generate_demo(
    out_root: Path, lists_dir: Path, *,
    # what the dataset holds
    classes: Sequence[str], clips_per_class: int, min_seconds: float, max_seconds: float,
    width: int, height: int, no_audio_every: int, no_face_every: int, cues: str = "complementary",
    # reproducibility and speed
    seed: int, workers: int | None = None,
) -> list[ClipInfo]:
    """Write the videos under ``out_root``, the split lists in ``lists_dir``, and ``README.txt`` and
    ``demo_info.json`` beside ``out_root``. Returns the clips in class-major order.

    ``cues`` is "complementary" (picture and sound each carry one factor of the class) or "redundant"
    (each carries the whole class); ``pipeline.demo.plan`` says exactly what each modality shows."""
    params = dict(classes=list(classes), clips_per_class=clips_per_class, min_seconds=min_seconds,
                  max_seconds=max_seconds, width=width, height=height, no_audio_every=no_audio_every,
                  no_face_every=no_face_every, cues=cues, seed=seed)
    clips = plan_clips(**params)
    out_root, lists_dir = Path(out_root), Path(lists_dir)
    out_root.mkdir(parents=True, exist_ok=True)
    write_clips(clips, out_root, seed, workers or default_workers())
    write_lists(lists_dir, classes, clips)
    write_readme(out_root.parent / README_NAME, classes, clips, params)
    write_info(out_root.parent / INFO_NAME, classes, clips, params)
    return clips


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0))))


def demo_folder(out_root: Path, lists_dir: Path) -> Path:
    """The one folder that holds the whole demo dataset: the common parent of the videos and the lists."""
    folder = Path(out_root).resolve().parent
    if Path(lists_dir).resolve().parent != folder:
        raise ValueError(f"the demo videos ({out_root}) and lists ({lists_dir}) must be two folders side by "
                         "side in one dataset folder, e.g. data/demo/videos and data/demo/lists")
    if folder == Path(folder.anchor) or Path.cwd().resolve().is_relative_to(folder):
        raise ValueError(f"refusing to use {folder} as the demo dataset folder: it holds the working folder")
    return folder


def is_demo_dataset(folder: Path) -> bool:
    """True when ``folder`` is empty or was written by this generator (its demo_info.json says so)."""
    if not any(folder.iterdir()):
        return True
    try:
        info = json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("generator") == GENERATOR


def remove_leftovers(folder: Path) -> None:
    """Delete temporary folders that a killed earlier run left beside ``folder``."""
    for pattern in (f".{folder.name}.tmp-*", f".{folder.name}.old-*"):
        for path in folder.parent.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def swap_in(new: Path, folder: Path) -> None:
    """Replace ``folder`` by ``new`` with two renames; the old copy is deleted afterwards."""
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        folder.rename(old / folder.name)
    new.rename(folder)
    if old is not None:
        shutil.rmtree(old)


def write_demo_dataset(out_root: Path, lists_dir: Path, **kwargs) -> list[ClipInfo]:
    """``generate_demo`` into a temporary folder beside the dataset folder, then swap it in.

    The dataset folder is the common parent of ``out_root`` and ``lists_dir`` (``data/demo``). An existing
    folder is replaced only when it is empty or a demo dataset; anything else raises ``FileExistsError``.
    """
    folder = demo_folder(out_root, lists_dir)
    if folder.exists() and not is_demo_dataset(folder):
        raise FileExistsError(f"{folder} exists and is not a generated demo dataset (no {INFO_NAME} from "
                              f"{GENERATOR}); refusing to replace it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        clips = generate_demo(tmp / Path(out_root).name, tmp / Path(lists_dir).name, **kwargs)
        os.chmod(tmp, 0o755)
        swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return clips

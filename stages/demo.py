"""DVC stage `demo`: generate the built-in synthetic demo dataset.

    python -m stages.demo [--params params.yaml]

Reads `seed` and the `demo` section, whose `videos` and `lists` are two folders side by side (e.g.
data/demo/videos and data/demo/lists; `dataset.root` / `dataset.lists` point there to run on the demo),
and replaces their parent folder as a whole: the dataset is written to a temporary folder beside it and
renamed into place, so a killed run never leaves a half-written dataset. A folder there that this
generator did not write is never replaced.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pipeline.config import load_params
from pipeline.demo import write_demo_dataset

DEMO_KEYS = ("classes", "clips_per_class", "min_seconds", "max_seconds", "width", "height",
             "no_audio_every", "no_face_every", "cues")


def demo_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `write_demo_dataset` from a parsed params.yaml."""
    demo = params["demo"]
    if "face_every" in demo:
        raise KeyError("params.yaml: demo.face_every is gone; use demo.no_face_every (every k-th clip shows "
                       "NO face, 0 = every clip shows one) and demo.cues")
    missing = [k for k in DEMO_KEYS if k not in demo]
    if missing:
        raise KeyError(f"params.yaml: demo section lacks {missing}")
    kwargs = {k: demo[k] for k in DEMO_KEYS}
    kwargs["classes"] = [str(c) for c in demo["classes"]]
    kwargs["seed"] = int(params.get("seed", 0))
    return kwargs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    root, lists = Path(params["demo"]["videos"]), Path(params["demo"]["lists"])
    start = time.perf_counter()
    clips = write_demo_dataset(root, lists, **demo_kwargs(params))
    silent = sum(not c.has_audio for c in clips)
    faces = sum(c.has_face for c in clips)
    print(f"demo: {len(clips)} SYNTHETIC clips ({silent} without audio, {faces} with a face) "
          f"in {root.parent}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()

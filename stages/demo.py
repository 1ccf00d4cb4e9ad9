"""DVC stage `demo`: generate the built-in synthetic demo dataset.

    python -m stages.demo [--params params.yaml]

Reads `seed` and the `demo` section, whose `videos` and `lists` are two folders side by side (e.g.
data/demo/videos and data/demo/lists; `dataset.root` / `dataset.lists` point there to run on the demo),
and replaces their parent folder as a whole: the dataset is written to a temporary folder beside it and
renamed into place, so a killed run never leaves a half-written dataset. A folder there that this
generator did not write is never replaced.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipeline.demo import write_demo_dataset
from stages.common import config_error, stage_params

DEMO_KEYS = ("classes", "clips_per_class", "min_seconds", "max_seconds", "width", "height",
             "no_audio_every", "no_face_every", "cues")


def demo_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `write_demo_dataset` from a parsed, checked params.yaml."""
    demo = params["demo"]
    kwargs = {k: demo[k] for k in DEMO_KEYS}
    kwargs["classes"] = [str(c) for c in demo["classes"]]
    kwargs["seed"] = int(params.get("seed", 0))
    return kwargs


def main(argv: list[str] | None = None) -> None:
    _, params = stage_params(__doc__.splitlines()[0], argv)
    if params.get("demo") is None:
        raise SystemExit(config_error("demo", ValueError("params.yaml has no demo section to generate")))
    root, lists = Path(params["demo"]["videos"]), Path(params["demo"]["lists"])
    start = time.perf_counter()
    clips = write_demo_dataset(root, lists, **demo_kwargs(params))
    silent = sum(not c.has_audio for c in clips)
    faces = sum(c.has_face for c in clips)
    print(f"demo: {len(clips)} SYNTHETIC clips ({silent} without audio, {faces} with a face) "
          f"in {root.parent}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()

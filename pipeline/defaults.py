"""The settings `vemo extract`, `vemo.extract` and `vemo.load_head(...).predict` use outside a DVC project.

They are the library's own copy of params.yaml's `seed`, `dask`, `decode`, `faces`, `features` and
`precision`, shipped inside the package: an extract run needs no params.yaml in the current folder.
tests/test_extract.py fails when params.yaml and these differ, so the repository's params.yaml stays the
documented source (its comments say what each key does) and this copy follows it.

An extractor registered without an entry here gets `FALLBACK_FEATURE` (random weights, CPU or GPU).
"""

from __future__ import annotations

import copy
from typing import Any

SECTIONS = ("seed", "dask", "decode", "faces", "features", "precision")
"""The params.yaml sections extraction reads; the others (dataset, train, heads, ...) it never needs."""

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "dask": {"scheduler": None, "scheduler_file": None, "workers": 2, "threads_per_worker": 1,
             "memory_limit": "auto", "retries": 1, "allocator": "jemalloc", "no_worker_timeout": 300,
             "connect_timeout": 30, "dashboard": True, "shared_filesystem": True, "keep_alive": 0},
    "decode": {"fps": None, "segments": 10, "frames_per_segment": 16, "train_views": 1, "short_side": 112,
               "crop_size": 112, "work_max_side": 640, "face_rate": 1.0, "face_max_frames": 64,
               "keyframe_size": 256, "audio_rates": [44100], "audio_stream": None,
               "outputs": ["snippets", "frames", "keyframes", "audio"], "compression": "gzip",
               "compression_level": 1},
    "faces": {"min_prob": 0.9, "min_size": 20, "select": "largest", "margin": 0.2, "crop_size": 224,
              "batch_size": 16},
    "features": {
        "r3d101_conv5": {"weights": "random", "batch_size": 8, "videos_per_task": 1, "device": "auto",
                         "options": {"norm": "vaanet", "random_init": "zero_residual"}},
        "vgg16_fc6": {"weights": "random", "batch_size": 16, "videos_per_task": 4, "device": "auto",
                      "options": {}},
        "vggface_fc6": {"weights": "random", "batch_size": 16, "videos_per_task": 8, "device": "auto",
                        "options": {}},
        "alexnet_fc7": {"weights": "random", "batch_size": 32, "videos_per_task": 8, "device": "auto",
                        "options": {}},
        "alexnet_fc7_spec": {"weights": "random", "batch_size": 32, "videos_per_task": 8, "device": "auto",
                             "options": {}},
        "mfcc": {"weights": "none", "batch_size": 1, "videos_per_task": 8, "device": "cpu",
                 "options": {"pad_mode": "reflect"}},
        "mfcc_resnet18": {"weights": "random", "batch_size": 16, "videos_per_task": 8, "device": "auto",
                          "options": {}},
        "mfcc_resnet50": {"weights": "random", "batch_size": 1, "videos_per_task": 8, "device": "auto",
                          "options": {}},
    },
    "precision": "fp32",
}

FALLBACK_FEATURE: dict[str, Any] = {"weights": "random", "batch_size": 16, "videos_per_task": 8,
                                    "device": "auto", "options": {}}


def default_settings() -> dict[str, Any]:
    """A fresh (deep) copy of `DEFAULTS`, safe to change."""
    return copy.deepcopy(DEFAULTS)

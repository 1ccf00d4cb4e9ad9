"""Each DVC stage is a process of its own: its driver imports only what it runs. The workers import the
backbones; a driver that imported them too started 5-6 s later, on every stage (stages/common.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "facenet_pytorch", "sklearn", "librosa", "dvclive")
# what each stage's driver may import of HEAVY: the feature and faces drivers check the device with
# torch; the head stages train and score with torch, sklearn's metrics and dvclive, and read MFCC with
# librosa's helpers. torchvision and facenet-pytorch belong in the workers, or where a network is built.
ALLOWED = {
    "decode": set(),
    # the first stage of a run checks every extractor's and head's options against their builders
    "manifest": {"sklearn", "torch", "torchvision", "librosa"},
    "faces": {"torch"},
    "features": {"torch"},
    "train": {"torch", "sklearn", "librosa", "dvclive"},
    "evaluate": {"torch", "sklearn", "librosa", "dvclive"},
    "report": set(),
}


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_a_stage_driver_imports_only_what_it_runs(stage: str) -> None:
    code = (f"import json, sys; import stages.{stage}; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert imported <= ALLOWED[stage], f"stages.{stage} imports {sorted(imported - ALLOWED[stage])}"

"""Each DVC stage is a process of its own: its driver imports only what it runs. The workers import the
backbones; a driver that imported them too started 5-6 s later, on every stage (stages/common.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "facenet_pytorch", "sklearn", "librosa", "dvclive")
# what each stage's driver may import of HEAVY: the feature driver checks the device with torch and
# reads its extractor class's version; the head stages train and score with torch, sklearn's metrics and
# dvclive, and read MFCC with librosa's helpers. torchvision, facenet-pytorch and librosa belong in the
# workers, or where a network is built; the faces driver needs none of them.
ALLOWED = {
    "decode": set(),
    # the first stage of a run checks every extractor's and head's options against their builders
    "manifest": {"sklearn", "torch", "torchvision", "librosa"},
    "faces": set(),
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


def test_the_feature_driver_reads_every_extractor_class_without_its_libraries() -> None:
    """The feature driver reads its extractor's class (versions, recorded weights) to know what its cache
    lacks before starting any worker; the libraries that build or feed the network stay in the workers."""
    code = ("import json, sys; from pipeline.extractors import get_extractor, list_extractors; "
            "[get_extractor(name) for name in list_extractors()]; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(json.loads(done.stdout.strip().splitlines()[-1])) <= ALLOWED["features"]

"""Each DVC stage is a process of its own: its driver imports only what it runs. The workers import the
backbones; a driver that imported them too started 5-6 s later, on every stage (stages/common.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "facenet_pytorch", "sklearn", "librosa", "dvclive")
# what each stage's driver may import of HEAVY: the feature driver reads a built-in extractor's card
# (pipeline/extractors/catalog.py), not its class, and checks the device with torch only for a reduced
# precision; the head stages train and score with torch, sklearn's metrics and
# dvclive, and read MFCC with librosa's helpers. torchvision, facenet-pytorch and librosa belong in the
# workers, or where a network is built; the faces driver needs none of them.
ALLOWED = {
    "decode": set(),
    # the first stage of a run checks every extractor's and head's options against their builders
    "manifest": {"sklearn", "torch", "torchvision", "librosa"},
    "faces": set(),
    "features": set(),
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


def test_the_feature_driver_plans_every_built_in_extractor_without_torch() -> None:
    """The feature driver knows each built-in's identity, inputs and sources (what its cache lacks, what to
    ship) from its card, before starting any worker: torch's import was 3 s of a 3.5 s stage start."""
    code = ("import json, sys; from pipeline.engine.cluster import ClusterConfig; "
            "from pipeline.extractors.catalog import CARDS; "
            "from pipeline.features.config import extractor_spec; "
            "from pipeline.config import load_params; from pipeline.graph import sources_of; "
            "from pipeline.features.config import check_runnable; "
            "from pipeline.features.stage import local_identity, shipped_arrays; "
            "params = load_params(); "
            "[(check_runnable(s, external=ClusterConfig().external), local_identity(s), "
            "shipped_arrays(n, {k: k for k in sources_of(n)})) "
            "for n in CARDS for s in [extractor_spec(params, n)]]; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(json.loads(done.stdout.strip().splitlines()[-1])) == set()


def test_every_built_in_extractor_class_agrees_with_its_card() -> None:
    """The driver's card and the worker's class say the same identity (a disagreement is refused at
    registration: the module would not import)."""
    from pipeline.extractors import get_extractor
    from pipeline.extractors.catalog import CARDS, card_disagreement
    from pipeline.features.config import ExtractorSpec
    from pipeline.features.stage import local_identity
    from pipeline.features.worker import class_identity

    for name in CARDS:
        cls = get_extractor(name)
        assert card_disagreement(cls) is None
        assert class_identity(cls, cls.recorded_weights("random")) == local_identity(ExtractorSpec(name))
    alexnet = get_extractor("alexnet_fc7")
    bumped = type("Bumped", (alexnet,), {"version": 2})
    assert "version=2" in (card_disagreement(bumped) or "")

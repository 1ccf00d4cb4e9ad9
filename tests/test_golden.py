"""Every computation that fills a cache has a version in its cache's configuration hash (tests/golden.py):
values that change while the version stays would be served from caches made by the older code, silently.
The real chain runs on a clip made here; each output's digest must match tests/golden/values.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from golden import GOLDEN, compute, differs, digest, owner, upstream

WHERE = {
    "decode": "CODE_VERSION in pipeline/decode/config.py",
    "faces": "CODE_VERSION in pipeline/faces/config.py",
    "extractor": "the extractor class's `version` (pipeline/extractors/)",
    "input": "`version=` of its input_loader in pipeline/features/inputs.py",
}
UPDATE = "then record the new values: python tests/golden.py --update"


@pytest.fixture(scope="module")
def computed(module_tmp: Callable[[str], Path]) -> tuple[dict[str, int], dict[str, dict]]:
    return compute(module_tmp("golden"))


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.slow
def test_every_version_is_the_one_the_golden_values_were_recorded_at(computed, recorded) -> None:
    versions, _ = computed
    stale = {k: (v, recorded["versions"].get(k)) for k, v in versions.items()
             if recorded["versions"].get(k) != v}
    assert not stale, f"versions changed (now, recorded): {stale}; {UPDATE}"


@pytest.mark.slow
def test_values_change_only_with_their_version(computed, recorded) -> None:
    """A computation whose values changed, while neither its version nor that of a computation upstream
    of it did, would be served from old caches. Only the first changed computation of a chain is named:
    its version covers what it feeds."""
    versions, values = computed
    changed: dict[str, list[str]] = {}
    for key, got in values.items():
        want = recorded["values"].get(key)
        why = "new output" if want is None else differs(got, want)
        if why:
            changed.setdefault(owner(key), []).append(f"{key}: {why}")
    bumped = {p for p, v in versions.items() if recorded["versions"].get(p) != v}
    unexplained = {p: lines for p, lines in changed.items()
                   if not ({p} | upstream(p)) & bumped and not upstream(p) & set(changed)}
    missing = sorted(set(recorded["values"]) - set(values))
    message = "; ".join(f"{part} changed its values ({lines[0]}), bump {WHERE[part.split()[0]]}"
                        for part, lines in unexplained.items())
    assert not unexplained and not missing, f"{message} {missing or ''}; {UPDATE}"


def test_a_digest_sees_other_frames_but_not_float_noise() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    assert differs(digest(frames[::-1]), digest(frames))
    assert differs(digest(frames[:, :, ::2]), digest(frames))
    features = rng.standard_normal((4, 512)).astype(np.float32)
    assert not differs(digest(features * (1 + 1e-6)), digest(features))
    assert differs(digest(features * 1.05), digest(features))


def test_the_golden_file_covers_every_registered_computation(recorded) -> None:
    from pipeline.extractors import list_extractors
    from pipeline.graph import INPUT_SOURCES

    wanted = {"decode", "faces", *(f"extractor {n}" for n in list_extractors()),
              *(f"input {k}" for k in INPUT_SOURCES)}
    assert set(recorded["versions"]) == wanted, f"{UPDATE} (it runs every registered computation)"
    assert {owner(k) for k in recorded["values"]} == wanted
    assert Path(GOLDEN).stat().st_size < 100_000


def test_the_chain_of_computations_follows_the_stage_graph() -> None:
    assert upstream("extractor mfcc_resnet18") == {"input mfcc", "extractor mfcc", "input audio", "decode"}
    assert upstream("extractor vgg16_fc6") == {"input frames", "decode", "faces"}
    assert upstream("decode") == set()

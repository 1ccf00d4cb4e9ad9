"""`Extractor.with_weights`: a checkpoint goes into uninitialised storage instead of over a random draw, and
the network is the same, value for value and in memory layout, as the one `load_weights` loads over the
draw; no random number is taken (so the seconds of the draw are saved). Options that keep part of the draw
(mfcc_resnet18's random conv1) still draw it. Checkpoints are made here in the official layouts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision

from pipeline.extractors.base import Extractor, get_extractor
from tests.test_extractors_alexnet import seeded_state
from tests.test_extractors_mfcc import torchvision_checkpoint
from tests.test_extractors_r3d import golden_state, save_cvpr2018


def alexnet_file(tmp_path: Path) -> Path:
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(seeded_state(torchvision.models.alexnet, 3), path)
    return path


def r3d_file(tmp_path: Path) -> Path:   # the 2018 layout: no BatchNorm counters, filled in by the loader
    return save_cvpr2018(tmp_path / "resnet-101-kinetics.pth", golden_state(3))


CASES: dict[str, tuple[str, dict, Callable[[Path], Path]]] = {
    "alexnet-bf16": ("alexnet_fc7", {"precision": "bf16"}, alexnet_file),
    "r3d-cvpr2018": ("r3d101_conv5", {}, r3d_file),
    "resnet18": ("mfcc_resnet18", {}, lambda tmp: torchvision_checkpoint(tmp, "resnet18", 3)),
    "resnet50": ("mfcc_resnet50", {}, lambda tmp: torchvision_checkpoint(tmp, "resnet50", 3)),
}


def tensors(extractor: Extractor) -> dict[str, torch.Tensor]:
    return {**dict(extractor.module.named_parameters()), **dict(extractor.module.named_buffers())}


@pytest.mark.filterwarnings("ignore:.*bf16.*:RuntimeWarning")   # bf16 on a CPU without it: slow, still right
@pytest.mark.parametrize("case", CASES)
def test_a_checkpoint_is_loaded_without_the_random_draw(tmp_path: Path, case: str) -> None:
    name, options, make = CASES[case]
    path, cls = str(make(tmp_path)), get_extractor(name)
    torch.manual_seed(0)
    classic = cls(**options)
    classic.load_weights(path)

    torch.manual_seed(1)
    rng = torch.get_rng_state()
    loaded = cls.with_weights(path, **options)
    assert torch.equal(torch.get_rng_state(), rng)   # nothing drawn
    assert loaded.weights == classic.weights and not loaded.module.training
    expected, got = tensors(classic), tensors(loaded)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
        assert got[key].stride() == value.stride() and got[key].dtype == value.dtype, key
        assert not got[key].requires_grad, key


def test_an_option_that_keeps_part_of_the_draw_still_draws_it(tmp_path: Path) -> None:
    path = str(torchvision_checkpoint(tmp_path, "resnet18", 3))
    cls = get_extractor("mfcc_resnet18")
    torch.manual_seed(0)
    classic = cls(conv1="random")
    classic.load_weights(path)
    torch.manual_seed(0)
    loaded = cls.with_weights(path, conv1="random")
    assert torch.equal(loaded.module.conv1.weight, classic.module.conv1.weight)
    assert torch.equal(loaded.module.layer4[1].conv2.weight, classic.module.layer4[1].conv2.weight)


def test_random_weights_are_drawn_from_the_callers_seed() -> None:
    cls = get_extractor("mfcc_resnet18")
    torch.manual_seed(4)
    classic = cls()
    torch.manual_seed(4)
    made = cls.with_weights("random")
    assert made.weights == "random"
    pairs = zip(tensors(made).values(), tensors(classic).values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)

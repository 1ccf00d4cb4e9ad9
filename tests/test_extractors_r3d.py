"""r3d101_conv5: official checkpoint layouts load strictly; outputs match the authors' model (golden)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from pipeline.extractors.base import get_extractor
from pipeline.extractors.r3d import (
    NORMALIZATIONS,
    Bottleneck3d,
    CheckpointFormatError,
    R3D101Conv5,
    R3DBackbone,
)
from pipeline.file_memo import sha256_of

# Golden reference: the authors' own model code (kenshohara/3D-ResNets-PyTorch models/resnet.py, CVPR2018
# branch d9847ea and master 540a0ea), run outside this repository on a CVPR2018-format checkpoint of
# golden_state(0) (loaded as VAANet does: keys[7:], strict) and on golden_input(0) normalised by hand as
# VAANet (x/255 - 100/255), gave these layer4 (conv5) statistics. Their 2018 and 2020 models (the latter on a
# 2020-format file) and this extractor agreed exactly (max abs diff 0.0) on that run.
GOLDEN: dict[str, float] = {
    "sum": 50452.04890346703, "mean": 1.5396743439778757, "max": 20.97293472290039, "std": 1.8979024051605442,
    "v0": 0.11981210857629776, "v777": 7.673364639282227, "v12345": 0.07531875371932983,
    "v20001": 1.973732590675354, "v32000": 2.298463821411133, "argmax": 22277,
    "pooled_sum": 3153.2530564666895, "pooled1024": 3.7331816405057907,
}


def golden_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded backbone weights that exercise every parameter and BN buffer, independent of build()'s init.

    Convolutions He-normal (fan_out); BN weight/bias/running stats random so eval-mode BN is not the identity.
    """
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, ref in sorted(R3DBackbone().state_dict().items()):
        shape, leaf = ref.shape, key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            state[key] = torch.tensor(0)
        elif ref.ndim == 5:
            state[key] = torch.randn(shape, generator=g) * math.sqrt(2.0 / (shape[0] * math.prod(shape[2:])))
        elif leaf == "weight":
            state[key] = 0.5 + 0.5 * torch.rand(shape, generator=g)
        elif leaf == "running_var":
            state[key] = 0.5 + torch.rand(shape, generator=g)
        else:  # BN bias, running_mean
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


def golden_input(seed: int = 0, t: int = 1) -> np.ndarray:
    """uint8 snippets (t, 16, 112, 112, 3) from a seeded torch generator."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, 16, 112, 112, 3), generator=g, dtype=torch.uint8).numpy()


def with_fc(state: dict[str, torch.Tensor], n_classes: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(n_classes)
    fc = {"fc.weight": 0.01 * torch.randn(n_classes, 2048, generator=g), "fc.bias": torch.zeros(n_classes)}
    return {**state, **fc}


def save_cvpr2018(path: Path, state: dict[str, torch.Tensor], n_classes: int = 400) -> Path:
    """As CVPR2018 train.py saved a DataParallel model under PyTorch 0.3: `module.` keys, no BN counters."""
    full = with_fc(state, n_classes)
    sd = {f"module.{k}": v for k, v in full.items() if not k.endswith("num_batches_tracked")}
    optimizer = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "dampening": 0.9,
                                                "weight_decay": 1e-3, "nesterov": False, "params": [1, 2]}]}
    ckpt = {"epoch": 201, "arch": "resnet-101", "state_dict": sd, "optimizer": optimizer}
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)  # the pre-1.6 container
    return path


def save_2020(path: Path, state: dict[str, torch.Tensor], n_classes: int) -> Path:
    """As 2020 main.py save_checkpoint: model.module.state_dict() (plain keys), optimizer and scheduler."""
    optimizer = {"state": {0: {"momentum_buffer": torch.zeros(3)}},
                 "param_groups": [{"lr": 1e-3, "momentum": 0.9, "params": [0]}]}
    scheduler = {"milestones": Counter([50, 100, 150]), "gamma": 0.1, "base_lrs": [0.1], "last_epoch": 200}
    ckpt = {"epoch": 200, "arch": "resnet-101", "state_dict": with_fc(state, n_classes),
            "optimizer": optimizer, "scheduler": scheduler}
    torch.save(ckpt, path)
    return path


def cheap_state() -> dict[str, torch.Tensor]:
    """A backbone-shaped state dict stored in a few bytes (zero-stride views), for layout-error files."""
    return {k: torch.zeros(()).expand(v.shape) for k, v in R3DBackbone().state_dict().items()}


@pytest.fixture(scope="module")
def source() -> R3D101Conv5:
    torch.manual_seed(0)
    extractor = R3D101Conv5()
    extractor.module.load_state_dict(golden_state(0))
    return extractor


@pytest.fixture(scope="module")
def reference(source: R3D101Conv5) -> dict[str, np.ndarray]:
    return source(golden_input(0))


@pytest.fixture(scope="module")
def loader() -> R3D101Conv5:
    torch.manual_seed(1)
    return R3D101Conv5()


@pytest.fixture(scope="module")
def cvpr2018_file(module_tmp: Callable[[str], Path], source: R3D101Conv5) -> Path:
    path = module_tmp("r3d") / "resnet-101-kinetics.pth"
    return save_cvpr2018(path, source.module.state_dict())


def test_registered_with_declared_io() -> None:
    cls = get_extractor("r3d101_conv5")
    assert cls is R3D101Conv5
    assert cls.input_kind == "snippets"
    assert cls.outputs == {"conv5": (2048, 1, 4, 4), "pooled": (2048,)}


def test_cvpr2018_checkpoint_loads_strictly(loader: R3D101Conv5, cvpr2018_file: Path,
                                            reference: dict[str, np.ndarray]) -> None:
    assert loader.load_weights(str(cvpr2018_file)) == sha256_of(cvpr2018_file)
    assert (loader.checkpoint.generation, loader.checkpoint.n_classes) == ("cvpr2018", 400)
    out = loader(golden_input(0))
    for name in ("conv5", "pooled"):
        np.testing.assert_array_equal(out[name], reference[name])


@pytest.mark.parametrize("n_classes", [700, 1039])
def test_2020_checkpoints_load_strictly(tmp_path: Path, loader: R3D101Conv5, source: R3D101Conv5,
                                        reference: dict[str, np.ndarray], n_classes: int) -> None:
    path = save_2020(tmp_path / f"r3d101_{n_classes}.pth", source.module.state_dict(), n_classes)
    loader.load_weights(str(path))
    assert (loader.checkpoint.generation, loader.checkpoint.n_classes) == ("2020", n_classes)
    np.testing.assert_array_equal(loader(golden_input(0))["conv5"], reference["conv5"])


def test_golden_matches_authors_model(cvpr2018_file: Path) -> None:
    torch.manual_seed(2)
    extractor = R3D101Conv5()
    extractor.load_weights(str(cvpr2018_file))
    out = extractor(golden_input(0))
    conv5, pooled = out["conv5"].astype(np.float64), out["pooled"].astype(np.float64)
    assert conv5.shape == (1, 2048, 1, 4, 4)
    flat = conv5.reshape(-1)
    got = {"sum": flat.sum(), "mean": flat.mean(), "max": flat.max(), "std": flat.std(),
           "argmax": flat.argmax(),
           **{f"v{i}": flat[i] for i in (0, 777, 12345, 20001, 32000)},
           "pooled_sum": pooled.sum(), "pooled1024": pooled[0, 1024]}
    assert got.keys() == GOLDEN.keys()
    for key, want in GOLDEN.items():
        assert got[key] == pytest.approx(want, rel=1e-4, abs=1e-4), key


def bad_layouts(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, text the error must contain besides the file name)."""
    state = cheap_state()
    state_2d = torchvision.models.resnet101().state_dict()
    files = {
        "bare_state_dict": ({**with_fc(state, 400)}, "expected an official"),
        "not_a_dict": ([1, 2, 3], "expected an official"),
        "resnet50": ({"arch": "resnet-50", "state_dict": with_fc(state, 400)}, "'resnet-50'"),
        "no_fc": ({"arch": "resnet-101", "state_dict": state}, "fc.weight"),
        "missing_key": ({"arch": "resnet-101", "state_dict": with_fc(
            {k: v for k, v in state.items() if k != "layer4.2.conv3.weight"}, 400)}, "layer4.2.conv3.weight"),
        "resnet2d": ({"arch": "resnet-101", "state_dict": state_2d}, "wrong shapes ['conv1.weight"),
        "mixed_prefix": ({"arch": "resnet-101",
                          "state_dict": {**with_fc(state, 400), "module.x": torch.zeros(1)}}, "mixes"),
    }
    out = {}
    for name, (obj, text) in files.items():
        torch.save(obj, tmp_path / f"{name}.pth")
        out[name] = (tmp_path / f"{name}.pth", text)
    (tmp_path / "garbage.pth").write_text("not a checkpoint")
    out["garbage"] = (tmp_path / "garbage.pth", "cannot read")
    return out


def test_wrong_layouts_fail_naming_the_file(tmp_path: Path, loader: R3D101Conv5) -> None:
    for name, (path, text) in bad_layouts(tmp_path).items():
        with pytest.raises(CheckpointFormatError) as info:
            loader.load_weights(str(path))
        assert str(path) in str(info.value) and text in str(info.value), (name, str(info.value))


def test_shapes_finite_batched_and_deterministic(source: R3D101Conv5,
                                                  reference: dict[str, np.ndarray]) -> None:
    clips = np.concatenate([golden_input(0), golden_input(5)])
    out = source(clips)
    assert out["conv5"].shape == (2, 2048, 1, 4, 4) and out["conv5"].dtype == np.float32
    assert out["pooled"].shape == (2, 2048)
    assert np.isfinite(out["conv5"]).all()
    np.testing.assert_allclose(out["pooled"], out["conv5"].mean(axis=(2, 3, 4)), rtol=1e-6, atol=1e-6)
    # batch size changes the conv kernels' summation order: ~1e-5, far below the float16 cache's resolution
    np.testing.assert_allclose(out["conv5"][:1], reference["conv5"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(source(golden_input(0))["conv5"], reference["conv5"])


def hand_made_batch() -> np.ndarray:
    """(1, 2, 1, 2, 3): frame 0 pixel 0 = (0, 100, 255), frame 1 pixel 1 = (10, 20, 30), the rest 0."""
    batch = np.zeros((1, 2, 1, 2, 3), np.uint8)
    batch[0, 0, 0, 0] = (0, 100, 255)
    batch[0, 1, 0, 1] = (10, 20, 30)
    return batch


@pytest.mark.parametrize(("norm", "pixel0", "pixel1"), [
    ("vaanet", [-100 / 255, 0.0, 155 / 255], [-90 / 255, -80 / 255, -70 / 255]),
    ("kinetics2018", [-114.7748, 100 - 107.7354, 255 - 99.4750],
     [10 - 114.7748, 20 - 107.7354, 30 - 99.4750]),
    ("kinetics2020", [-0.4345 / 0.2768, (100 / 255 - 0.4051) / 0.2713, (1 - 0.3775) / 0.2737],
     [(10 / 255 - 0.4345) / 0.2768, (20 / 255 - 0.4051) / 0.2713, (30 / 255 - 0.3775) / 0.2737]),
])
def test_preprocess_normalisation(source: R3D101Conv5, norm: str, pixel0: list[float],
                                  pixel1: list[float]) -> None:
    source.norm = NORMALIZATIONS[norm]
    try:
        x = source.preprocess(hand_made_batch())
    finally:
        source.norm = NORMALIZATIONS["vaanet"]
    assert x.shape == (1, 3, 2, 1, 2) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0, :, 0, 0, 0].numpy(), pixel0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x[0, :, 1, 0, 1].numpy(), pixel1, rtol=1e-6, atol=1e-6)
    zero = NORMALIZATIONS[norm]
    np.testing.assert_allclose(x[0, :, 1, 0, 0].numpy(), -np.array(zero.mean) / np.array(zero.std), rtol=1e-6)


def test_preprocess_rejects_wrong_input(source: R3D101Conv5) -> None:
    with pytest.raises(ValueError, match="uint8"):
        source.preprocess(np.zeros((1, 16, 112, 112, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        source.preprocess(np.zeros((16, 112, 112, 3), np.uint8))


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="norm"):
        R3D101Conv5(norm="imagenet")
    with pytest.raises(ValueError, match="precision"):
        R3D101Conv5(precision="fp16")
    with pytest.raises(ValueError, match="random_init"):
        R3D101Conv5(random_init="xavier")


def test_zero_residual_random_init_starts_every_block_as_its_shortcut(cvpr2018_file: Path) -> None:
    """Every bottleneck's last BN weight is zero, the rows of two different clips point apart more than
    under the authors' init, and a checkpoint still sets every weight (the option is then moot)."""
    x = np.random.default_rng(0).integers(0, 256, (2, 16, 112, 112, 3), dtype=np.uint8)
    x[1] = 255 - x[1]
    cosines = {}
    for init in ("authors", "zero_residual"):
        torch.manual_seed(0)
        extractor = R3D101Conv5(random_init=init)
        blocks = [m for m in extractor.module.modules() if isinstance(m, Bottleneck3d)]
        assert len(blocks) == 33 and all(bool(b.bn3.weight.any()) == (init == "authors") for b in blocks)
        a, b = torch.from_numpy(extractor(x)["pooled"])
        cosines[init] = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
        extractor.load_weights(str(cvpr2018_file))
        assert all(b.bn3.weight.any() for b in blocks)
    assert cosines["zero_residual"] < cosines["authors"], cosines


def test_bf16_close_to_fp32(source: R3D101Conv5) -> None:
    """On a 64 x 64 clip: bf16 runs emulated, about 100x slower, where the CPU has no native bf16."""
    extractor = R3D101Conv5(precision="bf16")
    extractor.module.load_state_dict(source.module.state_dict())
    assert extractor.module.conv1.weight.is_contiguous(memory_format=torch.channels_last_3d)
    clip = golden_input(0)[:, :, :64, :64]
    out, reference = extractor(clip), source(clip)
    assert out["conv5"].dtype == np.float32 and out["conv5"].shape == reference["conv5"].shape
    a, b = out["pooled"].ravel(), reference["pooled"].ravel()
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.99

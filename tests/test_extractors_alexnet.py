"""alexnet_fc7 / alexnet_fc7_spec: the torchvision alexnet state dict loads strictly, fc7 matches torchvision.

The checkpoint is made here in torchvision's exact layout (seeded weights, torch.save); the reference is
torchvision's own AlexNet forward with a hook on fc7, on inputs preprocessed by torchvision's transforms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import torchvision.transforms.v2.functional as TF
from torch import nn

from pipeline.extractors.alexnet import AlexNetFc7, AlexNetFc7Keyframes, AlexNetFc7Spectrograms
from pipeline.extractors.base import get_extractor
from pipeline.extractors.vgg import IMAGENET_MEAN, IMAGENET_STD, WeightsFormatError
from pipeline.file_memo import sha256_of


def meta_model(fn: Callable[..., nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return fn(weights=None)


def seeded_state(fn: Callable[..., nn.Module], seed: int) -> dict[str, torch.Tensor]:
    """He-normal weights and small random biases for every key of a torchvision model, from one generator."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, ref in meta_model(fn).state_dict().items():
        if key.endswith("weight"):
            state[key] = torch.randn(ref.shape, generator=g) * math.sqrt(2.0 / math.prod(ref.shape[1:]))
        else:
            state[key] = 0.05 * torch.randn(ref.shape, generator=g)
    return state


@torch.inference_mode()
def reference_fc7(state: dict[str, torch.Tensor], x: torch.Tensor) -> np.ndarray:
    """ReLU of classifier[4]'s output captured during torchvision's own alexnet forward."""
    model = meta_model(torchvision.models.alexnet)
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    captured: dict[str, torch.Tensor] = {}
    hook = model.classifier[4].register_forward_hook(lambda m, i, o: captured.setdefault("fc7", o.clone()))
    try:
        model(x)
    finally:
        hook.remove()
    return torch.relu(captured["fc7"]).numpy()


def torchvision_preprocess(rows: np.ndarray, fit: str) -> torch.Tensor:
    x = torch.from_numpy(rows).permute(0, 3, 1, 2).float()
    x = TF.center_crop(x, [224, 224]) if fit == "center_crop" else TF.resize(x, [224, 224], antialias=True)
    return TF.normalize(x / 255.0, list(IMAGENET_MEAN), list(IMAGENET_STD))


def images(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return seeded_state(torchvision.models.alexnet, seed=1)


@pytest.fixture(scope="module")
def ckpt(module_tmp: Callable[[str], Path], state: dict[str, torch.Tensor]) -> Path:
    path = module_tmp("alexnet") / "alexnet-owt-7be5be79.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)  # the 2017 file's pre-1.6 container
    return path


@pytest.fixture(scope="module")
def keyframes_net(ckpt: Path) -> AlexNetFc7:
    torch.manual_seed(0)
    extractor = get_extractor("alexnet_fc7")()
    extractor.load_weights(str(ckpt))
    return extractor


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return images((2, 256, 256, 3), seed=0)


def test_two_registered_names_share_one_class() -> None:
    keyframes, spectrograms = get_extractor("alexnet_fc7"), get_extractor("alexnet_fc7_spec")
    assert keyframes is AlexNetFc7Keyframes and spectrograms is AlexNetFc7Spectrograms
    assert (keyframes.input_kind, spectrograms.input_kind) == ("keyframes", "spectrograms")
    for cls in (keyframes, spectrograms):
        assert cls.__bases__ == (AlexNetFc7,)
        assert {k for k in vars(cls) if not k.startswith("_")} == {"name", "input_kind"}
    assert keyframes.outputs == spectrograms.outputs == {"fc7": (4096,)}


def test_loads_torchvision_layout_strictly(keyframes_net: AlexNetFc7, ckpt: Path,
                                          state: dict[str, torch.Tensor]) -> None:
    assert keyframes_net.weights == sha256_of(ckpt)
    loaded = keyframes_net.module.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())


def test_fc7_matches_torchvision_forward(keyframes_net: AlexNetFc7, state: dict[str, torch.Tensor],
                                        rows: np.ndarray) -> None:
    out = keyframes_net(rows)
    assert set(out) == {"fc7"} and out["fc7"].shape == (2, 4096) and out["fc7"].dtype == np.float32
    fc7 = out["fc7"]
    assert np.isfinite(fc7).all() and (fc7 >= 0).all() and (fc7 > 0).mean() > 0.1
    expected = reference_fc7(state, torchvision_preprocess(rows, "center_crop"))
    np.testing.assert_allclose(fc7, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert np.array_equal(keyframes_net(rows)["fc7"], fc7)  # deterministic


def test_spectrogram_extractor_is_the_same_network(keyframes_net: AlexNetFc7, ckpt: Path,
                                                   rows: np.ndarray) -> None:
    torch.manual_seed(1)
    spec = AlexNetFc7Spectrograms()
    assert spec.load_weights(str(ckpt)) == keyframes_net.weights
    assert np.array_equal(spec(rows)["fc7"], keyframes_net(rows)["fc7"])


def test_center_crop_takes_the_central_224_of_a_256_row(keyframes_net: AlexNetFc7, rows: np.ndarray) -> None:
    x = keyframes_net.preprocess(rows).numpy()
    centre = rows[:, 16:240, 16:240].transpose(0, 3, 1, 2) / 255.0
    expected = (centre - np.reshape(IMAGENET_MEAN, (1, 3, 1, 1))) / np.reshape(IMAGENET_STD, (1, 3, 1, 1))
    assert x.shape == (2, 3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x, expected, atol=1e-5)


def test_other_sizes_are_resized_to_256_first(keyframes_net: AlexNetFc7) -> None:
    row = images((1, 300, 200, 3), seed=4)
    x = keyframes_net.preprocess(row)
    resized = TF.resize(torch.from_numpy(row).permute(0, 3, 1, 2).float(), [256, 256], antialias=True)
    expected = TF.normalize(TF.center_crop(resized, [224, 224]) / 255.0, list(IMAGENET_MEAN),
                            list(IMAGENET_STD))
    torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-4)


def test_constant_row_gives_normalised_constant(keyframes_net: AlexNetFc7) -> None:
    x = keyframes_net.preprocess(np.full((1, 256, 256, 3), 200, np.uint8))
    for c in range(3):
        expected = (200 / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(x[0, c], torch.full((224, 224), expected), atol=1e-5)


def test_fit_resize_squeezes_the_whole_row(state: dict[str, torch.Tensor], rows: np.ndarray) -> None:
    torch.manual_seed(0)
    squeezed = AlexNetFc7Spectrograms(fit="resize")
    squeezed.load_state(squeezed.module, state)
    torch.testing.assert_close(squeezed.preprocess(rows), torchvision_preprocess(rows, "resize"),
                               rtol=1e-5, atol=1e-4)
    out = squeezed(rows)["fc7"]
    expected = reference_fc7(state, torchvision_preprocess(rows, "resize"))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_bf16_is_close_to_fp32_and_channels_last(keyframes_net: AlexNetFc7, state: dict[str, torch.Tensor],
                                                rows: np.ndarray) -> None:
    torch.manual_seed(0)
    fast = AlexNetFc7Keyframes(precision="bf16")
    fast.load_state(fast.module, state)
    assert fast.module.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    a, b = keyframes_net(rows)["fc7"], fast(rows)["fc7"]
    assert b.dtype == np.float32 and b.shape == (2, 4096) and np.isfinite(b).all()
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert (cosine > 0.99).all()
    assert np.abs(a - b).max() > 1e-3 * np.abs(a).max()  # bf16 really ran (fp32 agrees to ~1e-6)


def test_empty_batch_gives_empty_features(keyframes_net: AlexNetFc7) -> None:
    out = keyframes_net(np.zeros((0, 256, 256, 3), np.uint8))
    assert out["fc7"].shape == (0, 4096) and out["fc7"].dtype == np.float32


@pytest.mark.parametrize("options", [{"fit": "pad"}, {"precision": "fp16"}])
def test_unknown_options_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="alexnet_fc7_spec: (fit 'pad'|precision 'fp16') is not one of"):
        AlexNetFc7Spectrograms(**options)


def test_rejects_rows_that_are_not_uint8_rgb(keyframes_net: AlexNetFc7) -> None:
    with pytest.raises(ValueError, match=r"alexnet_fc7: expected uint8 \(N, H, W, 3\) keyframes"):
        keyframes_net(np.zeros((1, 256, 256), np.uint8))
    with pytest.raises(ValueError, match="got float64"):
        keyframes_net(np.zeros((1, 256, 256, 3)))


def test_wrong_files_fail_naming_them(keyframes_net: AlexNetFc7, ckpt: Path, tmp_path: Path) -> None:
    before = keyframes_net.weights
    vgg = tmp_path / "vgg16-397923af.pth"
    torch.save({k: torch.zeros(()).expand(v.shape) for k, v in
                meta_model(torchvision.models.vgg16).state_dict().items()}, vgg)
    message = r"is not a torchvision alexnet .*missing keys \['features.3"
    with pytest.raises(WeightsFormatError, match=message) as e:
        keyframes_net.load_weights(str(vgg))
    assert str(vgg) in str(e.value)
    truncated = tmp_path / "alexnet-owt-7be5be79.pth"
    truncated.write_bytes(ckpt.read_bytes()[:4096])
    with pytest.raises(WeightsFormatError, match=f"alexnet_fc7: cannot read {truncated}"):
        keyframes_net.load_weights(str(truncated))
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        keyframes_net.load_weights(str(tmp_path / "absent.pth"))
    assert keyframes_net.weights == before

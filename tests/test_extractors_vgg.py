"""vgg16_fc6, vggface_fc6, the VGG-Face converter: official layouts load strictly, outputs match torchvision.

Checkpoints are made here in each published layout (seeded weights, torch.save); the reference is
torchvision's own VGG16 forward with a hook on fc6, on inputs preprocessed by torchvision's transforms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms.v2.functional as TF
from torch import nn

from pipeline.extractors import vgg, vggface_convert
from pipeline.extractors.base import get_extractor
from pipeline.extractors.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGGFACE_MEAN,
    VGG16Fc6,
    VGGFaceFc6,
    WeightsFormatError,
)
from pipeline.extractors.vggface_convert import ConversionError, convert_state
from pipeline.file_memo import sha256_of

DAG_CONVS = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
             "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]


def meta_model(fn: Callable[..., nn.Module], **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return fn(weights=None, **kwargs)


def seeded_state(fn: Callable[..., nn.Module], seed: int, **kwargs: object) -> dict[str, torch.Tensor]:
    """He-normal weights and small random biases for every key of a torchvision model, from one generator."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, ref in meta_model(fn, **kwargs).state_dict().items():
        if key.endswith("weight"):
            state[key] = torch.randn(ref.shape, generator=g) * math.sqrt(2.0 / math.prod(ref.shape[1:]))
        else:
            state[key] = 0.05 * torch.randn(ref.shape, generator=g)
    return state


def cheap_state(fn: Callable[..., nn.Module], fill: float = 0.0, **kwargs: object) -> dict[str, torch.Tensor]:
    """A model-shaped state dict stored in a few bytes (zero-stride views), for wrong-file tests."""
    return {k: torch.full((), fill).expand(v.shape) for k, v in meta_model(fn, **kwargs).state_dict().items()}


def reference_model(fn: Callable[..., nn.Module], state: dict[str, torch.Tensor],
                    **kwargs: object) -> nn.Module:
    model = meta_model(fn, **kwargs)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


@torch.inference_mode()
def reference_fc6(model: torchvision.models.VGG, x: torch.Tensor) -> np.ndarray:
    """ReLU of classifier[0]'s output captured during torchvision's own full forward."""
    captured: dict[str, torch.Tensor] = {}
    hook = model.classifier[0].register_forward_hook(lambda m, i, o: captured.setdefault("fc6", o.clone()))
    try:
        model(x)
    finally:
        hook.remove()
    return torch.relu(captured["fc6"]).numpy()


def images(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def dag_state(accepted: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The vgg_face_dag.pth layout of the same weights: conv{b}_{i} (in the order of the convolutions
    of torchvision's vgg16.features) and fc6 / fc7 / fc8 as Linear."""
    features = meta_model(torchvision.models.vgg16).features
    conv_index = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    names: dict[int | str, str] = dict(zip(conv_index, DAG_CONVS, strict=True))
    names.update({f"classifier.{j}": name for j, name in ((0, "fc6"), (3, "fc7"), (6, "fc8"))})
    out = {}
    for layer, name in names.items():
        prefix = layer if isinstance(layer, str) else f"features.{layer}"
        out[f"{name}.weight"], out[f"{name}.bias"] = accepted[f"{prefix}.weight"], accepted[f"{prefix}.bias"]
    return out


# ---------------------------------------------------------------------------------------------- vgg16_fc6


@pytest.fixture(scope="module")
def vgg16_state() -> dict[str, torch.Tensor]:
    return seeded_state(torchvision.models.vgg16, seed=1)


@pytest.fixture(scope="module")
def vgg16_ckpt(module_tmp: Callable[[str], Path], vgg16_state: dict[str, torch.Tensor]) -> Path:
    path = module_tmp("vgg16") / "vgg16-397923af.pth"
    torch.save(vgg16_state, path, _use_new_zipfile_serialization=False)  # the 2017 file's pre-1.6 container
    return path


@pytest.fixture(scope="module")
def vgg16(vgg16_ckpt: Path) -> VGG16Fc6:
    torch.manual_seed(0)
    extractor = get_extractor("vgg16_fc6")()
    extractor.load_weights(str(vgg16_ckpt))
    return extractor


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return images((2, 90, 160, 3), seed=0)  # not 224x224: resized whole


@pytest.fixture(scope="module")
def vgg16_out(vgg16: VGG16Fc6, frames: np.ndarray) -> dict[str, np.ndarray]:
    return vgg16(frames)


def test_registered_names_kinds_and_outputs() -> None:
    assert get_extractor("vgg16_fc6") is VGG16Fc6 and get_extractor("vggface_fc6") is VGGFaceFc6
    assert VGG16Fc6.input_kind == "frames" and VGGFaceFc6.input_kind == "face_crops"
    assert VGG16Fc6.outputs == VGGFaceFc6.outputs == {"fc6": (4096,)}


def test_vgg16_loads_official_layout_strictly_and_records_sha(vgg16: VGG16Fc6, vgg16_ckpt: Path,
                                                              vgg16_state: dict[str, torch.Tensor]) -> None:
    assert vgg16.weights == sha256_of(vgg16_ckpt)
    loaded = vgg16.module.state_dict()
    assert loaded.keys() == vgg16_state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in vgg16_state.items())


def test_vgg16_fc6_matches_torchvision_forward(vgg16: VGG16Fc6, vgg16_state: dict[str, torch.Tensor],
                                               frames: np.ndarray, vgg16_out: dict[str, np.ndarray]) -> None:
    out = vgg16_out
    assert set(out) == {"fc6"} and out["fc6"].shape == (2, 4096) and out["fc6"].dtype == np.float32
    assert np.isfinite(out["fc6"]).all() and (out["fc6"] >= 0).all() and (out["fc6"] > 0).mean() > 0.1
    x = TF.resize(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), [224, 224], antialias=True) / 255.0
    x = TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD))
    expected = reference_fc6(reference_model(torchvision.models.vgg16, vgg16_state), x)
    np.testing.assert_allclose(out["fc6"], expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert np.array_equal(vgg16(frames)["fc6"], out["fc6"])  # deterministic


def test_vgg16_preprocess_of_constant_frame_is_normalised_constant(vgg16: VGG16Fc6) -> None:
    x = vgg16.preprocess(np.full((1, 50, 70, 3), 128, np.uint8))
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    for c in range(3):
        expected = (128 / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(x[0, c], torch.full((224, 224), expected), atol=1e-5)


def test_vgg16_preprocess_keeps_a_224_frame_unresized(vgg16: VGG16Fc6) -> None:
    frame = images((1, 224, 224, 3), seed=3)
    x = vgg16.preprocess(frame).numpy()
    expected = (frame.transpose(0, 3, 1, 2) / 255.0 - np.reshape(IMAGENET_MEAN, (1, 3, 1, 1))) \
        / np.reshape(IMAGENET_STD, (1, 3, 1, 1))
    np.testing.assert_allclose(x, expected, atol=1e-5)


@pytest.mark.parametrize("bad", [np.zeros((2, 32, 32, 3), np.float32), np.zeros((32, 32, 3), np.uint8),
                                 np.zeros((2, 32, 32, 4), np.uint8)])
def test_vgg16_rejects_non_uint8_rgb_rows(vgg16: VGG16Fc6, bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="vgg16_fc6: expected uint8"):
        vgg16(bad)


def test_vgg16_bf16_close_to_fp32(vgg16_state: dict[str, torch.Tensor], frames: np.ndarray,
                                  vgg16_out: dict[str, np.ndarray]) -> None:
    torch.manual_seed(0)
    fast = VGG16Fc6(precision="bf16")
    fast.load_state(fast.module, vgg16_state)  # the file path is tested above
    assert fast.module.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    a, b = vgg16_out["fc6"], fast(frames)["fc6"]
    assert b.dtype == np.float32 and b.shape == (2, 4096) and np.isfinite(b).all()
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert (cosine > 0.99).all()
    assert np.abs(a - b).max() > 1e-3 * np.abs(a).max()  # bf16 really ran (fp32 agrees to ~1e-6)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision 'fp16'"):
        VGG16Fc6(precision="fp16")
    with pytest.raises(TypeError):
        VGGFaceFc6(norm="imagenet")  # type: ignore[call-arg]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: cheap_state(torchvision.models.alexnet), r"30 missing keys|missing keys \['features.2.weight'"),
    (lambda: cheap_state(torchvision.models.vgg16, num_classes=2622),
     r"classifier.6.weight \(2622, 4096\) != \(1000, 4096\)"),
    (lambda: {**cheap_state(torchvision.models.vgg16), "classifier.0.weight": torch.full((), math.nan).expand(
        4096, 25088)}, r"NaN or infinite values in \['classifier.0.weight'\]"),
    (lambda: {"state_dict": cheap_state(torchvision.models.vgg16), "epoch": 3}, r"holds a dict with keys"),
])
def test_vgg16_wrong_file_fails_naming_it(vgg16: VGG16Fc6, tmp_path: Path, make: Callable[[], object],
                                          message: str) -> None:
    before = vgg16.weights
    path = tmp_path / "wrong.pth"
    torch.save(make(), path)
    with pytest.raises(WeightsFormatError, match=message) as info:
        vgg16.load_weights(str(path))
    assert str(path) in str(info.value) and "vgg16_fc6" in str(info.value)
    assert vgg16.weights == before


def test_vgg16_unreadable_file_fails_naming_it(vgg16: VGG16Fc6, tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(WeightsFormatError, match=f"cannot read {path}"):
        vgg16.load_weights(str(path))


# ---------------------------------------------------------------------------------------------- vggface_fc6


@pytest.fixture(scope="module")
def face_state() -> dict[str, torch.Tensor]:
    return seeded_state(torchvision.models.vgg16, seed=2, num_classes=2622)


@pytest.fixture(scope="module")
def face_files(module_tmp: Callable[[str], Path],
               face_state: dict[str, torch.Tensor]) -> dict[str, Path]:
    root = module_tmp("vggface")
    files = {"accepted": root / "vggface_accepted.pth", "dag": root / "vgg_face_dag.pth"}
    torch.save(face_state, files["accepted"])
    torch.save(dag_state(face_state), files["dag"], _use_new_zipfile_serialization=False)  # as published
    return files


@pytest.fixture(scope="module")
def vggface() -> VGGFaceFc6:
    torch.manual_seed(0)
    return VGGFaceFc6()


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return images((2, 224, 224, 3), seed=5)


@pytest.fixture(scope="module")
def face_expected(face_state: dict[str, torch.Tensor], crops: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() - torch.tensor(VGGFACE_MEAN).view(1, 3, 1, 1)
    return reference_fc6(reference_model(torchvision.models.vgg16, face_state, num_classes=2622), x)


def test_vggface_preprocess_subtracts_rgb_mean_without_std(vggface: VGGFaceFc6, crops: np.ndarray) -> None:
    x = vggface.preprocess(crops)
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    expected = crops.transpose(0, 3, 1, 2).astype(np.float64) - np.reshape(VGGFACE_MEAN, (1, 3, 1, 1))
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-4)
    small = vggface.preprocess(np.full((1, 112, 112, 3), 129, np.uint8))  # resized to 224, still constant
    assert small.shape == (1, 3, 224, 224)
    for c, mean in enumerate((129.1863, 104.7624, 93.5940)):
        assert torch.allclose(small[0, c], torch.full((224, 224), 129.0 - mean), atol=1e-4)


def test_vggface_accepted_layout_matches_torchvision(vggface: VGGFaceFc6, face_files: dict[str, Path],
                                                     crops: np.ndarray, face_expected: np.ndarray) -> None:
    assert vggface.load_weights(str(face_files["accepted"])) == sha256_of(face_files["accepted"])
    assert vggface.checkpoint_layout == "accepted"
    out = vggface(crops)["fc6"]
    assert out.shape == (2, 4096) and out.dtype == np.float32 and np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_allclose(out, face_expected, rtol=1e-4, atol=1e-4 * np.abs(face_expected).max())


def test_converter_cli_round_trip_dag_to_accepted(vggface: VGGFaceFc6, face_files: dict[str, Path],
                                                  face_state: dict[str, torch.Tensor], crops: np.ndarray,
                                                  face_expected: np.ndarray, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "converted" / "vggface.pth"
    assert vggface_convert.main([str(face_files["dag"]), str(out_path)]) == 0
    assert "dag layout" in capsys.readouterr().out
    converted = torch.load(out_path, weights_only=True)
    assert list(converted) == list(face_state)
    assert all(torch.equal(converted[k], v) for k, v in face_state.items())
    vggface.load_weights(str(out_path))
    assert vggface.checkpoint_layout == "accepted"
    np.testing.assert_allclose(vggface(crops)["fc6"], face_expected, rtol=1e-4,
                               atol=1e-4 * np.abs(face_expected).max())


def test_vggface_loads_the_dag_file_directly(vggface: VGGFaceFc6, face_files: dict[str, Path],
                                             face_state: dict[str, torch.Tensor]) -> None:
    assert vggface.load_weights(str(face_files["dag"])) == sha256_of(face_files["dag"])
    assert vggface.checkpoint_layout == "dag"
    loaded = vggface.module.state_dict()  # the accepted file's weights, so its outputs
    assert all(torch.equal(loaded[k], v) for k, v in face_state.items())


def test_converter_accepts_fully_connected_layers_stored_as_convolutions(face_state: dict[str, torch.Tensor]
                                                                         ) -> None:
    dag = dag_state(face_state)
    conv_fc = {**dag, "fc6.weight": dag["fc6.weight"].reshape(4096, 512, 7, 7),
               "fc7.weight": dag["fc7.weight"].reshape(4096, 4096, 1, 1),
               "fc8.weight": dag["fc8.weight"].reshape(2622, 4096, 1, 1)}
    converted, layout = convert_state(conv_fc)
    assert layout == "dag" and all(torch.equal(converted[k], v) for k, v in face_state.items())
    # the conv form and the converted Linear compute the same function of pool5
    pool5 = torch.randn(2, 512, 7, 7, generator=torch.Generator().manual_seed(0))
    as_conv = F.conv2d(pool5, conv_fc["fc6.weight"], dag["fc6.bias"]).flatten(1)
    as_linear = F.linear(pool5.flatten(1), converted["classifier.0.weight"], converted["classifier.0.bias"])
    torch.testing.assert_close(as_conv, as_linear, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prefix", ["", "features."])
def test_converter_flips_luatorch_ports_from_bgr(face_state: dict[str, torch.Tensor], prefix: str) -> None:
    dag = dag_state(face_state)
    fc_prefix = "fc." if prefix else ""
    lua = {}
    for key, value in dag.items():
        layer, leaf = key.split(".")
        if layer.startswith("conv"):
            lua[f"{prefix}conv_{layer[4:]}.{leaf}"] = value
        else:
            lua[f"{fc_prefix}{layer}.{leaf}"] = value
    auto, layout = convert_state(lua)
    assert layout == "luatorch"
    assert torch.equal(auto["features.0.weight"], dag["conv1_1.weight"].flip(1))
    assert all(torch.equal(auto[k], v) for k, v in face_state.items() if k != "features.0.weight")
    kept, _ = convert_state(lua, input_order="rgb")
    assert torch.equal(kept["features.0.weight"], dag["conv1_1.weight"])
    # a BGR image through the port's conv1 == the RGB image through the converted conv1
    rgb = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(F.conv2d(rgb.flip(1), dag["conv1_1.weight"], padding=1),
                               F.conv2d(rgb, auto["features.0.weight"], padding=1))


def test_converter_bgr_option_flips_a_dag_file(face_state: dict[str, torch.Tensor]) -> None:
    converted, _ = convert_state(dag_state(face_state), input_order="bgr")
    assert torch.equal(converted["features.0.weight"], face_state["features.0.weight"].flip(1))


@pytest.mark.parametrize(("state", "message"), [
    ({"foo.weight": torch.zeros(2)}, r"1 keys of no known VGG-Face layout, e.g. \['foo.weight'\]"),
    ({"conv1_1.weight": torch.zeros(2), "conv_1_2.weight": torch.zeros(2)}, r"mix several layouts"),
    ({"fc6.weight": torch.zeros(2), "classifier.0.weight": torch.zeros(2)}, r"two keys map to classifier.0"),
    ({"conv1_1.weight": torch.zeros(64, 3, 3, 3)}, r"31 missing keys"),
])
def test_converter_rejects_unknown_layouts(state: dict[str, torch.Tensor], message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        convert_state(state)


def test_vggface_wrong_file_fails_naming_it(vggface: VGGFaceFc6, tmp_path: Path) -> None:
    imagenet = tmp_path / "vgg16-397923af.pth"
    torch.save(cheap_state(torchvision.models.vgg16), imagenet)
    wrong = r"classifier.6.weight \(1000, 4096\) != \(2622, 4096\)"
    with pytest.raises(WeightsFormatError, match=wrong) as info:
        vggface.load_weights(str(imagenet))
    assert str(imagenet) in str(info.value) and "vggface_fc6" in str(info.value)
    other = tmp_path / "resnet.pth"
    torch.save(cheap_state(torchvision.models.resnet18), other)
    with pytest.raises(WeightsFormatError, match=f"{other} is not a VGG-Face .*no known VGG-Face layout"):
        vggface.load_weights(str(other))


def test_converter_cli_fails_cleanly_on_a_wrong_file(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "alexnet.pth", tmp_path / "out" / "vggface.pth"
    torch.save(cheap_state(torchvision.models.alexnet), src)
    assert vggface_convert.main([str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert str(src) in err and "no known VGG-Face layout" in err
    assert not dst.exists() and not any(dst.parent.glob("*.part"))
    missing = tmp_path / "absent.pth"
    assert vggface_convert.main([str(missing), str(dst)]) == 1
    assert str(missing) in capsys.readouterr().err


@pytest.mark.parametrize(("shape", "crop"), [((3, 256, 256, 3), 224), ((2, 224, 224, 3), None),
                                             ((2, 240, 320, 3), None), ((2, 240, 320, 3), 200)])
def test_float_conversion_and_in_place_normalising_equal_the_plain_expression(
        shape: tuple[int, ...], crop: int | None) -> None:
    """The fast route (crop the uint8 rows, convert once, normalise in place) gives exactly the values of
    converting to float, resizing, cropping and normalising out of place."""
    batch = images(shape, seed=4)
    size = (224, 224) if crop is None else (256, 256)
    x = vgg.resize(torch.from_numpy(batch).permute(0, 3, 1, 2).float(), size)
    if crop is not None:
        top, left = vgg.crop_offsets(*x.shape[-2:], crop)
        x = x[..., top:top + crop, left:left + crop]
    fast = vgg.to_float_nchw(batch, size, crop)
    assert fast.is_contiguous() and fast.dtype == torch.float32 and torch.equal(fast, x)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = (x / 255.0 - mean) / std
    assert torch.equal(vgg.normalise_(fast, IMAGENET_MEAN, IMAGENET_STD, scale=255.0), expected)
    face_mean = torch.tensor(VGGFACE_MEAN).view(1, 3, 1, 1)
    assert torch.equal(vgg.normalise_(x.clone(), VGGFACE_MEAN), x - face_mean)

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from pipeline.cache import CacheWriter
from pipeline.extractors import mfcc as M
from pipeline.extractors import mfcc_cnn as C
from pipeline.extractors.base import get_extractor
from pipeline.features.config import ExtractorSpec
from pipeline.features.worker import extract_video
from pipeline.file_memo import sha256_of

SR = 44100


def pcm(seconds: float, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A tone plus a little noise, so that no two MFCC frames are alike; int16."""
    t = np.arange(round(seconds * SR)) / SR
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return ((0.3 * np.sin(2 * np.pi * freq * t * (1 + t)) + 0.05 * noise) * 32767).astype(np.int16)


def librosa_mfcc(audio: np.ndarray) -> np.ndarray:
    """(F, 32) as the authors' code computes it (librosa 0.6.1 pads STFT frames by reflection)."""
    y = audio.astype(np.float32) / 32768.0
    return librosa.feature.mfcc(y=y, sr=SR, n_mfcc=32, pad_mode="reflect").T


# ---- mfcc ----------------------------------------------------------------------------------------------

def test_short_clip_is_tiled_from_its_first_frame() -> None:
    audio = pcm(2.0)
    out = get_extractor("mfcc")()(audio[None])
    reference = librosa_mfcc(audio)
    assert reference.shape == (173, 32)
    assert out["mfcc"].shape == (1, 16, 256, 32) and out["mfcc"].dtype == np.float32
    rows = out["mfcc"][0].reshape(4096, 32)
    np.testing.assert_allclose(rows, reference[np.arange(4096) % 173], rtol=1e-5, atol=1e-3)
    assert out["has_audio"].tolist() == [[1.0]]


def test_long_clip_is_cut_to_its_first_4096_frames() -> None:
    audio = pcm(50.0, seed=1)
    out = M.Mfcc()(audio[None])["mfcc"][0]
    reference = librosa_mfcc(audio)
    assert reference.shape[0] == 1 + audio.size // 512 > 4096
    np.testing.assert_allclose(out.reshape(4096, 32), reference[:4096], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(out[1], reference[256:512], rtol=1e-5, atol=1e-3)


def test_default_padding_is_reflect_as_the_authors_librosa() -> None:
    audio = pcm(0.5)
    ours = M.compute_mfcc(audio)
    zero_padded = librosa.feature.mfcc(y=audio / 32768.0, sr=SR, n_mfcc=32, pad_mode="constant").T
    assert not np.allclose(ours[0], zero_padded[0], atol=1e-2)
    np.testing.assert_allclose(M.compute_mfcc(audio, pad_mode="constant"), zero_padded, rtol=1e-4, atol=1e-2)
    with pytest.raises(ValueError, match="pad_mode"):
        M.Mfcc(pad_mode="edge")


@pytest.mark.parametrize("n_frames", [1, 173, 4095, 4096, 5000])
def test_frame_index_tiles_or_cuts(n_frames: int) -> None:
    index = M.vaanet_frame_index(n_frames)
    assert index.shape == (4096,)
    np.testing.assert_array_equal(index, np.arange(4096) % n_frames)


def test_no_audio_gives_zeros_and_a_flag_but_silence_does_not() -> None:
    extractor = M.Mfcc()
    none = extractor(np.zeros((1, 0), np.int16))
    assert none["mfcc"].shape == (1, 16, 256, 32) and not none["mfcc"].any()
    assert none["has_audio"].tolist() == [[0.0]]
    silence = extractor(np.zeros((1, SR), np.int16))
    assert silence["has_audio"].tolist() == [[1.0]]
    np.testing.assert_allclose(silence["mfcc"][0, :, :, 0], -100 * np.sqrt(128), rtol=1e-4)


def test_mfcc_has_no_weights() -> None:
    extractor = M.Mfcc()
    assert extractor.weights == "none"
    assert extractor.load_weights("random") == "none"
    assert extractor.load_weights("/no/such/file.pth") == "none"
    assert list(extractor.module.parameters()) == []


def test_segment_times_follow_the_tiling() -> None:
    cut = M.vaanet_segment_times_ms(60 * SR)
    step = 256 * 512 * 1000 / SR
    np.testing.assert_array_equal(cut, np.round(np.outer(np.arange(16), [1, 1]) * step + [0, step]))
    np.testing.assert_array_equal(M.vaanet_segment_times_ms(2 * SR), np.tile([0, 2000], (16, 1)))
    tiled = M.vaanet_segment_times_ms(10 * SR)            # 862 frames: segment 3 wraps around the end
    np.testing.assert_array_equal(tiled[0], [0, round(step)])
    np.testing.assert_array_equal(tiled[3], [0, 10000])
    np.testing.assert_array_equal(M.vaanet_segment_times_ms(0, duration_ms=1600), M.equal_spans_ms(1600, 16))
    inputs = SimpleNamespace(rows=np.zeros((1, 60 * SR), np.int16), attrs={"duration_ms": 60000})
    np.testing.assert_array_equal(M.Mfcc().times_ms(inputs), cut)


def test_equal_spans() -> None:
    expected = [[0, 2500], [2500, 5000], [5000, 7500], [7500, 10000]]
    np.testing.assert_array_equal(M.equal_spans_ms(10000, 4), expected)


def test_ten_images_cut_each_span_with_time_down_the_image() -> None:
    mfcc = np.repeat(np.arange(1000, dtype=np.float32)[:, None], 32, axis=1)   # value = frame index
    spans = np.array([[0, 2000], [5000, 11000]])                                 # frames [0, 173), [430, 948)
    images = M.ten_mfcc_images(mfcc, spans)
    assert images.shape == (2, 224, 224) and images.dtype == np.float32
    assert np.all(np.diff(images[:, :, 0], axis=1) >= 0)
    assert images[0].min() >= 0 and images[0].max() <= 173
    assert images[1].min() >= 430 and images[1].max() <= 948
    np.testing.assert_allclose(images[1].mean(), (430 + 947) / 2, atol=2)
    assert not M.ten_mfcc_images(np.zeros((0, 32), np.float32), spans).any()


# ---- mfcc_resnet18 (VAANet) ------------------------------------------------------------------------------

def torchvision_checkpoint(tmp_path: Path, arch: str, seed: int, *, old_format: bool = False) -> Path:
    """A checkpoint in torchvision's official format: the plain state dict of the ImageNet model.

    BatchNorm shifts and statistics are drawn at random too (a fresh model has zeros and ones there), so
    that, as with trained weights, an all-zero input does not give an all-zero output by itself.
    """
    torch.manual_seed(seed)
    state = getattr(torchvision.models, arch)(weights=None).state_dict()
    for key, value in state.items():
        if key.endswith(("bn1.bias", "bn2.bias", "bn3.bias", "running_mean")):
            value.normal_(0, 0.1)
        elif key.endswith("running_var"):
            value.uniform_(0.5, 2.0)
    if old_format:   # checkpoints saved before BatchNorm's num_batches_tracked existed
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    return path


@torch.no_grad()
def reference_resnet18(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """VAANet's audio path written out by hand on a stock torchvision resnet18: (N, 1, 256, 32) -> (N, 512)"""
    net = torchvision.models.resnet18(weights=None)
    net.load_state_dict(state)
    net.eval()
    conv1 = state["conv1.weight"][:, :, :, 3:4].sum(dim=1, keepdim=True)
    x = net.maxpool(net.relu(net.bn1(F.conv2d(x, conv1, stride=(2, 1), padding=(3, 0)))))
    x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
    assert x.shape[-2:] == (8, 2)
    return x.mean(dim=(2, 3))


def segments(n: int = 3, seed: int = 0) -> np.ndarray:
    return M.vaanet_mfcc(pcm(3.0, seed=seed))[:n].astype(np.float16)


def test_vaanet_audio_resnet18_shape_as_in_the_authors_code() -> None:
    net = C.build_vaanet_audio_resnet18()
    assert (net.conv1.in_channels, net.conv1.kernel_size, net.conv1.stride, net.conv1.padding) == (
        1, (7, 1), (2, 1), (3, 0))
    assert net.conv1.bias is None and net.avgpool.kernel_size == (8, 2)
    assert net.eval()(torch.zeros(2, 1, 256, 32)).shape == (2, 512)


def test_resnet18_loads_a_torchvision_checkpoint_strictly_with_the_conv1_adaptation(tmp_path: Path) -> None:
    path = torchvision_checkpoint(tmp_path, "resnet18", seed=3)
    state = torch.load(path, weights_only=True)
    extractor = get_extractor("mfcc_resnet18")()
    assert extractor.load_weights(str(path)) == sha256_of(path)
    loaded = extractor.module.state_dict()
    assert loaded["conv1.weight"].shape == (64, 1, 7, 1)
    torch.testing.assert_close(loaded["conv1.weight"][:, 0, :, 0], state["conv1.weight"][:, :, :, 3].sum(1))
    torch.testing.assert_close(loaded["layer4.1.bn2.running_var"], state["layer4.1.bn2.running_var"])
    x = segments()
    expected = reference_resnet18(state, torch.from_numpy(x.astype(np.float32))[:, None])
    np.testing.assert_allclose(extractor(x)["features"], expected.numpy(), rtol=1e-4, atol=1e-3)


def test_resnet18_random_conv1_keeps_the_initialisation(tmp_path: Path) -> None:
    path = torchvision_checkpoint(tmp_path, "resnet18", seed=3, old_format=True)
    torch.manual_seed(0)
    extractor = C.MfccResnet18(conv1="random")
    before = extractor.module.conv1.weight.clone()
    extractor.load_weights(str(path))
    torch.testing.assert_close(extractor.module.conv1.weight, before)
    with pytest.raises(ValueError, match="conv1"):
        C.MfccResnet18(conv1="mean")


def test_resnet18_rejects_a_wrong_checkpoint_format(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {f"module.{k}": v for k, v in torchvision.models.resnet18(weights=None).state_dict().items()}
    torch.save(state, tmp_path / "wrapped.pth")
    with pytest.raises(RuntimeError, match="Missing key"):
        C.MfccResnet18().load_weights(str(tmp_path / "wrapped.pth"))


class _VAANetAudio(nn.Module):
    """The audio part of a VAANet model, named as in the authors' code, to write their checkpoint format."""

    def __init__(self) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18(weights=None)
        conv1 = nn.Conv2d(1, 64, kernel_size=(7, 1), stride=(2, 1), padding=(3, 0), bias=False)
        self.a_resnet = nn.Sequential(conv1, *list(resnet.children())[1:-2], nn.AvgPool2d(kernel_size=[8, 2]))
        self.a_fc = nn.Linear(512, 256)


def test_resnet18_reads_a_vaanet_training_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(5)
    vaanet = _VAANetAudio().eval()
    torch.save({"epoch": 3, "state_dict": vaanet.state_dict()}, tmp_path / "save_2.pth")
    extractor = C.MfccResnet18()
    extractor.load_weights(str(tmp_path / "save_2.pth"))
    x = segments()
    with torch.no_grad():
        expected = vaanet.a_resnet(torch.from_numpy(x.astype(np.float32))[:, None]).flatten(1)
    np.testing.assert_allclose(extractor(x)["features"], expected.numpy(), rtol=1e-4, atol=1e-3)


def test_resnet18_no_audio_in_zero_out_and_deterministic(tmp_path: Path) -> None:
    path = torchvision_checkpoint(tmp_path, "resnet18", seed=1)
    a, b = C.MfccResnet18(), C.MfccResnet18()
    a.load_weights(str(path))
    b.load_weights(str(path))
    x = np.concatenate([segments(2), np.zeros((1, 256, 32), np.float16)])
    fa, fb = a(x)["features"], b(x)["features"]
    assert fa.shape == (3, 512)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(fa, a(x)["features"])
    assert np.abs(fa[:2]).sum(axis=1).min() > 0 and not fa[2].any()


def test_resnet18_bf16_is_close_to_fp32() -> None:
    torch.manual_seed(2)
    fp32 = C.MfccResnet18()
    torch.manual_seed(2)
    bf16 = C.MfccResnet18(precision="bf16")
    assert bf16.module.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = segments(4)
    a, b = fp32(x)["features"], bf16(x)["features"]
    assert b.dtype == np.float32 and b.shape == (4, 512)
    assert np.abs(a - b).max() / np.abs(a).max() < 0.05
    with pytest.raises(ValueError, match="precision"):
        C.MfccResnet18(precision="fp16")
    with pytest.raises(TypeError):
        C.MfccResnet18(precison="bf16")


# ---- mfcc_resnet50 (TEN) -----------------------------------------------------------------------------------

def test_resnet50_loads_torchvision_strictly_and_pools_each_segment(tmp_path: Path) -> None:
    path = torchvision_checkpoint(tmp_path, "resnet50", seed=4)
    extractor = get_extractor("mfcc_resnet50")(segments=2)
    assert extractor.load_weights(str(path)) == sha256_of(path)
    audio = pcm(3.0)
    out = extractor(np.stack([audio, np.zeros_like(audio)]))["features"]
    assert out.shape == (2, 2, 2048)
    assert np.abs(out[1]).sum(axis=1).min() > 0      # an all-zero waveform is digital silence, not "no audio"
    images = M.ten_mfcc_images(M.compute_mfcc(audio), M.equal_spans_ms(3000, 2))
    images = (images - images.min(axis=(1, 2), keepdims=True)) / np.ptp(images, axis=(1, 2), keepdims=True)
    x = torch.from_numpy(images)[:, None].expand(-1, 3, -1, -1)
    x = torchvision.transforms.functional.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    reference = torchvision.models.resnet50(weights=None)
    reference.load_state_dict(torch.load(path, weights_only=True))
    reference.fc = nn.Identity()
    with torch.no_grad():
        expected = reference.eval()(x).numpy()
    np.testing.assert_allclose(out[0], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(extractor.times_ms(SimpleNamespace(rows=audio[None], attrs={})),
                                  [[0, 1500], [1500, 3000]])


def test_resnet50_without_audio_gives_zeros() -> None:
    extractor = C.MfccResnet50(segments=2)
    out = extractor(np.zeros((1, 0), np.int16))["features"]
    assert out.shape == (1, 2, 2048) and not out.any()
    times = extractor.times_ms(SimpleNamespace(rows=np.zeros((1, 0), np.int16), attrs={"duration_ms": 4000}))
    np.testing.assert_array_equal(times, [[0, 2000], [2000, 4000]])


# ---- through the feature stage's loaders --------------------------------------------------------------

def test_decode_cache_to_mfcc_to_resnet18_features(tmp_path: Path) -> None:
    decode, mfcc = str(tmp_path / "decode.h5"), str(tmp_path / "mfcc.h5")
    audio = pcm(3.0)
    with CacheWriter(decode, stage="decode", config={}, config_hash="d") as writer:
        base = {"fps": 25.0, "n_frames": 75, "duration_ms": 3000}
        writer.write("a/with", {"audio_44100": audio}, {**base, "has_audio": True})
        writer.write("a/without", {}, {**base, "has_audio": False})
    with CacheWriter(mfcc, stage="feat@mfcc", config={}, config_hash="m") as writer:
        for video in ("a/with", "a/without"):
            arrays, attrs = extract_video(video, "", spec=ExtractorSpec("mfcc"), sources={"decode": decode})
            writer.write(video, arrays, attrs)
    assert arrays["mfcc"].shape == (16, 256, 32) and arrays["has_audio"].tolist() == [0.0]
    np.testing.assert_array_equal(arrays["mfcc_times_ms"], M.equal_spans_ms(3000, 16))
    arrays, _ = extract_video("a/with", "", spec=ExtractorSpec("mfcc"), sources={"decode": decode})
    np.testing.assert_array_equal(arrays["mfcc"], M.vaanet_mfcc(audio))
    np.testing.assert_array_equal(arrays["mfcc_times_ms"], M.vaanet_segment_times_ms(audio.size))
    np.testing.assert_array_equal(arrays["mfcc_times_ms"][:2], [[0, 2972], [0, 3000]])   # 259 frames
    spec = ExtractorSpec("mfcc_resnet18", options={"precision": "fp32"})
    features, _ = extract_video("a/with", "", spec=spec, sources={"mfcc": mfcc})
    assert features["features"].shape == (16, 512) and features["features"].dtype == np.float16
    np.testing.assert_array_equal(features["features_times_ms"], arrays["mfcc_times_ms"])
    silent, _ = extract_video("a/without", "", spec=spec, sources={"mfcc": mfcc})
    assert not silent["features"].any()

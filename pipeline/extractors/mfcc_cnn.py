"""Audio CNNs on MFCC: VAANet's ResNet-18 (1-channel, 7x1 conv1) and TEN's ResNet-50 on 224 x 224 images.

    mfcc_resnet18 (VAANet)   cached MFCC segment (256, 32) ─> (1, 256, 32) ─> ResNet-18* ─> (512,)
    mfcc_resnet50 (TEN)      int16 PCM ─> whole-clip MFCC ─> T images (224, 224) ─> ResNet-50 ─> (T, 2048)

*VAANet's changes to torchvision's resnet18 (authors' code, maysonma/VAANet `models/vaanet.py`): conv1 is a
new `Conv2d(1, 64, kernel_size=(7, 1), stride=(2, 1), padding=(3, 0), bias=False)`, avgpool is
`AvgPool2d((8, 2))` (the 512 x 8 x 2 map of a 256 x 32 input), fc is dropped; the rest is ImageNet-initialised
and the whole audio network, conv1 included, is trained with the head (not frozen). The raw MFCC values go in,
with no normalisation. Cached features here are the frozen variant; `build_vaanet_audio_resnet18()` gives the
same module (torchvision key names) for a head that trains it on the cached MFCC.

conv1 from an ImageNet checkpoint (64x3x7x7): option `conv1`
- "center_column" (default): the 7x1 kernel is the centre column (index 3) of each 7x7 kernel, summed over
  RGB (as timm adapts a 3-channel conv to 1 channel). VAANet itself starts conv1 from random and trains it.
- "random": conv1 keeps the seeded random initialisation (PyTorch's Conv2d default, as VAANet's start).
A checkpoint whose conv1 is already (64, 1, 7, 1) (a trained VAANet audio net) is loaded as it is; a VAANet
training checkpoint ({"state_dict": {"a_resnet.0.weight", ...}}) is read too (its `a_resnet.*` part).

No audio: an all-zero input (see `pipeline.extractors.mfcc`) gives an all-zero feature, so a head can mask it.
Option `precision`: "fp32" (default), "bf16" (torch.autocast to bfloat16 + channels_last) or, on CUDA, "fp16"
(the same in float16); features are returned as float32 either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.extractors.base import Extractor, autocast, check_precision, register_extractor
from pipeline.extractors.mfcc import SR, compute_mfcc, equal_spans_ms, ten_mfcc_images

CONV1_MODES = ("center_column", "random")
SCALINGS = ("minmax", "raw")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_VAANET_AUDIO_INDEX = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def build_vaanet_audio_resnet18() -> nn.Module:
    """VAANet's audio ResNet-18: (N, 1, 256, 32) raw MFCC segments -> (N, 512), random weights."""
    import torchvision  # here, not at the top: the heads import this module, and most never build it (2 s)

    net = torchvision.models.resnet18(weights=None)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=(7, 1), stride=(2, 1), padding=(3, 0), bias=False)
    net.avgpool = nn.AvgPool2d(kernel_size=(8, 2))
    net.fc = nn.Identity()
    return net


def build_ten_audio_resnet50() -> nn.Module:
    """TEN's audio ResNet-50: (N, 3, 224, 224) -> (N, 2048) pooled, random weights."""
    import torchvision

    net = torchvision.models.resnet50(weights=None)
    net.fc = nn.Identity()
    return net


def adapt_conv1(weight: torch.Tensor) -> torch.Tensor:
    """ImageNet conv1 (64, 3, 7, 7) -> (64, 1, 7, 1): the centre column of each kernel, summed over RGB."""
    centre = weight.shape[-1] // 2
    return weight[:, :, :, centre:centre + 1].sum(dim=1, keepdim=True)


def without_classifier(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict less torchvision's ImageNet classifier (fc.weight, fc.bias); every other key is kept."""
    return {k: v for k, v in state.items() if k not in ("fc.weight", "fc.bias")}


def vaanet_audio_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """VAANet's `a_resnet.<i>.*` keys (an nn.Sequential) -> torchvision's names (conv1, bn1, layer1..4)."""
    out = {}
    for key, value in state.items():
        if key.startswith("a_resnet."):
            index, rest = key[len("a_resnet."):].split(".", 1)
            out[f"{_VAANET_AUDIO_INDEX[index]}.{rest}"] = value
    return out


def check_option(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"option {name}={value!r} is not one of {allowed}")


def zero_mask(x: torch.Tensor) -> torch.Tensor:
    """(N, 1) 1.0 for rows with any non-zero value, 0.0 for all-zero rows (no audio)."""
    return (x.flatten(1).abs().amax(dim=1, keepdim=True) > 0).float()


class _AudioCnn(Extractor):
    """Shared by the audio CNNs: the precision option (bf16 / fp16 = channels_last + autocast)."""

    def __init__(self, precision: str = "fp32", *, device: str | torch.device = "cpu",
                 **options: Any) -> None:
        check_precision(self.name, precision, torch.device(device))
        self.precision = precision
        super().__init__(device=device, precision=precision, **options)

    def prepared(self, net: nn.Module) -> nn.Module:
        return net.to(memory_format=torch.channels_last) if self.precision != "fp32" else net

    def run(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, D) float32, in the chosen precision."""
        if self.precision != "fp32":
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(x.device, self.precision):
            return module(x).float()


@register_extractor
class MfccResnet18(_AudioCnn):
    """VAANet audio features: rows (N, 256, 32) cached MFCC segments -> `features` (512,) per segment.

    Options: `conv1` ("center_column" | "random", see the module docstring), `precision` ("fp32" | "bf16").
    """

    name = "mfcc_resnet18"
    input_kind = "mfcc"
    outputs = {"features": (512,)}

    def __init__(self, conv1: str = "center_column", precision: str = "fp32", *,
                 device: str | torch.device = "cpu") -> None:
        check_option("conv1", conv1, CONV1_MODES)
        self.conv1 = conv1
        super().__init__(precision=precision, device=device, conv1=conv1)

    def build(self) -> nn.Module:
        return self.prepared(build_vaanet_audio_resnet18())

    def needs_random_init(self) -> bool:
        return self.conv1 == "random"   # load_state keeps the random conv1

    def read_checkpoint(self, path: Path) -> dict[str, torch.Tensor]:
        state = super().read_checkpoint(path)
        if "state_dict" in state and isinstance(state["state_dict"], Mapping):
            state = state["state_dict"]
        return vaanet_audio_state(state) if any(k.startswith("a_resnet.") for k in state) else state

    def load_state(self, module: nn.Module, state: dict[str, torch.Tensor]) -> None:
        state = without_classifier(state)
        weight = state.get("conv1.weight")
        if weight is not None and weight.shape == (64, 3, 7, 7):
            keep = self.conv1 == "random"
            state["conv1.weight"] = module.conv1.weight.detach().clone() if keep else adapt_conv1(weight)
        module.load_state_dict(state, strict=True)

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """(N, 256, 32) float16/32 MFCC -> (N, 1, 256, 32) float32 (raw values, as VAANet)."""
        return torch.from_numpy(np.asarray(batch, dtype=np.float32))[:, None]

    def forward(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": self.run(module, x) * zero_mask(x)}


@register_extractor
class MfccResnet50(_AudioCnn):
    """TEN audio features: rows (1, n) int16 PCM at 44100 Hz -> `features` (T, 2048), one per segment.

    The clip's MFCC is cut into T equal segments of the audio (`segments`, default 10 = decode.segments, so
    they are the visual stream's segments), each resized to 224 x 224 (`ten_mfcc_images`), scaled
    (`scaling`: "minmax" per image to [0, 1] then ImageNet mean/std, the default; or "raw" MFCC values),
    replicated to 3 channels, through torchvision's ImageNet resnet50 (fc dropped), average-pooled.
    Options also: `precision`. A video without audio (n = 0) gives zeros.
    """

    name = "mfcc_resnet50"
    input_kind = "audio"
    outputs = {"features": (10, 2048)}    # (segments, 2048) with the default 10; instances say their own

    def __init__(self, segments: int = 10, scaling: str = "minmax", precision: str = "fp32", *,
                 device: str | torch.device = "cpu") -> None:
        check_option("scaling", scaling, SCALINGS)
        if int(segments) < 1:
            raise ValueError(f"option segments={segments!r} must be >= 1")
        self.segments, self.scaling = int(segments), scaling
        self.outputs = {"features": (self.segments, 2048)}
        super().__init__(precision=precision, device=device, segments=self.segments, scaling=scaling)

    def build(self) -> nn.Module:
        return self.prepared(build_ten_audio_resnet50())

    def load_state(self, module: nn.Module, state: dict[str, torch.Tensor]) -> None:
        module.load_state_dict(without_classifier(state), strict=True)

    def images(self, audio: np.ndarray) -> np.ndarray:
        """(n,) int16 -> (T, 224, 224) float32, scaled per `scaling` (zeros without audio)."""
        if audio.size == 0:
            return ten_mfcc_images(np.zeros((0, 32), np.float32), equal_spans_ms(0, self.segments))
        spans = equal_spans_ms(audio.size * 1000.0 / SR, self.segments)
        images = ten_mfcc_images(compute_mfcc(audio), spans)
        if self.scaling == "raw":
            return images
        low = images.min(axis=(1, 2), keepdims=True)
        return (images - low) / np.maximum(images.max(axis=(1, 2), keepdims=True) - low, 1e-6)

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """(B, n) int16 -> (B * T, 1, 224, 224) float32."""
        return torch.from_numpy(np.concatenate([self.images(row) for row in batch]))[:, None]

    def forward(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mask = zero_mask(x)
        x = x.expand(-1, 3, -1, -1)
        if self.scaling == "minmax":
            mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
            x = (x - mean) / torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
        features = self.run(module, x) * mask
        return {"features": features.reshape(-1, self.segments, features.shape[-1])}

    def times_ms(self, inputs: Any) -> np.ndarray:
        """(T, 2) spans of the T segments: of the audio, or of the video's duration_ms without audio."""
        n = inputs.rows.shape[-1]
        duration = n * 1000.0 / SR if n else inputs.attrs.get("duration_ms", 0)
        return equal_spans_ms(duration, self.segments)

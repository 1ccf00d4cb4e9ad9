"""`alexnet_fc7` (1-second keyframes) and `alexnet_fc7_spec` (1-second spectrogram images): AlexNet fc7, 4096.

    uint8 (N, 256, 256, 3) ──centre 224x224 crop, (x/255 - mean) / std──> float (N, 3, 224, 224)
    ──conv1..pool5──> (N, 256, 6, 6) ──flatten──> (N, 9216) ──fc6, ReLU──> (N, 4096) ──fc7, ReLU──> (N, 4096)

The LSTM audio-visual fusion paper (MediaEval 2015) resizes each keyframe and each spectrogram image to
256x256 "as suggested in (Krizhevsky et al., 2012)" and takes AlexNet's fc7 (4096) of both. One class does
both; the two registered names differ only in `name` and `input_kind`, so the same weights file serves both.

**Centre crop by default** (option fit="center_crop"): a 256x256 image for an AlexNet of 224x224 input is
Krizhevsky's recipe, which evaluates on the central crop (Caffe's AlexNet fine-tuning, which the paper
describes, crops the 256x256 images to the network's input the same way at test time), and it is exactly
torchvision's evaluation transform for these weights (Resize(256), CenterCrop(224)). Rows of another size are
first resized to 256x256 (the paper's step). fit="resize" squeezes the whole 256x256 image to 224x224 instead
(keeps the spectrogram's full time and frequency range, at the cost of a scale the weights did not see).

**fc7 is taken after its ReLU**, as the `fc7` blob of a Caffe AlexNet holds it (`relu7` is in place); dropout
is the identity in evaluation. Values are ImageNet-normalised RGB: mean (0.485, 0.456, 0.406),
std (0.229, 0.224, 0.225) on 0..1. Spectrogram images are rendered upstream as 3-channel uint8 and are
normalised the same way.

Weights: the torchvision `alexnet` ImageNet state dict, alexnet-owt-7be5be79.pth
(https://download.pytorch.org/models/alexnet-owt-7be5be79.pth, AlexNet_Weights.IMAGENET1K_V1; torchvision
code BSD-3-Clause, weights with ImageNet's terms): keys `features.{0,3,6,8,10}` and `classifier.{1,4,6}`,
`.weight` and `.bias` each (classifier.6: 1000 classes), loaded strictly (WeightsFormatError names the file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import nn

from pipeline.extractors.base import register_extractor
from pipeline.extractors.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FrozenImageCNN,
    check_images,
    normalise_,
    to_float_nchw,
)

if TYPE_CHECKING:
    import torchvision

FITS = ("center_crop", "resize")
PAPER_SIZE = 256  # what the paper resizes keyframes and spectrograms to
INPUT_SIZE = 224  # torchvision AlexNet


def alexnet_fc7(module: torchvision.models.AlexNet, x: torch.Tensor) -> torch.Tensor:
    """(N, 3, 224, 224) -> ReLU(fc7) (N, 4096); fc8 is not run."""
    pooled = module.avgpool(module.features(x))  # (N, 256, 6, 6)
    fc6 = torch.relu(module.classifier[1](torch.flatten(pooled, 1)))
    return torch.relu(module.classifier[4](fc6))


class AlexNetFc7(FrozenImageCNN):
    """ImageNet AlexNet fc7 (after ReLU): uint8 (N, 256, 256, 3) -> fc7 (N, 4096).

    Options: fit "center_crop" (default) or "resize"; precision "fp32" (default), "bf16" or (CUDA) "fp16".
    """

    outputs: ClassVar[dict[str, tuple[int, ...]]] = {"fc7": (4096,)}
    arch: ClassVar[str] = "torchvision alexnet (1000 classes)"

    def __init__(self, fit: str = "center_crop", precision: str = "fp32", *,
                 device: str | torch.device = "cpu") -> None:
        if fit not in FITS:
            raise ValueError(f"{self.name}: fit {fit!r} is not one of {FITS}")
        self.fit = fit
        super().__init__(precision=precision, device=device, fit=fit)

    def make_module(self) -> nn.Module:
        """Random weights initialised as torchvision initialises VGG (He-normal convolutions, N(0, 0.01)
        linears): under PyTorch's default initialisation AlexNet's activations shrink layer by layer, and
        random-weight fc7 ends near 0.004 with almost no spread between inputs, too small for a head to
        learn from in a demo. A checkpoint, when given, replaces all of it."""
        import torchvision  # here, where the network is built (see vgg.py)

        module = torchvision.models.alexnet(weights=None)
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
            elif isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, 0.0, 0.01)
                nn.init.zeros_(layer.bias)
        return module

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) RGB -> float32 (N, 3, 224, 224), ImageNet-normalised (module docstring)."""
        check_images(self.name, batch, self.input_kind)
        if self.fit == "center_crop":
            x = to_float_nchw(batch, (PAPER_SIZE, PAPER_SIZE), crop=INPUT_SIZE)
        else:
            x = to_float_nchw(batch, (INPUT_SIZE, INPUT_SIZE))
        return normalise_(x, IMAGENET_MEAN, IMAGENET_STD, scale=255.0)

    def head(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"fc7": alexnet_fc7(module, x)}


@register_extractor
class AlexNetFc7Keyframes(AlexNetFc7):
    """fc7 of the 1-second keyframes (the visual stream of the LSTM fusion)."""

    name: ClassVar[str] = "alexnet_fc7"
    input_kind: ClassVar[str] = "keyframes"


@register_extractor
class AlexNetFc7Spectrograms(AlexNetFc7):
    """fc7 of the 1-second spectrogram images (the audio stream of the LSTM fusion)."""

    name: ClassVar[str] = "alexnet_fc7_spec"
    input_kind: ClassVar[str] = "spectrograms"

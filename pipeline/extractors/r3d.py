"""`r3d101_conv5`: the conv5 (layer4) map of Hara et al.'s 3D ResNet-101, per 16-frame snippet.

    uint8 (N, k, 112, 112, 3) ──preprocess──> float (N, 3, k, 112, 112) ──conv1..layer4──> (N, 2048, 1, 4, 4)
                                                                         └─mean over t,h,w─> (N, 2048)

Architecture (facts checked in kenshohara/3D-ResNets-PyTorch, `models/resnet.py` on the CVPR2018 branch and on
master, the 2020 release; this file is an independent implementation):

- conv1: 3->64, kernel (7, 7, 7), stride (1, 2, 2), padding (3, 3, 3), no bias; BN; ReLU. (2020 code:
  kernel (conv1_t_size, 7, 7), stride (conv1_t_stride, 2, 2), padding (conv1_t_size // 2, 3, 3), defaults 7
  and 1, which the released r3d101 models use: both generations have the same conv1.)
- max pool 3x3x3, stride 2, padding 1 (2020 `no_max_pool` defaults to False; the released models keep it).
- layer1..layer4: Bottleneck blocks (1x1x1 -> 3x3x3 (the stride) -> 1x1x1, expansion 4), [3, 4, 23, 3]
  blocks, widths 64/128/256/512, strides 1/2/2/2; shortcut type B: `downsample` = Sequential(1x1x1 conv with
  the block stride, BN) on the first block of each layer (its width or stride changes), identity elsewhere.
- avgpool + fc (400 / 700 / 1039 classes) follow layer4; this extractor drops them and averages layer4 itself.

Official checkpoints (both load strictly; the fc is checked, then ignored, whatever its size):

- CVPR2018 `resnet-101-kinetics.pth` (Kinetics-400): {'epoch', 'arch': 'resnet-101', 'state_dict',
  'optimizer'}; 'state_dict' keys `module.`-prefixed (train.py saved the DataParallel model); the models date
  from Nov 2017 (PyTorch < 0.4.1), so BN `num_batches_tracked` buffers are expected to be absent (accepted
  either way); fc 400 classes.
- 2020 `r3d101_K_200ep.pth` (Kinetics-700) / `r3d101_KM_200ep.pth` (Kinetics-700 + Moments in Time):
  {'epoch', 'arch': 'resnet-101', 'state_dict', 'optimizer', 'scheduler'} (main.py save_checkpoint);
  'state_dict' keys plain (`model.module.state_dict()`), with `num_batches_tracked`; fc 700 / 1039 classes.

Layer names are the same in both (conv1, bn1, layer{1-4}.{i}.conv{1,2,3} / bn{1,2,3} / downsample.{0,1}, fc),
so one architecture serves both; the generation is told by the `module.` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from pipeline.extractors.base import Extractor, autocast, check_precision, register_extractor

LAYERS = (3, 4, 23, 3)
RANDOM_INITS = ("authors", "zero_residual")  # random weights: the authors' He init, or zero-init residuals
WIDTHS = (64, 128, 256, 512)
EXPANSION = 4
ARCH = "resnet-101"


class CheckpointFormatError(ValueError):
    """A weights file is not an official 3D ResNet-101 checkpoint layout; the message names the file."""


@dataclass(frozen=True)
class Normalization:
    """Per-channel (RGB) input normalisation: x = (raw / scale - mean) / std, raw in 0..255."""

    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str


NORMALIZATIONS: dict[str, Normalization] = {
    # VAANet (maysonma/VAANet): transforms/spatial.py ToTensor(norm_value=1) keeps 0..255, then
    # models/visual_stream.py (and vaanet.py) does input.div_(NORM_VALUE).sub_(MEAN), NORM_VALUE = 255.0,
    # MEAN = 100.0 / NORM_VALUE, no std: x / 255 - 100 / 255 on every channel.
    "vaanet": Normalization(255.0, (100.0 / 255.0,) * 3, (1.0, 1.0, 1.0), "VAANet: x/255 - 100/255"),
    # 3D-ResNets-PyTorch CVPR2018 branch: opts.py defaults norm_value=1 (inputs 0..255),
    # mean_dataset='activitynet' -> mean.py get_mean = [114.7748, 107.7354, 99.4750] (the ActivityNet means,
    # the default the Kinetics models were trained with; mean.py's own Kinetics means
    # [110.63666788, 103.16065604, 96.29023126] need --mean_dataset kinetics), std_norm=False -> std 1.
    "kinetics2018": Normalization(1.0, (114.7748, 107.7354, 99.4750), (1.0, 1.0, 1.0),
                                  "Hara et al. CVPR2018 code defaults: x - mean on 0..255"),
    # 3D-ResNets-PyTorch 2020 (master): ToTensor (0..1), ScaleValue(value_scale=1), Normalize(mean, std) with
    # mean.py get_mean_std(1, 'kinetics') = mean [0.4345, 0.4051, 0.3775], std [0.2768, 0.2713, 0.2737].
    "kinetics2020": Normalization(255.0, (0.4345, 0.4051, 0.3775), (0.2768, 0.2713, 0.2737),
                                  "Hara et al. 2020 code defaults: (x/255 - mean) / std"),
}


@dataclass(frozen=True)
class CheckpointInfo:
    """What `load_weights` found in an official file."""

    generation: str  # "cvpr2018" (module.-prefixed) or "2020"
    arch: str
    n_classes: int  # the (ignored) fc: 400 Kinetics-400, 700 Kinetics-700, 1039 Kinetics-700 + Moments


class Bottleneck3d(nn.Module):
    """1x1x1 -> 3x3x3 (stride) -> 1x1x1 (x4 channels) with a shortcut-B projection when the shape changes.

    (N, in_ch, t, h, w) -> (N, 4 * width, t / stride, h / stride, w / stride)
    """

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * EXPANSION
        self.conv1 = nn.Conv3d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False),
                                            nn.BatchNorm3d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + shortcut)


class R3DBackbone(nn.Module):
    """conv1 .. layer4 of the 3D ResNet (no avgpool / fc): (N, 3, 16, 112, 112) -> (N, 2048, 1, 4, 4)."""

    def __init__(self, layers: tuple[int, ...] = LAYERS, conv1_t_size: int = 7, conv1_t_stride: int = 1,
                 no_max_pool: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, WIDTHS[0], (conv1_t_size, 7, 7), stride=(conv1_t_stride, 2, 2),
                               padding=(conv1_t_size // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if no_max_pool else nn.MaxPool3d(3, stride=2, padding=1)
        in_ch = WIDTHS[0]
        for i, (blocks, width) in enumerate(zip(layers, WIDTHS, strict=True)):
            stride = 1 if i == 0 else 2
            stages = [Bottleneck3d(in_ch, width, stride)]
            stages += [Bottleneck3d(width * EXPANSION, width) for _ in range(blocks - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stages))
            in_ch = width * EXPANSION
        self._init_weights()

    def _init_weights(self) -> None:
        """As the authors: He-normal (fan_out, relu) convolutions, BN weight 1 and bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def zero_init_residual(self) -> None:
        """Zero the last BN weight of every bottleneck, so each block starts as its shortcut (Goyal et al.
        2017; torchvision's `zero_init_residual`). Through 33 random bottlenecks with the authors' init the
        conv5 rows of different clips point the same way (the mean row is 99.99% of a row's norm on the
        demo); with this init the shortcut path keeps colour and motion apart (95.6%)."""
        for m in self.modules():
            if isinstance(m, Bottleneck3d):
                nn.init.zeros_(m.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
        return x


def _describe(obj: object) -> str:
    if isinstance(obj, dict):
        return f"a dict with keys {sorted(map(str, obj))[:8]}"
    return f"a {type(obj).__name__}"


def _strip_generation(path: Path, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """('cvpr2018', keys without `module.`) or ('2020', keys as they are); mixed prefixes fail."""
    prefixed = [str(k).startswith("module.") for k in state]
    if prefixed and all(prefixed):
        return "cvpr2018", {k[len("module."):]: v for k, v in state.items()}
    if not any(prefixed):
        return "2020", dict(state)
    raise CheckpointFormatError(f"r3d101_conv5: {path}: 'state_dict' mixes `module.`-prefixed and plain keys")


def _pop_fc(path: Path, state: dict[str, Any]) -> int:
    """Remove the classifier (any number of classes) and return its size."""
    weight, bias = state.pop("fc.weight", None), state.pop("fc.bias", None)
    ok = (isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor) and weight.ndim == 2
          and weight.shape[1] == WIDTHS[-1] * EXPANSION and bias.shape == weight.shape[:1])
    if not ok:
        raise CheckpointFormatError(f"r3d101_conv5: {path}: no fc.weight (classes x 2048) / fc.bias in "
                                    "'state_dict'; not a 3D ResNet-101 classifier checkpoint")
    return int(weight.shape[0])


def _check_keys(path: Path, state: dict[str, Any], expected: dict[str, torch.Tensor]) -> None:
    """Same key set and shapes as the backbone, else a message with the first differences."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(getattr(state[k], 'shape', ()))} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and (not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape)]
    if missing or unexpected or wrong:
        raise CheckpointFormatError(
            f"r3d101_conv5: {path} does not match 3D ResNet-101 (bottleneck, shortcut B): "
            f"{len(missing)} missing keys {missing[:4]}, {len(unexpected)} unexpected keys {unexpected[:4]}, "
            f"{len(wrong)} wrong shapes {wrong[:4]}")


@register_extractor
class R3D101Conv5(Extractor):
    """3D ResNet-101 conv5 map and its average per snippet.

    Options: norm in NORMALIZATIONS (default "vaanet"); precision "fp32" (default), "bf16" (autocast,
    channels_last_3d) or, on CUDA, "fp16"; `random_init` in RANDOM_INITS, which only matters for
    `weights: random` (a checkpoint sets every weight); `device` as in `base.Extractor`. Input rows: uint8
    (N, k, 112, 112, 3) RGB; outputs per row: conv5 (2048, 1, 4, 4),
    pooled (2048,) for k = 16.
    """

    name: ClassVar[str] = "r3d101_conv5"
    input_kind: ClassVar[str] = "snippets"
    outputs: ClassVar[dict[str, tuple[int, ...]]] = {"conv5": (2048, 1, 4, 4), "pooled": (2048,)}

    def __init__(self, norm: str = "vaanet", precision: str = "fp32", random_init: str = "authors", *,
                 device: str | torch.device = "cpu") -> None:
        if norm not in NORMALIZATIONS:
            raise ValueError(f"{self.name}: norm {norm!r} is not one of {sorted(NORMALIZATIONS)}")
        if random_init not in RANDOM_INITS:
            raise ValueError(f"{self.name}: random_init {random_init!r} is not one of {RANDOM_INITS}")
        self.random_init = random_init
        check_precision(self.name, precision, torch.device(device))
        self.norm = NORMALIZATIONS[norm]
        self.precision = precision
        self.checkpoint: CheckpointInfo | None = None
        super().__init__(device=device, norm=norm, precision=precision, random_init=random_init)

    def build(self) -> nn.Module:
        module = R3DBackbone()
        if self.random_init == "zero_residual":
            module.zero_init_residual()
        if self.precision != "fp32":
            module = module.to(memory_format=torch.channels_last_3d)
        return module

    def read_checkpoint(self, path: Path) -> dict[str, torch.Tensor]:
        """Backbone state dict from either official layout (module docstring); sets `self.checkpoint`."""
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # any unreadable file gets the same clear message
            raise CheckpointFormatError(f"{self.name}: cannot read {path} as a torch checkpoint: {e}") from e
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict) or "arch" not in ckpt:
            raise CheckpointFormatError(
                f"{self.name}: {path} is {_describe(ckpt)}; expected an official 3D-ResNets-PyTorch "
                "checkpoint (a dict with 'arch', 'epoch', 'state_dict', 'optimizer')")
        if ckpt["arch"] != ARCH:
            raise CheckpointFormatError(f"{self.name}: {path} holds arch {ckpt['arch']!r}, not {ARCH!r}")
        generation, state = _strip_generation(path, ckpt["state_dict"])
        n_classes = _pop_fc(path, state)
        expected = self.architecture().state_dict()
        if not any(k.endswith("num_batches_tracked") for k in state):  # saved before PyTorch 0.4.1
            state.update({k: torch.zeros_like(v, device="cpu") for k, v in expected.items()
                          if k.endswith("num_batches_tracked")})
        _check_keys(path, state, expected)
        self.checkpoint = CheckpointInfo(generation, ARCH, n_classes)
        return state

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 (N, k, H, W, 3) RGB -> normalised float32 (N, 3, k, H, W)."""
        if batch.dtype != np.uint8 or batch.ndim != 5 or batch.shape[-1] != 3:
            raise ValueError(f"{self.name}: expected uint8 (N, k, H, W, 3) snippets, got {batch.dtype} "
                             f"{batch.shape}")
        x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 4, 1, 2, 3).float()
        mean = torch.tensor(self.norm.mean).view(1, 3, 1, 1, 1)
        std = torch.tensor(self.norm.std).view(1, 3, 1, 1, 1)
        return ((x / self.norm.scale - mean) / std).contiguous()

    def forward(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, 3, k, H, W) -> conv5 float32 (N, 2048, k/16, H/32, W/32) and pooled (N, 2048)."""
        if self.precision != "fp32":
            with autocast(x.device, self.precision):
                fmap = module(x.contiguous(memory_format=torch.channels_last_3d))
        else:
            fmap = module(x)
        fmap = fmap.float().contiguous()
        return {"conv5": fmap, "pooled": fmap.mean(dim=(2, 3, 4))}

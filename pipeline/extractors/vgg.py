"""`vgg16_fc6` (scene context) and `vggface_fc6` (faces): CAAN's fc6 features, 4096 per image.

    vgg16_fc6    uint8 (N, H, W, 3) frames ──resize to 224x224, (x/255 - mean) / std──> float (N, 3, 224, 224)
    vggface_fc6  uint8 (N, 224, 224, 3) face crops ──x - RGB mean (0..255, no std)──> float (N, 3, 224, 224)
                 ──conv1_1 .. pool5──> (N, 512, 7, 7) ──flatten──> (N, 25088) ──fc6, ReLU──> (N, 4096)

Both use the torchvision VGG16 topology (13 3x3 convolutions, 5 max pools, fc6 / fc7 / fc8); only fc6 is run.

**fc6 is taken after its ReLU.** CAAN (Hindawi 2021, section 3) feeds "the fc6 layer feature" of a fine-tuned
VGG-Face (faces) and VGG16 (whole frames) to its attention network and says no more. The released VGG16
and VGG-Face models are Caffe / MatConvNet models, and in their Caffe definitions `relu6` is in place (bottom
and top are both the `fc6` blob), so an "fc6 feature" read from the `fc6` blob is the rectified activation,
which is also what the network's next layer consumes. We take the same, non-negative, vector.

**Whole frames are resized, not cropped** (vgg16_fc6): the context branch is about the scene around the face,
so the full frame is squeezed to 224x224 (bilinear, antialiased, aspect ratio not kept) instead of the
Resize(256) + CenterCrop(224) torchvision evaluates ImageNet with, which would cut the frame's borders.
Face crops already are 224x224 (CAAN resizes detected faces to 224x224); other sizes are resized the same way.

Preprocessing:

- vgg16_fc6 (torchvision ImageNet weights, trained on RGB in 0..1): mean (0.485, 0.456, 0.406),
  std (0.229, 0.224, 0.225).
- vggface_fc6 (Parkhi et al., BMVC 2015; the mean of Oxford's release, also in the `meta` of the PyTorch
  `vgg_face_dag` import: mean [129.186, 104.762, 93.594], std [1, 1, 1], imageSize 224x224x3):
  RGB 0..255 minus (129.1863, 104.7624, 93.5940), no std scaling.

Weights (checked strictly: same keys, same shapes, finite values; else WeightsFormatError naming the file):

- vgg16_fc6: the torchvision `vgg16` ImageNet state dict, vgg16-397923af.pth
  (https://download.pytorch.org/models/vgg16-397923af.pth, VGG16_Weights.IMAGENET1K_V1; torchvision code is
  BSD-3-Clause, the weights come with ImageNet's terms). Keys `features.{0,2,5,7,10,12,14,17,19,21,24,26,28}`
  and `classifier.{0,3,6}`, `.weight` and `.bias` each, classifier.6 with 1000 classes.
  torchvision's other VGG16 file, vgg16_features-amdegroot-88682ab5.pth (IMAGENET1K_FEATURES), has no valid
  classifier values (torchvision: "missing values"; NaN): it cannot give fc6, and the finiteness check refuses
  non-finite weights.
- vggface_fc6: the accepted layout of `pipeline.extractors.vggface_convert` (the keys and shapes of
  torchvision's `vgg16(num_classes=2622)`, conv1 taking RGB), or any port that module recognises, converted
  in memory as with `--input-order auto` (so Albanie's `vgg_face_dag.pth` loads as it is published).
  Oxford's release: https://www.robots.ox.ac.uk/~vgg/software/vgg_face/ (non-commercial research purposes
  only); PyTorch import: https://www.robots.ox.ac.uk/~albanie/pytorch-models.html.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.extractors.base import Extractor, autocast, check_precision, register_extractor
from pipeline.extractors.vggface_convert import N_IDENTITIES, ConversionError, convert_state

if TYPE_CHECKING:
    import torchvision

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGGFACE_MEAN = (129.1863, 104.7624, 93.5940)
VGG_SIZE = 224


class WeightsFormatError(ValueError):
    """A weights file is not the layout an extractor loads; the message names the file and the difference."""


def check_images(name: str, batch: np.ndarray, what: str) -> None:
    """Raise unless `batch` is uint8 (N, H, W, 3)."""
    if not (isinstance(batch, np.ndarray) and batch.dtype == np.uint8 and batch.ndim == 4
            and batch.shape[-1] == 3):
        found = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
        raise ValueError(f"{name}: expected uint8 (N, H, W, 3) {what}, got {found}")


def crop_offsets(h: int, w: int, size: int) -> tuple[int, int]:
    """(top, left) of the centred size x size window of an h x w image (torchvision's CenterCrop)."""
    if h < size or w < size:
        raise ValueError(f"cannot centre-crop {size}x{size} from {h}x{w}")
    return int(round((h - size) / 2.0)), int(round((w - size) / 2.0))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, *size), antialiased bilinear as torchvision's Resize; a no-op at that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def to_float_nchw(batch: np.ndarray, size: tuple[int, int], crop: int | None = None) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> contiguous float32 (N, 3, h, w), values 0..255: resized to `size` (antialiased
    bilinear; a no-op at that size), then centre-cropped to crop x crop if `crop` is given.

    Rows already of `size` (the usual case: keyframes and spectrograms are stored at 256x256, face crops at
    224x224) are cropped as uint8 and converted in one pass straight into the layout the network takes;
    element for element the values are those of converting first, so the two routes agree exactly."""
    x = torch.from_numpy(np.ascontiguousarray(batch))          # (N, H, W, 3)
    if tuple(x.shape[1:3]) != tuple(size):
        x = resize(x.permute(0, 3, 1, 2).float(), size).permute(0, 2, 3, 1)
    if crop is not None:
        top, left = crop_offsets(*size, crop)
        x = x[:, top:top + crop, left:left + crop]
    out = torch.empty((x.shape[0], 3, *x.shape[1:3]), dtype=torch.float32)
    return out.copy_(x.permute(0, 3, 1, 2))


def normalise_(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...] | None = None, *,
               scale: float | None = None) -> torch.Tensor:
    """In place on float (N, 3, H, W): ((x / scale) - mean) / std per channel, the same float32 operations
    in the same order as the out-of-place expression (so the same values); `scale` and `std` are optional."""
    if scale is not None:
        x.div_(scale)
    x.sub_(torch.tensor(mean).view(1, 3, 1, 1))
    if std is not None:
        x.div_(torch.tensor(std).view(1, 3, 1, 1))
    return x


def load_state_file(name: str, path: Path) -> dict[str, torch.Tensor]:
    """A plain state dict (str -> tensor) from `path`, or WeightsFormatError naming the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise WeightsFormatError(f"{name}: cannot read {path} as a PyTorch checkpoint: {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = f"a dict with keys {sorted(map(str, state))[:6]}" if isinstance(state, dict) else type(state)
        raise WeightsFormatError(f"{name}: {path} holds {found!s}, not a state dict of tensors")
    return state


def check_state(name: str, path: Path, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                arch: str) -> None:
    """Same keys and shapes as `expected`, all values finite; else a message with the first differences."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise WeightsFormatError(f"{name}: {path} is not a {arch} state dict: {len(missing)} missing keys "
                                 f"{missing[:4]}, {len(unexpected)} unexpected keys {unexpected[:4]}, "
                                 f"{len(wrong)} wrong shapes {wrong[:4]}")
    # a float32 sum is finite exactly when every value is (for weights far below 1e30 in size): one fast pass
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v.float().sum()))]
    if bad:
        raise WeightsFormatError(f"{name}: {path} has NaN or infinite values in {bad[:4]} (a features-only "
                                 "checkpoint?); every layer up to the extracted one must be valid")


class FrozenImageCNN(Extractor):
    """A torchvision 2D CNN run on uint8 images up to one fully connected layer.

    Options: precision "fp32" (default), "bf16" (autocast to bfloat16, channels_last weights and inputs) or,
    on CUDA, "fp16" (the same in float16); outputs are float32 either way. `device`: see `base.Extractor`.
    Subclasses give `make_module`, `arch`, `preprocess` and `head`.
    """

    arch: ClassVar[str]

    def __init__(self, precision: str = "fp32", *, device: str | torch.device = "cpu",
                 **options: Any) -> None:
        check_precision(self.name, precision, torch.device(device))
        self.precision = precision
        super().__init__(device=device, precision=precision, **options)

    @abstractmethod
    def make_module(self) -> nn.Module:
        """The torchvision architecture, random weights."""

    @abstractmethod
    def head(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, 3, h, w) preprocessed images -> named features (N, ...)."""

    def build(self) -> nn.Module:
        module = self.make_module()
        return module.to(memory_format=torch.channels_last) if self.precision != "fp32" else module

    def read_checkpoint(self, path: Path) -> dict[str, torch.Tensor]:
        state = load_state_file(self.name, path)
        check_state(self.name, path, state, self.architecture().state_dict(), self.arch)
        return state

    def forward(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, 3, h, w) -> features as float32."""
        if self.precision != "fp32":
            with autocast(x.device, self.precision):
                out = self.head(module, x.contiguous(memory_format=torch.channels_last))
        else:
            out = self.head(module, x)
        return {k: v.float().contiguous() for k, v in out.items()}


def vgg_fc6(module: torchvision.models.VGG, x: torch.Tensor) -> torch.Tensor:
    """(N, 3, 224, 224) -> ReLU(fc6) (N, 4096); fc7 and fc8 are not run (dropout is the identity in eval)."""
    pooled = module.avgpool(module.features(x))  # (N, 512, 7, 7)
    return torch.relu(module.classifier[0](torch.flatten(pooled, 1)))


class VGGFc6(FrozenImageCNN):
    """Shared fc6 head of the two VGG16-topology extractors; the one option is `precision`."""

    outputs: ClassVar[dict[str, tuple[int, ...]]] = {"fc6": (4096,)}

    def __init__(self, precision: str = "fp32", *, device: str | torch.device = "cpu") -> None:
        super().__init__(precision=precision, device=device)

    def head(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"fc6": vgg_fc6(module, x)}


@register_extractor
class VGG16Fc6(VGGFc6):
    """ImageNet VGG16 fc6 (after ReLU) of whole frames: uint8 (N, H, W, 3), any size -> fc6 (N, 4096)."""

    name: ClassVar[str] = "vgg16_fc6"
    input_kind: ClassVar[str] = "frames"
    arch: ClassVar[str] = "torchvision vgg16 (1000 classes)"

    def make_module(self) -> nn.Module:
        import torchvision  # here, where the network is built: a stage's driver reads this class's
                            # version without building it, and torchvision takes it 2 s to import
        return torchvision.models.vgg16(weights=None)

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) RGB -> float32 (N, 3, 224, 224): resized whole, (x/255 - mean) / std."""
        check_images(self.name, batch, "frames")
        x = to_float_nchw(batch, (VGG_SIZE, VGG_SIZE))
        return normalise_(x, IMAGENET_MEAN, IMAGENET_STD, scale=255.0)


@register_extractor
class VGGFaceFc6(VGGFc6):
    """VGG-Face fc6 (after ReLU) of face crops: uint8 (N, 224, 224, 3) -> fc6 (N, 4096).

    Loads the accepted layout of `pipeline.extractors.vggface_convert` or any port that module recognises;
    `self.checkpoint_layout` records which ("accepted", "dag", "luatorch") after `load_weights`.
    """

    name: ClassVar[str] = "vggface_fc6"
    input_kind: ClassVar[str] = "face_crops"
    arch: ClassVar[str] = f"VGG-Face (torchvision vgg16 keys, {N_IDENTITIES} classes)"

    def __init__(self, precision: str = "fp32", *, device: str | torch.device = "cpu") -> None:
        self.checkpoint_layout: str | None = None
        super().__init__(precision, device=device)

    def make_module(self) -> nn.Module:
        import torchvision

        return torchvision.models.vgg16(weights=None, num_classes=N_IDENTITIES)

    def read_checkpoint(self, path: Path) -> dict[str, torch.Tensor]:
        """The accepted-layout state dict of any recognised VGG-Face port (converted in memory)."""
        try:
            state, layout = convert_state(load_state_file(self.name, path))
        except ConversionError as e:
            raise WeightsFormatError(f"{self.name}: {path} is not a {self.arch} checkpoint: {e} "
                                     "(see `python -m pipeline.extractors.vggface_convert --help`)") from None
        check_state(self.name, path, state, self.architecture().state_dict(), self.arch)
        self.checkpoint_layout = layout
        return state

    def preprocess(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 (N, h, w, 3) RGB crops -> float32 (N, 3, 224, 224): resized if needed, minus the RGB mean."""
        check_images(self.name, batch, "face crops")
        return normalise_(to_float_nchw(batch, (VGG_SIZE, VGG_SIZE)), VGGFACE_MEAN)

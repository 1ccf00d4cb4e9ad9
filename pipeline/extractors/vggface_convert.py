"""Convert the published PyTorch ports of Oxford's VGG-Face weights into the layout `vggface_fc6` loads.

    python -m pipeline.extractors.vggface_convert IN OUT [--input-order {auto,rgb,bgr}]

Accepted layout (what OUT holds; a plain state dict saved with `torch.save`): the keys and shapes of
`torchvision.models.vgg16(num_classes=2622).state_dict()`, every tensor float32, conv1 taking RGB:

| key | shape | VGG-Face layer |
|---|---|---|
| features.{0,2}.weight | (64, 3 / 64, 3, 3) | conv1_1, conv1_2 |
| features.{5,7}.weight | (128, 64 / 128, 3, 3) | conv2_1, conv2_2 |
| features.{10,12,14}.weight | (256, 128 / 256 / 256, 3, 3) | conv3_1 .. conv3_3 |
| features.{17,19,21}.weight | (512, 256 / 512 / 512, 3, 3) | conv4_1 .. conv4_3 |
| features.{24,26,28}.weight | (512, 512, 3, 3) | conv5_1 .. conv5_3 |
| classifier.0.weight | (4096, 25088) | fc6 (input flattened from pool5 in (C=512, H=7, W=7) order) |
| classifier.3.weight | (4096, 4096) | fc7 |
| classifier.6.weight | (2622, 4096) | fc8 (the 2622 training identities) |

plus a `.bias` of shape (out,) beside every weight: 32 tensors in all.

Input layouts recognised (facts checked in the published model definitions; this code is independent):

- "dag": S. Albanie's `vgg_face_dag.pth` (https://www.robots.ox.ac.uk/~albanie/pytorch-models.html, imported
  from the MatConvNet release): keys `conv{b}_{i}.weight/bias` (conv1_1 .. conv5_3) and `fc6`, `fc7`, `fc8`
  as `nn.Linear` (fc6 (4096, 25088), flattened from pool5 with `.view(N, -1)`, i.e. (C, H, W) order).
  Its `meta` gives mean [129.186279296875, 104.76238250732422, 93.59396362304688] (RGB), std [1, 1, 1],
  imageSize [224, 224, 3]: conv1 takes RGB.
- "luatorch": ports of Oxford's LuaTorch `VGG_FACE.t7` (e.g. prlz77/vgg-face.pytorch keys `conv_{b}_{i}`,
  `fc6..fc8`; chi0tzp/PyVGGFace keys `features.conv_{b}_{i}`, `fc.fc6..fc.fc8`): same shapes. Their demos
  feed OpenCV (`cv2.imread`, BGR) images, so conv1 takes BGR; `auto` flips conv1's input channels to RGB.
- "accepted": already the layout above (passed through unchanged).

Any fully connected weight may also be stored as a convolution (fc6 (4096, 512, 7, 7), fc7 (4096, 4096, 1, 1),
fc8 (2622, 4096, 1, 1), as in fully convolutional conversions of the MatConvNet / Caffe models); it is
reshaped to (out, in * kh * kw), which is the same (C, H, W) order that flattening pool5 gives.

A conversion of the Caffe `VGG_FACE.caffemodel` with `conv1_1`-style names looks like "dag" but takes BGR:
convert it with `--input-order bgr`. The VGG-Face weights themselves (Parkhi, Vedaldi, Zisserman, "Deep Face
Recognition", BMVC 2015; https://www.robots.ox.ac.uk/~vgg/software/vgg_face/) are released for
non-commercial research purposes only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import torch

N_IDENTITIES = 2622
CONV_NAMES = ("1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "3_3", "4_1", "4_2", "4_3", "5_1", "5_2", "5_3")
CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # position in torchvision's vgg16.features
CONV_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
FC_INDEX = {"fc6": 0, "fc7": 3, "fc8": 6}  # position in torchvision's vgg16.classifier
FC_SHAPES = {"fc6": (4096, 512 * 7 * 7), "fc7": (4096, 4096), "fc8": (N_IDENTITIES, 4096)}
INPUT_ORDERS = ("auto", "rgb", "bgr")

_DAG_CONV = re.compile(r"^conv([1-5])_([1-3])\.(weight|bias)$")
_LUA_CONV = re.compile(r"^(?:features\.)?conv_([1-5])_([1-3])\.(weight|bias)$")
_FC = re.compile(r"^(?:fc\.)?(fc[678])\.(weight|bias)$")


class ConversionError(ValueError):
    """A state dict is not one of the recognised VGG-Face layouts, or its shapes are wrong."""


def accepted_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the accepted (torchvision vgg16, 2622 classes) layout, in state-dict order."""
    shapes: dict[str, tuple[int, ...]] = {}
    in_ch = 3
    for index, width in zip(CONV_INDEX, CONV_WIDTHS, strict=True):
        shapes[f"features.{index}.weight"] = (width, in_ch, 3, 3)
        shapes[f"features.{index}.bias"] = (width,)
        in_ch = width
    for name, index in FC_INDEX.items():
        shapes[f"classifier.{index}.weight"] = FC_SHAPES[name]
        shapes[f"classifier.{index}.bias"] = FC_SHAPES[name][:1]
    return shapes


ACCEPTED_SHAPES = accepted_shapes()


def _target_key(key: str) -> tuple[str, str] | None:
    """(accepted key, source layout) of one input key, or None when no layout knows it."""
    if key in ACCEPTED_SHAPES:
        return key, "accepted"
    for pattern, layout in ((_DAG_CONV, "dag"), (_LUA_CONV, "luatorch")):
        if m := pattern.match(key):
            position = CONV_NAMES.index(f"{m[1]}_{m[2]}") if f"{m[1]}_{m[2]}" in CONV_NAMES else None
            return None if position is None else (f"features.{CONV_INDEX[position]}.{m[3]}", layout)
    if m := _FC.match(key):
        return f"classifier.{FC_INDEX[m[1]]}.{m[2]}", "luatorch" if key.startswith("fc.") else "fc"
    return None


def detect_layout(state: dict[str, object]) -> str:
    """"accepted", "dag" or "luatorch"; raises ConversionError naming the keys no layout knows."""
    targets = {key: _target_key(str(key)) for key in state}
    unknown = [k for k, t in targets.items() if t is None]
    if unknown or not state:
        raise ConversionError(f"{len(unknown)} keys of no known VGG-Face layout, e.g. {unknown[:4]} (known: "
                              "accepted `features.N` / `classifier.N`, dag `conv1_1`, luatorch `conv_1_1`)")
    layouts = {t[1] for t in targets.values() if t is not None} - {"fc"}
    if len(layouts) > 1:
        raise ConversionError(f"keys mix several layouts {sorted(layouts)}")
    return layouts.pop() if layouts else "dag"


def _as_linear(key: str, tensor: torch.Tensor) -> torch.Tensor:
    """A fully connected weight stored as a convolution (out, in, kh, kw) -> (out, in * kh * kw)."""
    if key.startswith("classifier.") and key.endswith(".weight") and tensor.ndim == 4:
        return tensor.reshape(tensor.shape[0], -1)
    return tensor


def _check_shapes(state: dict[str, torch.Tensor]) -> None:
    missing = [k for k in ACCEPTED_SHAPES if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)} != {shape}" for k, shape in ACCEPTED_SHAPES.items()
             if k in state and tuple(state[k].shape) != shape]
    if missing or wrong:
        raise ConversionError(f"not VGG-Face (VGG16 topology, {N_IDENTITIES} identities): {len(missing)} "
                              f"missing keys {missing[:4]}, {len(wrong)} wrong shapes {wrong[:4]}")


def convert_state(state: dict[str, torch.Tensor],
                  input_order: str = "auto") -> tuple[dict[str, torch.Tensor], str]:
    """(accepted-layout state dict, detected layout) from any recognised layout.

    input_order: "rgb" keeps conv1 as it is, "bgr" reverses its 3 input channels, "auto" does that for the
    "luatorch" layout only (see the module docstring).
    """
    if input_order not in INPUT_ORDERS:
        raise ValueError(f"input_order {input_order!r} is not one of {INPUT_ORDERS}")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError("not a state dict (a dict of tensors)")
    layout = detect_layout(state)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        target = _target_key(key)[0]  # type: ignore[index]  # detect_layout checked every key
        if target in out:
            raise ConversionError(f"two keys map to {target} (e.g. {key!r})")
        out[target] = _as_linear(target, tensor).to(torch.float32).contiguous()
    _check_shapes(out)
    if input_order == "bgr" or (input_order == "auto" and layout == "luatorch"):
        out["features.0.weight"] = out["features.0.weight"].flip(1).contiguous()
    return {k: out[k] for k in ACCEPTED_SHAPES}, layout


def convert_file(src: Path, dst: Path, input_order: str = "auto") -> str:
    """Read `src`, write the accepted layout to `dst` (a temporary file, then renamed); returns the layout."""
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ConversionError(f"{src}: cannot read as a PyTorch checkpoint: {e}") from e
    try:
        converted, layout = convert_state(state, input_order)
    except ConversionError as e:
        raise ConversionError(f"{src}: {e}") from None
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name, suffix=".part")
    os.close(fd)
    try:
        torch.save(converted, tmp)
        Path(tmp).replace(dst)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return layout


def main(argv: list[str] | None = None) -> int:
    """CLI: convert IN to OUT; 0 on success, 1 with a message naming the file otherwise."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.extractors.vggface_convert",
                                     description="VGG-Face PyTorch port -> the layout vggface_fc6 loads")
    parser.add_argument("src", type=Path, metavar="IN", help="e.g. vgg_face_dag.pth")
    parser.add_argument("dst", type=Path, metavar="OUT")
    parser.add_argument("--input-order", choices=INPUT_ORDERS, default="auto",
                        help="channel order conv1 of IN takes (auto: BGR for LuaTorch ports, RGB otherwise)")
    args = parser.parse_args(argv)
    try:
        layout = convert_file(args.src, args.dst, args.input_order)
    except (ConversionError, OSError) as e:
        print(f"vggface_convert: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.src} ({layout} layout) -> {args.dst} (torchvision vgg16 keys, {N_IDENTITIES} classes, RGB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 25, fixed cost per stage: building each CNN extractor with a checkpoint, drawing the random weights
first and loading over them (`cls()` + `load_weights`, as before) against loading into uninitialised
storage (`cls.with_weights`, what a stage's worker and the VAANet audio head do now).

    .venv/bin/python -m bench.checkpoint_load [--repeats 3]

The checkpoints hold random values in each extractor's official layout, written to a temporary folder
once; both ways read the same file, called in turn, fastest of `--repeats`. One worker pays this once per
stage; `vemo predict` once per extractor its head reads.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from bench.common import fastest_in_turn, machine_line, table
from pipeline.extractors.base import get_extractor


def torchvision_file(folder: Path, arch: str, **kwargs: int) -> Path:
    import torchvision

    path = folder / f"{arch}.pth"
    torch.save(getattr(torchvision.models, arch)(weights=None, **kwargs).state_dict(), path)
    return path


def r3d_file(folder: Path) -> Path:
    """The 2020 layout of 3D-ResNets-PyTorch: plain keys, 700-class fc, the training state beside."""
    from pipeline.extractors.r3d import ARCH, R3DBackbone

    fc = {"fc.weight": torch.zeros(700, 2048), "fc.bias": torch.zeros(700)}
    path = folder / "r3d101_K_200ep.pth"
    torch.save({"arch": ARCH, "epoch": 200, "state_dict": {**R3DBackbone().state_dict(), **fc},
                "optimizer": {}, "scheduler": {}}, path)
    return path


FILES: dict[str, Callable[[Path], Path]] = {
    "vgg16_fc6": lambda d: torchvision_file(d, "vgg16"),
    "vggface_fc6": lambda d: torchvision_file(d, "vgg16", num_classes=2622),
    "r3d101_conv5": r3d_file,
    "alexnet_fc7": lambda d: torchvision_file(d, "alexnet"),
    "mfcc_resnet18": lambda d: torchvision_file(d, "resnet18"),
    "mfcc_resnet50": lambda d: torchvision_file(d, "resnet50"),
}


def both_ways(name: str, path: str, repeats: int) -> tuple[float, float]:
    """(draw then load, with_weights) seconds, fastest of `repeats` in turn."""
    cls = get_extractor(name)
    times = fastest_in_turn({"draw": lambda: cls().load_weights(path),
                             "with_weights": lambda: cls.with_weights(path)}, repeats)
    return times["draw"], times["with_weights"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in FILES.items():
            before, after = both_ways(name, str(make(Path(tmp))), args.repeats)
            rows.append([name, f"{before:.2f}", f"{after:.2f}", f"{before - after:.2f}"])
    print(machine_line())
    print()
    print(table(["extractor", "draw, then load s", "with_weights s", "saved s"], rows))


if __name__ == "__main__":
    main()

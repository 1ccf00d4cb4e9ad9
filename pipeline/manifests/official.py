"""Convert the official VE-8 and Ekman-6 split lists into shipped manifests.

    python -m pipeline.manifests.official [--src manifests/official] [--out manifests]

reads ``<src>/ve8`` and ``<src>/ek6`` (UCF-style lists) and writes ``<out>/ve8_split01.csv`` and
``<out>/ek6_split01.csv`` with their class lists. Paths are ``<Class>/<stem>.mp4``, splits train/test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.manifests.format import write_manifest
from pipeline.manifests.ucf import EK6_CLASSES, OFFICIAL_LISTS, VE8_CLASSES, official_manifest

BENCHMARKS = {"ve8": VE8_CLASSES, "ek6": EK6_CLASSES}


def convert_official(src: Path = OFFICIAL_LISTS, out: Path = OFFICIAL_LISTS.parent) -> list[Path]:
    """Write ``<out>/<benchmark>_split01.csv`` for each benchmark; return the paths written."""
    written = []
    for name, classes in BENCHMARKS.items():
        path = Path(out) / f"{name}_split01.csv"
        write_manifest(official_manifest(Path(src) / name, classes), path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=OFFICIAL_LISTS, help="folder holding ve8/ and ek6/ lists")
    parser.add_argument("--out", type=Path, default=OFFICIAL_LISTS.parent, help="folder for the manifests")
    args = parser.parse_args(argv)
    for path in convert_official(args.src, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

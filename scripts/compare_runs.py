"""Compare two project folders after `dvc repro`: every cache's arrays and header, every head's metrics.

    python scripts/compare_runs.py OLD_PROJECT NEW_PROJECT [--dataset demo]

What a change that should move nothing (a refactor) is checked with: the same params, both trees run,
then this. Exit 1 naming every array, header field or metrics file that differs (NaN equals NaN: a
frame without a face has NaN boxes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np

VOLATILE = ("created", "updated", "package_version")   # when and by which release, not what


def datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}
    f.visititems(lambda name, obj: found.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return found


def cache_differences(old: Path, new: Path) -> list[str]:
    if not new.is_file():
        return [f"{new} is missing"]
    with h5py.File(old, "r") as a, h5py.File(new, "r") as b:
        out = [f"{old.name}: header {k}" for k in a.attrs
               if k not in VOLATILE and str(a.attrs[k]) != str(b.attrs.get(k))]
        left, right = datasets(a), datasets(b)
        out += [f"{old.name}: {n} only in one" for n in sorted(set(left) ^ set(right))]
        for name in sorted(set(left) & set(right)):
            x, y = left[name][()], right[name][()]
            if x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                out.append(f"{old.name}: {name}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--dataset", default="demo")
    args = parser.parse_args(argv)
    caches = sorted((args.old / "cache" / args.dataset).glob("*.h5"))
    metrics = sorted((args.old / "reports" / args.dataset).glob("*/metrics.json"))
    differences = [d for c in caches for d in cache_differences(c, args.new / c.relative_to(args.old))]
    for m in metrics:
        other = args.new / m.relative_to(args.old)
        if not other.is_file() or json.loads(m.read_text()) != json.loads(other.read_text()):
            differences.append(str(m.relative_to(args.old)))
    print(f"{len(caches)} caches, {len(metrics)} metrics files compared")
    print("\n".join(differences) or "identical")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())

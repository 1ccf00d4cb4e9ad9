"""Golden values of every computation whose results a cache keeps, and the versions they were made at.

    python tests/golden.py --update      # after bumping a CODE_VERSION / version: record the new values

Each computation that fills a cache carries a version that enters its cache's configuration hash:
`decode.config.CODE_VERSION`, `faces.config.CODE_VERSION`, each extractor's `version`, each input
loader's `version` (`features.inputs.input_loader`). A cache entry made by other code is then recomputed
instead of being served. tests/test_golden.py runs the real chain on a clip this module makes (a face on a
moving test pattern, a tone) and compares a digest of every output with tests/golden/values.json: values
that change while their version did not fail the test, naming the version to bump.

A digest is position-sensitive but tolerant: the mean and spread of the whole array and the means of 16
consecutive slices of it, so picking other frames or rows shows, while the last bits of a CPU's float
kernels do not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN = Path(__file__).resolve().parent / "golden" / "values.json"
SLICES = 16


def digest(values: np.ndarray) -> dict[str, Any]:
    a = np.asarray(values)
    flat = a.astype(np.float64).ravel()
    parts = np.array_split(flat, SLICES) if flat.size >= SLICES else [flat]
    return {"shape": list(a.shape), "dtype": a.dtype.str,
            "mean": float(flat.mean()) if flat.size else 0.0, "std": float(flat.std()) if flat.size else 0.0,
            "slices": [float(p.mean()) if p.size else 0.0 for p in parts]}


def differs(got: dict[str, Any], want: dict[str, Any]) -> str:
    """Why two digests differ beyond float noise, or ""."""
    if got["shape"] != want["shape"] or got["dtype"] != want["dtype"]:
        return f"shape/dtype {got['shape']} {got['dtype']} != {want['shape']} {want['dtype']}"
    integer = np.dtype(want["dtype"]).kind in "iub"
    scale = max(want["std"], abs(want["mean"]), 1e-6)
    tolerance = 0.5 if integer else 5e-3 * scale
    pairs = [("mean", got["mean"], want["mean"]), ("std", got["std"], want["std"])]
    slices = enumerate(zip(got["slices"], want["slices"], strict=True))
    pairs += [(f"slice {i}", g, w) for i, (g, w) in slices]
    off = [f"{name} {g:.6g} != {w:.6g}" for name, g, w in pairs if abs(g - w) > tolerance]
    return "; ".join(off[:3])


def make_clip(folder: Path) -> Path:
    """2 s, 25 fps, 320x240: the astronaut's face (scikit-image's photograph) over a moving test pattern,
    and a 523 Hz tone; H.264 + AAC in mp4, encoded with fixed settings."""
    from PIL import Image
    from skimage.data import astronaut

    face = folder / "face.png"
    Image.fromarray(astronaut()[20:240, 125:325]).resize((120, 132)).save(face)
    clip = folder / "golden.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=25:duration=2", "-i", str(face),
                    "-f", "lavfi", "-i", "sine=frequency=523:sample_rate=44100:duration=2",
                    "-filter_complex", "[0:v][1:v]overlay=x=100:y=50[v]", "-map", "[v]", "-map", "2:a",
                    "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(clip)], check=True)
    return clip


def compute(folder: Path) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """(version of each computation, digest of each output) from the real chain on `make_clip`."""
    import torch

    from pipeline.cache import CacheReader, CacheWriter
    from pipeline.config import load_params
    from pipeline.decode import config as decode_config
    from pipeline.decode.worker import probe_and_decode
    from pipeline.extractors import get_extractor, list_extractors
    from pipeline.faces import config as faces_config
    from pipeline.faces.worker import faces_of_video
    from pipeline.features.config import extractor_spec
    from pipeline.features.inputs import input_version, load_inputs
    from pipeline.features.worker import extract_video
    from pipeline.graph import INPUT_SOURCES, sources_of

    torch.set_num_threads(1)
    clip = make_clip(folder)
    versions = {"decode": decode_config.CODE_VERSION, "faces": faces_config.CODE_VERSION}
    values: dict[str, dict[str, Any]] = {}

    def keep(part: str, arrays: dict[str, np.ndarray]) -> None:
        for name, array in arrays.items():
            values[f"{part}/{name}"] = digest(array)

    def fill(name: str, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> str:
        path = folder / f"{name}.h5"
        with CacheWriter(path, stage=name, config={}, config_hash=name, weights="none") as writer:
            writer.write("clip", arrays, attrs)
        return str(path)

    cfg = decode_config.DecodeConfig(segments=2, frames_per_segment=4, train_views=1, face_rate=2.0,
                                     face_max_frames=4, work_max_side=320, keyframe_size=64,
                                     audio_rates=(44100,))
    decoded = probe_and_decode("clip", str(clip), cfg).decoded
    keep("decode", decoded.arrays)
    caches = {"decode": fill("decode", decoded.arrays, decoded.attrs)}
    faces = faces_of_video("clip", str(clip), cfg=faces_config.FaceConfig(), decode_path=caches["decode"])
    keep("faces", faces[0])
    caches["faces"] = fill("faces", *faces)
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    params["features"]["mfcc_resnet50"]["options"]["segments"] = cfg.segments
    order = sorted(list_extractors(), key=lambda n: (n != "mfcc", n))     # mfcc feeds mfcc_resnet18
    for name in order:
        spec = extractor_spec(params, name)
        spec = type(spec)(**{**spec.__dict__, "device": "cpu"})
        arrays, attrs = extract_video("clip", str(clip), spec=spec,
                                      sources={s: caches[s] for s in sources_of(name)})
        versions[f"extractor {name}"] = get_extractor(name).version
        keep(f"extractor {name}", arrays)
        if name == "mfcc":
            caches["mfcc"] = fill("mfcc", arrays, attrs)
    for kind in INPUT_SOURCES:
        readers = {s: CacheReader(caches[s]) for s in INPUT_SOURCES[kind]}
        versions[f"input {kind}"] = input_version(kind)
        keep(f"input {kind}", {"rows": load_inputs(kind, readers, "clip").rows})
        for reader in readers.values():
            reader.close()
    return versions, values


def owner(key: str) -> str:
    """The computation a digest key belongs to ("extractor r3d101_conv5/features" -> "extractor r3d...")."""
    return key.split("/", 1)[0]


def upstream(part: str) -> set[str]:
    """The computations whose outputs `part` computes from (transitively), by the stage graph."""
    from pipeline.graph import INPUT_SOURCES, input_kind

    def cache_part(cache: str) -> str:
        return cache if cache in ("decode", "faces") else f"extractor {cache}"

    kind, _, name = part.partition(" ")
    direct = {"faces": {"decode"}}.get(part, set())
    if kind == "input":
        direct = {cache_part(c) for c in INPUT_SOURCES[name]}
    elif kind == "extractor":
        direct = {f"input {input_kind(name)}"}
    return direct.union(*(upstream(p) for p in direct))


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description="Record the golden values of every cached computation.")
    parser.add_argument("--update", action="store_true", required=True)
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        versions, values = compute(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({"versions": versions, "values": values}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}: {len(values)} outputs of {len(versions)} computations")
    return 0


if __name__ == "__main__":
    sys.exit(main())

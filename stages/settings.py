"""params.yaml sections -> the configurations of decode, faces and the extractors, as their stages build
them (`stages/decode.py`, `stages/faces.py`, `stages/features.py`), for `vemo predict`, which recomputes
those caches for new videos and must hash them the same way."""

from __future__ import annotations

from typing import Any

from pipeline.decode import DecodeConfig
from pipeline.faces.detect import FaceConfig
from pipeline.features.compute import ExtractorSpec


def decode_config(params: dict[str, Any]) -> DecodeConfig:
    section = {k: v for k, v in params["decode"].items() if k not in ("compression", "compression_level")}
    return DecodeConfig(**{**section, "audio_rates": tuple(section["audio_rates"]),
                           "outputs": tuple(section["outputs"]), "seed": params["seed"]})


def face_config(params: dict[str, Any]) -> FaceConfig:
    return FaceConfig(**params["faces"])


def extractor_spec(params: dict[str, Any], name: str) -> ExtractorSpec:
    section = params["features"][name]
    return ExtractorSpec(name=name, weights=str(section["weights"]),
                         options=dict(section.get("options") or {}), batch_size=int(section["batch_size"]),
                         seed=int(params["seed"]), videos_per_task=int(section.get("videos_per_task", 8)),
                         device=str(section.get("device", "auto")))


def extractor_specs(params: dict[str, Any]) -> dict[str, ExtractorSpec]:
    return {name: extractor_spec(params, name) for name in params.get("features", {})}

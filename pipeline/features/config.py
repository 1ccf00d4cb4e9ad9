"""What a feature stage runs (`ExtractorSpec`) and the configuration its cache records and hashes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.devices import check_device_name, this_machine
from pipeline.errors import ConfigError

GZIP_LEVEL = 4          # feature caches; the workers compress (pipeline/cache/packed.py)
SPEED_ONLY = ("batch_size", "videos_per_task", "device")
"""Recorded in the cache's configuration but not hashed: they change how fast, not which values (reduced
precision does change values, and is an extractor option, so it is hashed)."""


@dataclass(frozen=True)
class ExtractorSpec:
    """What a worker needs to rebuild the same extractor: name, options, weights ("random" or path), and
    how to run it (batch_size rows per forward pass, videos_per_task per Dask task, device: auto, cpu,
    cuda or cuda:N); the last three change speed, not values."""

    name: str
    weights: str = "random"
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16
    seed: int = 0
    videos_per_task: int = 8
    device: str = "auto"

    def key(self) -> tuple[str, str, str, str]:
        return self.name, self.weights, repr(sorted(self.options.items())), self.device


@dataclass(frozen=True)
class ExtractorIdentity:
    """What an extractor built on a worker is, beyond its name and options: the weights it loaded
    ("random", "none" or the checkpoint's sha256) and the versions of the code that computes its values
    (`code`: (part, version) pairs, the network with its preprocessing and the input loader)."""

    weights: str
    code: tuple[tuple[str, int], ...] = ()


def feature_cache_config(spec: ExtractorSpec, identity: ExtractorIdentity,
                         upstream: dict[str, str]) -> dict[str, Any]:
    """Everything that changes the cached values: the extractor, its options, weights and code, the
    inputs."""
    return {"extractor": spec.name, "options": spec.options, "weights": identity.weights,
            "code": dict(identity.code), "seed": spec.seed, "upstream": upstream}


def recorded_config(spec: ExtractorSpec, values: dict[str, Any]) -> dict[str, Any]:
    """What the cache records: the hashed `values` and the speed-only settings beside them."""
    return {**values, **{k: getattr(spec, k) for k in SPEED_ONLY}}


def weights_path(weights: str) -> str:
    """A weights file as an absolute path (workers need not start in the project folder), or "random" /
    "none" as they are. The path is never hashed: the cache records the file's sha256."""
    return weights if weights in ("random", "none") else str(Path(weights).expanduser().absolute())


def _takes_precision(name: str) -> bool:
    from pipeline.extractors.catalog import card_of

    return card_of(name).precision


def extractor_spec(params: dict[str, Any], name: str) -> ExtractorSpec:
    """`features.<name>` of parsed params.yaml (and the seed), as the stage and `vemo predict` use it.

    An extractor with a precision option gets params.yaml's `precision` unless its own options set one."""
    section = params["features"][name]
    options = dict(section.get("options") or {})
    if "precision" not in options and _takes_precision(name):
        options["precision"] = str(params.get("precision", "fp32"))
    return ExtractorSpec(name=name, weights=weights_path(str(section["weights"])),
                         options=options, batch_size=int(section["batch_size"]),
                         seed=int(params["seed"]), videos_per_task=int(section.get("videos_per_task", 8)),
                         device=str(section.get("device", "auto")))


def extractor_specs(params: dict[str, Any]) -> dict[str, ExtractorSpec]:
    return {name: extractor_spec(params, name) for name in params.get("features", {})}


def check_runnable(spec: ExtractorSpec, *, external: bool) -> None:
    """Fail before starting workers on what can be known here: the device's spelling and, for a
    LocalCluster (this machine; not `external`), that a CUDA device asked for exists and that the device
    runs a reduced precision. `auto` or `cpu` in fp32 run anywhere: then torch is not imported here (3 s
    of the stage's start)."""
    precision = str(spec.options.get("precision", "fp32"))
    try:
        check_device_name(spec.device)
        if not external and (precision != "fp32" or spec.device.startswith("cuda")):
            from pipeline.extractors.base import check_precision

            check_precision(spec.name, precision, this_machine(spec.device))
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"features.{spec.name}: {exc}") from None

"""Which caches a trained head needs, in the order they are computed, and what each stage would record.

A head reads feature caches (`head.inputs()`); each extractor reads upstream caches (`features.inputs.SOURCES`
by its input kind): "decode", "faces" or another extractor ("mfcc"). `cache_order` walks that graph, so
predict computes exactly the chain the DVC stages compute, nothing more:

    vaanet ─> r3d101_conv5 <─ decode        caan ─> vggface_fc6 <─ faces <─ decode
           └> mfcc_resnet18 <─ mfcc <─ decode     └> vgg16_fc6   <─ faces, decode

`expected_hashes` gives the configuration hash each cache would carry if the stages ran with the given
configurations (the same dictionaries the stages hash), to compare with the hashes the checkpoint recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config import config_hash
from pipeline.decode import DecodeConfig
from pipeline.decode_run import decode_config_dict
from pipeline.extractors import get_extractor
from pipeline.faces.detect import FaceConfig
from pipeline.faces.run import faces_config
from pipeline.features.compute import ExtractorSpec
from pipeline.features.inputs import SOURCES
from pipeline.features.run import feature_config

STAGE_CACHES = ("decode", "faces")
DECODE_OUTPUTS = {  # extractor input kind -> the decode outputs it reads (directly or through faces)
    "snippets": ("snippets",), "frames": ("frames",), "face_crops": ("frames",), "keyframes": ("keyframes",),
    "audio": ("audio",), "spectrograms": ("audio",), "mfcc": (),
}


@dataclass(frozen=True)
class Plan:
    """The caches to compute, upstream first, and the configurations to compute them with."""

    order: tuple[str, ...]  # e.g. ("decode", "mfcc", "mfcc_resnet18", "r3d101_conv5")
    decode: DecodeConfig
    faces: FaceConfig
    specs: dict[str, ExtractorSpec] = field(default_factory=dict)  # extractor name -> spec



def sources_of(name: str) -> tuple[str, ...]:
    """The caches that cache `name` is computed from."""
    if name == "decode":
        return ()
    if name == "faces":
        return ("decode",)
    return SOURCES[get_extractor(name).input_kind]


def cache_order(needed: set[str]) -> tuple[str, ...]:
    """`needed` and every cache upstream of it, each after its sources."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for source in sources_of(name):
            visit(source)
        order.append(name)

    for name in sorted(needed):
        visit(name)
    return tuple(order)


def decode_outputs(order: tuple[str, ...]) -> tuple[str, ...]:
    """The decode outputs the extractors of `order` read (a subset of `decode.OUTPUTS`, in its order)."""
    wanted = {o for n in order if n not in STAGE_CACHES for o in DECODE_OUTPUTS[get_extractor(n).input_kind]}
    return tuple(o for o in DecodeConfig().outputs if o in wanted)


def make_plan(needed: set[str], *, decode: DecodeConfig, faces: FaceConfig,
              specs: dict[str, ExtractorSpec]) -> Plan:
    """The plan for the caches `needed`; `specs` must hold a spec for every extractor in the chain."""
    order = cache_order(needed)
    missing = [n for n in order if n not in STAGE_CACHES and n not in specs]
    if missing:
        raise KeyError(f"no extractor configuration for {missing} (params.yaml `features:`)")
    return Plan(order, decode, faces, {n: specs[n] for n in order if n not in STAGE_CACHES})


def expected_hashes(plan: Plan, weights: dict[str, str]) -> dict[str, str]:
    """Cache name -> the configuration hash the DVC stages would record for it with `plan`'s configurations
    (`weights`: extractor -> "random", "none" or sha256, as the cache records it)."""
    hashes: dict[str, str] = {}
    for name in plan.order:
        if name == "decode":
            hashes[name] = config_hash(decode_config_dict(plan.decode))
        elif name == "faces":
            hashes[name] = config_hash(faces_config(plan.faces, hashes["decode"]))
        else:
            upstream = {s: hashes[s] for s in sources_of(name)}
            hashes[name] = config_hash(feature_config(plan.specs[name], weights[name], upstream))
    return hashes

"""Which caches a trained head needs, in the order they are computed, and what each stage would record.

A head reads feature caches (`head.inputs()`); each extractor reads upstream caches (`graph.sources_of`):
"decode", "faces" or another extractor ("mfcc"). `graph.cache_order` walks that graph, so predict
computes exactly the chain the DVC stages compute, nothing more:

    vaanet ─> r3d101_conv5 <─ decode        caan ─> vggface_fc6 <─ faces <─ decode
           └> mfcc_resnet18 <─ mfcc <─ decode     └> vgg16_fc6   <─ faces, decode

`expected_hashes` gives the configuration hash each cache would carry if the stages ran with the given
configurations (the same dictionaries the stages hash), to compare with the hashes the checkpoint recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config import config_hash
from pipeline.decode.config import DecodeConfig, decode_cache_config
from pipeline.faces.config import FaceConfig, faces_cache_config
from pipeline.features.config import ExtractorIdentity, ExtractorSpec, feature_cache_config
from pipeline.graph import STAGE_SOURCES, cache_order, sources_of


@dataclass(frozen=True)
class Plan:
    """The caches to compute, upstream first, and the configurations to compute them with."""

    order: tuple[str, ...]  # e.g. ("decode", "mfcc", "mfcc_resnet18", "r3d101_conv5")
    decode: DecodeConfig
    faces: FaceConfig
    specs: dict[str, ExtractorSpec] = field(default_factory=dict)  # extractor name -> spec



def make_plan(needed: set[str], *, decode: DecodeConfig, faces: FaceConfig,
              specs: dict[str, ExtractorSpec]) -> Plan:
    """The plan for the caches `needed`; `specs` must hold a spec for every extractor in the chain."""
    order = cache_order(needed)
    missing = [n for n in order if n not in STAGE_SOURCES and n not in specs]
    if missing:
        raise KeyError(f"no extractor configuration for {missing} (params.yaml `features:`)")
    return Plan(order, decode, faces, {n: specs[n] for n in order if n not in STAGE_SOURCES})


def expected_hashes(plan: Plan, identities: dict[str, ExtractorIdentity]) -> dict[str, str]:
    """Cache name -> the configuration hash the DVC stages would record for it with `plan`'s configurations
    (`identities`: extractor -> its weights and code versions, as the cache records them)."""
    hashes: dict[str, str] = {}
    for name in plan.order:
        if name == "decode":
            hashes[name] = config_hash(decode_cache_config(plan.decode))
        elif name == "faces":
            hashes[name] = config_hash(faces_cache_config(plan.faces, hashes["decode"]))
        else:
            upstream = {s: hashes[s] for s in sources_of(name)}
            hashes[name] = config_hash(feature_cache_config(plan.specs[name], identities[name], upstream))
    return hashes

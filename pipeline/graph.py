"""The stage graph: which caches each cache is computed from, and which caches each head reads.

    decode ─┬─> faces ─┬─> face_crops extractors (vggface_fc6)
            │          └─> frames extractors (vgg16_fc6: whole frames, those with a face)  <─ decode
            ├─> snippets, keyframes, audio, spectrograms extractors
            └─> mfcc ─> mfcc extractors (mfcc_resnet18)
    feature caches ─> heads (each declares the caches it reads: `Head.inputs()`)

An extractor's sources follow from its input kind (`INPUT_SOURCES`); DVC's stage definitions, the feature
stages, `vemo predict`'s plan and the heads' stages all read them here. dvc.yaml takes the per-entry lists
from `stage_graph.yaml`, which `vemo graph` writes from params.yaml and this module (a test keeps the
committed file in step).
"""

from __future__ import annotations

from pipeline.decode.config import OUTPUTS

STAGE_SOURCES: dict[str, tuple[str, ...]] = {"decode": (), "faces": ("decode",)}
"""The caches made by a stage of their own, not by an extractor."""

INPUT_SOURCES: dict[str, tuple[str, ...]] = {
    "snippets": ("decode",),
    "frames": ("decode", "faces"),
    "face_crops": ("faces",),
    "keyframes": ("decode",),
    "audio": ("decode",),
    "spectrograms": ("decode",),
    "mfcc": ("mfcc",),
}
"""Extractor input kind -> the caches its rows are read from (`features.inputs` reads them)."""

DECODE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "snippets": ("snippets",), "frames": ("frames",), "face_crops": ("frames",), "keyframes": ("keyframes",),
    "audio": ("audio",), "spectrograms": ("audio",), "mfcc": (),
}
"""Extractor input kind -> the decode outputs it needs, directly or through faces or another cache."""


def input_kind(extractor: str) -> str:
    from pipeline.extractors import get_extractor

    return get_extractor(extractor).input_kind


def sources_of(cache: str) -> tuple[str, ...]:
    """The caches that cache `cache` (a stage's or an extractor's) is computed from."""
    if cache in STAGE_SOURCES:
        return STAGE_SOURCES[cache]
    return INPUT_SOURCES[input_kind(cache)]


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
    """The decode outputs the extractors of `order` read (a subset of `decode.config.OUTPUTS`, in order)."""
    wanted = {o for n in order if n not in STAGE_SOURCES for o in DECODE_OUTPUTS[input_kind(n)]}
    return tuple(o for o in OUTPUTS if o in wanted)

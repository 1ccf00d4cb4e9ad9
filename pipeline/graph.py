"""The stage graph: which caches each cache is computed from; a head declares the caches it reads.

    decode ─┬─> faces ─┬─> face_crops extractors (vggface_fc6)
            │          └─> frames extractors (vgg16_fc6: whole frames, those with a face)  <─ decode
            ├─> snippets, keyframes, audio, spectrograms extractors
            └─> mfcc ─> mfcc extractors (mfcc_resnet18)
    feature caches ─> heads (each declares the caches it reads: `Head.inputs()`)

An extractor's sources follow from its input kind (`INPUT_SOURCES`); a head's caches from its options
(`heads.head_caches`). The feature stages, the head stages and `vemo predict`'s plan read them here, and
so does DVC: dvc.yaml takes the per-entry dependency lists from `stage_graph.yaml` (`STAGE_GRAPH_FILE`),
which `vemo graph` writes from params.yaml (`pipeline.dvc_graph`); a test keeps the committed file in step.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.decode.config import OUTPUTS
from pipeline.errors import ConfigError

STAGE_GRAPH_FILE = Path("stage_graph.yaml")

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
    """The input kind of a registered extractor, one of `INPUT_SOURCES` (a built-in's from its card,
    without importing torch)."""
    from pipeline.extractors.catalog import card_of

    try:
        kind = card_of(extractor).input_kind
    except KeyError as exc:
        raise ConfigError(exc.args[0]) from None
    if kind not in INPUT_SOURCES:
        raise ConfigError(f"extractor {extractor!r} reads input kind {kind!r}, which the stage graph does "
                          f"not know (pipeline/graph.py INPUT_SOURCES: {', '.join(INPUT_SOURCES)})")
    return kind


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


def unlisted(graph_file: Path, section: str, key: str, caches: tuple[str, ...]) -> str | None:
    """Why DVC would not re-run stage `key` of `section` ("feature_stages", "head_stages") when one of the
    `caches` it reads changes (the written stage graph does not list it), or None when it does."""
    field = "sources" if section == "feature_stages" else "caches"
    written = yaml.safe_load(graph_file.read_text(encoding="utf-8")) if graph_file.is_file() else {}
    listed = set(((written or {}).get(section) or {}).get(key, {}).get(field, []))
    missing = sorted(set(caches) - listed)
    if not missing:
        return None
    return (f"{key} reads {', '.join(missing)}, which {graph_file} does not list as its dependency: "
            "run `vemo graph` (params.yaml changed which caches it reads)")

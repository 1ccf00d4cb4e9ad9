"""The contract every head implements, and the registry `params.yaml` picks heads from.

A head is a small `nn.Module` trained on cached tensors. The trainer (``pipeline.training``) knows nothing
about any head: it reads the arrays a head asks for, batches them, and calls

    out = head(batch)                     # dict of tensors; out["logits"] is (B, C)
    parts = head.loss(out, batch)         # dict of scalar tensors; parts["loss"] is what is minimised

Batch conventions (built by ``pipeline.training.data``; B videos per batch):

    batch["label"]        (B,) long      class index
    batch[<input key>]    (B, ...) float32, one per entry of ``head.inputs()``
    batch[<key>_mask]     (B, L) bool    for a "sequence" input: True where a row is real (padding False)
    batch["audio_present"](B,) bool      False for a video without an audio track (its audio is all zero)

``head.inputs()`` declares what to read: {batch key: InputSpec(cache, array, kind)}. ``kind`` is
"views" (the cached array is (V, ...): a training view is drawn per epoch, view 0 is the test view),
"sequence" (variable rows, padded with a mask) or "fixed" (same shape for every video).

``head.saved`` names the entries of ``out`` kept per video in the predictions (attention weights, scores):
each is (B, ...) and is stored without its batch dimension.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from pipeline.registry import Registry

InputKind = Literal["views", "sequence", "fixed"]


@dataclass(frozen=True)
class InputSpec:
    """Where one batch entry comes from: `array` of `cache/<dataset>/<cache>.h5`, read as `kind`."""

    cache: str
    array: str
    kind: InputKind = "fixed"


class Head(nn.Module):
    """Base class: subclasses set `name`, implement `inputs`, `forward` and `loss`."""

    name: ClassVar[str]
    saved: ClassVar[tuple[str, ...]] = ()

    def inputs(self) -> dict[str, InputSpec]:
        raise NotImplementedError

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError


HeadBuilder = Callable[..., Head]
HEADS: Registry[HeadBuilder] = Registry("head")


def register_head(name: str) -> Callable[[HeadBuilder], HeadBuilder]:
    """Register a builder `(*, num_classes, polarity, **options) -> Head` under `name`."""
    return HEADS.register(name)


def build_head(name: str, **kwargs: object) -> Head:
    return HEADS.get(name)(**kwargs)


def head_accepts(name: str, option: str) -> bool:
    """Whether the builder of head `name` takes the keyword `option` (e.g. "segments")."""
    return option in inspect.signature(HEADS.get(name)).parameters


def list_heads() -> list[str]:
    return HEADS.names()


def sample_head(name: str, options: dict[str, object]) -> Head:
    """Head `name` built with `options` for two classes of opposite polarity, which satisfy every head's
    builder: to ask what it reads, or to have its builder refuse a wrong option value (`params_names`)."""
    return build_head(name, num_classes=2, polarity=torch.tensor([1, -1]), **options)


def head_caches(name: str, options: dict[str, object]) -> tuple[str, ...]:
    """The caches head `name` reads with `options`, in the order of its inputs (each once), asked of the
    built head (`Head.inputs()`)."""
    return tuple(dict.fromkeys(spec.cache for spec in sample_head(name, options).inputs().values()))

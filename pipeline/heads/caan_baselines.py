"""Average-aggregate baselines of the CAAN paper (Liu et al. 2021, Section 5.2, Table 3): FAA, CAA, FFAA.

The attention of CAAN is replaced by a plain mean over the video's real (face) frames::

    FAA   face fc6 (B, N, 4096)    -> masked mean -----------------------------+
    CAA   context fc6 (B, N, 4096) -> masked mean -----------------------------+-> FC -> ReLU -> FC -> logits
    FFAA  face, context -> FC 1024 each -> fusion FC 2048 (per frame) -> mean -+

FFAA: the paper passes both fc6 features "through a fully connected layer with 1024 neurons and then
fused", the same words it uses for CAAN itself, so the fusion here is CAAN's per-frame fusion layer
(concatenation -> FC ``fusion_dim`` + ReLU, :class:`pipeline.heads.caan.FrameFusion`) and the mean is taken
over the fused frame features; only the aggregation differs from CAAN. The hidden width of the two FC
layers is not given: ``hidden_dim`` (1024). Videos with no face frame get zero logits, ``valid`` False and
no loss, as in CAAN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.heads.base import Head, InputSpec, register_head
from pipeline.heads.caan import (
    STREAM_INPUTS,
    FrameFusion,
    Streams,
    frame_mask,
    masked_mean_loss,
    stream_inputs,
    zero_padding,
)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the real rows: x (B, N, F), mask (B, N) -> (B, F); zeros for a video with no real row."""
    total = zero_padding(x, mask).sum(dim=1)
    return total / mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)


class AverageAggregate(Head):
    """FAA / CAA / FFAA: masked mean over frames, then two FC layers and softmax.

    Inputs: ``face`` and/or ``context`` (B, N, 4096) with their masks. Output: ``logits`` (B, C),
    ``pooled`` (B, F) the averaged feature, ``valid`` (B,) bool.
    """

    name = "caan_average"

    def __init__(self, *, num_classes: int, streams: Streams, in_dims: dict[str, int], proj_dim: int,
                 fusion_dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        if streams not in STREAM_INPUTS:
            raise ValueError(f"unknown streams {streams!r}; use one of {sorted(STREAM_INPUTS)}")
        self.streams, self.keys = streams, STREAM_INPUTS[streams]
        fused = len(self.keys) > 1
        self.fusion = FrameFusion(keys=self.keys, in_dims=in_dims, proj_dim=proj_dim, fusion_dim=fusion_dim,
                                  dropout=0.0) if fused else None
        pooled_dim = self.fusion.out_dim if self.fusion is not None else in_dims[self.keys[0]]
        self.classifier = nn.Sequential(nn.Linear(pooled_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden_dim, num_classes))

    def inputs(self) -> dict[str, InputSpec]:
        return stream_inputs(self.streams)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = frame_mask(batch, self.keys)
        valid = mask.any(dim=1)
        frames = self.fusion(batch, mask) if self.fusion is not None else batch[self.keys[0]]
        pooled = masked_mean(frames, mask)
        logits = self.classifier(pooled).masked_fill(~valid.unsqueeze(-1), 0.0)
        return {"logits": logits, "pooled": pooled, "valid": valid}

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(out["logits"], batch["label"], reduction="none")
        return {"loss": masked_mean_loss(ce, out["valid"])}


@register_head("caan_average")
def build_caan_average(
    *,
    num_classes: int,
    polarity: torch.Tensor | None = None,
    # "face" = FAA, "context" = CAA, "fusion" = FFAA
    streams: Streams = "fusion",
    face_dim: int = 4096,
    context_dim: int = 4096,
    proj_dim: int = 1024,
    fusion_dim: int = 2048,
    hidden_dim: int = 1024,
    dropout: float = 0.5,
) -> AverageAggregate:
    """FAA / CAA / FFAA baseline; polarity is unused."""
    return AverageAggregate(num_classes=num_classes, streams=streams,
                            in_dims={"face": face_dim, "context": context_dim}, proj_dim=proj_dim,
                            fusion_dim=fusion_dim, hidden_dim=hidden_dim, dropout=dropout)

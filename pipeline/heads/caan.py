"""CAAN: context-aware attention network (Liu et al., Advances in Multimedia 2021, Section 4.2).

Per video, n frames with a detected face give a face fc6 x_i (VGG-Face) and a context fc6 c_i (VGG16 on
the whole frame), aligned row by row. The attention fusion network::

    x_i (B, N, 4096) -> FC 1024 -+
                                 +-> fusion FC 2048 -> r_i -> g_i = W1 r_i + b1 (B, N, D)
    c_i (B, N, 4096) -> FC 1024 -+                              |        |
                                                                |        +-> frame classifier (softmax loss)
                                                   s_i = 1CF/2CF/3CF(g_i)
                                                                |
                       R_V = sum_i g_i s_i / sum_i s_i  (B, D) -+-> triplet loss on R_V / |R_V|
                                                                +-> video classifier -> logits (B, C)

Choices where the paper is silent (all builder options):

- Score normalisation. Eq. (3) writes s_i linear, but eq. (4) needs positive weights. ``score="softmax"``
  (default) uses exp(s_i), so eq. (4) becomes a softmax over the video's real frames; ``score="sigmoid"``
  uses sigmoid(s_i) and divides by the sum, as in the quality-aware network the paper builds on. Either way
  ``frame_scores`` holds the normalised weights: positive on real frames, summing to 1, 0 on padding.
- The score branch reads g_i, as eq. (3) writes it (not r_i); hidden score layers have ``score_dim`` units
  and ReLU. The face-only / context-only networks have nothing to fuse: r_i is that stream's FC 1024.
- Triplet loss: FaceNet's squared Euclidean distance on L2-normalised R_V with margin 0.2, batch-hard
  mining (Hermans et al. 2017): with few videos per class in a batch, each anchor contributes exactly one
  triplet, its hardest, so every video weighs the same and the easy triplets do not dilute the mean.
- Loss weights: the paper gives none, so video CE + 1.0 * frame CE + 1.0 * triplet. Frame CE is averaged
  over each video's real frames, then over videos, so long videos do not dominate.
- Videos with no face frame (mask all False): zero logits, zero scores, ``out["valid"]`` False, and no part
  of the loss; the trainer decides how to score them.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.heads.base import Head, InputSpec, register_head

Streams = Literal["fusion", "face", "context"]
ScoreNorm = Literal["softmax", "sigmoid"]

FACE = InputSpec("vggface_fc6", "fc6", "sequence")
CONTEXT = InputSpec("vgg16_fc6", "fc6", "sequence")
STREAM_INPUTS: dict[str, tuple[str, ...]] = {
    "fusion": ("face", "context"), "face": ("face",), "context": ("context",),
}


def stream_inputs(streams: str) -> dict[str, InputSpec]:
    """The batch keys a face / context / fusion variant reads."""
    specs = {"face": FACE, "context": CONTEXT}
    return {key: specs[key] for key in STREAM_INPUTS[streams]}


def frame_mask(batch: dict[str, torch.Tensor], keys: tuple[str, ...]) -> torch.Tensor:
    """(B, N) bool: a frame is real when it is real in every stream read (the streams are aligned)."""
    mask = batch[f"{keys[0]}_mask"]
    for key in keys[1:]:
        mask = mask & batch[f"{key}_mask"]
    return mask


def zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x (B, N, F) with padded rows set to 0, so that garbage there (even NaN) cannot leak into sums."""
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


class FrameFusion(nn.Module):
    """Per-frame features r_i (B, N, out_dim) from the streams read; eq. (1) when both are read.

    Each stream goes through FC ``proj_dim`` + ReLU; with two streams the projections are concatenated and
    fused by an FC ``fusion_dim`` + ReLU layer, with one stream the projection is r_i itself.
    """

    def __init__(self, *, keys: tuple[str, ...], in_dims: dict[str, int], proj_dim: int, fusion_dim: int,
                 dropout: float) -> None:
        super().__init__()
        self.keys = keys
        self.proj = nn.ModuleDict({k: nn.Sequential(nn.Linear(in_dims[k], proj_dim), nn.ReLU())
                                   for k in keys})
        fused = len(keys) > 1
        self.fuse = nn.Sequential(nn.Linear(proj_dim * len(keys), fusion_dim), nn.ReLU()) if fused else None
        self.drop = nn.Dropout(dropout)
        self.out_dim = fusion_dim if fused else proj_dim

    def forward(self, batch: dict[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        parts = [self.proj[k](zero_padding(batch[k], mask)) for k in self.keys]
        r = self.fuse(torch.cat(parts, dim=-1)) if self.fuse is not None else parts[0]
        return self.drop(r)


def score_network(*, in_dim: int, layers: int, hidden: int) -> nn.Sequential:
    """1CF / 2CF / 3CF: ``layers`` FC layers (ReLU between) ending in one unit; (..., in_dim) -> (..., 1)."""
    if layers < 1:
        raise ValueError(f"the score network needs at least one layer, got {layers}")
    dims = [in_dim] + [hidden] * (layers - 1)
    blocks: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
        blocks += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(dims[-1], 1))


def normalise_scores(s: torch.Tensor, mask: torch.Tensor, how: ScoreNorm) -> torch.Tensor:
    """Raw scores s (B, N) -> weights (B, N): positive on real frames, summing to 1 per video, 0 on padding.

    A video with no real frame gets all-zero weights (no NaN).
    """
    valid = mask.any(dim=1, keepdim=True)
    if how == "softmax":
        s = s.masked_fill(~mask, float("-inf")).masked_fill(~valid, 0.0)
        return torch.softmax(s, dim=1) * mask
    if how == "sigmoid":
        w = torch.sigmoid(s) * mask
        return w / w.sum(dim=1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    raise ValueError(f"unknown score normalisation {how!r}; use 'softmax' or 'sigmoid'")


def aggregate(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Eq. (4) with normalised weights: R_V = sum_i w_i g_i; g (B, N, D), w (B, N) -> (B, D)."""
    return torch.einsum("bn,bnd->bd", w, g)


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
                            margin: float) -> torch.Tensor:
    """FaceNet triplet loss with batch-hard mining on L2-normalised embeddings (B, D); scalar.

    Distance is squared Euclidean. Each valid anchor takes its farthest positive (same label, another
    video) and its closest negative; loss = mean over anchors having both of max(d_ap - d_an + margin, 0).
    Rows with ``valid`` False are ignored. 0 (still in the graph) when no anchor has a triplet.
    """
    e = F.normalize(embeddings, dim=-1)
    dist = (e.unsqueeze(1) - e.unsqueeze(0)).pow(2).sum(-1)
    pair = valid.unsqueeze(0) & valid.unsqueeze(1)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = pair & same & ~eye, pair & ~same
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(~neg, float("inf")).amin(dim=1)
    has = pos.any(dim=1) & neg.any(dim=1)
    if not has.any():
        return embeddings.sum() * 0.0
    return F.relu(hardest_pos[has] - hardest_neg[has] + margin).mean()


def masked_mean_loss(per_row: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of per_row (B,) over valid rows; 0 (in the graph) when none is valid."""
    return (per_row * valid).sum() / valid.sum().clamp_min(1)


class CAAN(Head):
    """Attention fusion network over a video's face frames.

    Inputs: ``face`` (B, N, face_dim) and/or ``context`` (B, N, context_dim) with their (B, N) masks.
    Output: ``logits`` (B, C) video classifier, ``frame_logits`` (B, N, C), ``frame_scores`` (B, N)
    normalised weights, ``embedding`` (B, D) = R_V, ``valid`` (B,) bool (at least one real frame).
    """

    name = "caan"
    saved = ("frame_scores",)

    def __init__(self, *, num_classes: int, streams: Streams, score_layers: int, in_dims: dict[str, int],
                 proj_dim: int, fusion_dim: int, feature_dim: int, score_dim: int, score: ScoreNorm,
                 triplet_margin: float, triplet_weight: float, frame_weight: float, dropout: float) -> None:
        super().__init__()
        if streams not in STREAM_INPUTS:
            raise ValueError(f"unknown streams {streams!r}; use one of {sorted(STREAM_INPUTS)}")
        if score not in ("softmax", "sigmoid"):
            raise ValueError(f"unknown score normalisation {score!r}; use 'softmax' or 'sigmoid'")
        self.streams, self.score = streams, score
        self.keys = STREAM_INPUTS[streams]
        self.fusion = FrameFusion(keys=self.keys, in_dims=in_dims, proj_dim=proj_dim, fusion_dim=fusion_dim,
                                  dropout=dropout)
        self.feature = nn.Linear(self.fusion.out_dim, feature_dim)
        self.frame_classifier = nn.Linear(feature_dim, num_classes)
        self.scorer = score_network(in_dim=feature_dim, layers=score_layers, hidden=score_dim)
        self.video_classifier = nn.Linear(feature_dim, num_classes)
        self.triplet_margin = triplet_margin
        self.triplet_weight, self.frame_weight = triplet_weight, frame_weight

    def inputs(self) -> dict[str, InputSpec]:
        return stream_inputs(self.streams)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = frame_mask(batch, self.keys)
        valid = mask.any(dim=1)
        g = self.feature(self.fusion(batch, mask))
        weights = normalise_scores(self.scorer(g).squeeze(-1), mask, self.score)
        embedding = aggregate(g, weights)
        logits = self.video_classifier(embedding).masked_fill(~valid.unsqueeze(-1), 0.0)
        frame_logits = self.frame_classifier(g).masked_fill(~mask.unsqueeze(-1), 0.0)
        return {"logits": logits, "frame_logits": frame_logits, "frame_scores": weights,
                "embedding": embedding, "valid": valid}

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        label, valid = batch["label"], out["valid"]
        video_ce = masked_mean_loss(F.cross_entropy(out["logits"], label, reduction="none"), valid)
        frame_ce = masked_mean_loss(self.frame_loss(out["frame_logits"], label, batch), valid)
        triplet = batch_hard_triplet_loss(out["embedding"], label, valid, self.triplet_margin)
        total = video_ce + self.frame_weight * frame_ce + self.triplet_weight * triplet
        return {"loss": total, "video_ce": video_ce, "frame_ce": frame_ce, "triplet": triplet}

    def frame_loss(self, frame_logits: torch.Tensor, label: torch.Tensor,
                   batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) softmax loss of each frame against its video's label, averaged over the real frames."""
        mask = frame_mask(batch, self.keys)
        target = label.unsqueeze(1).expand(mask.shape)
        ce = F.cross_entropy(frame_logits.transpose(1, 2), target, reduction="none") * mask
        return ce.sum(dim=1) / mask.sum(dim=1).clamp_min(1)


@register_head("caan")
def build_caan(
    *,
    num_classes: int,
    polarity: torch.Tensor | None = None,
    # which network: "fusion" (CAAN), "face" or "context" (single-stream attention networks)
    streams: Streams = "fusion",
    # score network depth per variant (paper's defaults: 3CF fusion and context, 1CF face)
    face_layers: int = 1,
    context_layers: int = 3,
    fusion_layers: int = 3,
    score_dim: int = 512,
    score: ScoreNorm = "softmax",
    # widths
    face_dim: int = 4096,
    context_dim: int = 4096,
    proj_dim: int = 1024,
    fusion_dim: int = 2048,
    feature_dim: int = 1024,
    dropout: float = 0.5,
    # losses
    triplet_margin: float = 0.2,
    triplet_weight: float = 1.0,
    frame_weight: float = 1.0,
) -> CAAN:
    """CAAN (``streams="fusion"``) or its face-only / context-only attention networks. Polarity is unused."""
    layers = {"face": face_layers, "context": context_layers, "fusion": fusion_layers}
    if streams not in layers:
        raise ValueError(f"unknown streams {streams!r}; use one of {sorted(layers)}")
    return CAAN(num_classes=num_classes, streams=streams, score_layers=layers[streams],
                in_dims={"face": face_dim, "context": context_dim}, proj_dim=proj_dim, fusion_dim=fusion_dim,
                feature_dim=feature_dim, score_dim=score_dim, score=score, triplet_margin=triplet_margin,
                triplet_weight=triplet_weight, frame_weight=frame_weight, dropout=dropout)

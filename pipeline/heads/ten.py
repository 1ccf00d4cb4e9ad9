"""TEN: cross-modal temporal erasing network (Zhang, Wang and Yang, CVPR 2023, Sections 3.2-3.4).

Inputs are T segment features per modality, C = C' = ``dim``: visual F_v (B, T, 2048) from the 3D ResNet-101
(conv5, spatially average-pooled) and audio F_a (B, T, 2048) from the MFCC 2D ResNet-50. One pass::

    F_v ─┬─ intra: F'_v  = F_v + W_z S(Q_v, K_v) V_v ───────┐
         └─ inter: F''_v = F_v + W_v S(Q_v, K_a) V_a ──┐     +──> X_v = F'_v + F''_v (B, T, dim)
    F_a ─┬─ inter: F''_a = F_a + W_a S(Q_a, K_v) V_v ──┘     +──> X_a = F'_a + F''_a
         └─ intra: F'_a  = F_a + W'_z S(Q_a, K_a) V_a ──────┘
    X_m ──> temporal attention A_m = ReLU(W1 (W2 X_m^T)^T) (B, T) ──> min-max ──> A*_m (B, T)
    pooled_m = mean_t A_m[t] X_m[t] (B, dim);  [pooled_v, pooled_a] (B, 2 dim) ──> classifier ──> logits

Temporal erasing (eq. 9): a segment is a keyframe when A*_v >= theta and A*_a >= theta. The keyframes, and
the rest, each form a new video that goes through the same network again; the loss (eq. 12) is
CE(original) + CE(keyframes only) + CE(the rest). ``logits`` always come from the original video, which is
all that inference uses.

Choices where the paper is silent (facts checked in the authors' public code, nku-zhichengzhang/CTEN,
``models/vaanet_erase.py``, ``models/visual_stream_w_Erase.py``, ``train.py``, ``core/utils.py``):

- Attention widths. Q, K, V are linear maps dim -> ``d_k`` (256, the code's non-local inner width and its
  per-head width in the cross-modal attention), S = softmax(Q K^T / sqrt(d_k)) row-wise, and W_z, W_v, W_a
  map d_k -> dim. One head. Residuals as eqs. (4) and (6) write them (the code scales F by a learned alpha
  initialised to 0 in its non-local block and chains intra then inter; we follow the paper).
- Temporal attention (eq. 7, "following VAANet"): W2 is a 1 x dim map (no bias), then BatchNorm + tanh as
  in VAANet's and TEN's code, then W1 is a T x T map with bias initialised to 1, then ReLU. W1 needs a
  fixed T, which is why erased videos are resampled to T segments (next point).
- Erased videos. The code re-samples T snippets from the frames of the kept segments (TSN over the kept
  frames) and re-extracts them. From cached features we do the nearest equivalent: new segment j is kept
  segment number floor((j + 1/2) K / T) of the K kept ones, in time order (the centre of part j of the
  kept frames); the same index is applied to both modalities. ``keyframes_index`` / ``rest_index`` (B, T)
  in the output record which original segment each new one reads.
- Empty selections. With no keyframe (possible: the two modalities' maxima can differ) the "keyframes
  only" video is the original video; with only keyframes (theta = 0, or constant attention) "the rest" is
  the original video. This is the code's fallback for an empty selection; the loss stays defined.
- Constant attention (max = min) normalises to all zeros (no NaN), so no segment is singled out.
- Pooling: the attended sequence becomes one vector by the attention-weighted mean over segments with the
  raw (ReLU) attention, per modality (VAANet and TEN code); A* is used only to erase. The two pooled
  vectors are concatenated ("we concentrate them together along with their dimension").
- Classifier: dropout 0.2 (code), then FC ``hidden`` (4096) + ReLU + dropout, then FC to C classes.
  The paper's "last fully-connected layer designed with 4,096 neurons" is ambiguous: the code's single FC
  reads the 4096-wide concatenation; ``hidden=None`` gives exactly that.
- Loss: the sum of eq. (12) (the code averages the three terms, a factor 1/3). The three erased passes run
  in train and eval mode alike, so validation loss means the same as training loss.
- Theta: eq. (9)'s ">=" (the code uses ">" against 0.7 max + 0.3 min, the same rule up to ties).
- Videos without audio (``batch["audio_present"]`` False): the visual stream does not attend to the
  (all-zero) audio (U_v = 0, so F''_v = F_v), the audio half of the fused vector is zero, the audio
  attention is reported as zeros, and keyframes are chosen from the visual attention alone. (An audio-only
  model sees nothing of such a video: its logits come from a zero vector.)

Switches (Table 2). "Off" means the module is not built and its residual branch is absent:
intra off: F'_m = F_m; inter off: F''_m = F_m (so with both off X_m = 2 F_m, a scale the classifier absorbs);
erasing off: one pass, loss = CE(original) (keyframes are still computed and saved, for detection).
Inter-modal attention needs both modalities: ``inter_*=None`` means on when both are used, and asking
for it with one modality is an error. Table 2's rows:

    Audio  x x x   visual=False, intra_audio=False, erasing=False
    Audio  v x x   visual=False, erasing=False
    Audio  v x v   visual=False
    Visual x x x   audio=False, intra_visual=False, erasing=False       (and so on, as for audio)
    A&V    x v x   intra_visual=False, intra_audio=False, erasing=False
    A&V    v v v   defaults

(the released code trains the visual-only erasing model, ``main.py``; audio is off there.)
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.heads.base import Head, InputSpec, register_head
from pipeline.heads.losses import build_loss

VISUAL = InputSpec("r3d101_conv5", "pooled", "views")
AUDIO = InputSpec("mfcc_resnet50", "features", "fixed")
LossName = Literal["ce", "pcce"]


class CrossAttention(nn.Module):
    """Eqs. (1)-(3) and (5): W S(Q, K) V with Q from ``query`` and K, V from ``key`` (the same for intra).

    query, key (B, T, dim) -> update W Z (B, T, dim) and S (B, T, T), each row of S summing to 1.
    """

    def __init__(self, *, dim: int, d_k: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, d_k), nn.Linear(dim, d_k), nn.Linear(dim, d_k)
        self.w = nn.Linear(d_k, dim)
        self.scale = 1.0 / math.sqrt(d_k)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.softmax(self.q(query) @ self.k(key).transpose(1, 2) * self.scale, dim=-1)
        return self.w(s @ self.v(key)), s


class TemporalAttention(nn.Module):
    """Eq. (7) with VAANet's BatchNorm + tanh: X (B, T, dim) -> A = ReLU(W1 tanh(BN(W2 X^T))^T) (B, T)."""

    def __init__(self, *, dim: int, segments: int) -> None:
        super().__init__()
        self.w2 = nn.Linear(dim, 1, bias=False)
        self.bn = nn.BatchNorm1d(1)
        self.w1 = nn.Linear(segments, segments)
        nn.init.constant_(self.w1.bias, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.bn(self.w2(x).transpose(1, 2))).squeeze(1)
        return F.relu(self.w1(h))


def min_max(a: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Eq. (8) per video: a (B, T) -> (a - min) / (max - min); a constant row gives zeros, not NaN."""
    low = a.amin(dim=1, keepdim=True)
    span = a.amax(dim=1, keepdim=True) - low
    return torch.where(span > eps, (a - low) / span.clamp_min(eps), torch.zeros_like(a))


def keyframe_mask(visual: torch.Tensor | None, audio: torch.Tensor | None, theta: float,
                  audio_present: torch.Tensor) -> torch.Tensor:
    """Eq. (9): (B, T) bool, True where every used modality's A* >= theta.

    visual / audio: (B, T) normalised attention, None for an unused modality. Where ``audio_present`` (B,)
    is False only the visual attention counts (an audio-only model then selects nothing).
    """
    if audio is None:
        return visual >= theta
    heard = audio >= theta
    if visual is None:
        return heard
    return (visual >= theta) & (heard | ~audio_present.unsqueeze(1))


def resample_index(keep: torch.Tensor) -> torch.Tensor:
    """keep (B, T) bool -> (B, T) long: which original segment each segment of the new video reads.

    The K kept segments, in time order, are spread over T new segments: new j reads kept number
    floor((2j + 1) K / 2T). A row with nothing kept keeps everything (the original video).
    """
    b, t = keep.shape
    keep = keep | ~keep.any(dim=1, keepdim=True)
    count = keep.sum(dim=1, keepdim=True)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    j = torch.arange(t, device=keep.device).expand(b, t)
    return order.gather(1, (2 * j + 1) * count // (2 * t))


def take_segments(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, T, D), index (B, T) long -> (B, T, D) with row j = x[:, index[:, j]]."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def classifier(*, in_dim: int, hidden: int | None, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout, [FC hidden + ReLU + dropout], FC num_classes; (B, in_dim) -> (B, C)."""
    if hidden is None:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_classes))
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


class TEN(Head):
    """Cross-modal temporal erasing network over T segments of visual and/or audio features.

    Inputs: ``visual`` (B, T, dim) and/or ``audio`` (B, T, dim); ``audio_present`` (B,) bool (optional).
    Output: ``logits`` (B, C) of the original video; ``temporal_visual`` / ``temporal_audio`` (B, T)
    normalised attention A* (zeros for an unused or absent modality); ``keyframes`` (B, T) float 0/1;
    with erasing also ``logits_keyframes`` / ``logits_rest`` (B, C) and ``keyframes_index`` /
    ``rest_index`` (B, T) long.
    """

    name = "ten"
    saved = ("temporal_visual", "temporal_audio", "keyframes")

    def __init__(self, *, num_classes: int, modalities: tuple[str, ...], intra: dict[str, bool],
                 inter: dict[str, bool], segments: int, dim: int, d_k: int, hidden: int | None, theta: float,
                 erasing: bool, dropout: float, criterion: nn.Module) -> None:
        super().__init__()
        self.modalities, self.segments, self.theta, self.erasing = modalities, segments, theta, erasing
        self.criterion = criterion
        self.intra = nn.ModuleDict({m: CrossAttention(dim=dim, d_k=d_k) for m in modalities if intra[m]})
        self.inter = nn.ModuleDict({m: CrossAttention(dim=dim, d_k=d_k) for m in modalities if inter[m]})
        self.temporal = nn.ModuleDict({m: TemporalAttention(dim=dim, segments=segments) for m in modalities})
        self.classifier = classifier(in_dim=dim * len(modalities), hidden=hidden, num_classes=num_classes,
                                     dropout=dropout)

    def inputs(self) -> dict[str, InputSpec]:
        specs = {"visual": VISUAL, "audio": AUDIO}
        return {m: specs[m] for m in self.modalities}

    def enhance(self, feats: dict[str, torch.Tensor], present: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eqs. (4) and (6): X_m = F'_m + F''_m (B, T, dim) per modality."""
        other = {"visual": "audio", "audio": "visual"}
        out = {}
        for m, f in feats.items():
            intra = self.intra[m](f, f)[0] if m in self.intra else 0.0
            inter = self.inter[m](f, feats[other[m]])[0] if m in self.inter else 0.0
            if m == "visual" and m in self.inter:
                inter = inter * present.view(-1, 1, 1).to(f.dtype)
            out[m] = (f + intra) + (f + inter)
        return out

    def encode(self, feats: dict[str, torch.Tensor], present: torch.Tensor
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One pass: feats {m: (B, T, dim)} -> logits (B, C), {m: A*_m (B, T)}."""
        pooled, normalised = [], {}
        for m, x in self.enhance(feats, present).items():
            a = self.temporal[m](x)
            keep = present.view(-1, 1).to(x.dtype) if m == "audio" else torch.ones_like(a[:, :1])
            pooled.append((a.unsqueeze(-1) * x).mean(dim=1) * keep)
            normalised[m] = min_max(a) * keep
        return self.classifier(torch.cat(pooled, dim=-1)), normalised

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feats = {m: self.check(batch[m], m) for m in self.modalities}
        b = next(iter(feats.values())).shape[0]
        device = next(iter(feats.values())).device
        present = batch.get("audio_present", torch.ones(b, dtype=torch.bool, device=device)).to(device)
        logits, att = self.encode(feats, present)
        keyframes = keyframe_mask(att.get("visual"), att.get("audio"), self.theta, present)
        zeros = torch.zeros(b, self.segments, device=device)
        out = {"logits": logits, "temporal_visual": att.get("visual", zeros),
               "temporal_audio": att.get("audio", zeros), "keyframes": keyframes.float()}
        if self.erasing:
            out.update(self.erase(feats, present, keyframes))
        return out

    def erase(self, feats: dict[str, torch.Tensor], present: torch.Tensor, keyframes: torch.Tensor
              ) -> dict[str, torch.Tensor]:
        """Section 3.3: the keyframes-only and the rest videos through the network again (eq. 12 inputs)."""
        out = {}
        for name, keep in (("keyframes", keyframes), ("rest", ~keyframes)):
            index = resample_index(keep)
            out[f"logits_{name}"] = self.encode({m: take_segments(f, index) for m, f in feats.items()},
                                                present)[0]
            out[f"{name}_index"] = index
        return out

    def check(self, x: torch.Tensor, key: str) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.segments:
            raise ValueError(f"TEN expects {key} as (B, T={self.segments}, dim); got {tuple(x.shape)}")
        return x

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. (12): CE(original) + CE(keyframes only) + CE(the rest); CE(original) alone without erasing."""
        label = batch["label"]
        parts = {"ce_original": self.criterion(out["logits"], label)}
        if self.erasing:
            parts["ce_keyframes"] = self.criterion(out["logits_keyframes"], label)
            parts["ce_rest"] = self.criterion(out["logits_rest"], label)
        return {"loss": sum(parts.values()), **parts}


def resolve_inter(inter: bool | None, modalities: tuple[str, ...], name: str) -> bool:
    """``None`` -> on when both modalities are used; True with one modality is an error."""
    both = len(modalities) == 2
    if inter and not both:
        raise ValueError(f"{name}=True needs both modalities (visual and audio); this model uses "
                         f"{modalities}")
    return both if inter is None else inter


@register_head("ten")
def build_ten(
    *,
    num_classes: int,
    polarity: torch.Tensor | None = None,
    # modalities (Table 2: audio only, visual only, both)
    visual: bool = True,
    audio: bool = True,
    # modules; "off" documented in the module docstring
    intra_visual: bool = True,
    intra_audio: bool = True,
    inter_visual: bool | None = None,
    inter_audio: bool | None = None,
    erasing: bool = True,
    theta: float = 0.7,
    # widths
    segments: int = 10,
    dim: int = 2048,
    d_k: int = 256,
    hidden: int | None = 4096,
    dropout: float = 0.2,
    # loss: "ce" or "pcce" (needs polarity) for each of the three terms
    loss: LossName = "ce",
) -> TEN:
    """TEN or one of its Table 2 ablations."""
    modalities = tuple(m for m, on in (("visual", visual), ("audio", audio)) if on)
    if not modalities:
        raise ValueError("TEN needs at least one modality: set visual and/or audio to True")
    if loss not in ("ce", "pcce"):
        raise ValueError(f"unknown loss {loss!r}; use 'ce' or 'pcce'")
    if not 0.0 <= theta <= 1.0:
        raise ValueError(f"theta is a threshold on min-max normalised attention, in [0, 1]; got {theta}")
    inter = {"visual": resolve_inter(inter_visual, modalities, "inter_visual"),
             "audio": resolve_inter(inter_audio, modalities, "inter_audio")}
    return TEN(num_classes=num_classes, modalities=modalities,
               intra={"visual": intra_visual, "audio": intra_audio}, inter=inter, segments=segments, dim=dim,
               d_k=d_k, hidden=hidden, theta=theta, erasing=erasing, dropout=dropout,
               criterion=build_loss(loss, polarity=polarity))

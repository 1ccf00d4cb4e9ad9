"""TEN: cross-modal temporal erasing network (Zhang, Wang and Yang, CVPR 2023, Sections 3.2-3.4).

Inputs are T segment features per modality, C = C' = ``dim``: visual F_v (B, T, 2048) from the 3D ResNet-101
(conv5, spatially average-pooled) and audio F_a (B, T, 2048) from the MFCC 2D ResNet-50. One pass of the
paper variant (the default; the authors' code, ``variant="code"``, is described further down)::

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

Choices where the paper is silent (``variant="paper"``, the default; facts checked in the authors' public
code, nku-zhichengzhang/CTEN: ``models/vaanet_erase.py``, ``models/visual_stream_w_Erase.py``,
``train.py``, ``core/utils.py``, ``transforms/temporal.py``):

- Attention widths. Q, K, V are linear maps dim -> ``d_k`` (256, the code's non-local inner width and its
  per-head width in the cross-modal attention), S = softmax(Q K^T / sqrt(d_k)) row-wise, and W_z, W_v, W_a
  map d_k -> dim. One head. Residuals as eqs. (4) and (6) write them; the code differs (``intra_block`` and
  ``inter_block`` below).
- Temporal attention (eq. 7, "following VAANet"): W2 is a 1 x dim map (no bias), then BatchNorm + tanh as
  in VAANet's and TEN's code, then W1 is a T x T map with bias initialised to 1, as VAANet's code does
  (``models/visual_stream.py`` fills it with 1; TEN's ``vaanet_erase.py`` defines the same init routine but
  never calls it, so there W1's bias keeps PyTorch's default: ``w1_bias``), then ReLU. W1 needs a fixed T,
  which is why erased videos are brought back to T segments (next point).
- Erased videos (our choice, undocumented before). The code re-samples T snippets from the frames of the
  kept segments (TSN over the kept frames) and re-decodes them; from cached features we *stretch*: new
  segment j is kept segment number floor((j + 1/2) K / T) of the K kept ones, in time order (the centre of
  part j of the kept frames). This is what the code does when the kept frames are at least T x 16 (long
  clips); with fewer it loops them (``erase_fill``). The same index is applied to both modalities (our
  choice; the code erases the visual stream only: ``erase_audio``). ``keyframes_index`` / ``rest_index``
  (B, T) in the output record which original segment each new (visual) segment reads.
- Empty selections. With no keyframe (possible: the two modalities' maxima can differ) the "keyframes
  only" video is the original video, as the code's ``batch_augment2`` falls back to all frames; with only
  keyframes (theta = 0, or constant attention) "the rest" is the original video too. That second fallback
  is ours: the code's ``batch_augment`` (the rest) has it commented out, so an empty rest there raises in
  its temporal sampler, the bare ``except`` swallows it, and the sample reuses the previous sample's frame
  indices (or fails for the first). With one joint threshold (``temporal="joint"``) both are empty only
  for constant attention. Either way the loss stays defined.
- Constant attention (max = min) normalises to all zeros (no NaN), so no segment is singled out.
- Pooling: the attended sequence becomes one vector by the attention-weighted mean over segments with the
  raw (ReLU) attention, per modality (VAANet and TEN code); A* is used only to erase. The two pooled
  vectors are concatenated ("we concentrate them together along with their dimension").
- Classifier: dropout 0.2 (code), then FC ``hidden`` (4096) + ReLU + dropout, then FC to C classes.
  The paper's "last fully-connected layer designed with 4,096 neurons" is ambiguous: the code's single FC
  reads the 4096-wide concatenation; ``hidden=None`` gives exactly that (``"auto"``: 4096 for the paper
  variant, None for the code variant).
- Loss: the sum of eq. (12) (the code averages the three terms, a factor 1/3: ``loss_reduction``). The
  three erased passes run in train and eval mode alike, so validation loss means the same as training loss.
- Theta: eq. (9)'s ">=" on each modality's A* (the code: one ">" and one "<" against 0.7 max + 0.3 min of
  one joint attention: ``temporal``).
- Videos without audio (``batch["audio_present"]`` False): the visual stream does not attend to the
  (all-zero) audio (U_v = 0, so F''_v = F_v), the audio half of the fused vector is zero, the audio
  attention is reported as zeros, and keyframes are chosen from the visual attention alone. (An audio-only
  model sees nothing of such a video: its logits come from a zero vector.) The code has no such case: its
  loader tiles any soundtrack and skips videos without one.

The authors' code (``variant="code"``). The numbers of the paper were produced by ``VAANetErase``
(``models/vaanet_erase.py``) trained by ``train.py``; the released ``main.py`` builds the visual-only
``VisualErase`` instead, whose ``forward`` takes one tensor although ``train.py`` passes [visual, audio],
so the audio-visual model is the one that runs with that training loop. Each difference is a switch (a
constructor option; ``None`` takes the variant's value, so any one can be ablated from either variant):

- ``intra_block``: "paper" F'_m = F_m + W_z S(Q, K) V; "code" (its ``NonLocalBlock``)
  F'_m = BN(W_z S(Q, K) V) + alpha F_m, BatchNorm1d over the B x T rows, alpha a learned scalar starting
  at 0 (so the block starts by discarding its input).
- ``inter_block``: "paper" F''_v = F_v + W_v S(Q_v, K_a) V_a, in parallel with intra (X = F' + F'');
  "code" (its ``MultiHeadAttentionOp``) chained after intra: X_v = F'_v + MHA(query F'_a, key and value
  F'_v) and X_a = F'_a + MHA(query F'_v, key and value F'_a), where MHA has ``inter_heads`` (8) heads of
  dim / 8, Q, K, V and output maps dim -> dim with bias, and a ReLU after each of the four maps. (So the
  visual stream's update is a mix of *visual* segments chosen by audio queries, the reverse of eq. (5).)
- ``temporal``: "modality" one eq. (7) attention per modality and eq. (9)'s two thresholds; "joint" one
  attention over the concatenated [X_v, X_a] (2 dim channels), pooled and classified as one vector, and
  keyframes where A > 0.7 max + 0.3 min, the rest where A < it (theta in place of 0.7): a segment equal to
  it lands in neither video. ``temporal_visual`` and ``temporal_audio`` then both report the joint A*.
- ``erase_audio``: True (paper variant, our choice: the paper shows erased audio too) erases both
  modalities; False (code) erases the visual stream only and passes the whole original audio, in its
  original order, to the two erased passes.
- ``erase_fill``: "stretch" (above); "loop": the K kept segments in time order, repeated: new segment j is
  kept number j mod K. The code loops the kept *frames* (``LoopPadding``) when fewer than T x 16 remain
  and then cuts T parts of 16 frames; counting each kept segment as its cached 16-frame snippet that is
  always the case, so "loop" is the code on clips of about T x 16 frames, "stretch" on long clips.
- ``loss_reduction``: "sum" (eq. 12) or "mean" (the code: loss1/3 + loss2/3 + loss3/3).
- ``w1_bias``: "one" (VAANet's init) or "default" (PyTorch's, as TEN's code, which never runs its init).
- ``hidden="auto"`` is None (one FC, the code's ``self.fc``) for the code variant.

Not reproduced: the code's audio front end. It reads the soundtrack with torchaudio, takes a Kaldi fbank
(128 mel bins, 10 ms shift, Hanning window, dither 0, the mean of the waveform removed), 16 segments of
100 frames (tiled when shorter, a random 100-frame crop per block when longer), normalised by fixed
VE-8 statistics, into an ImageNet-initialised ResNet-18 with a 1-channel 7x1 conv1 that it trains, then
Linear 512 -> 2048 + BatchNorm + tanh. That needs an fbank cache (torchaudio is not a dependency here, and a
re-implementation of Kaldi's fbank has nothing offline to be checked against), the ImageNet ResNet-18
weights (not available offline; random ones would have to be labelled as such), and training a CNN inside
the head (as ``vaanet`` ``audio_mode="mfcc"`` does). This head reads the ``mfcc_resnet50`` features in
both variants.

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

(the released ``main.py`` builds the visual-only erasing model, ``VisualErase``; see above.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.heads.base import Head, InputSpec, register_head
from pipeline.heads.losses import build_loss

VISUAL = InputSpec("r3d101_conv5", "pooled", "views")
AUDIO = InputSpec("mfcc_resnet50", "features", "fixed")
LossName = Literal["ce", "pcce"]


@dataclass(frozen=True)
class Switches:
    """Where the paper variant and the authors' code differ (module docstring, "The authors' code")."""

    intra_block: str = "paper"      # paper | code
    inter_block: str = "paper"      # paper | code
    temporal: str = "modality"      # modality | joint
    erase_audio: bool = True
    erase_fill: str = "stretch"     # stretch | loop
    loss_reduction: str = "sum"     # sum | mean
    w1_bias: str = "one"            # one | default


VARIANTS = {"paper": Switches(),
            "code": Switches(intra_block="code", inter_block="code", temporal="joint", erase_audio=False,
                             erase_fill="loop", loss_reduction="mean", w1_bias="default")}
CHOICES = {"intra_block": ("paper", "code"), "inter_block": ("paper", "code"),
           "temporal": ("modality", "joint"), "erase_audio": (True, False), "erase_fill": ("stretch", "loop"),
           "loss_reduction": ("sum", "mean"), "w1_bias": ("one", "default")}


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


class NonLocal(CrossAttention):
    """The code's intra block (``intra_block="code"``): F' = BN(W_z S(Q, K) V) + alpha F, alpha from 0.

    f (B, T, dim) -> (B, T, dim); BatchNorm1d(dim) over the B x T rows.
    """

    def __init__(self, *, dim: int, d_k: int) -> None:
        super().__init__(dim=dim, d_k=d_k)
        self.bn = nn.BatchNorm1d(dim)
        self.alpha = nn.Parameter(torch.zeros(1))

    def block(self, f: torch.Tensor) -> torch.Tensor:
        update = self(f, f)[0]
        return self.bn(update.flatten(0, 1)).view_as(f) + self.alpha * f


class MultiHead(nn.Module):
    """The code's inter block (``inter_block="code"``): ReLU(W_o MHA(ReLU(W_q q), ReLU(W_k x), ReLU(W_v x))).

    query, key (B, T, dim) -> (B, T, dim); ``heads`` heads of width dim / heads, each
    softmax(Q K^T / sqrt(dim / heads)).
    """

    def __init__(self, *, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)     # (B, heads, T, dim / heads)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        q, k, v = (self.split(F.relu(m(x))) for m, x in ((self.q, query), (self.k, key), (self.v, key)))
        s = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        y = (s @ v).transpose(1, 2).flatten(2)
        return F.relu(self.o(y))


class TemporalAttention(nn.Module):
    """Eq. (7) with VAANet's BatchNorm + tanh: X (B, T, dim) -> A = ReLU(W1 tanh(BN(W2 X^T))^T) (B, T).

    ``bias_one``: W1's bias starts at 1 (VAANet's init); False keeps PyTorch's default (TEN's code).
    """

    def __init__(self, *, dim: int, segments: int, bias_one: bool = True) -> None:
        super().__init__()
        self.w2 = nn.Linear(dim, 1, bias=False)
        self.bn = nn.BatchNorm1d(1)
        self.w1 = nn.Linear(segments, segments)
        if bias_one:
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


def loop_index(keep: torch.Tensor) -> torch.Tensor:
    """keep (B, T) bool -> (B, T) long: the K kept segments in time order, repeated (new j reads kept
    number j mod K), as the code's ``LoopPadding`` repeats the kept frames. Nothing kept keeps everything."""
    b, t = keep.shape
    keep = keep | ~keep.any(dim=1, keepdim=True)
    count = keep.sum(dim=1, keepdim=True)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    j = torch.arange(t, device=keep.device).expand(b, t)
    return order.gather(1, j % count)


def joint_selection(a: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The code's selection on one raw attention a (B, T): threshold theta max + (1 - theta) min per video;
    keyframes where a > it, the rest where a < it (equal: neither). -> two (B, T) bool."""
    threshold = a.amax(dim=1, keepdim=True) * theta + a.amin(dim=1, keepdim=True) * (1.0 - theta)
    return a > threshold, a < threshold


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
    normalised attention A* (zeros for an unused or absent modality; both the joint A* with
    ``temporal="joint"``); ``keyframes`` (B, T) float 0/1; with erasing also ``logits_keyframes`` /
    ``logits_rest`` (B, C) and ``keyframes_index`` / ``rest_index`` (B, T) long.
    """

    name = "ten"
    saved = ("temporal_visual", "temporal_audio", "keyframes")

    def __init__(self, *, num_classes: int, modalities: tuple[str, ...], intra: dict[str, bool],
                 inter: dict[str, bool], segments: int, dim: int, d_k: int, hidden: int | None, theta: float,
                 erasing: bool, dropout: float, criterion: nn.Module, switches: Switches = Switches(),
                 inter_heads: int = 8) -> None:
        super().__init__()
        self.modalities, self.segments, self.theta, self.erasing = modalities, segments, theta, erasing
        self.criterion, self.switches = criterion, switches
        intra_block = NonLocal if switches.intra_block == "code" else CrossAttention
        self.intra = nn.ModuleDict({m: intra_block(dim=dim, d_k=d_k) for m in modalities if intra[m]})
        if switches.inter_block == "code":
            self.inter = nn.ModuleDict({m: MultiHead(dim=dim, heads=inter_heads)
                                        for m in modalities if inter[m]})
        else:
            self.inter = nn.ModuleDict({m: CrossAttention(dim=dim, d_k=d_k) for m in modalities if inter[m]})
        bias_one = switches.w1_bias == "one"
        if switches.temporal == "joint":
            joint = TemporalAttention(dim=dim * len(modalities), segments=segments, bias_one=bias_one)
            self.temporal = nn.ModuleDict({"joint": joint})
        else:
            self.temporal = nn.ModuleDict({m: TemporalAttention(dim=dim, segments=segments, bias_one=bias_one)
                                           for m in modalities})
        self.classifier = classifier(in_dim=dim * len(modalities), hidden=hidden, num_classes=num_classes,
                                     dropout=dropout)

    def inputs(self) -> dict[str, InputSpec]:
        specs = {"visual": VISUAL, "audio": AUDIO}
        return {m: specs[m] for m in self.modalities}

    def intra_out(self, m: str, f: torch.Tensor) -> torch.Tensor:
        """F'_m (B, T, dim): F + W_z S V (paper), BN(W_z S V) + alpha F (code), F when off."""
        if m not in self.intra:
            return f
        block = self.intra[m]
        return block.block(f) if isinstance(block, NonLocal) else f + block(f, f)[0]

    def enhance(self, feats: dict[str, torch.Tensor], present: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eqs. (4) and (6): X_m = F'_m + F''_m (B, T, dim) per modality; chained with the code's block."""
        other = {"visual": "audio", "audio": "visual"}
        heard = present.view(-1, 1, 1)
        if self.switches.inter_block == "code":
            x = {m: self.intra_out(m, f) for m, f in feats.items()}
            out = {}
            for m, xm in x.items():
                update = self.inter[m](x[other[m]], xm) if m in self.inter else 0.0
                if m == "visual" and m in self.inter:
                    update = update * heard.to(xm.dtype)        # no audio queries from a silent video
                out[m] = xm + update
            return out
        out = {}
        for m, f in feats.items():
            inter = self.inter[m](f, feats[other[m]])[0] if m in self.inter else 0.0
            if m == "visual" and m in self.inter:
                inter = inter * heard.to(f.dtype)
            out[m] = self.intra_out(m, f) + (f + inter)
        return out

    def encode(self, feats: dict[str, torch.Tensor], present: torch.Tensor
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One pass: feats {m: (B, T, dim)} -> logits (B, C), {m: A*_m (B, T)}, raw A (B, T) by m or
        "joint"."""
        if self.switches.temporal == "joint":
            return self.encode_joint(feats, present)
        pooled, normalised, raw = [], {}, {}
        for m, x in self.enhance(feats, present).items():
            a = self.temporal[m](x)
            keep = present.view(-1, 1).to(x.dtype) if m == "audio" else torch.ones_like(a[:, :1])
            pooled.append((a.unsqueeze(-1) * x).mean(dim=1) * keep)
            normalised[m] = min_max(a) * keep
            raw[m] = a
        return self.classifier(torch.cat(pooled, dim=-1)), normalised, raw

    def encode_joint(self, feats: dict[str, torch.Tensor], present: torch.Tensor
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The code's one attention over [X_v, X_a] (B, T, 2 dim); a silent video's audio half is zero."""
        heard = present.view(-1, 1).to(next(iter(feats.values())).dtype)
        x = self.enhance(feats, present)
        x = torch.cat([x[m] * heard.unsqueeze(-1) if m == "audio" else x[m] for m in self.modalities], dim=-1)
        a = self.temporal["joint"](x)
        normalised = {m: min_max(a) * heard if m == "audio" else min_max(a) for m in self.modalities}
        return self.classifier((a.unsqueeze(-1) * x).mean(dim=1)), normalised, {"joint": a}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feats = {m: self.check(batch[m], m) for m in self.modalities}
        b = next(iter(feats.values())).shape[0]
        device = next(iter(feats.values())).device
        present = batch.get("audio_present", torch.ones(b, dtype=torch.bool, device=device)).to(device)
        logits, att, raw = self.encode(feats, present)
        if self.switches.temporal == "joint":
            keyframes, rest = joint_selection(raw["joint"], self.theta)
        else:
            keyframes = keyframe_mask(att.get("visual"), att.get("audio"), self.theta, present)
            rest = ~keyframes
        zeros = torch.zeros(b, self.segments, device=device)
        out = {"logits": logits, "temporal_visual": att.get("visual", zeros),
               "temporal_audio": att.get("audio", zeros), "keyframes": keyframes.float()}
        if self.erasing:
            out.update(self.erase(feats, present, keyframes, rest))
        return out

    def erase(self, feats: dict[str, torch.Tensor], present: torch.Tensor, keyframes: torch.Tensor,
              rest: torch.Tensor) -> dict[str, torch.Tensor]:
        """Section 3.3: the keyframes-only and the rest videos through the network again (eq. 12 inputs)."""
        out = {}
        fill = loop_index if self.switches.erase_fill == "loop" else resample_index
        for name, keep in (("keyframes", keyframes), ("rest", rest)):
            index = fill(keep)
            seen = {m: take_segments(f, index) if m == "visual" or self.switches.erase_audio else f
                    for m, f in feats.items()}
            out[f"logits_{name}"] = self.encode(seen, present)[0]
            out[f"{name}_index"] = index
        return out

    def check(self, x: torch.Tensor, key: str) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.segments:
            raise ValueError(f"TEN expects {key} as (B, T={self.segments}, dim); got {tuple(x.shape)}")
        return x

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. (12): CE(original) + CE(keyframes only) + CE(the rest); CE(original) alone without erasing.
        ``loss_reduction="mean"`` divides each term by their number (the code: loss1/3 + loss2/3 + loss3/3).
        """
        label = batch["label"]
        parts = {"ce_original": self.criterion(out["logits"], label)}
        if self.erasing:
            parts["ce_keyframes"] = self.criterion(out["logits_keyframes"], label)
            parts["ce_rest"] = self.criterion(out["logits_rest"], label)
        if self.switches.loss_reduction == "mean":
            return {"loss": sum(p / len(parts) for p in parts.values()), **parts}
        return {"loss": sum(parts.values()), **parts}


def resolve_inter(inter: bool | None, modalities: tuple[str, ...], name: str) -> bool:
    """``None`` -> on when both modalities are used; True with one modality is an error."""
    both = len(modalities) == 2
    if inter and not both:
        raise ValueError(f"{name}=True needs both modalities (visual and audio); this model uses "
                         f"{modalities}")
    return both if inter is None else inter


def resolve_switches(variant: str, chosen: dict[str, object]) -> Switches:
    """The variant's switches with the options given (not None) in their place; a bad value is one line."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {sorted(VARIANTS)}")
    values = {}
    for f in fields(Switches):
        value = chosen[f.name]
        if value is None:
            value = getattr(VARIANTS[variant], f.name)
        if value not in CHOICES[f.name] or type(value) is not type(CHOICES[f.name][0]):
            raise ValueError(f"{f.name} must be one of {list(CHOICES[f.name])} (or null: as the variant); "
                             f"got {value!r}")
        values[f.name] = value
    return Switches(**values)


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
    # the paper as written ("paper") or the authors' code ("code"); each switch below None = the variant's
    variant: str = "paper",
    intra_block: str | None = None,
    inter_block: str | None = None,
    temporal: str | None = None,
    erase_audio: bool | None = None,
    erase_fill: str | None = None,
    loss_reduction: str | None = None,
    w1_bias: str | None = None,
    # widths
    segments: int = 10,
    dim: int = 2048,
    d_k: int = 256,
    hidden: int | None | Literal["auto"] = "auto",
    inter_heads: int = 8,
    dropout: float = 0.2,
    # loss: "ce" or "pcce" (needs polarity) for each of the three terms
    loss: LossName = "ce",
) -> TEN:
    """TEN, one of its Table 2 ablations, or the authors' code (``variant="code"``) and its ablations."""
    modalities = tuple(m for m, on in (("visual", visual), ("audio", audio)) if on)
    if not modalities:
        raise ValueError("TEN needs at least one modality: set visual and/or audio to True")
    if loss not in ("ce", "pcce"):
        raise ValueError(f"unknown loss {loss!r}; use 'ce' or 'pcce'")
    if not 0.0 <= theta <= 1.0:
        raise ValueError(f"theta is a threshold on min-max normalised attention, in [0, 1]; got {theta}")
    switches = resolve_switches(variant, {"intra_block": intra_block, "inter_block": inter_block,
                                          "temporal": temporal, "erase_audio": erase_audio,
                                          "erase_fill": erase_fill, "loss_reduction": loss_reduction,
                                          "w1_bias": w1_bias})
    if switches.inter_block == "code" and (inter_heads < 1 or dim % inter_heads):
        raise ValueError(f"inter_heads must divide dim ({dim}); got {inter_heads}")
    if hidden == "auto":
        hidden = None if variant == "code" else 4096
    elif hidden is not None and (isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1):
        raise ValueError(f"hidden must be a positive width, null (one FC) or 'auto'; got {hidden!r}")
    inter = {"visual": resolve_inter(inter_visual, modalities, "inter_visual"),
             "audio": resolve_inter(inter_audio, modalities, "inter_audio")}
    return TEN(num_classes=num_classes, modalities=modalities,
               intra={"visual": intra_visual, "audio": intra_audio}, inter=inter, segments=segments, dim=dim,
               d_k=d_k, hidden=hidden, theta=theta, erasing=erasing, dropout=dropout,
               criterion=build_loss(loss, polarity=polarity), switches=switches, inter_heads=inter_heads)

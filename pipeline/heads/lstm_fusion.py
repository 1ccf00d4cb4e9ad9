"""LSTM audio-visual fusion for video emotion (MediaEval 2015 Affective Impact of Movies) and its baselines.

Each second t of a video gives a keyframe AlexNet fc7 x_v[t] and a spectrogram AlexNet fc7 x_a[t]
(4096 each). Modal fusion (eq. 3-5), the LSTM (eq. 6-11) and the MLP classifier (eq. 12)::

    x_v[t] (B, L, 4096) -> g_v: Linear 512 + ReLU -> * alpha_v -+
                                                                 +-> x_f[t] (B, L, 512) -> LSTM 256 -> h[t]
    x_a[t] (B, L, 4096) -> g_a: Linear 512 + ReLU -> * alpha_a -+
    h[last real t] (B, 256) -> MLP: Linear 64, ReLU, Dropout 0.5, Linear C -> logits (B, C)
    h[every t]  (B, L, 256) -> the same MLP -> softmax -> per_second (B, L, C), 0 on padding

The paper's baselines (Table 1) are the other ``fusion`` values:

- ``"visual"`` / ``"audio"``: g of one modality -> LSTM -> MLP (the modal network with one pathway).
- ``"early"``: "simply concatenate the audio and video features": the raw fc7 vectors [x_a; x_v] (8192)
  are the LSTM input. The paper blames early fusion's weaker result on "the sparsity of input vectors",
  which fits raw fc7 (ReLU outputs), not a learned 512-unit layer; ``early_embed=True`` puts one g
  (8192 -> 512) in front.
- ``"late"``: two single-modality branches, each g -> LSTM -> MLP with its own cross-entropy (the loss is
  their sum); p = late_alpha * p_a + (1 - late_alpha) * p_v with late_alpha = 0.56 (eq. 14); logits = log p.

Decisions where the paper is silent (or where the data needs a rule):

- alpha_a, alpha_v: eq. 3 writes g(x; w) with the trainable weights w after the semicolon and the alphas
  outside, and no value or learning rule is given, so they are fixed hyper-parameters (0.5 each: x_f is the
  mean of the two embeddings). Since ReLU is positively homogeneous, alpha * ReLU(Wx + b) = ReLU(alpha W x
  + alpha b): a fixed positive alpha loses nothing a learned one would add, it only sets the initial balance.
  ``learn_alphas=True`` learns them as softmax(s) (positive, summing to 1; s starts at log(alpha)), which
  removes the scale that W already carries.
- Time axis: step t reads second t of both streams; the sequence length is the visual length L (the
  ``"audio"`` variant uses the audio length instead). Audio rows missing beyond L' are zero-filled inputs,
  and, like every audio row of a video with ``audio_present`` False, they are *masked*: the audio term
  alpha_a g(x_a) is set to 0 there, not g(0) = ReLU(b_a), which is a learned constant that would stand
  in for "no audio". So an audio-less video gets x_f = alpha_v g(x_v). Early fusion sees zero fc7 there.
- Late fusion: a video with no audio row gets p = p_v; per second, p_v wherever that second has no audio.
  Its audio branch is left out of the audio CE. The audio-only variant marks audio-less videos not valid.
- A video with no step (L = 0) runs one all-zero step (packing needs a length >= 1) so its logits stay
  finite; ``out["valid"]`` is False for it and it adds nothing to the loss.
- Padding never enters the LSTM (``pack_padded_sequence``); padded rows are also zeroed before any layer,
  so garbage (even NaN) there changes neither the outputs nor the gradients.
- ``max_steps`` caps the steps of long videos (VideoEmotion-8 averages 107 s, MediaEval clips are 8-12 s)
  by reading max_steps evenly spaced seconds, floor(k * n / max_steps), so the LSTM still sees the whole
  video; per_second stays on the original seconds and is 0 on the seconds not read.
- "trained end-to-end to predict the videos emotion class at each time step" (Experiment Settings) vs.
  "the output of the last time step ... will be the input of the MLP" (Proposed Approach): the loss is on
  the last step; ``per_step_loss`` > 0 adds that weight times the loss of every real step's prediction
  against the video label (mean over all real steps of the batch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from pipeline.heads.base import Head, InputSpec, register_head
from pipeline.heads.losses import build_loss

Fusion = Literal["modal", "visual", "audio", "early", "late"]

VISUAL = InputSpec("alexnet_fc7", "fc7", "sequence")
AUDIO = InputSpec("alexnet_fc7_spec", "fc7", "sequence")
FUSION_INPUTS: dict[str, tuple[str, ...]] = {
    "modal": ("visual", "audio"), "visual": ("visual",), "audio": ("audio",),
    "early": ("visual", "audio"), "late": ("visual", "audio"),
}


# ---------------------------------------------------------------- aligning the two streams in time


def prefix_lengths(mask: torch.Tensor, key: str) -> torch.Tensor:
    """(B,) long number of real rows of a (B, L) mask; raises unless the real rows come first."""
    lengths = mask.sum(dim=1)
    steps = torch.arange(mask.shape[1], device=mask.device)
    if not torch.equal(mask, steps < lengths.unsqueeze(1)):
        raise ValueError(f"batch[{key!r}] must be True on a prefix of each row (padding at the end)")
    return lengths


def fit_length(x: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut or zero-pad x (B, L', D) and its mask (B, L') to `length` rows: step t = second t."""
    extra = length - x.shape[1]
    if extra <= 0:
        return x[:, :length], mask[:, :length]
    return F.pad(x, (0, 0, 0, extra)), F.pad(mask, (0, extra), value=False)


def zero_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x (B, L, D) with rows where `rows` (B, L) is False set to 0 (garbage or NaN there cannot leak)."""
    return x.masked_fill(~rows.unsqueeze(-1), 0.0)


def even_steps(lengths: torch.Tensor, max_steps: int) -> torch.Tensor:
    """(B, max_steps) indices of max_steps evenly spaced seconds, floor(k * n / max_steps), for n > max_steps;
    the first n seconds (then n, n+1, ... as padding) for n <= max_steps."""
    k = torch.arange(max_steps, device=lengths.device)
    return k * lengths.clamp_min(max_steps).unsqueeze(1) // max_steps


# ---------------------------------------------------------------- the network pieces


class Embedding(nn.Module):
    """g(x) = ReLU(W x + b) (eq. 4-5), 0 where `rows` is False: (B, L, in_dim) -> (B, L, out_dim)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return zero_rows(F.relu(self.linear(x)), rows)


class ModalFusion(nn.Module):
    """x_f = alpha_a g_a(x_a) + alpha_v g_v(x_v) (eq. 3); the audio term is 0 on rows without audio."""

    def __init__(self, *, visual_dim: int, audio_dim: int, embed: int, alpha_audio: float,
                 alpha_visual: float, learn_alphas: bool) -> None:
        super().__init__()
        self.g_visual, self.g_audio = Embedding(visual_dim, embed), Embedding(audio_dim, embed)
        alphas = torch.tensor([alpha_audio, alpha_visual], dtype=torch.float32)
        if learn_alphas:
            self.alpha_logits = nn.Parameter(alphas.log())
        else:
            self.register_buffer("fixed_alphas", alphas)
        self.out_dim = embed

    def alphas(self) -> torch.Tensor:
        """(2,) [alpha_a, alpha_v]."""
        if hasattr(self, "alpha_logits"):
            return torch.softmax(self.alpha_logits, dim=0)
        return self.fixed_alphas

    def forward(self, streams: dict[str, torch.Tensor]) -> torch.Tensor:
        alpha_a, alpha_v = self.alphas()
        audio = self.g_audio(streams["audio"], streams["audio_rows"])
        return alpha_a * audio + alpha_v * self.g_visual(streams["visual"], streams["steps"])


class SingleModality(nn.Module):
    """g of one modality (the visual-only / audio-only baselines, and each branch of late fusion)."""

    def __init__(self, *, modality: str, in_dim: int, embed: int) -> None:
        super().__init__()
        self.key, self.rows = modality, "steps" if modality == "visual" else "audio_rows"
        self.g = Embedding(in_dim, embed)
        self.out_dim = embed

    def forward(self, streams: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.g(streams[self.key], streams[self.rows])


class EarlyFusion(nn.Module):
    """[x_a; x_v] (B, L, audio_dim + visual_dim), zero audio on rows without audio; optionally through g."""

    def __init__(self, *, visual_dim: int, audio_dim: int, embed: int, early_embed: bool) -> None:
        super().__init__()
        self.g = Embedding(visual_dim + audio_dim, embed) if early_embed else None
        self.out_dim = embed if early_embed else visual_dim + audio_dim

    def forward(self, streams: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([zero_rows(streams["audio"], streams["audio_rows"]), streams["visual"]], dim=-1)
        return x if self.g is None else self.g(x, streams["steps"])


def classifier(*, hidden: int, mlp: int, num_classes: int, dropout: float) -> nn.Sequential:
    """The MLP after the LSTM: one hidden layer of `mlp` ReLU units with dropout, then C logits."""
    return nn.Sequential(nn.Linear(hidden, mlp), nn.ReLU(), nn.Dropout(dropout), nn.Linear(mlp, num_classes))


class Branch(nn.Module):
    """Step inputs -> packed LSTM -> MLP on the last real step and on every step.

    forward(streams) -> (logits (B, C), step_logits (B, L, C)); step_logits are 0 on padding.
    """

    def __init__(self, *, encoder: nn.Module, hidden: int, mlp: int, num_classes: int,
                 dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.lstm = nn.LSTM(encoder.out_dim, hidden, batch_first=True)
        self.mlp = classifier(hidden=hidden, mlp=mlp, num_classes=num_classes, dropout=dropout)

    def forward(self, streams: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        steps = streams["steps"]
        x = zero_rows(self.encoder(streams), steps)
        length = x.shape[1]
        if length == 0:
            x = x.new_zeros(x.shape[0], 1, x.shape[2])
        packed = pack_padded_sequence(x, steps.sum(dim=1).clamp_min(1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        seq, (h, _) = self.lstm(packed)
        seq, _ = pad_packed_sequence(seq, batch_first=True, total_length=x.shape[1])
        return self.mlp(h[-1]), zero_rows(self.mlp(seq[:, :length]), steps)


# ---------------------------------------------------------------- the head


class LSTMFusion(Head):
    """LSTM audio-visual fusion head; ``fusion`` picks the paper's model or one of its baselines.

    Inputs: ``visual`` (B, L, visual_dim) and/or ``audio`` (B, L', audio_dim), with ``visual_mask`` (B, L),
    ``audio_mask`` (B, L') and ``audio_present`` (B,). Output: ``logits`` (B, C), ``per_second`` (B, L, C)
    probabilities (0 on padding), ``valid`` (B,) bool; late fusion adds ``logits_visual`` / ``logits_audio``.
    """

    name = "lstm_fusion"
    saved = ("per_second",)

    def __init__(self, *, fusion: Fusion, branches: dict[str, Branch], criterion: nn.Module,
                 late_alpha: float, max_steps: int | None, per_step_loss: float) -> None:
        super().__init__()
        self.fusion, self.late_alpha, self.max_steps = fusion, late_alpha, max_steps
        self.branches = nn.ModuleDict(branches)
        self.criterion, self.per_step_loss = criterion, per_step_loss

    def inputs(self) -> dict[str, InputSpec]:
        specs = {"visual": VISUAL, "audio": AUDIO}
        return {key: specs[key] for key in FUSION_INPUTS[self.fusion]}

    def align(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The streams on one time axis: "steps" (B, L) real steps, "visual" / "audio" (B, L, D) zeroed off
        their rows, "audio_rows" (B, L) steps with audio (False on missing rows and audio-less videos)."""
        if self.fusion == "audio":
            steps = batch["audio_mask"] & self.audio_present(batch).unsqueeze(1)
            prefix_lengths(batch["audio_mask"], "audio_mask")
            return {"steps": steps, "audio_rows": steps, "audio": zero_rows(batch["audio"], steps)}
        steps = batch["visual_mask"]
        prefix_lengths(steps, "visual_mask")
        streams = {"steps": steps, "visual": zero_rows(batch["visual"], steps)}
        if "audio" in FUSION_INPUTS[self.fusion]:
            audio, audio_mask = fit_length(batch["audio"], batch["audio_mask"], steps.shape[1])
            rows = audio_mask & steps & self.audio_present(batch).unsqueeze(1)
            streams.update(audio=zero_rows(audio, rows), audio_rows=rows)
        return streams

    @staticmethod
    def audio_present(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["audio_mask"]
        return batch.get("audio_present", torch.ones(mask.shape[0], dtype=torch.bool, device=mask.device))

    def subsample(self, streams: dict[str, torch.Tensor]
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """At most max_steps evenly spaced seconds per video; also returns their (B, max_steps) indices."""
        steps = streams["steps"]
        if self.max_steps is None or steps.shape[1] <= self.max_steps:
            return streams, None
        idx = even_steps(steps.sum(dim=1), self.max_steps)
        picked = {k: v.gather(1, idx if v.dim() == 2 else idx.unsqueeze(-1).expand(-1, -1, v.shape[2]))
                  for k, v in streams.items()}
        return picked, idx

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        full = self.align(batch)
        streams, idx = self.subsample(full)
        outs = {name: branch(streams) for name, branch in self.branches.items()}
        if self.fusion == "late":
            out = self.late_mix(outs, streams)
        else:
            (logits, step_logits), = outs.values()
            out = {"logits": logits, "step_logits": step_logits}
            out["step_probs"] = zero_rows(torch.softmax(step_logits, dim=-1), streams["steps"])
        out["per_second"] = self.to_seconds(out.pop("step_probs"), idx, full["steps"].shape[1])
        out["valid"] = streams["steps"].any(dim=1)
        out["has_audio"] = streams.get("audio_rows", streams["steps"]).any(dim=1)
        out["step_mask"] = streams["steps"]
        return out

    def late_mix(self, outs: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 streams: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 14 on the videos (and seconds) that have audio, p_v elsewhere; logits = log p (B, C)."""
        (logits_v, steps_v), (logits_a, steps_a) = outs["visual"], outs["audio"]
        log_a = math.log(self.late_alpha) if self.late_alpha > 0 else -math.inf
        log_v = math.log1p(-self.late_alpha) if self.late_alpha < 1 else -math.inf
        mixed = torch.logaddexp(log_a + logits_a.log_softmax(-1), log_v + logits_v.log_softmax(-1))
        has_audio = streams["audio_rows"].any(dim=1, keepdim=True)
        p_a, p_v = steps_a.softmax(-1), steps_v.softmax(-1)
        mix_p = self.late_alpha * p_a + (1 - self.late_alpha) * p_v
        step_p = torch.where(streams["audio_rows"].unsqueeze(-1), mix_p, p_v)
        return {"logits": torch.where(has_audio, mixed, logits_v.log_softmax(-1)),
                "logits_visual": logits_v, "logits_audio": logits_a, "step_logits_visual": steps_v,
                "step_logits_audio": steps_a, "step_probs": zero_rows(step_p, streams["steps"])}

    @staticmethod
    def to_seconds(step_probs: torch.Tensor, idx: torch.Tensor | None, length: int) -> torch.Tensor:
        """(B, steps, C) -> (B, L, C) on the video's seconds (0 on the seconds not read)."""
        if idx is None:
            return step_probs
        seconds = step_probs.new_zeros(step_probs.shape[0], length, step_probs.shape[2])
        return seconds.scatter(1, idx.unsqueeze(-1).expand_as(step_probs), step_probs)

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        label, valid = batch["label"], out["valid"]
        if self.fusion != "late":
            video = self.masked(out["logits"], label, valid)
            steps = self.step_loss(out["step_logits"], label, out["step_mask"])
            return {"loss": video + self.per_step_loss * steps, "video_ce": video, "step_ce": steps}
        visual = self.masked(out["logits_visual"], label, valid)
        audio = self.masked(out["logits_audio"], label, valid & out["has_audio"])
        audio_steps = out["step_mask"] & out["has_audio"].unsqueeze(1)
        steps = (self.step_loss(out["step_logits_visual"], label, out["step_mask"])
                 + self.step_loss(out["step_logits_audio"], label, audio_steps))
        total = visual + audio + self.per_step_loss * steps
        return {"loss": total, "visual_ce": visual, "audio_ce": audio, "step_ce": steps}

    def masked(self, logits: torch.Tensor, label: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The configured loss over the kept rows; 0 (still in the graph) when none is kept."""
        if not keep.any():
            return logits.sum() * 0.0
        return self.criterion(logits[keep], label[keep])

    def step_loss(self, step_logits: torch.Tensor, label: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """The configured loss of every real step's logits (B, L, C) against its video's label."""
        return self.masked(step_logits, label.unsqueeze(1).expand(steps.shape), steps)


def make_branches(*, fusion: Fusion, visual_dim: int, audio_dim: int, embed: int, alpha_audio: float,
                  alpha_visual: float, learn_alphas: bool, early_embed: bool,
                  **branch: Any) -> dict[str, Branch]:
    """The LSTM + MLP branches of a fusion variant, keyed by what they read (late fusion has two)."""
    dims = {"visual": visual_dim, "audio": audio_dim}
    if fusion in ("visual", "audio", "late"):
        names = ("visual", "audio") if fusion == "late" else (fusion,)
        return {m: Branch(encoder=SingleModality(modality=m, in_dim=dims[m], embed=embed), **branch)
                for m in names}
    if fusion == "modal":
        encoder: nn.Module = ModalFusion(visual_dim=visual_dim, audio_dim=audio_dim, embed=embed,
                                         alpha_audio=alpha_audio, alpha_visual=alpha_visual,
                                         learn_alphas=learn_alphas)
    else:
        encoder = EarlyFusion(visual_dim=visual_dim, audio_dim=audio_dim, embed=embed,
                              early_embed=early_embed)
    return {fusion: Branch(encoder=encoder, **branch)}


def check_options(*, fusion: str, alpha_audio: float, alpha_visual: float, learn_alphas: bool,
                  late_alpha: float, max_steps: int | None) -> None:
    if fusion not in FUSION_INPUTS:
        raise ValueError(f"unknown fusion {fusion!r}; use one of {sorted(FUSION_INPUTS)}")
    if min(alpha_audio, alpha_visual) < 0 or (learn_alphas and min(alpha_audio, alpha_visual) <= 0):
        raise ValueError(f"modal fusion alphas must be >= 0 (> 0 when learned); "
                         f"got {alpha_audio}, {alpha_visual}")
    if not 0.0 <= late_alpha <= 1.0:
        raise ValueError(f"late_alpha must be in [0, 1]; got {late_alpha}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None; got {max_steps}")


@register_head("lstm_fusion")
def build_lstm_fusion(
    *,
    num_classes: int,
    polarity: torch.Tensor | None = None,
    # which model: "modal" (the paper's), or the baselines "visual", "audio", "early", "late"
    fusion: Fusion = "modal",
    alpha_audio: float = 0.5,
    alpha_visual: float = 0.5,
    learn_alphas: bool = False,
    late_alpha: float = 0.56,
    early_embed: bool = False,
    # widths (paper: fc7 4096, 512 per modality, LSTM 256 of 64/128/256/512, MLP 64, dropout 0.5)
    visual_dim: int = 4096,
    audio_dim: int = 4096,
    embed: int = 512,
    hidden: int = 256,
    mlp: int = 64,
    dropout: float = 0.5,
    # sequence
    max_steps: int | None = None,
    # loss: a name of pipeline.heads.losses ("ce", "pcce") and its options; weight of the per-step loss
    loss: str = "ce",
    loss_options: Mapping[str, Any] | None = None,
    per_step_loss: float = 0.0,
) -> LSTMFusion:
    """The LSTM audio-visual fusion head (``fusion="modal"``) or one of the paper's baselines."""
    check_options(fusion=fusion, alpha_audio=alpha_audio, alpha_visual=alpha_visual,
                  learn_alphas=learn_alphas, late_alpha=late_alpha, max_steps=max_steps)
    branches = make_branches(fusion=fusion, visual_dim=visual_dim, audio_dim=audio_dim, embed=embed,
                             alpha_audio=alpha_audio, alpha_visual=alpha_visual, learn_alphas=learn_alphas,
                             early_embed=early_embed, hidden=hidden, mlp=mlp, num_classes=num_classes,
                             dropout=dropout)
    criterion = build_loss(loss, polarity=polarity, **dict(loss_options or {}))
    return LSTMFusion(fusion=fusion, branches=branches, criterion=criterion, late_alpha=late_alpha,
                      max_steps=max_steps, per_step_loss=per_step_loss)

"""VAANet head (Zhao et al., "An End-to-End Visual-Audio Attention Network for Emotion Recognition in
User-Generated Videos", AAAI 2020) on cached 3D ResNet-101 conv5 maps and audio segment features.

    visual (B, T, 2048, 1, 4, 4) ─reshape─> (B*T, 2048, m=16)
      ─conv0: Conv1d 2048->512 (1x1) + BN + ReLU──> F (B*T, 512, m)
      ─spatial:  a = m * softmax_m(Linear_mm(tanh(BN(Conv1d_512->1 F))))      (B*T, m)   F_S = F * a
      ─channel:  c = 512 * softmax_k(Linear_kk(tanh(BN(Conv1d_m->1 F_S^T))))   (B*T, 512) F_SC = F_S * c
      ─mean over the m locations──> P (B, 512, T)
      ─temporal: g = ReLU(Linear_TT(tanh(BN(Conv1d_512->1 P))))                (B, T)
      ─E_V = 1/T sum_t g_t P_t ──────────────────────────────────────────────> (B, 512) ─┐
                                                                                          ├─ concat (B, 768)
    audio "cached" (B, S=16, 512) | "mfcc" (B, S, 256, 32) ─ResNet-18─> (B, S, 512)       │   ─Linear─> (B, C)
      ─Linear 512->256 + BN + tanh (per segment)──> A (B, 256, S)                         │
      ─audio temporal: h = ReLU(Linear_SS(tanh(BN(Conv1d_256->1 A))))          (B, S)     │
      ─E_A = 1/S sum_s h_s A_s ─────────────────────────────────────────────> (B, 256) ─┘

Where the paper is silent we follow the authors' code (maysonma/VAANet, `models/visual_stream.py`,
`models/vaanet.py`):
- conv0 (Conv1d with bias + BN + ReLU) reduces 2048 channels to 512 before any attention (not in the paper).
- The score convolutions and the spatial / channel Linear layers have no bias; the temporal Linear layers do.
  BN(1) sits between the 1x1 convolution and the tanh in every attention.
- Softmax weights are multiplied by their length (spatial sum to m, channel to 512), so uniform weights are 1.
- Channel attention is computed on the spatially weighted map F_S, as in the code (Eq. 4 writes F).
- The temporal "weighted sum" of Eq. 9 / 11 is a mean: (1/T) sum_t g_t P_t, with the ReLU weights g not
  normalised to sum to 1.
- No dropout anywhere.
- Initialisation: in the visual stream, Conv1d weights kaiming-normal (fan_out), BN weight 1 / bias 0, and the
  temporal Linear bias 1.0 (so every segment starts with weight ~1). The authors' init routine runs in the
  visual base class's constructor, before the audio modules exist, so the audio embedding, the audio temporal
  attention (its Linear bias included, NOT 1.0) and the classifier keep PyTorch's default initialisation; we
  do the same.
- Classifier: Linear(512 + 256 -> C); visual only Linear(512 -> C) (the code's visual model); audio only
  Linear(256 -> C).

Ablation switches (Tables 3-5 of the paper). An attention switched off is replaced by constant weights 1,
the uniform weights a softmax-times-length gives (and the ReLU attention gives at zero scores, bias 1):
- `spatial=False`: F is not reweighted; the later mean over locations is a plain spatial average.
- `channel=False`: F_S is not reweighted; P is the plain spatial average of F_S.
- `temporal=False`: E_V is the plain mean of P over the T segments.
- `audio_temporal=False`: E_A is the plain mean of A over the S segments.
- `audio=False` drops the audio stream (visual rows VS, VS+VCW, VS+VCW+VT); `visual=False` drops the visual
  stream (row AT: audio with its temporal attention). So VS = (spatial, audio=False, channel=False,
  temporal=False), and the full model is VS+VCW+VT+AT. The paper does not say how a removed attention is
  replaced; averaging is the pooling the model already applies around each attention.

Videos without audio (batch["audio_present"] False; their cached features are zeros): they are left out of
the audio stream (so they do not enter its BatchNorm statistics) and their audio embedding E_A is zero, so
the classifier sees visual evidence only (plus its bias); their audio temporal weights are reported as 0.
Without an "audio_present" entry every video counts as having audio.

`audio_mode="mfcc"` trains VAANet's audio ResNet-18 (1-channel 7x1 conv1) inside the head on the cached MFCC,
as the authors do (their audio network is not frozen); `audio_weights` is None (random) or a checkpoint read
exactly as the `mfcc_resnet18` extractor reads it, `audio_conv1` choosing how an ImageNet 3-channel conv1 is
adapted (default "random": the authors start conv1 from random). "cached" uses the frozen extractor features.

Not reproduced (a property of any cached design): the authors train with `model.train()` on the whole model,
so the frozen 3D ResNet-101's BatchNorm layers use batch statistics; the cache uses running statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.extractors.mfcc_cnn import CONV1_MODES, MfccResnet18, build_vaanet_audio_resnet18, check_option
from pipeline.heads.base import Head, InputSpec, register_head
from pipeline.heads.losses import build_loss

VISUAL_CHANNELS, EMBED, AUDIO_FEATURES, AUDIO_EMBED = 2048, 512, 512, 256
VISUAL_INPUT = InputSpec("r3d101_conv5", "conv5", "views")


class SoftmaxAttention(nn.Module):
    """Spatial or channel-wise attention: x (N, D, L) -> weights (N, L) = L * softmax over L (sum to L)."""

    def __init__(self, channels: int, length: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Conv1d(channels, 1, 1, bias=False), nn.BatchNorm1d(1), nn.Tanh())
        self.fc = nn.Linear(length, length, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.score(x).squeeze(1))
        return h.softmax(dim=1) * h.shape[1]


class ReluAttention(nn.Module):
    """Temporal attention: x (B, D, L) -> weights (B, L) = ReLU(Linear_LL(tanh(BN(Conv1d_D->1 x)))) >= 0."""

    def __init__(self, channels: int, length: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Conv1d(channels, 1, 1, bias=False), nn.BatchNorm1d(1), nn.Tanh())
        self.fc = nn.Linear(length, length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(self.score(x).squeeze(1)))


def attend_time(x: torch.Tensor, attention: ReluAttention | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """x (B, D, L) -> ((B, D) mean of the attention-weighted columns, weights (B, L) or None when off)."""
    if attention is None:
        return x.mean(dim=2), None
    weights = attention(x)
    return (x * weights[:, None]).mean(dim=2), weights


def init_like_authors(module: nn.Module) -> None:
    """The visual stream's init in the authors' code: Conv1d kaiming-normal (fan_out), BN weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class VisualStream(nn.Module):
    """conv5 (B, T, 2048, *hw) -> E_V (B, 512) and the weights of the attentions switched on."""

    def __init__(self, *, segments: int, locations: int,
                 spatial: bool, channel: bool, temporal: bool) -> None:
        super().__init__()
        self.segments, self.locations = segments, locations
        self.conv0 = nn.Sequential(nn.Conv1d(VISUAL_CHANNELS, EMBED, 1), nn.BatchNorm1d(EMBED), nn.ReLU())
        self.spatial = SoftmaxAttention(EMBED, locations) if spatial else None
        self.channel = SoftmaxAttention(locations, EMBED) if channel else None
        self.temporal = ReluAttention(EMBED, segments) if temporal else None
        self.names = tuple(k for k in ("spatial", "channel", "temporal") if getattr(self, k) is not None)
        init_like_authors(self)
        if self.temporal is not None:
            nn.init.constant_(self.temporal.fc.bias, 1.0)

    def check(self, x: torch.Tensor) -> None:
        if (*x.shape[1:3], math.prod(x.shape[3:])) != (self.segments, VISUAL_CHANNELS, self.locations):
            raise ValueError(f"vaanet visual input {tuple(x.shape)}: expected (B, T={self.segments}, "
                             f"{VISUAL_CHANNELS}, h, w) with h*w = {self.locations}")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check(x)
        b, t = x.shape[:2]
        f = self.conv0(x.reshape(b * t, VISUAL_CHANNELS, self.locations))      # (B*T, 512, m)
        weights = {}
        if self.spatial is not None:
            weights["spatial"] = self.spatial(f)                                # (B*T, m)
            f = f * weights["spatial"][:, None]
        if self.channel is not None:
            weights["channel"] = self.channel(f.transpose(1, 2))               # (B*T, 512)
            f = f * weights["channel"][:, :, None]
        p = f.mean(dim=2).reshape(b, t, EMBED).transpose(1, 2)                  # (B, 512, T)
        embedding, temporal = attend_time(p, self.temporal)
        weights = {k: v.reshape(b, t, -1) for k, v in weights.items()}
        if temporal is not None:
            weights["temporal"] = temporal
        return embedding, weights


class MfccEncoder(nn.Module):
    """(B, S, 256, 32) MFCC segments -> (B, S, 512) through VAANet's audio ResNet-18 (trained here).

    The network and its input are channels-last: a training step of batch 4 (64 segments) then takes
    2.5 s instead of 3.3 s on a 2-core CPU (oneDNN's convolutions prefer it, on GPUs too); the values
    are the same up to float32 summation order."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        b, s = mfcc.shape[:2]
        x = mfcc.reshape(b * s, 1, *mfcc.shape[2:]).contiguous(memory_format=torch.channels_last)
        return self.net(x).reshape(b, s, -1)


def audio_resnet18(weights: str | None, conv1: str) -> nn.Module:
    """VAANet's audio ResNet-18, random or loaded as the `mfcc_resnet18` extractor loads it, trainable."""
    if weights is None:
        return build_vaanet_audio_resnet18()
    extractor = MfccResnet18.with_weights(str(weights), conv1=conv1, precision="fp32")
    return extractor.module.train().requires_grad_(True)


def cached_encoder(weights: str | None, conv1: str) -> nn.Module:
    if weights is not None:
        raise ValueError("audio_weights is for audio_mode='mfcc'; cached features are already extracted")
    return nn.Identity()


def mfcc_encoder(weights: str | None, conv1: str) -> nn.Module:
    return MfccEncoder(audio_resnet18(weights, conv1))


AUDIO_MODES: dict[str, tuple[InputSpec, Callable[[str | None, str], nn.Module]]] = {
    "cached": (InputSpec("mfcc_resnet18", "features", "fixed"), cached_encoder),
    "mfcc": (InputSpec("mfcc", "mfcc", "fixed"), mfcc_encoder),
}


class AudioStream(nn.Module):
    """audio (B, S, ...), present (B,) bool -> E_A (B, 256) and {"audio_temporal": (B, S)} when on."""

    def __init__(self, *, segments: int, encoder: nn.Module, temporal: bool) -> None:
        super().__init__()
        self.segments = segments
        self.encoder = encoder
        self.fc = nn.Sequential(nn.Linear(AUDIO_FEATURES, AUDIO_EMBED), nn.BatchNorm1d(AUDIO_EMBED),
                                nn.Tanh())
        self.temporal = ReluAttention(AUDIO_EMBED, segments) if temporal else None
        self.names = ("audio_temporal",) if temporal else ()

    def embed(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Videos with audio only: (B', S, ...) -> (B', 256), weights (B', S) or None."""
        features = self.encoder(audio)
        b, s = features.shape[:2]
        if (s, features.shape[2]) != (self.segments, AUDIO_FEATURES):
            raise ValueError(f"vaanet audio features {tuple(features.shape)}: "
                             f"expected (B, S={self.segments}, {AUDIO_FEATURES})")
        a = self.fc(features.reshape(b * s, AUDIO_FEATURES)).reshape(b, s, AUDIO_EMBED)
        return attend_time(a.transpose(1, 2), self.temporal)

    def forward(self, audio: torch.Tensor,
                present: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if bool(present.all()):
            embedding, temporal = self.embed(audio)
        else:
            embedding = audio.new_zeros(audio.shape[0], AUDIO_EMBED)
            temporal = audio.new_zeros(audio.shape[0], self.segments) if self.temporal is not None else None
            if bool(present.any()):
                heard, weights = self.embed(audio[present])
                embedding[present] = heard
                if temporal is not None:
                    temporal[present] = weights
        return embedding, ({} if temporal is None else {"audio_temporal": temporal})


class VAANet(Head):
    """Visual-audio attention network; out: "logits" (B, C) and the attention weights named in `saved`:
    "temporal" (B, T), "spatial" (B, T, m), "channel" (B, T, 512), "audio_temporal" (B, S), as switched on.
    Spatial and channel weights are the scaled ones (mean 1); temporal weights are the raw ReLU outputs.
    """

    name = "vaanet"
    ORDER = ("temporal", "spatial", "channel", "audio_temporal")

    def __init__(self, *, num_classes: int, visual: VisualStream | None, audio: AudioStream | None,
                 audio_input: InputSpec, criterion: nn.Module) -> None:
        super().__init__()
        self.visual, self.audio, self.audio_input, self.criterion = visual, audio, audio_input, criterion
        width = (EMBED if visual is not None else 0) + (AUDIO_EMBED if audio is not None else 0)
        self.classifier = nn.Linear(width, num_classes)
        names = {*(visual.names if visual is not None else ()), *(audio.names if audio is not None else ())}
        self.saved = tuple(k for k in self.ORDER if k in names)     # per instance: only the attentions on

    def inputs(self) -> dict[str, InputSpec]:
        specs = {"visual": VISUAL_INPUT} if self.visual is not None else {}
        return specs | ({"audio": self.audio_input} if self.audio is not None else {})

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        embeddings, out = [], {}
        if self.visual is not None:
            embedding, weights = self.visual(batch["visual"])
            embeddings.append(embedding)
            out.update(weights)
        if self.audio is not None:
            audio = batch["audio"]
            present = batch.get("audio_present", torch.ones(audio.shape[0], dtype=torch.bool))
            embedding, weights = self.audio(audio, present.to(device=audio.device, dtype=torch.bool))
            embeddings.append(embedding)
            out.update(weights)
        out["logits"] = self.classifier(torch.cat(embeddings, dim=1))
        return out

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": self.criterion(out["logits"], batch["label"])}


@register_head("vaanet")
def build_vaanet(
    *,
    num_classes: int,
    polarity: torch.Tensor | None = None,
    # time
    segments: int = 10,
    audio_segments: int = 16,
    locations: int = 16,
    # ablation switches (paper Tables 3-5)
    spatial: bool = True,
    channel: bool = True,
    temporal: bool = True,
    audio_temporal: bool = True,
    audio: bool = True,
    visual: bool = True,
    # audio input
    audio_mode: str = "cached",
    audio_weights: str | None = None,
    audio_conv1: str = "random",
    # loss
    loss: str = "pcce",
    pcce_lambda: float = 0.5,
) -> VAANet:
    """Build the VAANet head; see the module docstring for every option."""
    check_option("audio_mode", audio_mode, tuple(AUDIO_MODES))
    check_option("audio_conv1", audio_conv1, CONV1_MODES)
    if not (visual or audio):
        raise ValueError("vaanet needs at least one stream: visual=True or audio=True")
    if polarity is not None and len(polarity) != num_classes:
        raise ValueError(f"polarity has {len(polarity)} entries for {num_classes} classes")
    audio_input, make_encoder = AUDIO_MODES[audio_mode]
    visual_stream = VisualStream(segments=segments, locations=locations, spatial=spatial, channel=channel,
                                 temporal=temporal) if visual else None
    audio_stream = AudioStream(segments=audio_segments, encoder=make_encoder(audio_weights, audio_conv1),
                               temporal=audio_temporal) if audio else None
    loss_options = {"lam": pcce_lambda} if loss == "pcce" else {}
    criterion = build_loss(loss, polarity=polarity, **loss_options)
    return VAANet(num_classes=num_classes, visual=visual_stream, audio=audio_stream, audio_input=audio_input,
                  criterion=criterion)

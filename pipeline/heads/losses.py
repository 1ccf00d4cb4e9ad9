"""Classification losses picked by name: plain cross-entropy and VAANet's polarity-consistent cross-entropy.

Every loss is an `nn.Module` called as `loss(logits (B, C), target (B,) long) -> scalar` (mean over the
batch). Builders are registered with `@register_loss(name)` and take keyword arguments only; each accepts
`polarity` ((C,) long: +1 positive, -1 negative, 0 neutral, see `pipeline.heads.polarity`), which a loss
that has no use for it ignores, so a head can pass the same arguments to whichever loss is configured.

PCCE (VAANet, Zhao et al. AAAI 2020, Eq. 13-14):

    L = 1/B * sum_i (1 + lambda * g(argmax_c logits_ic, y_i)) * CE_i

g is 1 when the predicted class and the true class have *opposite* polarities, i.e.
polarity[pred] * polarity[y] == -1, and 0 otherwise. This is the authors' rule (maysonma/VAANet,
`core/loss.py`: the weight grows only for a positive truth predicted negative or a negative truth predicted
positive). A class outside both groups, neutral here, therefore never adds a penalty, whether it is the
truth or the prediction: the paper's "polarity differs" is silent on neutral, and we follow the code.
The weight is a constant of the prediction (no gradient flows through the argmax), and the weighted terms
are divided by B, not by the sum of the weights (as in the authors' code). lambda defaults to 0.5, the
public code's default (`--lambda_0`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.registry import Registry

LossBuilder = Callable[..., nn.Module]
LOSSES: Registry[LossBuilder] = Registry("loss")


def register_loss(name: str) -> Callable[[LossBuilder], LossBuilder]:
    """Register a builder `(*, polarity=None, **options) -> nn.Module` under `name`."""
    return LOSSES.register(name)


def build_loss(name: str, **kwargs: object) -> nn.Module:
    return LOSSES.get(name)(**kwargs)


def list_losses() -> list[str]:
    return LOSSES.names()


class PolarityConsistentCE(nn.Module):
    """Cross-entropy weighted by (1 + lambda) for samples predicted with the opposite polarity.

    Args:
        polarity (Tensor): (C,) long, +1 / -1 / 0 per class.
        lam (float): the penalty coefficient lambda (>= 0); lambda = 0 gives plain cross-entropy.
    """

    def __init__(self, polarity: torch.Tensor, lam: float = 0.5) -> None:
        super().__init__()
        polarity = torch.as_tensor(polarity, dtype=torch.long)
        if polarity.dim() != 1 or not bool(((polarity >= -1) & (polarity <= 1)).all()):
            raise ValueError(f"polarity must be a 1-D tensor of -1, 0, 1; got {polarity.tolist()}")
        if lam < 0:
            raise ValueError(f"PCCE lambda must be >= 0; got {lam}")
        self.lam = float(lam)
        self.register_buffer("polarity", polarity, persistent=False)

    def weights(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) 1 + lambda where argmax(logits) and target have opposite polarities, else 1."""
        with torch.no_grad():
            opposite = self.polarity[logits.argmax(dim=1)] * self.polarity[target] < 0
            return 1.0 + self.lam * opposite.to(logits.dtype)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (B, C), target (B,) long -> scalar mean weighted cross-entropy."""
        if logits.shape[1] != self.polarity.numel():
            raise ValueError(f"PCCE: logits have {logits.shape[1]} classes, polarity has "
                             f"{self.polarity.numel()}")
        ce = F.cross_entropy(logits, target, reduction="none")
        return (ce * self.weights(logits, target)).mean()


@register_loss("ce")
def build_ce(*, polarity: torch.Tensor | None = None) -> nn.Module:
    """Plain cross-entropy, mean over the batch; `polarity` is ignored."""
    return nn.CrossEntropyLoss()


@register_loss("pcce")
def build_pcce(*, polarity: torch.Tensor | None = None, lam: float = 0.5) -> nn.Module:
    """VAANet's polarity-consistent cross-entropy; needs the class polarity."""
    if polarity is None:
        raise ValueError("the pcce loss needs the class polarity (pipeline.heads.polarity.polarity_for); "
                         "pass polarity, or use the ce loss")
    return PolarityConsistentCE(polarity, lam=lam)

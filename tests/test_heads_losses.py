"""The loss registry, cross-entropy and VAANet's polarity-consistent cross-entropy (PCCE)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from pipeline.heads import losses
from pipeline.heads.losses import PolarityConsistentCE, build_loss, list_losses, register_loss

VE8_POLARITY = torch.tensor([-1, 1, -1, -1, 1, -1, 1, 1])


def test_registry_lists_ce_and_pcce_and_names_unknown() -> None:
    assert {"ce", "pcce"} <= set(list_losses())
    with pytest.raises(KeyError, match="focal"):
        build_loss("focal")


def test_registering_the_same_loss_again_is_harmless_and_another_raises() -> None:
    register_loss("test-duplicate")(losses.build_ce)
    try:
        assert register_loss("test-duplicate")(losses.build_ce) is losses.build_ce
        with pytest.raises(ValueError, match="'test-duplicate' is already registered by .*build_ce"):
            register_loss("test-duplicate")(losses.build_pcce)
    finally:
        losses.LOSSES.remove("test-duplicate")


def test_ce_is_mean_cross_entropy_and_ignores_polarity() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(5, 8), torch.randint(0, 8, (5,))
    loss = build_loss("ce", polarity=VE8_POLARITY)
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target))


def test_pcce_with_lambda_zero_is_ce() -> None:
    torch.manual_seed(1)
    logits, target = torch.randn(16, 8), torch.randint(0, 8, (16,))
    loss = build_loss("pcce", polarity=VE8_POLARITY, lam=0.0)
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target))


def test_pcce_weights_only_cross_polarity_errors_exactly() -> None:
    # classes: 0 positive, 1 negative, 2 neutral
    loss = PolarityConsistentCE(torch.tensor([1, -1, 0]), lam=0.5)
    logits = torch.tensor([[0.0, 1.0, 0.0],    # true pos, predicted neg      -> x 1.5
                           [1.0, 0.0, 0.0],    # true pos, predicted pos      -> x 1
                           [0.0, 1.0, 0.0],    # true neutral, predicted neg  -> x 1 (neutral)
                           [0.0, 0.0, 1.0],    # true neg, predicted neutral  -> x 1 (neutral)
                           [1.0, 0.0, 0.0]])   # true neg, predicted pos      -> x 1.5
    target = torch.tensor([0, 0, 2, 1, 1])
    a = math.log(2 + math.e)                   # log-sum-exp of one 1 and two 0s
    expected = (1.5 * a + (a - 1) + a + a + 1.5 * a) / 5
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert loss.weights(logits, target).tolist() == [1.5, 1.0, 1.0, 1.0, 1.5]


def test_pcce_same_polarity_error_is_not_penalised() -> None:
    loss = PolarityConsistentCE(VE8_POLARITY, lam=0.5)
    logits = torch.zeros(2, 8)
    logits[0, 4] = 3.0                          # true Anticipation (+), predicted Joy (+)
    logits[1, 2] = 3.0                          # true Anger (-), predicted Disgust (-)
    target = torch.tensor([1, 0])
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target))


def test_pcce_neutral_never_penalised_with_any_lambda() -> None:
    loss = PolarityConsistentCE(torch.tensor([1, -1, 0]), lam=10.0)
    logits = torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 2.0]])
    target = torch.tensor([2, 0, 1])            # neutral->neg, pos->neutral, neg->neutral
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target))


def test_pcce_gradient_is_the_weighted_ce_gradient() -> None:
    loss = PolarityConsistentCE(torch.tensor([1, -1]), lam=0.5)
    logits = torch.tensor([[0.0, 1.0]], requires_grad=True)
    loss(logits, torch.tensor([0])).backward()
    reference = torch.tensor([[0.0, 1.0]], requires_grad=True)
    F.cross_entropy(reference, torch.tensor([0])).backward()
    assert torch.allclose(logits.grad, 1.5 * reference.grad)


def test_pcce_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="polarity"):
        build_loss("pcce")
    with pytest.raises(ValueError, match="-1, 0, 1"):
        PolarityConsistentCE(torch.tensor([2, -1]))
    with pytest.raises(ValueError, match="lambda"):
        PolarityConsistentCE(VE8_POLARITY, lam=-0.1)
    with pytest.raises(ValueError, match="6 classes"):
        PolarityConsistentCE(VE8_POLARITY)(torch.zeros(2, 6), torch.tensor([0, 1]))


def test_pcce_polarity_is_not_in_the_state_dict() -> None:
    assert dict(PolarityConsistentCE(VE8_POLARITY).state_dict()) == {}

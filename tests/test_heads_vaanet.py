"""VAANet head: attention blocks, ablation switches, audio modes, the no-audio rule, learning."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from pipeline.extractors.mfcc_cnn import build_vaanet_audio_resnet18
from pipeline.heads.base import InputSpec, build_head
from pipeline.heads.losses import PolarityConsistentCE
from pipeline.heads.vaanet import MfccEncoder, ReluAttention, SoftmaxAttention, build_vaanet

POLARITY = torch.tensor([-1, 1, -1, -1, 1, -1, 1, 1])     # VE-8 order


def make_batch(b: int = 2, t: int = 10, s: int = 16, mfcc: bool = False,
               seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(b, s, 256, 32, generator=g) if mfcc else torch.randn(b, s, 512, generator=g)
    return {"visual": torch.randn(b, t, 2048, 1, 4, 4, generator=g).relu(), "audio": audio,
            "label": torch.arange(b) % 8, "audio_present": torch.ones(b, dtype=torch.bool)}


def head(seed: int = 0, **options: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_vaanet(num_classes=8, polarity=POLARITY, **options)


def test_softmax_attention_shapes_and_sums() -> None:
    spatial, channel = SoftmaxAttention(512, 16), SoftmaxAttention(16, 512)
    a = spatial(torch.randn(6, 512, 16))
    c = channel(torch.randn(6, 16, 512))
    assert a.shape == (6, 16) and c.shape == (6, 512)
    assert bool((a > 0).all()) and bool((c > 0).all())
    assert torch.allclose((a / 16).sum(dim=1), torch.ones(6))       # softmax sums to 1 before the scaling
    assert torch.allclose(c.sum(dim=1), torch.full((6,), 512.0))


def test_relu_attention_shape_and_visual_bias_init() -> None:
    w = ReluAttention(512, 10)(torch.randn(3, 512, 10))
    assert w.shape == (3, 10) and bool((w >= 0).all())
    assert torch.equal(head().visual.temporal.fc.bias, torch.ones(10))


def test_full_forward_shapes_saved_and_inputs() -> None:
    model = head()
    out = model(make_batch(b=3))
    assert out["logits"].shape == (3, 8)
    assert out["spatial"].shape == (3, 10, 16) and out["channel"].shape == (3, 10, 512)
    assert out["temporal"].shape == (3, 10) and out["audio_temporal"].shape == (3, 16)
    assert torch.allclose(out["spatial"].sum(-1), torch.full((3, 10), 16.0))
    assert torch.allclose(out["channel"].sum(-1), torch.full((3, 10), 512.0))
    assert model.saved == ("temporal", "spatial", "channel", "audio_temporal")
    assert model.inputs() == {"visual": InputSpec("r3d101_conv5", "conv5", "views"),
                              "audio": InputSpec("mfcc_resnet18", "features", "fixed")}


def test_registered_and_inputs_follow_the_options() -> None:
    model = build_head("vaanet", num_classes=6, loss="ce", audio=False, temporal=False)
    assert set(model.inputs()) == {"visual"}
    assert model.saved == ("spatial", "channel")
    assert head(audio_mode="mfcc").inputs()["audio"] == InputSpec("mfcc", "mfcc", "fixed")
    assert set(head(visual=False).inputs()) == {"audio"}


@pytest.mark.parametrize(("switch", "path"), [("spatial", "visual.spatial"), ("channel", "visual.channel"),
                                              ("temporal", "visual.temporal"),
                                              ("audio_temporal", "audio.temporal")])
def test_switched_off_equals_uniform_attention(switch: str, path: str) -> None:
    """Off = weights fixed to 1: same output as the attention on with a zeroed score layer."""
    on, off = head(), head(**{switch: False})
    with torch.no_grad():
        attention = on.get_submodule(path)
        attention.fc.weight.zero_()
        if attention.fc.bias is not None:
            attention.fc.bias.fill_(1.0)                 # ReLU(0 + 1) = 1 for the temporal ones
    result = off.load_state_dict(on.state_dict(), strict=False)
    assert result.missing_keys == [] and all(k.startswith(path) for k in result.unexpected_keys)
    on.eval(), off.eval()
    batch = make_batch()
    out_on, out_off = on(batch), off(batch)
    assert torch.allclose(out_on[switch], torch.ones_like(out_on[switch]))
    assert switch not in out_off and switch not in off.saved
    assert torch.allclose(out_on["logits"], out_off["logits"], atol=1e-5)


def test_all_visual_attentions_off_is_the_plain_mean() -> None:
    model = head(spatial=False, channel=False, temporal=False, audio=False).eval()
    batch = make_batch()
    x = batch["visual"].reshape(2 * 10, 2048, 16)
    pooled = model.visual.conv0(x).mean(dim=2).reshape(2, 10, 512).mean(dim=1)
    assert torch.allclose(model(batch)["logits"], model.classifier(pooled), atol=1e-5)


def test_audio_only_without_attention_is_the_plain_mean() -> None:
    model = head(visual=False, audio_temporal=False).eval()
    batch = make_batch()
    embedded = model.audio.fc(batch["audio"].reshape(32, 512)).reshape(2, 16, 256).mean(dim=1)
    assert torch.allclose(model(batch)["logits"], model.classifier(embedded), atol=1e-5)


def test_video_without_audio_is_classified_on_visual_evidence_only() -> None:
    model = head()                                            # train mode: BatchNorm uses batch statistics
    batch = make_batch(b=3)
    batch["audio_present"] = torch.tensor([True, False, True])
    out = model(batch)
    embedding, _ = model.visual(batch["visual"])
    visual_only = model.classifier(torch.cat([embedding, torch.zeros(3, 256)], dim=1))
    assert torch.allclose(out["logits"][1], visual_only[1], atol=1e-5)
    assert torch.equal(out["audio_temporal"][1], torch.zeros(16))
    batch["audio"][1] = torch.randn(16, 512) * 100            # its audio is ignored, also in BN statistics
    assert torch.allclose(model(batch)["logits"], out["logits"], atol=1e-5)


def test_batch_with_no_audio_at_all() -> None:
    model = head()
    batch = make_batch()
    batch["audio_present"] = torch.zeros(2, dtype=torch.bool)
    out = model(batch)
    embedding, _ = model.visual(batch["visual"])
    expected = model.classifier(torch.cat([embedding, torch.zeros(2, 256)], dim=1))
    assert torch.allclose(out["logits"], expected, atol=1e-5)
    model.loss(out, batch)["loss"].backward()


@pytest.mark.parametrize("mode", ["cached", "mfcc"])
def test_both_audio_modes_forward_and_backward(mode: str) -> None:
    model = head(audio_mode=mode, audio_segments=2)           # 2 MFCC segments keep the ResNet-18 quick
    batch = make_batch(s=2, mfcc=mode == "mfcc")
    parts = model.loss(model(batch), batch)
    parts["loss"].backward()
    grads = [model.visual.conv0[0].weight.grad, model.audio.fc[0].weight.grad, model.classifier.weight.grad]
    if mode == "mfcc":
        grads.append(model.audio.encoder.net.conv1.weight.grad)
    assert all(g is not None and bool(torch.isfinite(g).all()) and g.abs().sum() > 0 for g in grads)


def test_the_mfcc_encoder_runs_channels_last_with_the_plain_layout_values() -> None:
    torch.manual_seed(0)
    net = build_vaanet_audio_resnet18().eval()
    plain = copy.deepcopy(net)
    encoder = MfccEncoder(net)
    assert encoder.net.layer1[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 256, 32)
    expected = plain(x.reshape(6, 1, 256, 32)).reshape(2, 3, -1)
    torch.testing.assert_close(encoder(x), expected, atol=1e-4, rtol=1e-4)


def test_audio_weights_are_loaded_like_the_extractor_and_trainable(tmp_path: Path) -> None:
    torch.manual_seed(3)
    reference = build_vaanet_audio_resnet18()
    torch.save(reference.state_dict(), tmp_path / "audio.pt")
    model = head(audio_mode="mfcc", audio_weights=str(tmp_path / "audio.pt")).train()
    net = model.audio.encoder.net
    assert torch.equal(net.conv1.weight, reference.conv1.weight)
    assert torch.equal(net.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert net.training and all(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError, match="audio_mode='mfcc'"):
        head(audio_weights=str(tmp_path / "audio.pt"))


def test_loss_option_and_checks() -> None:
    model = head()
    batch = make_batch(b=4)
    out = model(batch)
    expected = PolarityConsistentCE(POLARITY, lam=0.5)(out["logits"], batch["label"])
    assert torch.allclose(model.loss(out, batch)["loss"], expected)
    ce = head(loss="ce")
    out = ce(batch)
    assert torch.allclose(ce.loss(out, batch)["loss"], F.cross_entropy(out["logits"], batch["label"]))
    with pytest.raises(ValueError, match="polarity"):
        build_vaanet(num_classes=8)
    with pytest.raises(ValueError, match="polarity has 8 entries for 6 classes"):
        build_vaanet(num_classes=6, polarity=POLARITY)
    with pytest.raises(ValueError, match="at least one stream"):
        head(visual=False, audio=False)
    with pytest.raises(ValueError, match="audio_mode"):
        head(audio_mode="wav")


def test_segments_come_from_the_builder() -> None:
    model = head(segments=4)
    assert model(make_batch(t=4))["temporal"].shape == (2, 4)
    with pytest.raises(ValueError, match="T=4"):
        model(make_batch(t=10))


def test_head_can_overfit_eight_samples() -> None:
    model = head(segments=2)
    batch = make_batch(b=8, t=2, seed=5)
    batch["label"] = torch.arange(8)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):                                       # about 0.3 s a step on a small CPU
        loss = model.loss(model(batch), batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]

"""LSTM audio-visual fusion head: packing, alignment of the two streams, fusion variants, edge cases."""

from __future__ import annotations

import pytest
import torch

from pipeline.heads.base import InputSpec, build_head, list_heads
from pipeline.heads.losses import PolarityConsistentCE
from pipeline.heads.lstm_fusion import LSTMFusion, build_lstm_fusion

VARIANTS = ["modal", "visual", "audio", "early", "late"]
DV, DA, C = 7, 5, 3
SMALL = {"visual_dim": DV, "audio_dim": DA, "embed": 6, "hidden": 5, "mlp": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def head(fusion: str, seed: int = 0, **options: object) -> LSTMFusion:
    torch.manual_seed(seed)
    return build_lstm_fusion(num_classes=C, fusion=fusion, **{**SMALL, **options}).eval()


def batch(visual_lengths: list[int], audio_lengths: list[int] | None = None,
          present: list[bool] | None = None, pad: float = float("nan"),
          seed: int = 1) -> dict[str, torch.Tensor]:
    """Random features; padded rows hold `pad` (NaN by default: nothing may read them)."""
    audio_lengths = visual_lengths if audio_lengths is None else audio_lengths
    gen = torch.Generator().manual_seed(seed)
    b = len(visual_lengths)
    out = {"label": torch.randint(0, C, (b,), generator=gen),
           "audio_present": torch.tensor(present if present is not None else [True] * b)}
    for key, lengths, dim in (("visual", visual_lengths, DV), ("audio", audio_lengths, DA)):
        mask = torch.arange(max(lengths, default=0)) < torch.tensor(lengths).unsqueeze(1)
        x = torch.rand(b, mask.shape[1], dim, generator=gen) * 2
        out[key], out[f"{key}_mask"] = x.masked_fill(~mask.unsqueeze(-1), pad), mask
    return out


def one(b: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    """Video i of a batch alone, cut to its own lengths (no padding at all)."""
    nv, na = int(b["visual_mask"][i].sum()), int(b["audio_mask"][i].sum())
    return {"label": b["label"][i:i + 1], "audio_present": b["audio_present"][i:i + 1],
            "visual": b["visual"][i:i + 1, :nv], "visual_mask": b["visual_mask"][i:i + 1, :nv],
            "audio": b["audio"][i:i + 1, :na], "audio_mask": b["audio_mask"][i:i + 1, :na]}


def with_audio(b: dict[str, torch.Tensor], audio: torch.Tensor,
               mask: torch.Tensor) -> dict[str, torch.Tensor]:
    return {**b, "audio": audio, "audio_mask": mask}


@pytest.mark.parametrize("fusion", VARIANTS)
def test_packed_batch_equals_each_video_alone(fusion: str) -> None:
    h, b = head(fusion), batch([3, 1, 5, 2])
    out = h(b)
    for i in range(4):
        alone = h(one(b, i))
        n = alone["per_second"].shape[1]
        torch.testing.assert_close(out["logits"][i:i + 1], alone["logits"], atol=1e-6, rtol=0)
        torch.testing.assert_close(out["per_second"][i:i + 1, :n], alone["per_second"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("fusion", VARIANTS)
def test_extra_padding_changes_nothing_not_even_nan(fusion: str) -> None:
    h, b = head(fusion), batch([3, 4], pad=0.0)
    padded = {**b}
    for key in ("visual", "audio"):
        x = b[key]
        padded[key] = torch.cat([x, torch.full((2, 3, x.shape[2]), float("nan"))], dim=1)
        padded[f"{key}_mask"] = torch.cat([b[f"{key}_mask"], torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    out, more = h(b), h(padded)
    torch.testing.assert_close(more["logits"], out["logits"], atol=1e-6, rtol=0)
    torch.testing.assert_close(more["per_second"][:, :4], out["per_second"], atol=1e-6, rtol=0)
    assert more["per_second"].shape[1] == 7 and bool((more["per_second"][:, 4:] == 0).all())
    h.train()
    h.loss(h(padded), padded)["loss"].backward()
    grads = [p.grad for p in h.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)


def test_late_fusion_is_the_alpha_mix_of_the_single_modality_branches() -> None:
    late, visual, audio = head("late", seed=3), head("visual", seed=4), head("audio", seed=5)
    visual.branches["visual"].load_state_dict(late.branches["visual"].state_dict())
    audio.branches["audio"].load_state_dict(late.branches["audio"].state_dict())
    b = batch([4, 2, 6])
    p, p_v, p_a = late(b), visual(b)["logits"].softmax(-1), audio(b)["logits"].softmax(-1)
    torch.testing.assert_close(p["logits"].exp(), 0.56 * p_a + 0.44 * p_v, atol=1e-6, rtol=0)
    steps_v, steps_a = visual(b)["per_second"], audio(b)["per_second"]
    torch.testing.assert_close(p["per_second"], 0.56 * steps_a + 0.44 * steps_v, atol=1e-6, rtol=0)
    assert not torch.allclose(p["logits"].exp(), p_v, atol=1e-4)


def test_late_fusion_uses_the_visual_probability_for_a_video_without_audio() -> None:
    late = head("late", seed=3)
    b = batch([4, 3], present=[True, False])
    out = late(b)
    torch.testing.assert_close(out["logits"][1], out["logits_visual"][1].log_softmax(-1))
    torch.testing.assert_close(out["per_second"][1, :3], out["step_logits_visual"][1, :3].softmax(-1))
    assert not torch.allclose(out["logits"][0], out["logits_visual"][0].log_softmax(-1), atol=1e-4)
    parts = late.loss(out, b)
    ce_audio = torch.nn.functional.cross_entropy(out["logits_audio"][:1], b["label"][:1])
    torch.testing.assert_close(parts["audio_ce"], ce_audio)
    torch.testing.assert_close(parts["loss"], parts["visual_ce"] + parts["audio_ce"])


@pytest.mark.parametrize(("fusion", "keys"), [
    ("modal", {"visual", "audio"}), ("visual", {"visual"}), ("audio", {"audio"}),
    ("early", {"visual", "audio"}), ("late", {"visual", "audio"}),
])
def test_each_variant_asks_only_for_its_inputs(fusion: str, keys: set[str]) -> None:
    h = head(fusion)
    specs = {"visual": InputSpec("alexnet_fc7", "fc7", "sequence"),
             "audio": InputSpec("alexnet_fc7_spec", "fc7", "sequence")}
    assert h.inputs() == {k: specs[k] for k in keys}
    b = batch([3, 2])
    only = {k: v for k, v in b.items() if k.split("_")[0] in keys or k == "label"}
    torch.testing.assert_close(h(only)["logits"], h(b)["logits"], atol=0, rtol=0)


@pytest.mark.parametrize("fusion", VARIANTS)
def test_per_second_is_a_distribution_on_real_seconds_and_zero_on_padding(fusion: str) -> None:
    b = batch([5, 2, 3], audio_lengths=[4, 2, 3])
    per_second = head(fusion)(b)["per_second"]
    mask = b["audio_mask"] if fusion == "audio" else b["visual_mask"]
    assert per_second.shape == (*mask.shape, C)
    assert bool((per_second[~mask] == 0).all())
    torch.testing.assert_close(per_second[mask].sum(-1), torch.ones(int(mask.sum())))
    assert head(fusion).saved == ("per_second",)


@pytest.mark.parametrize("fusion", ["modal", "early", "late"])
def test_a_video_without_audio_ignores_its_audio_rows(fusion: str) -> None:
    h = head(fusion)
    b = batch([4], present=[False])
    other = with_audio(b, torch.randn_like(b["audio"]) * 5, b["audio_mask"])
    none = with_audio(b, torch.zeros(1, 0, DA), torch.zeros(1, 0, dtype=torch.bool))
    torch.testing.assert_close(h(other)["logits"], h(b)["logits"], atol=0, rtol=0)
    torch.testing.assert_close(h(none)["logits"], h(b)["logits"], atol=0, rtol=0)


def test_modal_fusion_masks_the_audio_term_instead_of_using_g_of_zero() -> None:
    h = head("modal")
    b = batch([4], present=[False])
    zeros_present = {**with_audio(b, torch.zeros_like(b["audio"]), b["audio_mask"]),
                     "audio_present": torch.tensor([True])}
    streams = h.align(b)
    alpha_v = h.branches["modal"].encoder.alphas()[1]
    g_v = h.branches["modal"].encoder.g_visual(streams["visual"], streams["steps"])
    torch.testing.assert_close(h.branches["modal"].encoder(streams), alpha_v * g_v)
    assert not torch.allclose(h(zeros_present)["logits"], h(b)["logits"], atol=1e-5)


def test_audio_shorter_or_longer_than_video_is_aligned_second_by_second() -> None:
    h = head("modal")
    b = batch([5], audio_lengths=[3])
    masked_tail = with_audio(b, torch.cat([b["audio"], torch.randn(1, 2, DA)], dim=1),
                             torch.tensor([[True, True, True, False, False]]))
    torch.testing.assert_close(h(masked_tail)["logits"], h(b)["logits"], atol=0, rtol=0)
    full = batch([5], audio_lengths=[5])
    longer = with_audio(full, torch.cat([full["audio"], torch.randn(1, 2, DA)], dim=1),
                        torch.ones(1, 7, dtype=torch.bool))
    torch.testing.assert_close(h(longer)["logits"], h(full)["logits"], atol=0, rtol=0)
    assert h(longer)["per_second"].shape == (1, 5, C)
    assert not torch.allclose(h(full)["logits"], h(b)["logits"], atol=1e-5)


def test_audio_only_marks_a_video_without_audio_invalid() -> None:
    h = head("audio")
    b = batch([3, 3], present=[True, False])
    out = h(b)
    assert out["valid"].tolist() == [True, False] and bool(torch.isfinite(out["logits"]).all())
    torch.testing.assert_close(h.loss(out, b)["loss"], h.loss(h(one(b, 0)), one(b, 0))["loss"])


@pytest.mark.parametrize("fusion", VARIANTS)
def test_zero_length_video_is_invalid_finite_and_out_of_the_loss(fusion: str) -> None:
    h = head(fusion)
    b = batch([3, 0, 2])
    out = h(b)
    assert out["valid"].tolist() == [True, False, True]
    assert bool(torch.isfinite(out["logits"]).all()) and bool((out["per_second"][1] == 0).all())
    kept = {k: v[[0, 2]] for k, v in b.items()}
    torch.testing.assert_close(h.loss(out, b)["loss"], h.loss(h(kept), kept)["loss"])
    empty = batch([0, 0])
    out = h(empty)
    assert out["per_second"].shape == (2, 0, C) and bool(torch.isfinite(out["logits"]).all())
    loss = h.loss(out, empty)["loss"]
    loss.backward()
    assert float(loss.detach()) == 0.0


@pytest.mark.parametrize("fusion", VARIANTS)
def test_tiny_overfit(fusion: str) -> None:
    torch.manual_seed(0)
    lengths = torch.randint(2, 7, (8,)).tolist()
    b = batch(lengths, pad=0.0, seed=7)
    h = head(fusion, dropout=0.0, embed=32, hidden=32, mlp=16).train()
    opt = torch.optim.Adam(h.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = h.loss(h(b), b)["loss"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(h.loss(h(b), b)["loss"].detach()) < 0.2 * first


def test_max_steps_reads_evenly_spaced_seconds() -> None:
    capped, full = head("modal", max_steps=4), head("modal")
    b = batch([10, 3])
    out = capped(b)
    picked = [0, 2, 5, 7]
    sub = {k: v[:1, picked] if v.dim() > 1 else v[:1] for k, v in b.items()}
    alone = full(sub)
    torch.testing.assert_close(out["logits"][:1], alone["logits"], atol=1e-6, rtol=0)
    torch.testing.assert_close(out["per_second"][0, picked], alone["per_second"][0], atol=1e-6, rtol=0)
    assert out["per_second"].shape == (2, 10, C)
    assert bool((out["per_second"][0, [1, 3, 4, 6, 8, 9]] == 0).all())
    torch.testing.assert_close(out["logits"][1:], full(one(b, 1))["logits"], atol=1e-6, rtol=0)


def test_pcce_loss_is_the_configured_criterion() -> None:
    polarity = torch.tensor([-1, 0, 1])
    torch.manual_seed(0)
    h = build_lstm_fusion(num_classes=C, polarity=polarity, loss="pcce", loss_options={"lam": 2.0}, **SMALL)
    b = batch([3, 0, 4, 2])
    out = h.eval()(b)
    keep = out["valid"]
    expected = PolarityConsistentCE(polarity, lam=2.0)(out["logits"][keep], b["label"][keep])
    torch.testing.assert_close(h.loss(out, b)["loss"], expected)
    with pytest.raises(ValueError, match="polarity"):
        build_lstm_fusion(num_classes=C, loss="pcce", **SMALL)


def test_per_step_loss_adds_the_loss_of_every_real_second() -> None:
    h = head("visual", per_step_loss=0.5)
    b = batch([3, 2])
    out = h(b)
    mask = b["visual_mask"]
    target = b["label"].unsqueeze(1).expand(2, 3)[mask]
    steps = torch.nn.functional.cross_entropy(out["step_logits"][mask], target)
    parts = h.loss(out, b)
    torch.testing.assert_close(parts["step_ce"], steps)
    torch.testing.assert_close(parts["loss"], parts["video_ce"] + 0.5 * steps)


def test_alphas_are_fixed_by_default_and_a_softmax_when_learned() -> None:
    fixed = head("modal", alpha_audio=0.3, alpha_visual=0.6).branches["modal"].encoder
    assert fixed.alphas().tolist() == pytest.approx([0.3, 0.6])
    assert not any("alpha" in name for name, _ in fixed.named_parameters())
    h = head("modal", alpha_audio=0.3, alpha_visual=0.6, learn_alphas=True)
    learned = h.branches["modal"].encoder
    torch.testing.assert_close(learned.alphas(), torch.tensor([1 / 3, 2 / 3]))
    b = batch([3, 2])
    h.loss(h(b), b)["loss"].backward()
    assert learned.alpha_logits.grad is not None and bool(learned.alpha_logits.grad.abs().sum() > 0)


def test_paper_sizes_by_default_and_registered() -> None:
    assert "lstm_fusion" in list_heads()
    h = build_head("lstm_fusion", num_classes=3)
    lstm, mlp = h.branches["modal"].lstm, h.branches["modal"].mlp
    assert (lstm.input_size, lstm.hidden_size) == (512, 256)
    assert mlp[0].out_features == 64 and mlp[2].p == 0.5 and mlp[3].out_features == 3
    assert h.branches["modal"].encoder.alphas().tolist() == [0.5, 0.5]
    assert build_head("lstm_fusion", num_classes=3, fusion="early").branches["early"].lstm.input_size == 8192


@pytest.mark.parametrize("options", [{"fusion": "middle"}, {"late_alpha": 1.5}, {"max_steps": 0},
                                     {"alpha_audio": -0.1}, {"alpha_audio": 0.0, "learn_alphas": True}])
def test_bad_options_raise(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_lstm_fusion(num_classes=C, **{**SMALL, **options})


def test_a_mask_with_holes_is_refused() -> None:
    b = batch([3])
    b["visual_mask"] = torch.tensor([[True, False, True]])
    with pytest.raises(ValueError, match="prefix"):
        head("visual")(b)

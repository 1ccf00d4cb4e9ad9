"""TEN head: attention blocks, min-max normalisation, temporal erasing, loss, switches, audio-less videos."""

from __future__ import annotations

import pytest
import torch

from pipeline.heads.base import build_head
from pipeline.heads.losses import build_loss
from pipeline.heads.ten import (
    AUDIO,
    TEN,
    VISUAL,
    CrossAttention,
    TemporalAttention,
    build_ten,
    keyframe_mask,
    min_max,
    resample_index,
)

T, DIM, C = 6, 32, 4
SMALL = {"segments": T, "dim": DIM, "d_k": 8, "hidden": 16}
# hand-built attention: A*_v >= 0.7 at 1, 2, 4; A*_a >= 0.7 at 0, 1, 4, 5; keyframes (both) at 1 and 4
ATT_V = [0.0, 1.0, 0.8, 0.2, 0.75, 0.5]
ATT_A = [1.0, 0.9, 0.0, 0.3, 0.7, 0.71]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(**options: object) -> TEN:
    torch.manual_seed(0)
    return build_ten(num_classes=C, **{**SMALL, **options})


def make_batch(b: int = 3, present: list[bool] | None = None, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    present_t = torch.tensor(present if present is not None else [True] * b)
    audio = torch.randn(b, T, DIM, generator=g) * present_t.view(-1, 1, 1)
    return {"visual": torch.randn(b, T, DIM, generator=g), "audio": audio,
            "label": torch.randint(0, C, (b,), generator=g), "audio_present": present_t}


def fix_attention(head: TEN, values: dict[str, list[float]]) -> None:
    """Make A_m = ReLU(bias) whatever the input: W1 weight 0, bias = the hand-built values."""
    with torch.no_grad():
        for m, v in values.items():
            head.temporal[m].w1.weight.zero_()
            head.temporal[m].w1.bias.copy_(torch.tensor(v))


# --- blocks ------------------------------------------------------------------------------------------

def test_cross_attention_shapes_and_rows_sum_to_one() -> None:
    block = CrossAttention(dim=DIM, d_k=8)
    q, k = torch.randn(2, T, DIM), torch.randn(2, T, DIM)
    update, s = block(q, k)
    assert update.shape == (2, T, DIM) and s.shape == (2, T, T)
    torch.testing.assert_close(s.sum(dim=-1), torch.ones(2, T))
    assert bool((s >= 0).all())
    _, s_intra = block(q, q)
    torch.testing.assert_close(s_intra.sum(dim=-1), torch.ones(2, T))


def test_cross_attention_is_scaled_dot_product() -> None:
    block = CrossAttention(dim=DIM, d_k=8)
    q, k = torch.randn(1, T, DIM), torch.randn(1, T, DIM)
    _, s = block(q, k)
    expected = torch.softmax(block.q(q) @ block.k(k).transpose(1, 2) / 8 ** 0.5, dim=-1)
    torch.testing.assert_close(s, expected)


def test_temporal_attention_shape_and_nonnegative() -> None:
    a = TemporalAttention(dim=DIM, segments=T)(torch.randn(5, T, DIM))
    assert a.shape == (5, T) and bool((a >= 0).all())


def test_min_max_gives_zero_and_one_and_handles_constants() -> None:
    a = torch.tensor([[2.0, 4.0, 6.0, 3.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    n = min_max(a)
    torch.testing.assert_close(n[0], torch.tensor([0.0, 0.5, 1.0, 0.25]))
    assert n[0].min() == 0 and n[0].max() == 1
    assert not bool(torch.isnan(n).any())
    torch.testing.assert_close(n[1:], torch.zeros(2, 4))


# --- erasing -----------------------------------------------------------------------------------------

def test_keyframe_mask_needs_both_modalities() -> None:
    v, a = torch.tensor([ATT_V]), torch.tensor([ATT_A])
    mask = keyframe_mask(v, a, 0.7, torch.tensor([True]))
    assert mask[0].tolist() == [False, True, False, False, True, False]
    visual_only = keyframe_mask(v, a, 0.7, torch.tensor([False]))
    assert visual_only[0].tolist() == [False, True, True, False, True, False]
    audio_only = keyframe_mask(None, a, 0.7, torch.tensor([True]))
    assert audio_only[0].tolist() == [True, True, False, False, True, True]


def test_resample_index_spreads_kept_segments_and_falls_back_when_empty() -> None:
    keep = torch.tensor([[False, True, False, False, True, False],
                         [True, False, True, True, False, True],
                         [False] * T,
                         [True] * T])
    index = resample_index(keep)
    assert index[0].tolist() == [1, 1, 1, 4, 4, 4]
    assert index[1].tolist() == [0, 2, 2, 3, 5, 5]
    assert index[2].tolist() == list(range(T))
    assert index[3].tolist() == list(range(T))


def test_erasing_removes_exactly_the_keyframes() -> None:
    head = small()
    fix_attention(head, {"visual": ATT_V, "audio": ATT_A})
    head.eval()
    batch = make_batch(b=2)
    out = head(batch)
    torch.testing.assert_close(out["temporal_visual"][0], torch.tensor(ATT_V))
    torch.testing.assert_close(out["temporal_audio"][0], torch.tensor(ATT_A))
    assert out["keyframes"][0].tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert out["keyframes_index"][0].tolist() == [1, 1, 1, 4, 4, 4]
    assert out["rest_index"][0].tolist() == [0, 2, 2, 3, 5, 5]
    assert not set(out["rest_index"][0].tolist()) & {1, 4}
    present = batch["audio_present"]
    for name in ("keyframes", "rest"):
        index = out[f"{name}_index"]
        seen = {m: batch[m].gather(1, index.unsqueeze(-1).expand(-1, -1, DIM)) for m in ("visual", "audio")}
        torch.testing.assert_close(out[f"logits_{name}"], head.encode(seen, present)[0])


def test_no_keyframe_and_all_keyframes_fall_back_to_the_original_video() -> None:
    head = small()
    fix_attention(head, {"visual": [1.0, 0, 0, 0, 0, 0], "audio": [0, 0, 0, 0, 0, 1.0]})
    head.eval()
    out = head(make_batch(b=1))
    assert out["keyframes"].sum() == 0
    assert out["keyframes_index"][0].tolist() == list(range(T))
    torch.testing.assert_close(out["logits_keyframes"], out["logits"])
    everything = small(theta=0.0)
    everything.eval()
    out = everything(make_batch(b=1))
    assert out["keyframes"].sum() == T
    assert out["rest_index"][0].tolist() == list(range(T))
    torch.testing.assert_close(out["logits_rest"], out["logits"])


def test_constant_attention_gives_no_nan_and_no_keyframe() -> None:
    head = small()
    fix_attention(head, {"visual": [0.5] * T, "audio": [0.5] * T})
    out = head(make_batch(b=2))
    assert not any(bool(torch.isnan(v.float()).any()) for v in out.values())
    assert out["keyframes"].sum() == 0


# --- the head ----------------------------------------------------------------------------------------

def test_registered_inputs_and_output_shapes() -> None:
    head = build_head("ten", num_classes=C, **SMALL)
    assert head.inputs() == {"visual": VISUAL, "audio": AUDIO}
    assert (VISUAL.cache, VISUAL.array, VISUAL.kind) == ("r3d101_conv5", "pooled", "views")
    assert (AUDIO.cache, AUDIO.array, AUDIO.kind) == ("mfcc_resnet50", "features", "fixed")
    out = head(make_batch(b=3))
    assert out["logits"].shape == (3, C)
    for key in TEN.saved:
        assert out[key].shape == (3, T)
    assert out["logits_keyframes"].shape == out["logits_rest"].shape == (3, C)
    assert set(out["keyframes"].unique().tolist()) <= {0.0, 1.0}


def test_paper_sized_default_builds_and_runs() -> None:
    head = build_ten(num_classes=6)
    b = {"visual": torch.randn(2, 10, 2048), "audio": torch.randn(2, 10, 2048), "label": torch.tensor([0, 5])}
    out = head(b)
    assert out["logits"].shape == (2, 6) and out["temporal_visual"].shape == (2, 10)
    assert torch.isfinite(head.loss(out, b)["loss"])


def test_wrong_number_of_segments_is_a_clear_error() -> None:
    batch = make_batch()
    batch["visual"] = batch["visual"][:, :4]
    with pytest.raises(ValueError, match="T=6"):
        small()(batch)


def test_loss_parts_sum_to_the_total() -> None:
    head = small()
    batch = make_batch(b=4)
    parts = head.loss(head(batch), batch)
    assert set(parts) == {"loss", "ce_original", "ce_keyframes", "ce_rest"}
    torch.testing.assert_close(parts["loss"], parts["ce_original"] + parts["ce_keyframes"] + parts["ce_rest"])
    parts["loss"].backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name


def test_erasing_off_is_cross_entropy_of_the_original_only() -> None:
    head = small(erasing=False)
    batch = make_batch(b=4)
    out = head(batch)
    assert "logits_keyframes" not in out and "logits_rest" not in out
    parts = head.loss(out, batch)
    assert set(parts) == {"loss", "ce_original"}
    expected = torch.nn.functional.cross_entropy(out["logits"], batch["label"])
    torch.testing.assert_close(parts["loss"], expected)


def test_erasing_adds_no_parameters_and_inference_reads_the_original_only() -> None:
    with_erasing, without = small(), small(erasing=False)
    without.load_state_dict(with_erasing.state_dict())
    with_erasing.eval()
    without.eval()
    batch = make_batch()
    torch.testing.assert_close(with_erasing(batch)["logits"], without(batch)["logits"])


def test_intra_and_inter_off_leave_the_features_unchanged() -> None:
    head = small(intra_visual=False, intra_audio=False, inter_visual=False, inter_audio=False)
    assert len(head.intra) == 0 and len(head.inter) == 0
    batch = make_batch()
    feats = {m: batch[m] for m in ("visual", "audio")}
    x = head.enhance(feats, batch["audio_present"])
    torch.testing.assert_close(x["visual"], 2 * feats["visual"])
    torch.testing.assert_close(x["audio"], 2 * feats["audio"])


def test_inter_off_makes_a_stream_deaf_to_the_other() -> None:
    batch = make_batch()
    other = {**batch, "audio": batch["audio"] + 1.0}
    for inter_visual, depends in ((False, False), (True, True)):
        head = small(inter_visual=inter_visual, inter_audio=True)
        present = batch["audio_present"]
        x1 = head.enhance({m: batch[m] for m in ("visual", "audio")}, present)["visual"]
        x2 = head.enhance({m: other[m] for m in ("visual", "audio")}, present)["visual"]
        assert (not torch.allclose(x1, x2)) == depends
    assert set(small(intra_visual=False).intra) == {"audio"}


def test_single_modality_models() -> None:
    visual_only = small(audio=False)
    assert visual_only.inputs() == {"visual": VISUAL}
    assert len(visual_only.inter) == 0
    batch = make_batch()
    del batch["audio"]
    out = visual_only(batch)
    assert out["logits"].shape == (3, C)
    assert out["temporal_audio"].abs().sum() == 0
    audio_only = small(visual=False)
    assert audio_only.inputs() == {"audio": AUDIO}
    assert audio_only(make_batch())["temporal_visual"].abs().sum() == 0
    with pytest.raises(ValueError, match="inter_visual"):
        small(audio=False, inter_visual=True)
    with pytest.raises(ValueError, match="at least one modality"):
        small(visual=False, audio=False)


def test_audio_less_video_ignores_its_audio_and_erases_by_visual_attention() -> None:
    head = small()
    fix_attention(head, {"visual": ATT_V, "audio": ATT_A})
    head.eval()
    batch = make_batch(b=2, present=[False, True])
    changed = {**batch, "audio": batch["audio"] + torch.randn_like(batch["audio"])}
    out, out_changed = head(batch), head(changed)
    torch.testing.assert_close(out["logits"][0], out_changed["logits"][0])
    assert not torch.allclose(out["logits"][1], out_changed["logits"][1])
    assert out["temporal_audio"][0].abs().sum() == 0
    assert out["keyframes"][0].tolist() == [0.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    assert out["keyframes"][1].tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 0.0]


def test_missing_audio_present_means_all_present() -> None:
    head = small()
    head.eval()
    batch = make_batch()
    without = {k: v for k, v in batch.items() if k != "audio_present"}
    torch.testing.assert_close(head(batch)["logits"], head(without)["logits"])


def test_pcce_goes_through_build_loss() -> None:
    polarity = torch.tensor([1, -1, -1, 1])
    head = small(loss="pcce", polarity=polarity)
    batch = make_batch(b=4)
    out = head(batch)
    parts = head.loss(out, batch)
    pcce = build_loss("pcce", polarity=polarity)
    torch.testing.assert_close(parts["ce_rest"], pcce(out["logits_rest"], batch["label"]))
    with pytest.raises(ValueError, match="polarity"):
        small(loss="pcce")
    with pytest.raises(ValueError, match="unknown loss"):
        small(loss="focal")


def test_hidden_none_is_a_single_fc() -> None:
    head = small(hidden=None)
    linears = [m for m in head.classifier if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2 * DIM, C)]


def test_tiny_overfit() -> None:
    head = small(dropout=0.0)
    batch = make_batch(b=8, present=[True] * 6 + [False] * 2, seed=3)
    optimiser = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = head.loss(head(batch), batch)["loss"]
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.1 * first

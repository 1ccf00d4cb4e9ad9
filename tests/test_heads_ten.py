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
    MultiHead,
    NonLocal,
    TemporalAttention,
    build_ten,
    joint_selection,
    keyframe_mask,
    loop_index,
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


def loss_after_training(head: TEN, batch: dict, steps: int = 40) -> float:
    """The loss after `steps` Adam steps on one batch, over the loss before them."""
    optimiser = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = None
    for _ in range(steps):
        loss = head.loss(head(batch), batch)["loss"]
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return loss.item() / first


def test_tiny_overfit() -> None:
    head = small(dropout=0.0)
    batch = make_batch(b=8, present=[True] * 6 + [False] * 2, seed=3)
    assert loss_after_training(head, batch) < 0.1


# --- the authors' code (variant="code"): one hand-checked test per switch --------------------------------

def test_intra_code_block_is_batchnorm_of_the_update_plus_alpha_times_the_input() -> None:
    torch.manual_seed(0)
    block = NonLocal(dim=4, d_k=2)
    assert block.alpha.item() == 0.0                          # starts by discarding its input
    f = torch.randn(2, 3, 4)
    update = block(f, f)[0].reshape(6, 4)
    by_hand = (update - update.mean(0)) / torch.sqrt(update.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(block.block(f), by_hand.view(2, 3, 4))
    with torch.no_grad():                                     # a constant update normalises to BN's bias
        block.w.weight.zero_()
        block.w.bias.zero_()                              # exactly 0: no rounding for BN to magnify
        block.bn.bias.fill_(0.5)
        block.alpha.fill_(2.0)
    torch.testing.assert_close(block.block(f), 0.5 + 2.0 * f)


def identity_multihead(heads: int, q_sign: float = 1.0) -> MultiHead:
    block = MultiHead(dim=8, heads=heads)
    with torch.no_grad():
        for m, sign in ((block.q, q_sign), (block.k, 1.0), (block.v, 1.0), (block.o, 1.0)):
            m.weight.copy_(sign * torch.eye(8))
            m.bias.zero_()
    return block


def test_inter_code_block_is_eight_head_attention_with_relu() -> None:
    ln3 = torch.log(torch.tensor(3.0))
    key = torch.stack([torch.zeros(8), ln3 * torch.ones(8)]).unsqueeze(0)     # (1, 2, 8) visual
    query = torch.ones(1, 2, 8)                                               # audio
    # 8 heads of width 1: scores (0, ln 3) -> weights (1/4, 3/4) -> 3/4 ln 3 in every channel
    torch.testing.assert_close(identity_multihead(8)(query, key), torch.full((1, 2, 8), 0.75 * ln3.item()))
    # one head of width 8 scales by sqrt(8): not the same numbers
    assert not torch.allclose(identity_multihead(1)(query, key), torch.full((1, 2, 8), 0.75 * ln3.item()))
    # ReLU on the query map: -identity gives zero queries, uniform weights, half of ln 3
    torch.testing.assert_close(identity_multihead(8, q_sign=-1.0)(query, key),
                               torch.full((1, 2, 8), 0.5 * ln3.item()))


def test_inter_code_is_chained_after_intra_with_audio_queries_on_the_visual_stream() -> None:
    head = small(intra_block="code", inter_block="code")
    batch = make_batch(b=2, present=[True, False])
    feats = {m: batch[m] for m in ("visual", "audio")}
    x = head.enhance(feats, batch["audio_present"])
    fv, fa = head.intra_out("visual", feats["visual"]), head.intra_out("audio", feats["audio"])
    expected_v = fv + head.inter["visual"](fa, fv) * torch.tensor([1.0, 0.0]).view(2, 1, 1)
    torch.testing.assert_close(x["visual"], expected_v)                     # silent video: no audio queries
    torch.testing.assert_close(x["audio"], fa + head.inter["audio"](fv, fa))
    assert isinstance(head.inter["visual"], MultiHead) and head.inter["visual"].heads == 8


def fix_joint_attention(head: TEN, values: list[float]) -> None:
    with torch.no_grad():
        head.temporal["joint"].w1.weight.zero_()
        head.temporal["joint"].w1.bias.copy_(torch.tensor(values))


def test_joint_temporal_attention_and_its_one_threshold() -> None:
    head = small(temporal="joint")
    assert set(head.temporal) == {"joint"} and head.temporal["joint"].w2.in_features == 2 * DIM
    joint = [0.0, 1.0, 0.7, 0.2, 0.75, 0.5]        # threshold 0.7 x 1 + 0.3 x 0 = 0.7: segment 2 is on it
    fix_joint_attention(head, joint)
    head.eval()
    out = head(make_batch(b=1))
    torch.testing.assert_close(out["temporal_visual"][0], torch.tensor(joint))
    torch.testing.assert_close(out["temporal_audio"][0], torch.tensor(joint))
    assert out["keyframes"][0].tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert out["keyframes_index"][0].tolist() == [1, 1, 1, 4, 4, 4]
    assert out["rest_index"][0].tolist() == [0, 0, 3, 3, 5, 5]               # 2 is in neither video
    keyframes, rest = joint_selection(torch.tensor([joint, [0.4] * T]), 0.7)
    assert rest[0].tolist() == [True, False, False, True, False, True]
    assert not keyframes[1].any() and not rest[1].any()                      # constant: both empty
    fix_joint_attention(head, [0.4] * T)
    out = head(make_batch(b=1))
    assert out["keyframes_index"][0].tolist() == out["rest_index"][0].tolist() == list(range(T))


def test_joint_attention_pools_the_concatenation_and_ignores_a_silent_soundtrack() -> None:
    head = small(temporal="joint")
    head.eval()
    batch = make_batch(b=2, present=[False, True])
    louder = {**batch, "audio": batch["audio"] + torch.randn_like(batch["audio"])}
    out, out_louder = head(batch), head(louder)
    torch.testing.assert_close(out["logits"][0], out_louder["logits"][0])
    assert not torch.allclose(out["logits"][1], out_louder["logits"][1])
    assert out["temporal_audio"][0].abs().sum() == 0


def test_erase_audio_off_passes_the_original_audio_to_the_erased_passes() -> None:
    head = small(erase_audio=False)
    fix_attention(head, {"visual": ATT_V, "audio": ATT_A})
    head.eval()
    batch = make_batch(b=2)
    out = head(batch)
    for name in ("keyframes", "rest"):
        index = out[f"{name}_index"]
        seen = {"visual": batch["visual"].gather(1, index.unsqueeze(-1).expand(-1, -1, DIM)),
                "audio": batch["audio"]}
        torch.testing.assert_close(out[f"logits_{name}"], head.encode(seen, batch["audio_present"])[0])


def test_loop_index_repeats_the_kept_segments_in_time_order() -> None:
    keep = torch.tensor([[False, True, False, False, True, False],
                         [True, False, True, True, False, True],
                         [False] * T,
                         [True] * T])
    index = loop_index(keep)
    assert index[0].tolist() == [1, 4, 1, 4, 1, 4]
    assert index[1].tolist() == [0, 2, 3, 5, 0, 2]
    assert index[2].tolist() == index[3].tolist() == list(range(T))
    head = small(erase_fill="loop")
    fix_attention(head, {"visual": ATT_V, "audio": ATT_A})
    out = head(make_batch(b=1))
    assert out["keyframes_index"][0].tolist() == [1, 4, 1, 4, 1, 4]
    assert out["rest_index"][0].tolist() == [0, 2, 3, 5, 0, 2]


def test_loss_reduction_mean_divides_by_three() -> None:
    head = small(loss_reduction="mean")
    batch = make_batch(b=4)
    parts = head.loss(head(batch), batch)
    total = parts["ce_original"] + parts["ce_keyframes"] + parts["ce_rest"]
    torch.testing.assert_close(parts["loss"], total / 3)
    alone = small(loss_reduction="mean", erasing=False)
    parts = alone.loss(alone(batch), batch)
    torch.testing.assert_close(parts["loss"], parts["ce_original"])


def test_w1_bias_one_for_the_paper_default_for_the_code() -> None:
    torch.testing.assert_close(small().temporal["visual"].w1.bias, torch.ones(T))
    bias = small(w1_bias="default").temporal["visual"].w1.bias
    assert bool((bias.abs() <= T ** -0.5).all()) and not torch.allclose(bias, torch.ones(T))


def test_variant_code_sets_every_switch_and_each_can_be_overridden() -> None:
    head = small(variant="code", hidden="auto")
    s = head.switches
    assert (s.intra_block, s.inter_block, s.temporal, s.erase_audio, s.erase_fill, s.loss_reduction,
            s.w1_bias) == ("code", "code", "joint", False, "loop", "mean", "default")
    assert [m for m in head.classifier if isinstance(m, torch.nn.Linear)][0].in_features == 2 * DIM
    assert len([m for m in head.classifier if isinstance(m, torch.nn.Linear)]) == 1      # the code's fc
    assert small(variant="code", erase_audio=True).switches.erase_audio is True
    assert small(variant="paper", temporal="joint").switches.intra_block == "paper"
    for bad, match in (({"variant": "authors"}, "variant"), ({"erase_fill": "stretched"}, "erase_fill"),
                       ({"erase_audio": "no"}, "erase_audio"),
                       ({"variant": "code", "inter_heads": 5}, "divide")):
        with pytest.raises(ValueError, match=match):
            small(**bad)


def test_code_variant_trains_and_saves_what_the_paper_variant_saves() -> None:
    head = small(variant="code", dropout=0.0)
    batch = make_batch(b=8, present=[True] * 6 + [False] * 2, seed=3)
    out = head(batch)
    for key in TEN.saved:
        assert out[key].shape == (8, T)
    assert loss_after_training(head, batch) < 0.2


# --- variant="code" against an independent re-derivation of VAANetErase + train.py ------------------------

def batchnorm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Training-mode BatchNorm over the rows of x (N, C), biased variance, eps 1e-5."""
    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5) * weight + bias


def reference_pass(p: dict[str, torch.Tensor], v: torch.Tensor, a: torch.Tensor, heads: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward of the authors' audio-visual model from its equations, written out per element:
    non-local blocks, two 8-head ReLU attentions added to their stream, one temporal attention over the
    concatenation, weighted mean, fc. -> logits (B, C), gamma (B, T)."""
    def lin(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    def nonlocal_block(x: torch.Tensor, m: str) -> torch.Tensor:
        b, t, d = x.shape
        theta, phi, g = lin(x, f"intra.{m}.q"), lin(x, f"intra.{m}.k"), lin(x, f"intra.{m}.v")
        out = torch.zeros(b, t, d)
        for i in range(b):
            scores = torch.softmax(theta[i] @ phi[i].T / theta.shape[-1] ** 0.5, dim=-1)
            out[i] = lin(scores @ g[i], f"intra.{m}.w")
        out = batchnorm(out.reshape(b * t, d), p[f"intra.{m}.bn.weight"], p[f"intra.{m}.bn.bias"])
        return out.view(b, t, d) + p[f"intra.{m}.alpha"] * x

    def mha(q: torch.Tensor, kv: torch.Tensor, m: str) -> torch.Tensor:
        q, k, val = (torch.relu(lin(x, f"inter.{m}.{n}")) for x, n in ((q, "q"), (kv, "k"), (kv, "v")))
        w = q.shape[-1] // heads
        y = torch.zeros_like(q)
        for h in range(heads):
            part = slice(h * w, (h + 1) * w)
            scores = torch.softmax(q[..., part] @ k[..., part].transpose(1, 2) / w ** 0.5, dim=-1)
            y[..., part] = scores @ val[..., part]
        return torch.relu(lin(y, f"inter.{m}.o"))

    v, a = nonlocal_block(v, "visual"), nonlocal_block(a, "audio")
    v2, a2 = v + mha(a, v, "visual"), a + mha(v, a, "audio")
    x = torch.cat([v2, a2], dim=-1)                                         # (B, T, 2 dim)
    h = (x @ p["temporal.joint.w2.weight"].T).reshape(-1, 1)
    h = torch.tanh(batchnorm(h, p["temporal.joint.bn.weight"], p["temporal.joint.bn.bias"])).view(x.shape[:2])
    gamma = torch.relu(lin(h, "temporal.joint.w1"))
    pooled = (x * gamma.unsqueeze(-1)).mean(dim=1)
    return lin(pooled, "classifier.1"), gamma


def reference_erased_frames(selected: list[bool], segments: int, frames: int = 16) -> list[int]:
    """The snippets the code re-reads for one erased video of segments x frames frames: the frames of the
    selected segments (all frames when none), looped to segments x frames, cut into segments parts of
    `frames`; -> the original segment of each part."""
    kept = [f for t in range(segments) if selected[t] for f in range(t * frames, (t + 1) * frames)]
    kept = kept or list(range(segments * frames))
    looped = [kept[i % len(kept)] for i in range(segments * frames)]
    return [looped[j * frames] // frames for j in range(segments)]


def test_code_variant_matches_an_independent_rederivation() -> None:
    dim = 16
    torch.manual_seed(0)
    head = build_ten(num_classes=C, segments=T, dim=dim, d_k=4, variant="code", dropout=0.0)
    with torch.no_grad():                                   # alpha is learned: test it away from its start
        head.intra["visual"].alpha.fill_(0.3)
        head.intra["audio"].alpha.fill_(-0.2)
    g = torch.Generator().manual_seed(7)
    batch = {"visual": torch.randn(3, T, dim, generator=g), "audio": torch.randn(3, T, dim, generator=g),
             "label": torch.tensor([0, 2, 3])}
    p = {k: v.clone() for k, v in head.state_dict().items()}
    head.train()
    out = head(batch)
    parts = head.loss(out, batch)

    logits, gamma = reference_pass(p, batch["visual"], batch["audio"], heads=8)
    torch.testing.assert_close(out["logits"], logits)
    threshold = gamma.max(dim=1).values * 0.7 + gamma.min(dim=1).values * 0.3
    losses = [torch.nn.functional.cross_entropy(logits, batch["label"])]
    for name, selected in (("rest", gamma < threshold[:, None]), ("keyframes", gamma > threshold[:, None])):
        index = torch.tensor([reference_erased_frames(row.tolist(), T) for row in selected])
        assert out[f"{name}_index"].tolist() == index.tolist()
        erased = batch["visual"][torch.arange(3)[:, None], index]
        logits_erased, _ = reference_pass(p, erased, batch["audio"], heads=8)     # audio unchanged
        torch.testing.assert_close(out[f"logits_{name}"], logits_erased)
        losses.append(torch.nn.functional.cross_entropy(logits_erased, batch["label"]))
    torch.testing.assert_close(parts["loss"], losses[0] / 3 + losses[1] / 3 + losses[2] / 3)
    assert out["keyframes"].sum() > 0 and (gamma > 0).any()

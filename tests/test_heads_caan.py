"""CAAN head and its average-aggregate baselines: aggregation, masking, scores, triplet, no-face videos."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pipeline.heads.base import InputSpec, build_head
from pipeline.heads.caan import (
    CAAN,
    aggregate,
    batch_hard_triplet_loss,
    normalise_scores,
)
from pipeline.heads.caan_baselines import AverageAggregate, masked_mean

SMALL = {"face_dim": 16, "context_dim": 12, "proj_dim": 8, "fusion_dim": 12}
CAAN_SMALL = {**SMALL, "feature_dim": 10, "score_dim": 6}
C = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_batch(lengths: list[int], *, width: int | None = None, labels: list[int] | None = None,
               garbage: bool = False, seed: int = 0,
               dims: tuple[int, int] = (16, 12)) -> dict[str, torch.Tensor]:
    """Aligned face / context sequences padded to `width`; padded rows zero, or garbage (huge, inf, NaN)."""
    gen = torch.Generator().manual_seed(seed)
    width = width or max(max(lengths), 1)
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    batch: dict[str, torch.Tensor] = {}
    for key, dim in zip(("face", "context"), dims, strict=True):
        x = torch.randn(len(lengths), width, dim, generator=gen)
        pad = torch.full_like(x, 1e6)
        pad[..., 0], pad[..., 1] = float("nan"), float("inf")
        batch[key] = torch.where(mask.unsqueeze(-1), x, pad if garbage else torch.zeros_like(x))
        batch[f"{key}_mask"] = mask.clone()
    labels = labels if labels is not None else [i % C for i in range(len(lengths))]
    batch["label"] = torch.tensor(labels)
    return batch


def widen(batch: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    """The same videos with `width - N` more padded rows of garbage."""
    out = dict(batch)
    for key in ("face", "context"):
        x, m = batch[key], batch[f"{key}_mask"]
        extra = width - x.shape[1]
        out[key] = torch.cat([x, torch.full((x.shape[0], extra, x.shape[2]), float("nan"))], dim=1)
        out[f"{key}_mask"] = torch.cat([m, torch.zeros(m.shape[0], extra, dtype=torch.bool)], dim=1)
    return out


def caan(**options: object) -> CAAN:
    torch.manual_seed(0)
    head = build_head("caan", num_classes=C, **{**CAAN_SMALL, **options})
    return head.eval()


def average(**options: object) -> AverageAggregate:
    torch.manual_seed(0)
    return build_head("caan_average", num_classes=C, **{**SMALL, **options}).eval()


# --- aggregation and scores ------------------------------------------------------------------------------

@pytest.mark.parametrize("score", ["softmax", "sigmoid"])
def test_equal_scores_give_the_plain_mean(score: str) -> None:
    head = caan(score=score)
    last = head.scorer[-1]
    nn.init.zeros_(last.weight)
    nn.init.constant_(last.bias, 0.7)
    batch = make_batch([2, 5, 3], garbage=True)
    out = head(batch)
    mask = batch["face_mask"]
    g = head.feature(head.fusion(batch, mask))
    for i, n in enumerate([2, 5, 3]):
        assert torch.allclose(out["embedding"][i], g[i, :n].mean(dim=0), atol=1e-6)
        assert torch.allclose(out["frame_scores"][i, :n], torch.full((n,), 1 / n))


def test_aggregate_is_eq4_weighted_sum() -> None:
    g = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]]])
    s = torch.tensor([[1.0, 3.0, 0.0]])
    expected = (g[0] * s[0, :, None]).sum(0) / s.sum()
    assert torch.allclose(aggregate(g, s / s.sum()), expected.unsqueeze(0))


def test_softmax_scores_are_a_softmax_over_real_frames() -> None:
    s = torch.tensor([[0.5, -1.0, 2.0, 9.0], [3.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    w = normalise_scores(s, mask, "softmax")
    assert torch.allclose(w[0, :3], torch.softmax(s[0, :3], 0))
    assert torch.equal(w[:, 3], torch.zeros(2))
    assert torch.allclose(w[1], torch.tensor([1.0, 0, 0, 0]))


def test_sigmoid_scores_are_sigmoids_divided_by_their_sum() -> None:
    s = torch.tensor([[0.0, 2.0, -5.0, 100.0]])
    mask = torch.tensor([[True, True, True, False]])
    w = normalise_scores(s, mask, "sigmoid")
    sig = torch.sigmoid(s[0, :3])
    assert torch.allclose(w[0, :3], sig / sig.sum())
    assert w[0, 3] == 0


@pytest.mark.parametrize("score", ["softmax", "sigmoid"])
def test_head_scores_positive_normalised_zero_on_padding(score: str) -> None:
    lengths = [1, 4, 2, 5]
    w = caan(score=score)(make_batch(lengths, width=7, garbage=True))["frame_scores"]
    mask = torch.arange(7).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    assert (w[mask] > 0).all()
    assert torch.equal(w[~mask], torch.zeros(int((~mask).sum())))
    assert torch.allclose(w.sum(dim=1), torch.ones(4))


def test_unknown_score_normalisation_is_refused() -> None:
    with pytest.raises(ValueError, match="score"):
        build_head("caan", num_classes=C, score="relu", **CAAN_SMALL)


# --- padding ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("streams", ["fusion", "face", "context"])
def test_caan_padding_changes_nothing(streams: str) -> None:
    head = caan(streams=streams)
    batch = make_batch([2, 5, 3, 4], labels=[0, 1, 0, 1], garbage=True)
    wide = widen(batch, 9)
    out, out_wide = head(batch), head(wide)
    for key in ("logits", "embedding"):
        assert torch.allclose(out[key], out_wide[key], atol=1e-6), key
    assert torch.allclose(out["frame_scores"], out_wide["frame_scores"][:, :5], atol=1e-6)
    assert torch.equal(out_wide["frame_scores"][:, 5:], torch.zeros(4, 4))
    parts, parts_wide = head.loss(out, batch), head.loss(out_wide, wide)
    for key, value in parts.items():
        assert torch.isfinite(value), key
        assert torch.allclose(value, parts_wide[key], atol=1e-6), key


@pytest.mark.parametrize("streams", ["fusion", "face", "context"])
def test_baseline_padding_changes_nothing(streams: str) -> None:
    head = average(streams=streams)
    batch = make_batch([2, 5, 3], garbage=True)
    wide = widen(batch, 8)
    out, out_wide = head(batch), head(wide)
    assert torch.allclose(out["logits"], out_wide["logits"], atol=1e-6)
    assert torch.allclose(head.loss(out, batch)["loss"], head.loss(out_wide, wide)["loss"], atol=1e-6)


# --- structure -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("streams", "options", "expected"), [
    ("fusion", {}, 3), ("context", {}, 3), ("face", {}, 1),
    ("fusion", {"fusion_layers": 1}, 1), ("fusion", {"fusion_layers": 2}, 2),
    ("face", {"face_layers": 2}, 2), ("context", {"context_layers": 1}, 1),
])
def test_score_network_depth(streams: str, options: dict[str, int], expected: int) -> None:
    linears = [m for m in caan(streams=streams, **options).scorer if isinstance(m, nn.Linear)]
    assert len(linears) == expected
    assert linears[-1].out_features == 1


def test_score_network_needs_a_layer() -> None:
    with pytest.raises(ValueError, match="at least one layer"):
        caan(fusion_layers=0)


FACE = InputSpec("vggface_fc6", "fc6", "sequence")
CONTEXT = InputSpec("vgg16_fc6", "fc6", "sequence")


@pytest.mark.parametrize("name", ["caan", "caan_average"])
@pytest.mark.parametrize(("streams", "expected"), [
    ("fusion", {"face": FACE, "context": CONTEXT}),
    ("face", {"face": FACE}),
    ("context", {"context": CONTEXT}),
])
def test_variants_ask_only_for_their_inputs(name: str, streams: str, expected: dict[str, InputSpec]) -> None:
    head = caan(streams=streams) if name == "caan" else average(streams=streams)
    assert head.inputs() == expected
    batch = make_batch([2, 3])
    only = {k: v for k, v in batch.items() if k == "label" or k.split("_")[0] in expected}
    assert head(only)["logits"].shape == (2, C)


def test_unknown_streams_are_refused() -> None:
    for name in ("caan", "caan_average"):
        with pytest.raises(ValueError, match="streams"):
            build_head(name, num_classes=C, streams="audio")


def test_default_widths_follow_the_paper() -> None:
    head = build_head("caan", num_classes=7)
    assert head.fusion.proj["face"][0].in_features == 4096
    assert head.fusion.proj["context"][0].out_features == 1024
    assert head.fusion.fuse[0].out_features == 2048
    assert head.saved == ("frame_scores",)
    batch = make_batch([3, 1], dims=(4096, 4096))
    assert head.eval()(batch)["logits"].shape == (2, 7)


# --- triplet loss ----------------------------------------------------------------------------------------

def unit(degrees: list[float]) -> torch.Tensor:
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([rad.cos(), rad.sin()], dim=1)


def test_batch_hard_triplet_hand_computed() -> None:
    # class 0 at 0 and 60 degrees, class 1 at 90 and 180; squared distance of unit vectors = 2 - 2 cos(angle).
    # anchor 0:   pos 1,  neg min(2, 4) = 2            -> 0
    # anchor 60:  pos 1,  neg min(2 - sqrt3, 3)        -> sqrt3 - 0.8
    # anchor 90:  pos 2,  neg min(2, 2 - sqrt3)        -> sqrt3 + 0.2
    # anchor 180: pos 2,  neg min(4, 3) = 3            -> 0
    e = unit([0, 60, 90, 180]) * torch.tensor([[1.0], [3.0], [0.5], [2.0]], dtype=torch.float64)
    loss = batch_hard_triplet_loss(e, torch.tensor([0, 0, 1, 1]), torch.ones(4, dtype=torch.bool), 0.2)
    assert loss.item() == pytest.approx((2 * math.sqrt(3) - 0.6) / 4, abs=1e-12)


def test_batch_hard_triplet_ignores_invalid_rows() -> None:
    e = unit([0, 60, 90, 180, 61])
    valid = torch.tensor([True, True, True, True, False])
    loss = batch_hard_triplet_loss(e, torch.tensor([0, 0, 1, 1, 1]), valid, 0.2)
    assert loss.item() == pytest.approx((2 * math.sqrt(3) - 0.6) / 4, abs=1e-12)


@pytest.mark.parametrize(("labels", "valid"), [
    ([2, 2, 2], [True, True, True]),            # one class: no negative
    ([0, 1, 2], [True, True, True]),            # no positive
    ([0, 0, 1], [True, True, False]),           # the only negative has no face
    ([0], [True]),
])
def test_triplet_is_zero_without_a_triplet(labels: list[int], valid: list[bool]) -> None:
    # the points are 5 degrees apart (squared distance 0.0076 < margin): any triplet found would cost > 0
    e = unit([5.0 * i for i in range(len(labels))]).float().requires_grad_()
    loss = batch_hard_triplet_loss(e, torch.tensor(labels), torch.tensor(valid), 0.2)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(e.grad, torch.zeros_like(e))


# --- videos without a face -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["caan", "caan_average"])
def test_no_face_video_is_finite_invalid_and_adds_no_loss(name: str) -> None:
    head = caan() if name == "caan" else average()
    batch = make_batch([3, 0, 2, 4], labels=[0, 1, 0, 1], width=5, garbage=True)
    out = head(batch)
    assert out["valid"].tolist() == [True, False, True, True]
    assert all(torch.isfinite(v.float()).all() for v in out.values())
    assert torch.equal(out["logits"][1], torch.zeros(C))
    keep = torch.tensor([0, 2, 3])
    kept = {k: v[keep] for k, v in batch.items()}
    parts, parts_kept = head.loss(out, batch), head.loss(head(kept), kept)
    for key, value in parts.items():
        assert torch.allclose(value, parts_kept[key], atol=1e-6), key
    if name == "caan":
        assert torch.equal(out["frame_scores"][1], torch.zeros(5))


@pytest.mark.parametrize("name", ["caan", "caan_average"])
def test_batch_of_no_face_videos_has_zero_loss_and_finite_gradients(name: str) -> None:
    head = (caan() if name == "caan" else average()).train()
    batch = make_batch([0, 0], labels=[0, 1], width=3, garbage=True)
    parts = head.loss(head(batch), batch)
    assert parts["loss"].item() == 0.0
    parts["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


# --- baselines -------------------------------------------------------------------------------------------

def test_masked_mean_is_the_mean_of_real_rows() -> None:
    batch = make_batch([2, 5, 1, 0], garbage=True)
    x, mask = batch["face"], batch["face_mask"]
    got = masked_mean(x, mask)
    for i, n in enumerate([2, 5, 1]):
        assert torch.allclose(got[i], x[i, :n].mean(dim=0))
    assert torch.equal(got[3], torch.zeros(x.shape[2]))


@pytest.mark.parametrize("streams", ["face", "context"])
def test_faa_caa_pool_the_raw_fc6(streams: str) -> None:
    batch = make_batch([2, 4])
    pooled = average(streams=streams)(batch)["pooled"]
    assert torch.allclose(pooled[0], batch[streams][0, :2].mean(0))
    assert torch.allclose(pooled[1], batch[streams][1, :4].mean(0))


def test_ffaa_averages_the_fused_frame_features() -> None:
    head = average(streams="fusion")
    batch = make_batch([2, 4], garbage=True)
    fused = head.fusion(batch, batch["face_mask"])
    pooled = head(batch)["pooled"]
    assert pooled.shape == (2, SMALL["fusion_dim"])
    assert torch.allclose(pooled[0], fused[0, :2].mean(0), atol=1e-6)
    assert torch.allclose(pooled[1], fused[1, :4].mean(0), atol=1e-6)
    linears = [m for m in head.classifier if isinstance(m, nn.Linear)]
    assert len(linears) == 2


# --- overfit ---------------------------------------------------------------------------------------------

OVERFIT = {"face_dim": 16, "context_dim": 12, "proj_dim": 64, "fusion_dim": 64}


@pytest.mark.parametrize(("name", "streams"), [
    ("caan", "fusion"), ("caan", "face"), ("caan", "context"),
    ("caan_average", "fusion"), ("caan_average", "face"), ("caan_average", "context"),
])
def test_tiny_overfit(name: str, streams: str) -> None:
    """Default dropout and score depth, widths cut to 64 so that the test stays fast."""
    torch.manual_seed(0)
    extra = {"feature_dim": 64, "score_dim": 32} if name == "caan" else {"hidden_dim": 64}
    widths = {**OVERFIT, **extra}
    head = build_head(name, num_classes=C, streams=streams, **widths)
    batch = make_batch([2, 5, 3, 4, 2, 5, 3, 4], labels=[0, 1, 2, 3, 0, 1, 2, 3], garbage=True, seed=1)
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = head.eval().loss(head(batch), batch)["loss"].item()
    head.train()
    for _ in range(40):
        optimiser.zero_grad()
        head.loss(head(batch), batch)["loss"].backward()
        optimiser.step()
    last = head.eval().loss(head(batch), batch)["loss"].item()
    assert last < 0.2 * first

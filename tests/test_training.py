"""The shared trainer on small real HDF5 caches: protocols, batching, selection, determinism, reports."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import pipeline.training.loop as loop
from pipeline.cache import CacheWriter, entry_key
from pipeline.errors import ConfigError
from pipeline.evaluation.metrics import aggregate_runs, classification_metrics
from pipeline.heads.base import Head, InputSpec, register_head
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.config import HeadSetup, TrainConfig
from pipeline.training.data import FeatureNorm, FeatureTable, iter_batches, pad_rows
from pipeline.training.protocol import run_splits
from pipeline.training.stage import evaluate_head, train_head
from pipeline.training.trained import load_trained

CLASSES = ["anger", "joy", "sadness", "surprise"]
DIM = 6


class ToyHead(Head):
    """Mean of a "views" input and of a "sequence" input, then a linear classifier; invalid without rows."""

    name = "toy"
    saved = ("row_weights",)

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * DIM, num_classes)

    def inputs(self) -> dict[str, InputSpec]:
        return {
            "clip": InputSpec("toy_views", "pooled", "views"),
            "rows": InputSpec("toy_rows", "fc", "sequence"),
        }

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = batch["rows_mask"].float()
        rows = (batch["rows"] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        logits = self.fc(torch.cat([batch["clip"].mean(1), rows], dim=1))
        return {
            "logits": logits,
            "valid": mask.sum(1) > 0,
            "row_weights": mask / mask.sum(1, keepdim=True).clamp(min=1),
        }

    def loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        per = nn.functional.cross_entropy(out["logits"], batch["label"], reduction="none") * out["valid"]
        return {"loss": per.sum() / out["valid"].sum().clamp(min=1)}


@register_head("toy")
def build_toy(*, num_classes: int, polarity: torch.Tensor | None = None) -> Head:
    return ToyHead(num_classes)


def _manifest(per_class: int = 6) -> Manifest:
    records = [
        VideoRecord(f"{c}/v{i}", f"{c}/v{i}.mp4", c, "test" if i % 3 == 0 else "train")
        for c in CLASSES
        for i in range(per_class)
    ]
    return Manifest(records=records, classes=CLASSES)


def _write_caches(cache_dir: Path, manifest: Manifest, *, skip: str = "", empty: str = "") -> None:
    """Class-separable toy features: views (3, T=4, DIM) and 0-5 rows of (DIM,) per video."""
    rng = np.random.default_rng(0)
    with CacheWriter(
        cache_dir / "toy_views.h5", stage="toy", config={}, config_hash="v", weights="random"
    ) as w:
        for r in manifest.records:
            if r.video_id == skip:
                continue
            centre = np.eye(DIM)[CLASSES.index(r.label)]
            views = centre + 0.3 * rng.standard_normal((3, 4, DIM))
            times = np.tile(np.arange(4)[:, None] * 1000 + [0, 1000], (3, 1, 1))
            w.write(
                r.video_id,
                {"pooled": views.astype(np.float16), "pooled_times_ms": times},
                {"has_audio": True},
            )
    with CacheWriter(cache_dir / "toy_rows.h5", stage="toy", config={}, config_hash="r", weights="none") as w:
        for r in manifest.records:
            n = 0 if r.video_id == empty else 1 + int(rng.integers(0, 5))
            rows = np.eye(DIM)[CLASSES.index(r.label)] + 0.3 * rng.standard_normal((n, DIM))
            times = np.stack([np.arange(n) * 1000, np.arange(n) * 1000 + 1000], axis=1)
            w.write(r.video_id, {"fc": rows.astype(np.float16), "fc_times_ms": times}, {})


def test_run_splits_follow_the_selection_rule() -> None:
    m = _manifest()
    val_best = run_splits(m, protocol="fixed", runs=1, selection="val-best", val_fraction=0.25, seed=0)[0]
    assert set(val_best.val) <= {r.video_id for r in m.subset("train")}
    assert not set(val_best.val) & set(val_best.train) and val_best.val
    assert set(val_best.test) == {r.video_id for r in m.subset("test")}
    test_best = run_splits(m, protocol="fixed", runs=1, selection="test-best", val_fraction=0.25, seed=0)[0]
    assert test_best.val == test_best.test
    last = run_splits(m, protocol="fixed", runs=1, selection="last", val_fraction=0.25, seed=0)[0]
    assert last.val == [] and len(last.train) == len(m.subset("train"))
    runs = run_splits(m, protocol="ve8_runs", runs=3, selection="val-best", val_fraction=0.25, seed=0)
    assert len(runs) == 3 and len({tuple(r.test) for r in runs}) == 3


def test_feature_table_lists_missing_videos_and_pads_sequences(tmp_path: Path) -> None:
    m = _manifest()
    _write_caches(tmp_path, m, skip="joy/v1", empty="joy/v2")
    table = FeatureTable(ToyHead(4).inputs(), tmp_path, [r.video_id for r in m.records])
    assert table.missing == {"joy/v1": f"no entry in {tmp_path / 'toy_views.h5'}"}
    labels = {r.video_id: CLASSES.index(r.label) for r in m.records}
    ids, batch = next(iter_batches(table, ["joy/v2", "anger/v0"], labels, batch_size=2))
    assert batch["clip"].shape == (2, 4, DIM) and batch["clip"].dtype == torch.float32
    assert batch["rows_mask"][0].sum() == 0 and batch["rows_mask"][1].sum() == len(
        table.get("anger/v0", "rows")
    )
    np.testing.assert_array_equal(
        batch["clip"][1].numpy(), table.get("anger/v0", "clip", 0).astype(np.float32)
    )


def test_training_batches_draw_training_views_and_tests_use_view_0(tmp_path: Path) -> None:
    m = _manifest()
    _write_caches(tmp_path, m)
    table = FeatureTable(ToyHead(4).inputs(), tmp_path, [r.video_id for r in m.records])
    labels = {v: 0 for v in table.ids}
    seen = set()
    for epoch in range(5):
        for ids, batch in iter_batches(
            table, table.ids, labels, batch_size=4, rng=np.random.default_rng(epoch)
        ):
            for i, v in enumerate(ids):
                match = [
                    k
                    for k in range(3)
                    if np.array_equal(batch["clip"][i].numpy(), table.get(v, "clip", k).astype(np.float32))
                ]
                seen.update(match)
    assert seen == {1, 2}


def test_pad_rows_keeps_one_row_for_all_empty_batches() -> None:
    values, mask = pad_rows([np.zeros((0, 3), np.float16), np.zeros((0, 3), np.float16)])
    assert values.shape == (2, 1, 3) and not mask.any()


def test_metrics_by_hand() -> None:
    out = classification_metrics([0, 0, 1, 2], [0, 1, 1, 1], ["a", "b", "c", "d"])
    assert out["accuracy"] == 0.5
    assert out["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.0, "d": None}
    assert out["confusion"][0] == [1, 1, 0, 0] and out["confusion"][2] == [0, 1, 0, 0]
    # macro-F1 over the present classes: a (P 1, R 1/2) 2/3, b (P 1/3, R 1) 1/2, c 0
    assert out["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    agg = aggregate_runs([out, {**out, "accuracy": 1.0}])
    assert agg["accuracy"] == 0.75 and agg["accuracy_std"] == 0.25 and agg["confusion"][0] == [2, 2, 0, 0]


def _setup(**overrides: object) -> HeadSetup:
    base = {
        "key": "toy",
        "head": "toy",
        "caches": ("toy_views", "toy_rows"),
        "train": TrainConfig(epochs=15, batch_size=4, lr=0.05, device="cpu"),
        "val_fraction": 0.25,
    }
    return HeadSetup(**{**base, **overrides})


def _train_and_evaluate(root: Path, setup: HeadSetup, manifest: Manifest) -> dict:
    train_head(setup, manifest, cache_dir=root / "cache", model_dir=root / "models", live_dir=root / "live")
    return evaluate_head(
        setup, manifest, cache_dir=root / "cache", model_dir=root / "models", out_dir=root / "out"
    )


def test_train_and_evaluate_learn_write_reports_and_repeat_exactly(tmp_path: Path) -> None:
    m = _manifest()
    for run in ("a", "b"):
        _write_caches(tmp_path / run / "cache", m, empty="joy/v3")
    first = _train_and_evaluate(tmp_path / "a", _setup(), m)
    second = _train_and_evaluate(tmp_path / "b", _setup(), m)
    assert first["accuracy"] >= 0.75  # chance is 0.25
    assert first == second
    assert "val-best" in first["selection"] and first["features"] == {
        "toy_views": "RANDOM WEIGHTS",
        "toy_rows": "none",
    }
    preds = json.loads((tmp_path / "a" / "out" / "predictions" / "run_00.json").read_text())
    assert {p["video_id"] for p in preds} == {r.video_id for r in m.subset("test")}
    empty = next(p for p in preds if p["video_id"] == "joy/v3")
    assert empty["valid"] is False and empty["attention"]["row_weights"] == []
    full = next(p for p in preds if p["video_id"] == "anger/v0")
    assert sum(full["attention"]["row_weights"]) == pytest.approx(1.0)
    assert len(full["times_ms"]["rows"]) == len(full["attention"]["row_weights"])
    live = tmp_path / "a" / "live" / "run_00" / "plots" / "metrics"
    assert (live / "train" / "loss.tsv").is_file() and (live / "val" / "accuracy.tsv").is_file()
    confusion = json.loads((tmp_path / "a" / "out" / "confusion.json").read_text())
    assert len(confusion) == len(m.subset("test"))
    # DVC's metric: the scores alone, the same numbers
    scores = json.loads((tmp_path / "a" / "out" / "scores.json").read_text())
    # under the entry key (short DVC columns), and no spread of a single run
    assert scores == {"toy": {"accuracy": first["accuracy"], "macro_f1": first["macro_f1"]}}


def test_train_prints_one_line_per_epoch_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    m = _manifest()
    _write_caches(tmp_path / "cache", m)
    setup = _setup(train=TrainConfig(epochs=3, batch_size=8, device="cpu"))
    folders = {"cache_dir": tmp_path / "cache", "model_dir": tmp_path / "models",
               "live_dir": tmp_path / "live"}
    train_head(setup, m, **folders)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("[train@toy]")]
    number = r"\d+\.\d+"
    pattern = (rf"\[train@toy\] run 0 epoch (\d)/3: train loss {number} acc {number}, "
               rf"val loss {number} acc {number}, {number} s")
    assert [int(re.fullmatch(pattern, x).group(1)) for x in lines] == [1, 2, 3], lines
    # run again: the finished run resumes from its last.pt and trains no epoch
    train_head(setup, m, **folders)
    again = [x for x in capsys.readouterr().err.splitlines() if x.startswith("[train@toy]")]
    assert len(again) == 1 and "resumed" in again[0] and "after epoch 3/3" in again[0], again


def test_test_best_selection_is_labelled_and_runs_aggregate(tmp_path: Path) -> None:
    m = _manifest()
    _write_caches(tmp_path / "cache", m)
    summary = _train_and_evaluate(
        tmp_path,
        _setup(
            selection="test-best",
            protocol="ve8_runs",
            runs=2,
            train=TrainConfig(epochs=3, batch_size=8, device="cpu"),
        ),
        m,
    )
    assert summary["runs"] == 2 and "TEST set" in summary["selection"]
    assert (
        summary["accuracy_std"] >= 0.0 and len(json.loads((tmp_path / "out" / "runs.json").read_text())) == 2
    )
    # several runs: their spread is a DVC metric too
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert set(scores["toy"]) == {"accuracy", "accuracy_std", "macro_f1", "macro_f1_std"}


@pytest.mark.parametrize("every, resumed_epochs", [(0, 3), (3600, 6)])
def test_resumed_training_ends_with_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: float, resumed_epochs: int
) -> None:
    """A run interrupted in its fourth epoch and started again (same configuration) ends where an
    uninterrupted run does. With a resume point every epoch (checkpoint_seconds 0) it trains only the three
    epochs left; with an hour between resume points none was written yet, and it trains all six again."""
    m = _manifest()
    _write_caches(tmp_path / "cache", m)
    setup = _setup(selection="last", train=TrainConfig(epochs=6, batch_size=4, lr=0.05, device="cpu",
                                                       checkpoint_seconds=every))
    cache = tmp_path / "cache"
    whole = train_head(setup, m, cache_dir=cache, model_dir=tmp_path / "whole", live_dir=tmp_path / "l1")
    calls, original = {"n": 0}, loop.train_epoch

    def dies_in_epoch_4(*args: object, **kwargs: object) -> dict:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", dies_in_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        train_head(setup, m, cache_dir=cache, model_dir=tmp_path / "cut", live_dir=tmp_path / "l2")

    def counted(*args: object, **kwargs: object) -> dict:
        calls["n"] += 1
        return original(*args, **kwargs)

    calls["n"] = 0
    monkeypatch.setattr(loop, "train_epoch", counted)
    cut = train_head(setup, m, cache_dir=cache, model_dir=tmp_path / "cut", live_dir=tmp_path / "l2")
    assert calls["n"] == resumed_epochs
    a, b = load_trained(whole[0]), load_trained(cut[0])
    for k in a.state_dict:
        torch.testing.assert_close(a.state_dict[k], b.state_dict[k], rtol=0, atol=0)
    assert load_checkpoint(tmp_path / "cut" / "run_00" / "last.pt")["state"]["epoch"] == 6


def test_the_resume_interval_is_not_part_of_the_runs_configuration(tmp_path: Path) -> None:
    """Changing checkpoint_seconds (speed only) resumes the finished run instead of training it again."""
    m = _manifest()
    _write_caches(tmp_path / "cache", m)
    first = _setup(selection="last", train=TrainConfig(epochs=2, batch_size=4, device="cpu"))
    train_head(first, m, cache_dir=tmp_path / "cache", model_dir=tmp_path / "m", live_dir=tmp_path / "l")
    before = (tmp_path / "m" / "run_00" / "last.pt").stat().st_mtime_ns
    again = _setup(selection="last",
                   train=TrainConfig(epochs=2, batch_size=4, device="cpu", checkpoint_seconds=0))
    train_head(again, m, cache_dir=tmp_path / "cache", model_dir=tmp_path / "m", live_dir=tmp_path / "l")
    assert (tmp_path / "m" / "run_00" / "last.pt").stat().st_mtime_ns == before


def test_rms_norm_is_one_scale_over_training_videos_and_keeps_zeros(tmp_path: Path) -> None:
    m = _manifest()
    _write_caches(tmp_path, m, empty="joy/v2")
    table = FeatureTable(ToyHead(4).inputs(), tmp_path, [r.video_id for r in m.records])
    ids = table.ids[:5]
    norms = table.fit_norms(ids, "rms")
    rows = np.concatenate([table.get(v, "rows").astype(np.float64).ravel() for v in ids])
    assert float(norms["rows"].scale) == pytest.approx(float(np.sqrt(np.mean(rows**2))), rel=1e-6)
    assert not np.any(norms["rows"].shift)
    table.norms = {"clip": FeatureNorm.from_saved(2.0), "rows": FeatureNorm.from_saved(4.0)}
    _, batch = next(iter_batches(table, ["joy/v2", "anger/v0"], dict.fromkeys(table.ids, 0), batch_size=2))
    np.testing.assert_allclose(
        batch["clip"][1].numpy(), table.get("anger/v0", "clip", 0).astype(np.float32) / 2
    )
    assert not batch["rows"][0].any()  # padding (and all-zero rows) stay zero


def test_standard_norm_centres_each_dimension_and_leaves_absent_rows_zero(tmp_path: Path) -> None:
    m = _manifest()
    _write_caches(tmp_path, m, empty="joy/v2")
    table = FeatureTable(ToyHead(4).inputs(), tmp_path, [r.video_id for r in m.records])
    train = [v for v in table.ids if v != "anger/v0"]
    table.norms = table.fit_norms(train, "standard")
    views = np.concatenate([table.get(v, "clip").astype(np.float64).reshape(-1, DIM) for v in train])
    np.testing.assert_allclose(table.norms["clip"].shift, views.mean(0), rtol=1e-5)
    np.testing.assert_allclose(table.norms["clip"].scale, views.std(0), rtol=1e-5)
    normed = np.concatenate(
        [table.norms["rows"].apply(table.get(v, "rows")) for v in train if len(table.get(v, "rows"))]
    )
    np.testing.assert_allclose(normed.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(normed.std(0), 1, atol=1e-5)
    x = table.get("anger/v0", "rows").copy()
    x[0] = 0  # an absent row (no face in that frame, no audio) is not a real value to normalise
    out = table.norms["rows"].apply(x)
    assert not out[0].any() and out[1:].any()
    again = {k: FeatureNorm.from_saved(v.to_saved()) for k, v in table.norms.items()}
    np.testing.assert_array_equal(again["rows"].apply(x), out)  # what best.pt stores reproduces it


def test_unknown_feature_scale_is_refused(tmp_path: Path) -> None:
    m = _manifest()
    _write_caches(tmp_path, m)
    table = FeatureTable(ToyHead(4).inputs(), tmp_path, [r.video_id for r in m.records])
    with table, pytest.raises(ValueError, match="feature_scale 'zscore'"):
        table.fit_norms(table.ids, "zscore")


def test_new_cache_entries_mean_a_new_training_not_a_resumed_one(tmp_path: Path) -> None:
    """A cache rewritten with new data under the same configuration (a regenerated dataset) must not let
    train resume the finished run of the old data from last.pt."""
    m = _manifest()
    _write_caches(tmp_path / "cache", m)
    setup = _setup(selection="last", train=TrainConfig(epochs=2, batch_size=8, device="cpu"))
    kwargs = {
        "cache_dir": tmp_path / "cache",
        "model_dir": tmp_path / "models",
        "live_dir": tmp_path / "live",
    }
    first = load_trained(train_head(setup, m, **kwargs)[0])
    again = load_trained(train_head(setup, m, **kwargs)[0])
    assert again.config_hash == first.config_hash  # nothing changed: resumed, same run
    time.sleep(1.1)  # the cache's "updated" stamp has one-second resolution
    _write_caches(tmp_path / "cache", m, skip="joy/v1")
    fresh = load_trained(train_head(setup, m, **kwargs)[0])
    assert fresh.config_hash != first.config_hash
    steps = (
        (tmp_path / "live" / "run_00" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    )
    assert len(steps) == 1 + 2


def test_a_closed_table_lets_a_stage_write_its_caches_again(tmp_path: Path) -> None:
    """Training must release the cache files when done, not when the garbage collector gets to it: a
    later stage in the same process (or a test) writes them again."""
    m = _manifest()
    _write_caches(tmp_path, m)
    with FeatureTable(ToyHead(4).inputs(), tmp_path, [r.video_id for r in m.records]) as table:
        assert table.get("anger/v0", "rows").shape[1] == DIM
    _write_caches(tmp_path, m, skip="joy/v1")  # the table is still referenced here, but closed
    assert table.times_ms("anger/v0", "rows").shape[1] == 2  # and reopens for a later read
    table.close()


def test_a_nan_row_in_a_cache_stops_training_naming_the_file_video_and_array(tmp_path: Path) -> None:
    """A cache written by other code (here by hand, after the stage's writer) with one NaN: it used to make
    the norms NaN, then every prediction, silently. The stage stops before fitting, naming all three."""
    m = _manifest()
    _write_caches(tmp_path / "cache", m)
    with h5py.File(tmp_path / "cache" / "toy_rows.h5", "r+") as f:
        f[f"videos/{entry_key('joy/v1')}/fc"][0, 2] = np.nan
    said = re.escape(f"cache {tmp_path / 'cache' / 'toy_rows.h5'}: video 'joy/v1', array 'fc' holds 1 NaN")
    with pytest.raises(ConfigError, match=said):
        train_head(_setup(), m, cache_dir=tmp_path / "cache", model_dir=tmp_path / "m",
                   live_dir=tmp_path / "l")
    assert not (tmp_path / "m" / "run_00").exists()


def test_a_diverging_loss_stops_training_and_writes_no_model_from_nan_weights(tmp_path: Path) -> None:
    """Epoch 1 at lr 0.05, then a step schedule multiplies lr by 6e38 (Adam steps near float32's range):
    epoch 2's logits overflow, its losses are NaN. Training stops with one line naming the head, the epoch
    and the batch, and what to try; last.pt keeps epoch 1 and no best.pt is written."""
    m = _manifest()
    _write_caches(tmp_path / "cache", m)
    train = TrainConfig(epochs=3, batch_size=4, lr=0.05, schedule="step", step_size=1, gamma=6e38,
                        checkpoint_seconds=0, device="cpu")
    said = (r"head toy, run 0: the (training loss became nan at batch \d+|weights became NaN or inf at the "
            r"last batch|selection loss became nan at the scoring) of epoch 2/3: .*try a lower train.lr "
            r"\(now 0.05, times the schedule\)")
    with pytest.raises(ConfigError, match=said):
        train_head(_setup(train=train), m, cache_dir=tmp_path / "cache", model_dir=tmp_path / "m",
                   live_dir=tmp_path / "l")
    assert load_checkpoint(tmp_path / "m" / "run_00" / "last.pt")["state"]["epoch"] == 1
    assert not (tmp_path / "m" / "run_00" / "best.pt").exists()


def test_an_lr_beyond_float32_is_one_line_not_the_optimizers_traceback(tmp_path: Path) -> None:
    """Adam takes lr as a Python float and fails inside its step when lr x the update passes float32's
    3.4e38, before any loss is NaN: the same one line as a diverging loss, and no model is written."""
    m = _manifest()
    _write_caches(tmp_path / "cache", m)
    train = TrainConfig(epochs=2, batch_size=4, lr=3e38, checkpoint_seconds=0, device="cpu")
    said = (r"head toy, run 0: the optimizer's step overflowed float32 at batch 1 \(.*\) of epoch 1/2: "
            r".*try a lower train.lr \(now 3e\+38")
    with pytest.raises(ConfigError, match=said):
        train_head(_setup(train=train), m, cache_dir=tmp_path / "cache", model_dir=tmp_path / "m",
                   live_dir=tmp_path / "l")
    assert not (tmp_path / "m" / "run_00" / "best.pt").exists()

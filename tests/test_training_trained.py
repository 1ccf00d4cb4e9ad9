"""best.pt as a TrainedHead: the round trip, plain-data storage, refused versions, unversioned files."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.heads import build_head
from pipeline.heads.base import InputSpec
from pipeline.training.data import CacheInfo, FeatureNorm
from pipeline.training.trained import TrainedHead, load_trained, save_trained

CLASSES = ["anger", "joy", "sadness"]
OPTIONS = {"face_dim": 8, "context_dim": 8, "proj_dim": 8, "fusion_dim": 8, "feature_dim": 8, "score_dim": 8}


def _trained() -> TrainedHead:
    torch.manual_seed(0)
    polarity = [-1, 1, -1]
    head = build_head("caan", num_classes=len(CLASSES), polarity=torch.tensor(polarity), **OPTIONS)
    norms = {"face": FeatureNorm(np.float32(0.0), np.float32(2.5)),
             "context": FeatureNorm(np.arange(8, dtype=np.float32), np.ones(8, dtype=np.float32))}
    return TrainedHead(
        head="caan",
        key="caan_small",
        options=OPTIONS,
        classes=CLASSES,
        polarity=polarity,
        log_prior=torch.log(torch.tensor([0.5, 0.3, 0.2])),
        inputs=head.inputs(),
        caches={
            "vggface_fc6": CacheInfo("cache/demo/vggface_fc6.h5", "abc", "random", "2026-01-01T00:00:00"),
            "vgg16_fc6": CacheInfo("cache/demo/vgg16_fc6.h5", "def", "f" * 64, "2026-01-02T00:00:00"),
        },
        feature_scales={k: v.to_saved() for k, v in norms.items()},
        selection="val-best",
        epoch=7,
        score=[0.75, -0.5],
        config_hash="0123abcd",
        state_dict={k: v.detach().clone() for k, v in head.state_dict().items()},
    )


def _old_layout(trained: TrainedHead) -> dict:
    """The plain dict train_head wrote before best.pt had a format version."""
    return {
        "head": trained.head,
        "key": trained.key,
        "options": trained.options,
        "classes": trained.classes,
        "polarity": trained.polarity,
        "log_prior": trained.log_prior,
        "inputs": {k: asdict(s) for k, s in trained.inputs.items()},
        "caches": {k: asdict(v) for k, v in trained.caches.items()},
        "feature_scales": trained.feature_scales,
        "selection": trained.selection,
        "epoch": trained.epoch,
        "score": trained.score,
        "config_hash": trained.config_hash,
        "state_dict": trained.state_dict,
    }


def _assert_same(a: TrainedHead, b: TrainedHead) -> None:
    for f in fields(TrainedHead):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "log_prior":
            torch.testing.assert_close(x, y, rtol=0, atol=0)
        elif f.name == "state_dict":
            assert x.keys() == y.keys()
            for k in x:
                torch.testing.assert_close(x[k], y[k], rtol=0, atol=0)
        else:
            assert x == y, f.name


def test_round_trip_keeps_every_field_and_rebuilds_the_head(tmp_path: Path) -> None:
    trained = _trained()
    save_trained(tmp_path / "run_00" / "best.pt", trained)
    loaded = load_trained(tmp_path / "run_00" / "best.pt")
    _assert_same(trained, loaded)
    assert isinstance(loaded.inputs["face"], InputSpec) and isinstance(loaded.caches["vgg16_fc6"], CacheInfo)
    head = loaded.build()
    assert not head.training
    for k, v in head.state_dict().items():
        torch.testing.assert_close(v, trained.state_dict[k], rtol=0, atol=0)
    norms = loaded.norms()
    np.testing.assert_array_equal(norms["context"].shift, np.arange(8, dtype=np.float32))
    assert float(norms["face"].scale) == 2.5
    assert not list(tmp_path.glob("run_00/.*.tmp")), "written atomically: no temporary file left"


def test_the_file_holds_plain_data_and_loads_with_weights_only(tmp_path: Path) -> None:
    trained = _trained()
    save_trained(tmp_path / "best.pt", trained)
    raw = torch.load(tmp_path / "best.pt", map_location="cpu", weights_only=True)
    assert raw["format_version"] == TrainedHead.FORMAT_VERSION
    assert set(raw) == {f.name for f in fields(TrainedHead)} | {"format_version"}
    assert raw["inputs"]["face"] == asdict(trained.inputs["face"])
    assert raw["caches"]["vggface_fc6"]["weights"] == "random"
    torch.testing.assert_close(raw["log_prior"], trained.log_prior, rtol=0, atol=0)


@pytest.mark.parametrize("version", [TrainedHead.FORMAT_VERSION + 1, -3])
def test_another_version_is_refused_naming_file_versions_and_command(tmp_path: Path, version: int) -> None:
    path = tmp_path / "caan_small" / "run_00" / "best.pt"
    path.parent.mkdir(parents=True)
    torch.save({**_old_layout(_trained()), "format_version": version}, path)
    with pytest.raises(ValueError) as error:
        load_trained(path)
    message = str(error.value)
    assert str(path) in message
    assert f"format version {version}" in message
    assert f"reads format version {TrainedHead.FORMAT_VERSION}" in message
    assert "dvc repro train@caan_small" in message


def test_an_unversioned_file_of_the_current_layout_loads(tmp_path: Path) -> None:
    trained = _trained()
    torch.save(_old_layout(trained), tmp_path / "best.pt")
    loaded = load_trained(tmp_path / "best.pt")
    _assert_same(trained, loaded)
    loaded.build()


def test_an_unversioned_file_of_another_layout_is_refused(tmp_path: Path) -> None:
    """Before feature scales were stored: there is no way to score such a head as it was trained."""
    path = tmp_path / "models" / "demo" / "caan_small" / "run_00" / "best.pt"
    path.parent.mkdir(parents=True)
    old = _old_layout(_trained())
    del old["feature_scales"], old["key"]
    torch.save(old, path)
    with pytest.raises(ValueError, match="feature_scales") as error:
        load_trained(path)
    message = str(error.value)
    assert str(path) in message and "format version 0" in message
    assert "dvc repro train@caan_small" in message, "the key comes from the folder when the file has none"


def test_a_missing_file_says_to_train(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train"):
        load_trained(tmp_path / "best.pt")

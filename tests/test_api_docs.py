"""The Python API's examples in docs/api.md, run as written (in order, in one namespace) in a folder with two
generated clips and a head checkpoint; and the top-level `vemo` package is the API."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch
from conftest import encode_test_video

import pipeline.api
from pipeline.heads import build_head
from pipeline.training.data import CacheInfo, FeatureNorm
from pipeline.training.trained import TrainedHead, save_trained

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "api.md"
CHECKPOINT = Path("models/demo/lstm_visual/run_00/best.pt")   # the path docs/api.md loads


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def save_untrained_head(path: Path) -> None:
    """A best.pt of an untrained LSTM head on AlexNet fc7 keyframes (2 classes): what `train@lstm_visual`
    writes, without the training, which the API does not depend on."""
    options = {"fusion": "visual", "hidden": 16, "embed": 32, "mlp": 8}
    torch.manual_seed(0)
    head = build_head("lstm_fusion", num_classes=2, **options)
    save_trained(path, TrainedHead(
        head="lstm_fusion", key="lstm_visual", options=options, classes=["anger", "joy"], polarity=None,
        log_prior=torch.log(torch.tensor([0.5, 0.5])), inputs=head.inputs(),
        caches={"alexnet_fc7": CacheInfo(path="", config_hash="", weights="random")},
        feature_scales={k: FeatureNorm.identity().to_saved() for k in head.inputs()}, selection="last",
        epoch=1, score=[0.0], config_hash="", state_dict=head.state_dict()))


def test_the_vemo_package_is_the_api() -> None:
    import vemo

    assert vemo.extract is pipeline.api.extract and vemo.open_cache is pipeline.api.open_cache
    assert vemo.load_head is pipeline.api.load_head
    for name in vemo.__all__:
        assert getattr(vemo, name).__doc__ or name == "__version__", f"vemo.{name} has no docstring"


def test_the_api_examples_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(DOCS)
    assert len(blocks) == 4, "docs/api.md: the import, then one example per function"
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        encode_test_video(tmp_path / f"{name}.mp4", seconds=1.2, size="96x72")
    CHECKPOINT.parent.mkdir(parents=True)
    save_untrained_head(CHECKPOINT)
    printed = io.StringIO()
    namespace: dict[str, object] = {"__name__": "docs_api"}
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, str(DOCS), "exec"), namespace)  # noqa: S102 - the documented examples
    text = printed.getvalue()
    assert "a (2, 4096) [   0 1000] random weights: True" in text, text
    assert "failed: {} random weights: ['alexnet_fc7']" in text
    assert "feat@mfcc weights: none videos: 2" in text
    assert "a ['has_audio', 'mfcc'] (16, 256, 32) (16, 2)" in text
    assert "['anger', 'joy'] ['alexnet_fc7']" in text
    assert re.search(r"a\.mp4 ok (anger|joy) 0\.\d+", text) and re.search(r"b\.mp4 ok (anger|joy)", text)

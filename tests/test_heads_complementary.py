"""The fusion heads of CAAN and the LSTM fusion gain from their second modality, their one-modality
variants do not, on cached tensors built so that the two modalities carry complementary halves of the class.

The class is a (scene, sound) pair, 2 x 2 for 4 classes, as in the video demo (`demo.cues: complementary`):
the visual rows (keyframe fc7, context fc6) show the scene only, the audio rows (spectrogram fc7) and the
face rows (face fc6) the sound only. So one modality alone separates 2 of the 4 classes (at most 50%,
chance 25%) and only the two together reach 100%. The features are small (16 dimensions) so that the
whole trainer (train_head, evaluate_head: real HDF5 caches, val-free "last" selection) runs in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.cache import CacheWriter
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.training.config import HeadSetup, TrainConfig
from pipeline.training.stage import evaluate_head, train_head

CLASSES = ["anger", "joy", "sadness", "surprise"]  # class c = (scene c // 2, sound c % 2)
DIM = 16
PER_CLASS = 18  # 12 train, 6 test per class
CACHES = {  # cache -> (array, the factor it shows)
    "alexnet_fc7": ("fc7", "scene"),
    "alexnet_fc7_spec": ("fc7", "sound"),
    "vgg16_fc6": ("fc6", "scene"),
    "vggface_fc6": ("fc6", "sound"),
}


def _manifest() -> Manifest:
    records = [
        VideoRecord(f"{c}/v{i:02d}", f"{c}/v{i:02d}.mp4", c, "test" if i % 3 == 0 else "train")
        for c in CLASSES
        for i in range(PER_CLASS)
    ]
    return Manifest(records=records, classes=CLASSES)


def _write_caches(cache_dir: Path, manifest: Manifest) -> None:
    """Rows of one video share its length across caches (aligned seconds / face frames); each row is the
    factor's centre plus noise, so the factor shows in every row and the mean over rows is cleaner."""
    rng = np.random.default_rng(0)
    lengths = {r.video_id: int(rng.integers(3, 7)) for r in manifest.records}
    centres = {name: rng.standard_normal((2, DIM)) for name in CACHES}
    for name, (array, factor) in CACHES.items():
        path = cache_dir / f"{name}.h5"
        with CacheWriter(path, stage=name, config={}, config_hash=name, weights="random") as w:
            for r in manifest.records:
                c = CLASSES.index(r.label)
                value = c // 2 if factor == "scene" else c % 2
                n = lengths[r.video_id]
                rows = centres[name][value] + 0.8 * rng.standard_normal((n, DIM))
                times = np.stack([np.arange(n) * 1000, np.arange(n) * 1000 + 1000], axis=1)
                w.write(r.video_id, {array: rows.astype(np.float16), f"{array}_times_ms": times},
                        {"has_audio": True})


LSTM = {"visual_dim": DIM, "audio_dim": DIM, "embed": 32, "hidden": 32, "mlp": 16}
CAAN = {"face_dim": DIM, "context_dim": DIM, "proj_dim": 32, "fusion_dim": 32}
HEADS: dict[str, tuple[str, tuple[str, str], dict]] = {
    "lstm_fusion": ("lstm_fusion", ("alexnet_fc7", "alexnet_fc7_spec"), {"fusion": "modal", **LSTM}),
    "lstm_early": ("lstm_fusion", ("alexnet_fc7", "alexnet_fc7_spec"), {"fusion": "early", **LSTM}),
    "lstm_late": ("lstm_fusion", ("alexnet_fc7", "alexnet_fc7_spec"), {"fusion": "late", **LSTM}),
    "lstm_visual": ("lstm_fusion", ("alexnet_fc7", "alexnet_fc7"), {"fusion": "visual", **LSTM}),
    "lstm_audio": ("lstm_fusion", ("alexnet_fc7_spec", "alexnet_fc7_spec"), {"fusion": "audio", **LSTM}),
    "caan": ("caan", ("vggface_fc6", "vgg16_fc6"), {"streams": "fusion", **CAAN, "feature_dim": 32,
                                                     "score_dim": 16}),
    "caan_face": ("caan", ("vggface_fc6", "vggface_fc6"), {"streams": "face", **CAAN, "feature_dim": 32,
                                                            "score_dim": 16}),
    "caan_context": ("caan", ("vgg16_fc6", "vgg16_fc6"), {"streams": "context", **CAAN, "feature_dim": 32,
                                                           "score_dim": 16}),
    "caan_ffaa": ("caan_average", ("vggface_fc6", "vgg16_fc6"), {"streams": "fusion", **CAAN,
                                                                  "hidden_dim": 32}),
    "caan_faa": ("caan_average", ("vggface_fc6", "vggface_fc6"), {"streams": "face", **CAAN,
                                                                   "hidden_dim": 32}),
    "caan_caa": ("caan_average", ("vgg16_fc6", "vgg16_fc6"), {"streams": "context", **CAAN,
                                                               "hidden_dim": 32}),
}
FUSED = {"lstm_fusion", "lstm_early", "lstm_late", "caan", "caan_ffaa"}
SINGLE = {  # fused head -> its one-modality variants
    "lstm_fusion": ("lstm_visual", "lstm_audio"),
    "lstm_early": ("lstm_visual", "lstm_audio"),
    "lstm_late": ("lstm_visual", "lstm_audio"),
    "caan": ("caan_face", "caan_context"),
    "caan_ffaa": ("caan_faa", "caan_caa"),
}


@pytest.fixture(scope="module")
def accuracies(module_tmp: Callable[[str], Path]) -> dict[str, float]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = module_tmp("complementary")
    manifest = _manifest()
    _write_caches(root / "cache", manifest)
    out = {}
    for key, (head, caches, options) in HEADS.items():
        setup = HeadSetup(key=key, head=head, caches=caches, options=options, selection="last",
                          train=TrainConfig(epochs=15, batch_size=8, lr=2e-3, device="cpu"))
        train_head(setup, manifest, cache_dir=root / "cache", model_dir=root / "models" / key,
                   live_dir=root / "live" / key)
        summary = evaluate_head(setup, manifest, cache_dir=root / "cache", model_dir=root / "models" / key,
                                out_dir=root / "reports" / key)
        out[key] = summary["accuracy"]
    torch.set_num_threads(threads)
    return out


def test_one_modality_is_above_chance(accuracies: dict[str, float]) -> None:
    """Above chance (0.25); one factor allows 0.5 in expectation (a pair it cannot tell apart is split by
    the noise, so a few test videos' worth of luck either way)."""
    for key in set(HEADS) - FUSED:
        assert accuracies[key] >= 0.375, (key, sorted(accuracies.items()))


@pytest.mark.parametrize("key", sorted(FUSED))
def test_fusion_reads_both_modalities_and_beats_each_alone(accuracies: dict[str, float], key: str) -> None:
    assert accuracies[key] >= 0.85, sorted(accuracies.items())
    assert accuracies[key] >= max(accuracies[k] for k in SINGLE[key]), sorted(accuracies.items())

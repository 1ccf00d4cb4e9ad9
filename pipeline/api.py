"""The Python API, imported as `vemo` (the top-level `vemo` package re-exports these names; docs/api.md).

    vemo.extract(videos, extractors=[...])   features of video files -> Extraction (arrays with times)
    vemo.open_cache(path)                    any cache file (a stage's, an extract run's) -> Cache of Entry
    vemo.load_head(best_pt).predict(videos)  a trained head's predictions for video files

Decisions:
- Where it lives: here, in the library (`pipeline/api.py`, one layer above `pipeline.extract` and below the
  command line), so that it follows the library's import order (tests/test_layout.py); `vemo/__init__.py`
  is only the name users import. setup.cfg packages both.
- No second pipeline: `extract` is `pipeline.extract.extract_videos` (what `vemo extract` runs: the stages'
  drivers on a LocalCluster), then the named extractors' entries read back; `load_head(...).predict` is
  `vemo predict` (`pipeline.inference.predict.predict_videos`).
- Settings as for `vemo extract`: the library's defaults (params.yaml's sections), or `params` (a
  params.yaml), then `settings` ({"decode.segments": 4}: dotted keys as `--set`). No file is read unless
  given.
- Random weights are visible wherever features are: `Entry.weights` / `Entry.random_weights`,
  `Extraction.random_weights`, `Cache.random_weights`, and the stages' NOTE line.
- A mistake (unknown extractor, missing weights file, bad setting) raises `pipeline.errors.ConfigError`
  (a ValueError) naming it; a video that cannot be read is in `Extraction.failures`, not raised.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.cache import CacheReader
from pipeline.decode.config import decode_config
from pipeline.errors import ConfigError
from pipeline.extract import extract_settings, extract_videos, extractor_specs_for, weights_map
from pipeline.faces.config import face_config
from pipeline.graph import STAGE_SOURCES, cache_order
from pipeline.inference.plan import make_plan
from pipeline.inference.predict import predict_videos
from pipeline.params_check import load_yaml
from pipeline.training.trained import TrainedHead, load_trained

TIMES = "_times_ms"


def _params_file(path: str | Path) -> dict[str, Any]:
    """A params.yaml's sections, read as the stages read it (a key given twice is an error)."""
    return load_yaml(Path(path).read_text(encoding="utf-8")) or {}


@dataclass(frozen=True)
class Entry:
    """One video's entry of one cache: its arrays by name, its attributes, and the weights of the cache
    (a feature's "random", "none" for MFCC, or the checkpoint's sha256).

    Every feature array `name` has `name_times_ms` beside it, (rows, 2): each row's start and end in
    milliseconds on the video's clock; `entry.times("fc7")` gives it."""

    video_id: str
    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: str = ""

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def outputs(self) -> list[str]:
        """The names of the arrays that are not times."""
        return [n for n in self.arrays if not n.endswith(TIMES)]

    def times(self, name: str) -> np.ndarray:
        """(…, 2) int64 start and end milliseconds of each row of array `name`."""
        return self.arrays[name + TIMES]

    @property
    def random_weights(self) -> bool:
        """True for features of an untrained network (they exercise the pipeline only)."""
        return self.weights == "random"


class Cache:
    """A cache file opened for reading (`open_cache`): `len`, `in`, `cache[video_id]` and iteration over
    its complete entries, in video id order. Use it in a `with` block, or `close()` it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such cache file")
        self._reader = CacheReader(self.path)
        self.metadata: dict[str, Any] = self._reader.metadata

    @property
    def stage(self) -> str:
        """What wrote it: "decode", "faces" or "feat@<extractor>"."""
        return str(self.metadata.get("stage", ""))

    @property
    def weights(self) -> str:
        return str(self.metadata.get("weights", ""))

    @property
    def random_weights(self) -> bool:
        return self.weights == "random"

    @property
    def config(self) -> dict[str, Any]:
        """The configuration the entries were computed with (hashed into `metadata["config_hash"]`)."""
        return dict(self.metadata.get("config") or {})

    def ids(self) -> list[str]:
        return self._reader.ids()

    def __len__(self) -> int:
        return len(self.ids())

    def __contains__(self, video_id: object) -> bool:
        return isinstance(video_id, str) and video_id in self._reader

    def __getitem__(self, video_id: str) -> Entry:
        if video_id not in self._reader:
            raise KeyError(f"{self.path}: no complete entry for video {video_id!r}")
        arrays = {name: self._reader.read(video_id, name) for name in self._reader.names(video_id)}
        return Entry(video_id, arrays, self._reader.attrs(video_id), self.weights)

    def __iter__(self) -> Iterator[Entry]:
        for video_id in self.ids():
            yield self[video_id]

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_cache(path: str | Path) -> Cache:
    """Open a cache file (`cache/<dataset>/<name>.h5` of a DVC project, or `<out>/cache/<name>.h5` of
    `vemo extract`) to read its entries.

    >>> with vemo.open_cache("features/cache/mfcc.h5") as cache:      # doctest: +SKIP
    ...     for entry in cache:
    ...         print(entry.video_id, entry["mfcc"].shape, entry.times("mfcc")[0])
    """
    return Cache(path)


@dataclass
class Extraction:
    """The result of `extract`: `result[video_id][extractor]` is that video's `Entry` of the extractor.

    `videos`: video id -> file (the id is the file's stem, numbered when two files share one);
    `failures`: video id -> why it has no features (the stage and the reason); `weights`: extractor -> its
    weights; `out`: the folder with the caches (None when they were written to a temporary folder)."""

    features: dict[str, dict[str, Entry]]
    videos: dict[str, Path]
    failures: dict[str, str]
    weights: dict[str, str]
    out: Path | None = None

    def __getitem__(self, video_id: str) -> dict[str, Entry]:
        return self.features[video_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def random_weights(self) -> list[str]:
        """The extractors whose features come from random weights."""
        return [name for name, w in self.weights.items() if w == "random"]


def extract(videos: Sequence[str | Path], extractors: Sequence[str], *,
            weights: str | Mapping[str, str] | None = None, out: str | Path | None = None,
            settings: Mapping[str, Any] | None = None, params: str | Path | None = None,
            device: str | None = None, workers: int | None = None, format: str = "h5",
            train_views: bool = False) -> Extraction:
    """Features of `videos` from each of `extractors` (`vemo list extractors`), with their timestamps.

    Runs what `vemo extract` runs (the stages' code, on a Dask LocalCluster of `workers` processes) and
    reads the named extractors' entries back into memory. `out`: keep the caches (and, with
    `format="npy"`, the .npy files) there, and resume from them next time; by default a temporary folder,
    removed. `weights`: a checkpoint path (one named extractor loads weights) or {extractor: path};
    default random (labelled). `settings`: {"decode.segments": 4, ...} over the defaults or `params`.

    >>> result = vemo.extract(["a.mp4", "b.mp4"], extractors=["mfcc", "alexnet_fc7"])  # doctest: +SKIP
    >>> result["a"]["alexnet_fc7"]["fc7"].shape, result["a"]["alexnet_fc7"].times("fc7").shape
    ((2, 4096), (2, 2))
    """
    chosen = extract_settings(_params_file(params) if params else None, settings or {})
    names = list(dict.fromkeys(extractors))
    with _folder(out, "vemo-extract-") as tmp:
        run = extract_videos(videos, names, out=Path(tmp), settings=chosen,
                             weights=weights_map(names, _weight_items(weights), chosen), device=device,
                             workers=workers, fmt=format, train_views=train_views)
        features: dict[str, dict[str, Entry]] = {video_id: {} for video_id in run.ok}
        for name in run.extractors:
            with Cache(run.caches[name]) as cache:
                for video_id in run.ok:
                    features[video_id][name] = cache[video_id]
    failures = {f.video_id: f"{f.stage}: {f.reason}" for f in run.failures}
    return Extraction(features, run.videos, failures, run.weights, Path(out) if out is not None else None)


def _folder(out: str | Path | None, prefix: str) -> AbstractContextManager[str | Path]:
    """`out`, or a temporary folder removed at the end of the block."""
    return nullcontext(out) if out is not None else tempfile.TemporaryDirectory(prefix=prefix)


def _weight_items(weights: str | Mapping[str, str] | None) -> str | Mapping[str, str] | None:
    if weights is None or isinstance(weights, str | Mapping):
        return weights
    raise ConfigError(f"weights must be a path or a mapping extractor -> path, not {type(weights).__name__}")


class HeadPredictor:
    """A trained head (a best.pt of `train@<key>`) ready to score video files (`load_head`)."""

    def __init__(self, checkpoint: str | Path) -> None:
        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise FileNotFoundError(f"{self.checkpoint}: no such checkpoint")
        self.trained: TrainedHead = load_trained(self.checkpoint)

    @property
    def classes(self) -> list[str]:
        return list(self.trained.classes)

    @property
    def caches(self) -> list[str]:
        """The feature caches the head reads (each computed, with its upstream, for new videos)."""
        return sorted({spec.cache for spec in self.trained.inputs.values()})

    def predict(self, videos: Sequence[str | Path], *, out: str | Path | None = None,
                settings: Mapping[str, Any] | None = None, params: str | Path | None = None,
                weights: Mapping[str, str] | None = None, device: str = "auto", top: int = 3,
                strict: bool = False) -> dict[str, Any]:
        """`vemo predict` on `videos`: returns what predictions.json holds ("videos": one record per file,
        with "status", "predicted", "probability", "top", "attention", ...; "random_weights"). `out`:
        where predictions.json and one picture per video go (default: a temporary folder, removed).
        Settings and `weights` (extractor -> checkpoint) as for `extract`: give those the head was
        trained with, else a warning (or, `strict`, an error) names the caches whose configuration
        differs.

        >>> summary = vemo.load_head("best.pt").predict(["a.mp4"])  # doctest: +SKIP
        >>> summary["videos"][0]["predicted"]
        'joy'
        """
        chosen = extract_settings(_params_file(params) if params else None, settings or {})
        order = cache_order(set(self.caches))
        names = [n for n in order if n not in STAGE_SOURCES]
        specs = extractor_specs_for(order, chosen, weights=weights_map(names, weights, chosen), device=None)
        plan = make_plan(set(self.caches), decode=decode_config(chosen), faces=face_config(chosen),
                         specs=specs)
        with _folder(out, "vemo-predict-") as tmp:
            return predict_videos([Path(v) for v in videos], checkpoint=self.checkpoint, plan=plan,
                                  out_dir=Path(tmp), top_k=top,
                                  device=device, strict=strict)


def load_head(checkpoint: str | Path) -> HeadPredictor:
    """A trained head from its best.pt (`models/<dataset>/<key>/run_XX/best.pt`), to `predict` videos.

    >>> head = vemo.load_head("models/demo/vaanet/run_00/best.pt")  # doctest: +SKIP
    >>> head.classes, head.caches
    (['anger', 'joy', 'sadness', 'surprise'], ['mfcc_resnet18', 'r3d101_conv5'])
    """
    return HeadPredictor(checkpoint)


__all__ = ["Cache", "Entry", "Extraction", "HeadPredictor", "extract", "load_head", "open_cache"]

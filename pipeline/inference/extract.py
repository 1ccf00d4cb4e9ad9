"""Fill a cache folder for a few video files in this process, with the stages' own per-video functions.

Each cache of the plan is written completely (every video), then closed, before the next one reads it:
`decode.worker.probe_and_decode`, `faces.worker.faces_of_video` and `features.worker.extract_video` are the
functions the DVC stages map over videos with Dask; here they run one video after another, and the one
`CacheWriter` per file records the configuration as the stage would. No Dask cluster is started.

By default (`test_view_only`) only the deterministic test view of the snippets is decoded
(`train_views=0`), and only the decode outputs the plan's extractors read: view 0 is the centre of each
segment whatever the number of training views (`media.sampling.snippet_views` draws it without the random
generator) and each output is computed on its own, so the features equal those of the dataset cache's view 0,
at a fraction of the cost. `test_view_only=False` decodes exactly what the decode stage decodes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from pipeline.cache import CacheWriter
from pipeline.config import config_hash
from pipeline.decode.config import DecodeConfig, decode_cache_config
from pipeline.decode.worker import probe_and_decode
from pipeline.engine.worker_state import release_readers
from pipeline.errors import BadEntry, VideoError
from pipeline.faces.config import NAN_ROWS, FaceConfig, faces_cache_config
from pipeline.faces.worker import faces_of_video
from pipeline.features.config import SPEED_ONLY, ExtractorIdentity, ExtractorSpec, feature_cache_config
from pipeline.features.worker import extract_video, extractor_for, identity_of
from pipeline.graph import STAGE_SOURCES, decode_outputs, sources_of
from pipeline.inference.plan import Plan
from pipeline.manifests.fingerprint import source_fingerprint

Entry = tuple[dict[str, Any], dict[str, Any]]


def predict_decode_config(plan: Plan, *, test_view_only: bool = True) -> DecodeConfig:
    """The plan's decode configuration, or (`test_view_only`) that reduced to the test view and to the
    outputs its extractors read."""
    if not test_view_only:
        return plan.decode
    return replace(plan.decode, outputs=decode_outputs(plan.order), train_views=0)


def extractor_identities(plan: Plan) -> dict[str, ExtractorIdentity]:
    """Extractor -> its weights and code versions, as its cache records them; builds (once per process)
    each extractor, so a missing or wrong checkpoint fails here, before any video is decoded."""
    return {name: identity_of(extractor_for(spec)) for name, spec in plan.specs.items()}


def _fill(path: Path, videos: dict[str, Path], failures: dict[str, str], make: Callable[[str, Path], Entry],
          **writer_options: Any) -> None:
    with CacheWriter(path, **writer_options) as writer:
        for video_id, video in videos.items():
            if video_id in failures:
                continue
            try:
                arrays, attrs = make(video_id, video)
                writer.write(video_id, arrays, {"source": source_fingerprint(video), **attrs})
            except (VideoError, BadEntry) as exc:     # BadEntry: NaN or inf, refused by the writer
                failures[video_id] = f"{video}: {exc.reason}"


def _decoded(cfg: DecodeConfig) -> Callable[[str, Path], Entry]:
    def make(video_id: str, video: Path) -> Entry:
        outcome = probe_and_decode(video_id, str(video), cfg)
        if outcome.decoded is None:
            raise VideoError(video, outcome.error)
        return outcome.decoded.arrays, {**outcome.decoded.attrs, "probe": json.dumps(outcome.info.as_row()),
                                        "source": outcome.source}

    return make


def _faces(video_id: str, video: Path, *, cfg: FaceConfig, decode_path: str) -> Entry:
    return faces_of_video(video_id, str(video), cfg=cfg, decode_path=decode_path)


def _features(video_id: str, video: Path, *, spec: ExtractorSpec, sources: dict[str, str]) -> Entry:
    return extract_video(video_id, str(video), spec=spec, sources=sources)


def build_caches(plan: Plan, videos: dict[str, Path], cache_dir: Path, *, test_view_only: bool = True,
                 log: Callable[[str], None] = print) -> dict[str, str]:
    """Write `<cache_dir>/<name>.h5` for every cache of the plan, for `videos` (video id -> file).
    Returns the videos that failed, id -> reason naming the file; the others are complete in every cache."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    failures: dict[str, str] = {}
    hashes: dict[str, str] = {}
    identities = extractor_identities(plan)
    paths = {name: cache_dir / f"{name}.h5" for name in plan.order}
    try:
        for name in plan.order:
            start = time.monotonic()
            if name == "decode":
                cfg = predict_decode_config(plan, test_view_only=test_view_only)
                config = decode_cache_config(cfg)
                hashes[name] = config_hash(config)
                _fill(paths[name], videos, failures, _decoded(cfg), stage="decode", config=config,
                      config_hash=hashes[name], weights="none")
            elif name == "faces":
                config = faces_cache_config(plan.faces, hashes["decode"])
                hashes[name] = config_hash(config)
                _fill(paths[name], videos, failures,
                      partial(_faces, cfg=plan.faces, decode_path=str(paths["decode"])),
                      stage="faces", config=config, config_hash=hashes[name],
                      weights="facenet-pytorch bundled MTCNN", nan_rows=NAN_ROWS)
            else:
                spec = plan.specs[name]
                sources = {s: str(paths[s]) for s in sources_of(name)}
                values = feature_cache_config(spec, identities[name], {s: hashes[s] for s in sources})
                hashes[name] = config_hash(values)
                config = {**values, **{k: getattr(spec, k) for k in SPEED_ONLY}}
                _fill(paths[name], videos, failures, partial(_features, spec=spec, sources=sources),
                      stage=f"feat@{name}", config=config, config_hash=hashes[name],
                      weights=identities[name].weights)
            kind = "stage" if name in STAGE_SOURCES else "extractor"
            log(f"[predict] {kind} {name}: {len(videos) - len(failures)} video(s) in "
                f"{time.monotonic() - start:.1f} s")
    finally:
        release_readers([str(p) for p in paths.values()])
    return failures

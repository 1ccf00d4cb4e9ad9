"""Worker side of the decode stage: probe one video and decode it, a bad video coming back as data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pipeline.cache.packed import pack_entry
from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import Decoded, decode_video
from pipeline.engine.dask_map import Outcome, VideoTask, video_outcome
from pipeline.errors import VideoError
from pipeline.manifests.fingerprint import source_fingerprint
from pipeline.media.probe import VideoInfo, probe_video

CHANGED = "the file changed while the stage read it (replaced or still being written): run the stage again"


@dataclass(frozen=True)
class DecodeOutcome:
    info: VideoInfo
    decoded: Decoded | None
    error: str = ""
    source: str = ""    # the file's fingerprint, the same before and after decoding


def probe_and_decode(video_id: str, path: str, cfg: DecodeConfig, threads: int = 0,
                     gzip_level: int | None = None, listed: str | None = None) -> DecodeOutcome:
    """Never raises for a bad video, so its probe row is kept with the reason. With a `gzip_level` the
    arrays come back compressed (pipeline/cache/packed.py: the driver only copies).

    The file's fingerprint is taken before and after decoding and compared with `listed` (what the
    stage saw when it chose the video; None: not compared): an entry is only ever made of one version of
    the file, recorded under that version's fingerprint."""
    before = source_fingerprint(path)
    info = probe_video(path, packets=True, audio=cfg.audio_stream)
    if listed is not None and listed != before:
        return DecodeOutcome(info, None, CHANGED, before)       # changed since listed: nothing to decode
    try:
        decoded = decode_video(path, video_id, info, cfg, threads)
        if gzip_level is not None:
            decoded = Decoded(pack_entry(decoded.arrays, gzip_level, threads or len(os.sched_getaffinity(0))),
                              decoded.attrs)
    except VideoError as exc:
        return DecodeOutcome(info, None, exc.reason, before)
    if source_fingerprint(path) != before:
        return DecodeOutcome(info, None, CHANGED, before)
    return DecodeOutcome(info, decoded, source=before)


def decode_group(group: Sequence[VideoTask], **kwargs: Any) -> list[Outcome]:
    """`probe_and_decode` of each video of `group`, checked against the fingerprint it was listed with."""
    return [video_outcome(partial(probe_and_decode, t.video_id, t.path, listed=t.source, **kwargs))
            for t in group]

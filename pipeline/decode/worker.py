"""Worker side of the decode stage: probe one video and decode it, a bad video coming back as data."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.cache.packed import pack_entry
from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import Decoded, decode_video
from pipeline.errors import VideoError
from pipeline.media.probe import VideoInfo, probe_video


@dataclass(frozen=True)
class DecodeOutcome:
    info: VideoInfo
    decoded: Decoded | None
    error: str = ""


def probe_and_decode(video_id: str, path: str, cfg: DecodeConfig, threads: int = 0,
                     gzip_level: int | None = None) -> DecodeOutcome:
    """Never raises for a bad video, so its probe row is kept with the reason. With a `gzip_level` the
    arrays come back compressed (pipeline/cache/packed.py: the driver only copies)."""
    info = probe_video(path, packets=cfg.may_seek)
    try:
        decoded = decode_video(path, video_id, info, cfg, threads)
        if gzip_level is not None:
            decoded = Decoded(pack_entry(decoded.arrays, gzip_level, threads or len(os.sched_getaffinity(0))),
                              decoded.attrs)
        return DecodeOutcome(info, decoded)
    except VideoError as exc:
        return DecodeOutcome(info, None, exc.reason)

"""Read a cache file: lazily per video, or whole arrays in memory.

The reader opens the file on first use, so it can be created in one process and used in another
(a PyTorch DataLoader worker, a Dask worker): h5py handles do not survive pickling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.cache.layout import VIDEOS, entry_key, open_cache_file, open_failure, readable_entries
from pipeline.errors import CacheUnavailable, VideoError


class CacheReader:
    def __init__(self, path: str | Path, *, config_hash: str | None = None) -> None:
        self.path = Path(path)
        self.expected_hash = config_hash
        self._file: h5py.File | None = None
        self._last: tuple[str, h5py.Group] | None = None   # the entry looked up last, checked

    @property
    def file(self) -> h5py.File:
        if self._file is None:
            try:
                self._file = open_cache_file(self.path, "r")
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise CacheUnavailable(open_failure(self.path, exc)) from exc
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_last": None}

    @property
    def metadata(self) -> dict[str, Any]:
        attrs = dict(self.file.attrs)
        if "config" in attrs:
            attrs["config"] = json.loads(attrs["config"])
        return attrs

    @property
    def random_weights(self) -> bool:
        return self.file.attrs.get("weights") == "random"

    def ids(self) -> list[str]:
        """Every readable entry's video id (of the expected configuration); a broken one is no entry."""
        return sorted(
            str(g.attrs["video_id"]) for g in readable_entries(self.file[VIDEOS])[0]
            if self.expected_hash is None or g.attrs.get("config_hash") == self.expected_hash
        )

    def _entry(self, video_id: str) -> h5py.Group:
        """The entry's group, checked. A feature worker asks for one video's group four or five times in a
        row (is it there, its attributes, each array); remembering the last one saves the lookups and the
        configuration check, about a tenth of reading a video's keyframes."""
        if self._last is not None and self._last[0] == video_id:
            return self._last[1]
        key = f"{VIDEOS}/{entry_key(video_id)}"
        if key not in self.file:
            raise KeyError(f"{self.path}: no complete entry for video {video_id!r}")
        group = self.file[key]
        if self.expected_hash is not None and group.attrs.get("config_hash") != self.expected_hash:
            raise KeyError(f"{self.path}: entry {video_id!r} was written with another configuration")
        self._last = (video_id, group)
        return group

    def __contains__(self, video_id: str) -> bool:
        try:
            self._entry(video_id)
        except KeyError:
            return False
        return True

    def attrs(self, video_id: str) -> dict[str, Any]:
        return dict(self._entry(video_id).attrs)

    def names(self, video_id: str) -> list[str]:
        return list(self._entry(video_id).keys())

    def read(self, video_id: str, name: str, index: Any = ()) -> np.ndarray:
        """One array of one video, or a slice of it (`index` as for numpy) without reading the rest."""
        return self._entry(video_id)[name][index]

    def load_all(self, name: str, ids: list[str] | None = None) -> dict[str, np.ndarray]:
        """The named array of every (or the given) video, in memory."""
        return {v: self.read(v, name) for v in (ids if ids is not None else self.ids())}

    def close(self) -> None:
        self._last = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> CacheReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_entry(reader: CacheReader, video_id: str, what: str) -> dict[str, Any]:
    """The attributes of `video_id`'s entry, or a VideoError naming the upstream stage that lacks it."""
    if video_id not in reader:
        raise VideoError(video_id, f"no {what} entry in {reader.path} (see that stage's failure list)")
    return reader.attrs(video_id)

"""Workers without the driver's file system (`dask.shared_filesystem: false`): each task carries its inputs.

With a shared file system a task names what it reads (a video, an upstream cache, a weights file) by an
absolute path. Without one the driver reads those bytes and sends them:

    driver                                            worker (its own temporary folder)
    ──────                                            ─────────────────────────────────
    a group's videos, read whole              ──>     written to files, the tasks' paths pointed at them
    a group's entries of each upstream cache  ──>     one small HDF5 file per cache, same layout
    (copied into an in-memory HDF5 file)
    each weights file, scattered once to      ──>     written once per worker process (by its sha256)
    every worker (Dask keeps it there)                into the worker's Dask scratch folder, which Dask
                                                      removes when the worker closes (or, after a kill,
                                                      when the next worker starts on that host)

and the task runs the stage's own function on those files: the code, and so the values, are the same in
both modes (tests/test_cluster_anywhere.py). The price is the bytes moved through the scheduler's network
and the driver's reads (bench/README.md, section "Without a shared file system").
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
from dask.distributed import Client, Future, get_worker

from pipeline.cache.layout import VIDEOS, entry_key, open_cache_file
from pipeline.engine.worker_state import release_readers

if TYPE_CHECKING:
    from pipeline.engine.dask_map import Outcome, VideoTask


@dataclass(frozen=True)
class Parcel:
    """What one task carries: original path -> bytes."""

    videos: dict[str, bytes] = field(default_factory=dict)
    caches: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(b) for part in (self.videos, self.caches) for b in part.values())


@dataclass(frozen=True)
class Shipment:
    """What a stage's tasks need shipped: their videos (decode), the upstream caches they read, and the
    files every worker needs (weights), already scattered: path -> future of the bytes."""

    videos: bool = False
    caches: dict[str, Sequence[str] | None] = field(default_factory=dict)   # path -> array prefixes
    files: dict[str, Any] = field(default_factory=dict)


def scatter_files(client: Client, paths: Sequence[str]) -> dict[str, Future]:
    """Each file's bytes sent once to every worker (a worker that joins later fetches them from another);
    path -> future."""
    if not paths:
        return {}
    data = {path: Path(path).read_bytes() for path in paths}
    futures = client.scatter(list(data.values()), broadcast=True)
    return dict(zip(data, futures, strict=True))


def cache_image(path: str, video_ids: Sequence[str], arrays: Sequence[str] | None = None) -> bytes:
    """An HDF5 file, as bytes, holding the root attributes of cache `path` and the entries of `video_ids`
    it has: each entry's attributes and its arrays whose names start with one of `arrays` (all when
    None), copied as stored (compressed chunks are not recompressed)."""
    with open_cache_file(path, "r") as source:
        image = h5py.File(f"{path}.image", "w", driver="core", backing_store=False)
        with image:
            image.attrs.update(dict(source.attrs))
            videos = image.create_group(VIDEOS)
            for video_id in video_ids:
                key = entry_key(video_id)
                if key not in source[VIDEOS]:
                    continue
                entry, copy = source[VIDEOS][key], videos.create_group(key)
                copy.attrs.update(dict(entry.attrs))
                for name in entry:
                    if arrays is None or name.startswith(tuple(arrays)):
                        source.copy(entry[name], copy, name=name)
            image.flush()
            return image.id.get_file_image()


def pack(group: Sequence[VideoTask], shipment: Shipment) -> Parcel:
    """Driver side: the parcel of one task. A video that cannot be read travels as nothing: the worker
    finds no file and fails it with the stage's usual reason."""
    ids = [t.video_id for t in group]
    shipped = {}
    for task in group if shipment.videos else ():
        try:
            shipped[task.path] = Path(task.path).read_bytes()
        except OSError:
            continue
    return Parcel(videos=shipped, caches={path: cache_image(path, ids, arrays)
                                          for path, arrays in shipment.caches.items()})


_FILES: dict[str, str] = {}     # this worker's copies of shipped files: sha256 -> path


def _scratch() -> Path:
    """Where this worker keeps its copies: its Dask local directory, so that the copies (a checkpoint is up
    to 580 MB) go with the worker instead of piling up in /tmp run after run; outside a Dask worker, a
    temporary folder removed at exit."""
    try:
        return Path(get_worker().local_directory)
    except ValueError:
        return _process_scratch()


@functools.cache
def _process_scratch() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vemo-shipped-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _worker_file(data: bytes, suffix: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if digest not in _FILES or not os.path.exists(_FILES[digest]):
        folder = _scratch() / "vemo-shipped"
        folder.mkdir(exist_ok=True)
        target = folder / f"{digest[:16]}{suffix}"
        target.write_bytes(data)
        _FILES[digest] = str(target)
    return _FILES[digest]


def substitute(value: Any, paths: dict[str, str]) -> Any:
    """`value` with every string equal to a key of `paths` replaced, inside dicts, lists, tuples and
    frozen dataclasses (the stages' keyword arguments: cache paths, an ExtractorSpec's weights)."""
    if isinstance(value, str):
        return paths.get(value, value)
    if isinstance(value, dict):
        return {k: substitute(v, paths) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(substitute(v, paths) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: substitute(getattr(value, f.name), paths)
                                             for f in dataclasses.fields(value) if f.init})
    return value


def unpacked(parcel: Parcel, files: dict[str, bytes], folder: Path) -> dict[str, str]:
    """Worker side: the parcel written under `folder`, the files once per worker process; original path
    -> local path."""
    local = {}
    for i, (path, data) in enumerate([*parcel.videos.items(), *parcel.caches.items()]):
        target = folder / f"{i}{Path(path).suffix}"
        target.write_bytes(data)
        local[path] = str(target)
    for path, data in files.items():
        local[path] = _worker_file(data, Path(path).suffix)
    return local


def run_unpacked(func: Callable[..., Any], parcel: Parcel, files: dict[str, bytes],
                 group: Sequence[VideoTask] | None = None, **kwargs: Any) -> Any:
    """Worker side: `func(group, **kwargs)` (or `func(**kwargs)` without a group) on local copies of the
    parcel, deleted afterwards, and of the files (kept for the worker's next tasks)."""
    folder = Path(tempfile.mkdtemp(prefix="vemo-task-", dir=_scratch()))
    try:
        local = unpacked(parcel, files, folder)
        kwargs = substitute(kwargs, local)
        if group is None:
            return func(**kwargs)
        moved = [dataclasses.replace(t, path=local.get(t.path, t.path)) for t in group]
        outcomes: list[Outcome] = func(moved, **kwargs)
        return outcomes
    finally:
        release_readers([str(p) for p in folder.iterdir()])
        shutil.rmtree(folder, ignore_errors=True)


def call_with_files(func: Callable[..., Any], files: dict[str, bytes], **kwargs: Any) -> Any:
    """Worker side: `func(**kwargs)` with the shipped files' paths pointed at this worker's copies."""
    return run_unpacked(func, Parcel(), files, None, **kwargs)

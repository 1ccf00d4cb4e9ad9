"""Cache entries compressed where they are computed.

The stage's driver is the single writer of a cache file, and gzip-compressing a decode entry there (the
snippets, frames and keyframes of a 60 s video are about 30 MB) takes 0.35-0.45 s a video, serially,
while the Dask workers wait: the decode stage would stop scaling with workers (bench/README.md,
deliverable 4). So a worker splits each array into the writer's chunks (`layout.chunk_shape`) and
deflates them (byte-shuffled first when an element is wider than a byte, as HDF5's shuffle filter
does); the driver copies the bytes into the file with `write_direct_chunk`. Readers see ordinary gzip
(+ shuffle) datasets with the same values, chunks and checksum as a plain write. Given threads, a worker
deflates chunks (and hashes the entry) on all of them: zlib and hashlib let go of the GIL.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from pipeline.cache.finite import NonFinite, count_nonfinite
from pipeline.cache.layout import arrays_digest, chunk_shape


@dataclass(frozen=True)
class PackedArray:
    """One array as deflated HDF5 chunks: (chunk offset, bytes) pairs."""

    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shuffle: bool
    pieces: tuple[tuple[tuple[int, ...], bytes], ...]

    @property
    def nbytes(self) -> int:
        """Bytes on disk: the compressed chunks."""
        return sum(len(data) for _, data in self.pieces)


@dataclass(frozen=True)
class PackedEntry:
    """A whole entry: packed arrays (0-d and empty ones stay plain), the gzip level, the entry's sha256,
    and its arrays' NaN and inf counted before packing (the writer judges them without unpacking)."""

    arrays: dict[str, PackedArray | np.ndarray]
    level: int
    sha256: str
    nonfinite: dict[str, NonFinite] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes the entry's arrays take on disk (plain ones uncompressed)."""
        return sum(a.nbytes for a in self.arrays.values())


def _chunk_bytes(block: np.ndarray, chunks: tuple[int, ...], shuffle: bool) -> bytes:
    if block.shape != chunks:                      # an edge chunk is stored whole, padded with zeros
        full = np.zeros(chunks, block.dtype)
        full[tuple(slice(0, n) for n in block.shape)] = block
        block = full
    block = np.ascontiguousarray(block)
    if shuffle:
        return block.view(np.uint8).reshape(-1, block.dtype.itemsize).T.tobytes()
    return block.tobytes()


Mapper = Callable[[Callable[[tuple[int, ...]], bytes], Iterable[tuple[int, ...]]], Iterator[bytes]]


def pack_array(array: np.ndarray, level: int, mapper: Mapper = map) -> PackedArray:
    """`array` as deflated chunks; `mapper` maps the compression over the chunk offsets (a pool's `map`
    compresses them side by side)."""
    chunks = chunk_shape(array.shape, array.dtype.itemsize)
    shuffle = array.dtype.itemsize > 1
    offsets = list(itertools.product(*(range(0, n, c) for n, c in zip(array.shape, chunks, strict=True))))

    def deflate(offset: tuple[int, ...]) -> bytes:
        block = array[tuple(slice(o, o + c) for o, c in zip(offset, chunks, strict=True))]
        return zlib.compress(_chunk_bytes(block, chunks, shuffle), level)
    pieces = tuple(zip(offsets, mapper(deflate, offsets), strict=True))
    return PackedArray(array.shape, array.dtype.str, chunks, shuffle, pieces)


def pack_entry(arrays: Mapping[str, np.ndarray], level: int, threads: int = 1) -> PackedEntry:
    """What `CacheWriter.write` stores as gzip level `level`, compressed here (in a worker), on `threads`
    threads."""
    plain = {name: np.asarray(value) for name, value in arrays.items()}
    if threads <= 1:
        return PackedEntry(_pack_arrays(plain, level, map), level, arrays_digest(plain),
                           count_nonfinite(plain))
    with ThreadPoolExecutor(threads) as pool:
        digest = pool.submit(arrays_digest, plain)
        return PackedEntry(_pack_arrays(plain, level, pool.map), level, digest.result(),
                           count_nonfinite(plain))


def _pack_arrays(arrays: dict[str, np.ndarray], level: int,
                 mapper: Mapper) -> dict[str, PackedArray | np.ndarray]:
    return {name: array if array.ndim == 0 or array.size == 0 else pack_array(array, level, mapper)
            for name, array in arrays.items()}

"""HDF5 caches: one file per (dataset, extractor), written by one process, read lazily by many."""

from pipeline.cache.layout import entry_key, id_from_key
from pipeline.cache.reader import CacheReader
from pipeline.cache.writer import CacheWriter, StaleCacheError

__all__ = ["CacheReader", "CacheWriter", "StaleCacheError", "entry_key", "id_from_key"]

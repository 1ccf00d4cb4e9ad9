"""Video emotion pipeline: cached extraction with DVC and Dask, attention heads trained on the cache."""

__version__ = "0.1.0"

"""vemo's Python API: `import vemo`, then `vemo.extract`, `vemo.open_cache` and `vemo.load_head`.

A thin name for `pipeline.api` (where the functions live and are documented; docs/api.md has an example
of each). The package that does the work is `pipeline`; the command line is `vemo` (`pipeline.cli`).
"""

from pipeline import __version__
from pipeline.api import Cache, Entry, Extraction, HeadPredictor, extract, load_head, open_cache
from pipeline.errors import ConfigError

__all__ = ["Cache", "ConfigError", "Entry", "Extraction", "HeadPredictor", "__version__", "extract",
           "load_head", "open_cache"]

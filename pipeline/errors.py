"""Errors that stages record per video and continue past."""

from __future__ import annotations


class VideoError(Exception):
    """A video cannot be processed; the message names the file and says why.

    Raised inside per-video tasks; the engine records it in the stage's failure list and goes on.
    """

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class BadEntry(ValueError):
    """An entry cannot be cached as it is (NaN or inf values: pipeline/cache/finite.py): nothing is
    written, and the stage records `reason` as the video's failure and goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigError(ValueError):
    """A setting cannot work (an unknown option, a missing checkpoint): the stage stops before any video,
    and its entry point prints this one line, not a traceback."""


class CacheUnavailable(ConfigError, OSError):
    """A cache file cannot be opened: another process holds HDF5's lock on it (a second `vemo extract` on
    the same folder, a notebook reading it) or it is damaged. Nothing per video can go on without it, so
    the stage stops with this one line, as for a setting; an OSError too, for readers that report a bad
    file rather than stop (`vemo cache verify`)."""

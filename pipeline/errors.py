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


class ConfigError(ValueError):
    """A setting cannot work (an unknown option, a missing checkpoint): the stage stops before any video,
    and its entry point prints this one line, not a traceback."""

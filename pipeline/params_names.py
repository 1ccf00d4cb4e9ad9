"""The names params.yaml picks from the registries (dataset builder, extractors, heads) and the options it
gives them, checked against what is registered: one line per problem, with the nearest valid name."""

from __future__ import annotations

import difflib
import inspect
import pickle
from functools import partial
from pathlib import Path
from typing import Any

import pipeline.heads  # noqa: F401  (registers every head)
from pipeline.extractors import get_extractor, list_extractors
from pipeline.file_memo import FileMemo
from pipeline.heads.base import HEADS, sample_head
from pipeline.manifests.registry import list_builders


def _named(kind: str, key: str, name: str, known: list[str]) -> str | None:
    if name in known:
        return None
    near = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"{key} = {name!r} is not a known {kind} ({hint}known: {', '.join(known)})"


def _options(kind: str, key: str, builder: Any, options: dict[str, Any],
             given: tuple[str, ...]) -> str | None:
    """Unknown keyword options of `builder` (a class or function taking keyword options)."""
    parameters = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    allowed = [n for n, p in parameters.items() if n not in given and n != "self"
               and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    unknown = [o for o in options if o not in allowed]
    if not unknown:
        return None
    near = difflib.get_close_matches(unknown[0], allowed, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"{key}.{unknown[0]}: not an option of {kind} ({hint}options: {', '.join(allowed) or 'none'})"


OPTION_ERRORS = (ValueError, TypeError, KeyError)   # what a builder raises for an option value it refuses


def _values(key: str, build: Any) -> str | None:
    """What building with the given option values raises, as one line (None: they are accepted)."""
    try:
        build()
    except OPTION_ERRORS as exc:
        said = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)   # a KeyError's str quotes
        return f"{key}: {said or type(exc).__name__}"
    return None


def registry_problems(params: dict[str, Any]) -> list[str]:
    """The names params.yaml picks from the registries that no registry holds, the options it gives them
    that their builders do not take, and option values their builders refuse (`norm: vaanett`,
    `hidden: "256"`): each extractor is constructed without its weights and each head is built, so such a
    mistake stops the run's first stage, not the feature or training stage after hours of extraction.
    `precision` is left to the feature stage's check, which knows the device."""
    problems = [_named("dataset builder", "dataset.builder", params["dataset"]["builder"], list_builders())]
    for name, section in params["features"].items():
        options = section.get("options") or {}
        key = f"features.{name}.options"
        problem = _named("extractor", f"features.{name}", name, list_extractors()) or \
            _options(f"extractor {name}", key, get_extractor(name), options, ("device",))
        checked = {k: v for k, v in options.items() if k != "precision"}
        problems.append(problem or _values(key, partial(get_extractor(name).check_options, **checked)))
    for key, entry in params["heads"].items():
        options = entry.get("options") or {}
        problem = _named("head", f"heads.{key}.head", entry["head"], HEADS.names()) or \
            _options(f"head {entry['head']}", f"heads.{key}.options", HEADS.get(entry["head"]), options,
                     ("num_classes", "polarity"))
        problems.append(problem or _values(f"heads.{key}.options",
                                           partial(sample_head, entry["head"], options)))
    return [p for p in problems if p]




CHECKPOINT_ERRORS = (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError)
"""What reading a file that is no fitting checkpoint raises (torch's loader, a strict load, the extractors'
own format checks): the feature stage would stop on the same."""


def weights_problems(params: dict[str, Any], memo: FileMemo | None = None) -> dict[str, str]:
    """The `features.<name>.weights` files that the feature stage would refuse: missing, a folder,
    unreadable, no checkpoint, or one whose keys and shapes do not fit the extractor with its options
    (read and loaded into the architecture on the meta device, through the extractor's own loader). Found
    by the run's first stage, not by `feat@<name>` after hours of decoding. `memo` keeps the verdict of a
    file that fits while it is unchanged: the first stage runs on every `dvc repro`, and VGG16's file is
    half a gigabyte. Entries whose name is unknown are left to `registry_problems`. One line per
    extractor name."""
    memo = memo or FileMemo()
    problems: dict[str, str] = {}
    for name, section in params["features"].items():
        weights = str(section["weights"])
        if weights in ("random", "none") or name not in list_extractors():
            continue
        cls = get_extractor(name)
        if cls.recorded_weights("random") == "none":
            continue
        options = {k: v for k, v in (section.get("options") or {}).items() if k != "precision"}
        path = Path(weights).expanduser()
        key = f"features.{name}.weights"
        if not path.exists():
            problems[name] = (f"{key}: {path} not found (`vemo weights list` says where to get each "
                              "checkpoint; `weights: random` runs without one, labelled as such)")
            continue
        if not path.is_file():
            problems[name] = f"{key}: {path} is not a file"
            continue
        salt = f"{name}:{cls.version}:{sorted(options.items())!r}"
        try:
            memo.get(path, partial(_fits, cls, options=options), salt=salt)
        except CHECKPOINT_ERRORS as exc:
            said = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems[name] = f"{key}: {path} does not load into {name}: {_first_lines(said)}"
    return problems


def _fits(cls: type, path: Path, *, options: dict[str, Any]) -> str:
    cls.check_checkpoint(path, **options)
    return "fits"


def _first_lines(message: str, limit: int = 300) -> str:
    """A loader's message on one line: torch's strict load lists every missing key on lines of its own."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."

"""The names params.yaml picks from the registries (dataset builder, extractors, heads) and the options it
gives them, checked against what is registered: one line per problem, with the nearest valid name."""

from __future__ import annotations

import difflib
import inspect
from functools import partial
from typing import Any

import pipeline.heads  # noqa: F401  (registers every head)
from pipeline.extractors import get_extractor, list_extractors
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




"""The names params.yaml picks from the registries (dataset builder, extractors, heads) and the options it
gives them, checked against what is registered: one line per problem, with the nearest valid name."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import pipeline.heads  # noqa: F401  (registers every head)
from pipeline.extractors import get_extractor, list_extractors
from pipeline.heads.base import HEADS
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


def registry_problems(params: dict[str, Any]) -> list[str]:
    """The names params.yaml picks from the registries that no registry holds, and the options it gives
    them that their builders do not take."""
    problems = [_named("dataset builder", "dataset.builder", params["dataset"]["builder"], list_builders())]
    for name, section in params["features"].items():
        problem = _named("extractor", f"features.{name}", name, list_extractors())
        problems.append(problem or _options(f"extractor {name}", f"features.{name}.options",
                                            get_extractor(name), section.get("options") or {}, ("device",)))
    for key, entry in params["heads"].items():
        problem = _named("head", f"heads.{key}.head", entry["head"], HEADS.names())
        problems.append(problem or _options(f"head {entry['head']}", f"heads.{key}.options",
                                            HEADS.get(entry["head"]), entry.get("options") or {},
                                            ("num_classes", "polarity")))
    return [p for p in problems if p]



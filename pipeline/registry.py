"""A named registry, the one type behind every part picked by name: extractors, heads, losses, dataset
builders, input kinds and report pictures (`vemo list` prints them all).

One rule for duplicates: registering the same object again under its name (same `__module__` and
`__qualname__`, as when a module is imported twice) is a no-op; a different object under a taken name
raises ValueError naming both, so two plugins cannot silently shadow each other. A deliberate override
calls `remove(name)` first. An unknown name raises the registry's `missing` error (KeyError unless the
callers expect another) listing the known names.

A lazy entry (`lazy(name, module)`) names the module that registers `name`; `get(name)` imports it on first
use, so a process imports only the parts it runs. The module must register `name` itself: the lazy entry
reserves the name for that module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def qualified_name(item: object) -> str | None:
    """`module.qualname` of a class or function; None for objects without one (instances)."""
    module, qualname = getattr(item, "__module__", None), getattr(item, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else None


def _same(a: object, b: object) -> bool:
    return a is b or (qualified_name(a) is not None and qualified_name(a) == qualified_name(b))


class Registry(Generic[T]):
    def __init__(self, kind: str, *, missing: type[Exception] = KeyError) -> None:
        self.kind = kind
        self.missing = missing
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}  # name -> its module; kept after loading, see `lazy_modules`

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def add(item: T) -> T:
            return self.add(name, item)

        return add

    def add(self, name: str, item: T) -> T:
        """Register `item` under `name` (see the module docstring for a taken name); returns `item`."""
        old = self._items.get(name)
        if old is not None:
            if not _same(old, item):
                raise ValueError(f"{self.kind} {name!r} is already registered by {self._describe(old)}; "
                                 f"{self._describe(item)} cannot take it (call remove({name!r}) first "
                                 "to override it)")
            return item
        module = self._lazy.get(name)
        if module is not None and getattr(item, "__module__", None) != module:
            raise ValueError(f"{self.kind} {name!r} is already registered by module {module} (lazily); "
                             f"{self._describe(item)} cannot take it (call remove({name!r}) first to "
                             "override it)")
        self._items[name] = item
        return item

    def lazy(self, name: str, module: str) -> None:
        """Declare that importing `module` registers `name`; `get(name)` imports it on first use."""
        taken = self._lazy.get(name)
        if taken is not None and taken != module:
            raise ValueError(f"{self.kind} {name!r} is already registered by module {taken} (lazily); "
                             f"module {module} cannot take it (call remove({name!r}) first)")
        item = self._items.get(name)
        if item is not None and getattr(item, "__module__", None) != module:
            raise ValueError(f"{self.kind} {name!r} is already registered by {self._describe(item)}; "
                             f"module {module} cannot take it (call remove({name!r}) first)")
        self._lazy[name] = module

    def get(self, name: str) -> T:
        if name not in self._items and name in self._lazy:
            importlib.import_module(self._lazy[name])
            if name not in self._items:
                raise LookupError(f"{self.kind} {name!r}: module {self._lazy[name]} was imported but did not "
                                  "register it")
        if name not in self._items:
            raise self.missing(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}")
        return self._items[name]

    def names(self) -> list[str]:
        """Every name, lazy ones included (listing imports nothing)."""
        return sorted(self._items.keys() | self._lazy.keys())

    def lazy_modules(self) -> dict[str, str]:
        """The lazy entries as declared: name -> module, whether loaded yet or not."""
        return dict(self._lazy)

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def remove(self, name: str) -> None:
        """Forget `name` (its lazy entry too), so another object may take it; unknown names are ignored."""
        self._items.pop(name, None)
        self._lazy.pop(name, None)

    def _describe(self, item: object) -> str:
        return qualified_name(item) or repr(item)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self.names())} entries)"

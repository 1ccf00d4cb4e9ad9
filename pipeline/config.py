"""Reading params.yaml and hashing configurations.

Stages read their own sections here and pass plain keyword arguments into the library; nothing under
`pipeline/` reads params.yaml by itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping. PyYAML keeps the last one without a
    word, so a second `seed:` or a second `decode:` section pasted at the end of params.yaml would silently
    replace the first (DVC's own YAML reader refuses such a file, so it must be refused here too)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":      # `<<: *anchor` may repeat keys on purpose
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:                                   # an unhashable key: PyYAML refuses it below
                continue
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first at line {first.line + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml(stream: Any) -> Any:
    """YAML text or an open file, parsed safely, with a repeated key an error (`UniqueKeyLoader`)."""
    return yaml.load(stream, Loader=UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass)


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return load_yaml(f) or {}


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of a JSON-serialisable configuration (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

"""Every library file a DVC stage runs is one of its dependencies in dvc.yaml, so editing it re-runs the
stage. What a stage runs is what its entry module imports, transitively (imports inside functions and the
registries' lazily imported modules included); the test names each file dvc.yaml misses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(module: str) -> Path | None:
    """The repository file of a dotted module name (a package's __init__.py), or None outside it."""
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it, and every module named to a registry's `lazy(...)`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "lazy":
            found.update(a.value for a in node.args
                         if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return found


def runs(entry: str) -> set[Path]:
    """The repository files module `entry` runs: itself, the packages above each file, and what they
    import."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            path = module_file(".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo.extend(imported(path))
    return seen


def entry_module(stage: dict) -> str:
    words = (stage.get("do") or stage)["cmd"].split()
    return words[words.index("-m") + 1]


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(REPO)
    return any(relative == Path(d) or Path(d) in relative.parents for d in deps if "${" not in d)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stage_depends_on_every_library_file_it_runs(name: str) -> None:
    stage = STAGES[name]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in (stage.get("do") or stage)["deps"]]
    missing = sorted(str(p.relative_to(REPO)) for p in runs(entry_module(stage)) if not covered(p, deps))
    assert not missing, f"dvc.yaml: stage {name} runs these files but does not depend on them: {missing}"


def test_the_import_walk_follows_functions_and_lazy_registries() -> None:
    files = {str(p.relative_to(REPO)) for p in runs("stages.features")}
    assert "pipeline/extractors/r3d.py" in files            # a lazy registry entry
    assert "pipeline/heads/vaanet.py" not in files or "pipeline/graph.py" in files
    assert "pipeline/features/worker.py" in files

"""The library's dependencies point one way: stages -> pipeline, upstream -> downstream, and inside each
per-video stage package config -> worker -> stage. A module that imports against the order fails here,
naming the file and the import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS: list[tuple[str, ...]] = [
    ("errors", "config", "registry", "params_check", "defaults", "file_memo", "devices"),
    ("cache", "media", "manifests", "evaluation", "demo"),
    ("engine",),
    ("decode",),
    ("faces",),
    ("extractors",),
    ("heads",),
    ("graph",),
    ("features",),
    ("paths", "weights", "params_names"),
    ("preflight",),
    ("training",),
    ("dvc_graph",),
    ("report",),
    ("inference",),
    ("extract",),
    ("api",),
    ("cli",),
]
"""Each unit of `pipeline/` (a subpackage or a top-level module) may import its own modules and those of
the layers above it, never a unit of its own layer or of a layer below."""
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
PER_VIDEO_STAGES = ("decode", "faces", "features")
ROLES = ("config", "worker", "stage")     # each role may import the roles before it, not those after


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`, relative imports resolved against the package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "pipeline" and len(parts) > 1 else None


def library_files() -> list[Path]:
    return sorted((ROOT / "pipeline").rglob("*.py"))


def test_every_unit_of_the_library_has_a_layer() -> None:
    units = {p.relative_to(ROOT / "pipeline").with_suffix("").parts[0] for p in library_files()}
    units -= {"__init__"}
    assert units <= set(RANK), f"add {sorted(units - set(RANK))} to LAYERS"


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_imports_downwards_only(path: Path) -> None:
    own = path.relative_to(ROOT / "pipeline").with_suffix("").parts[0]
    wrong = []
    for line, module in imports(path):
        if module.split(".")[0] == "stages":
            wrong.append(f"line {line}: {module} (the library never imports the DVC entry points)")
        unit = unit_of(module)
        if unit is None or unit not in RANK or unit == own or own not in RANK:
            continue
        if RANK[unit] >= RANK[own]:
            wrong.append(f"line {line}: {module} ({unit} is not upstream of {own})")
    assert not wrong, f"{path.relative_to(ROOT)} imports against the layer order:\n" + "\n".join(wrong)


@pytest.mark.parametrize("package", PER_VIDEO_STAGES)
def test_a_per_video_stage_has_config_worker_and_stage_modules_in_that_order(package: str) -> None:
    folder = ROOT / "pipeline" / package
    for rank, role in enumerate(ROLES):
        path = folder / f"{role}.py"
        assert path.is_file(), f"pipeline/{package}/{role}.py is missing"
        later = {f"pipeline.{package}.{r}" for r in ROLES[rank + 1:]}
        wrong = [f"line {line}: {m}" for line, m in imports(path) if m in later]
        assert not wrong, f"pipeline/{package}/{role}.py imports a later role: {wrong}"


def test_stages_import_only_the_library_and_their_own_helpers() -> None:
    for path in sorted((ROOT / "stages").glob("*.py")):
        for line, module in imports(path):
            top = module.split(".")[0]
            assert top != "tests", f"{path.relative_to(ROOT)} line {line} imports {module}"

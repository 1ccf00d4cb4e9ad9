"""The extractor registry: built-in extractors are found by name, importing only their own module."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pipeline.extractors
from pipeline.extractors.base import _EXTRACTORS, MODULES, get_extractor

REPO = Path(__file__).resolve().parents[1]


def test_every_built_in_extractor_is_defined_in_the_module_the_table_names() -> None:
    for name, module in MODULES.items():
        cls = get_extractor(name)
        assert cls.name == name and cls.__module__ == f"pipeline.extractors.{module}"


def test_no_extractor_of_the_package_is_missing_from_the_table() -> None:
    for info in pkgutil.iter_modules(pipeline.extractors.__path__):
        importlib.import_module(f"pipeline.extractors.{info.name}")
    built_in = {n for n, cls in _EXTRACTORS.items() if cls.__module__.startswith("pipeline.extractors.")}
    assert built_in == set(MODULES)


def test_a_3d_resnet_worker_imports_neither_torchvision_nor_scipy_signal() -> None:
    code = ("import sys; from pipeline.features.worker import extract_group; "
            "from pipeline.extractors import get_extractor; get_extractor('r3d101_conv5'); "
            "print([m for m in ('torchvision', 'scipy.signal', 'librosa') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"

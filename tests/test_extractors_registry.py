"""The extractor registry: built-in extractors are found by name, importing only their own module."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.extractors
from pipeline.extractors import EXTRACTORS, get_extractor, list_extractors

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list_extractors())
def test_every_extractor_is_defined_in_the_module_its_lazy_entry_names(name: str) -> None:
    cls = get_extractor(name)
    assert cls.name == name and cls.__module__ == EXTRACTORS.lazy_modules()[name]
    assert cls.outputs and all(isinstance(n, int) and n > 0 for shape in cls.outputs.values() for n in shape)


def test_no_extractor_of_the_package_is_missing_a_lazy_entry() -> None:
    for info in pkgutil.iter_modules(pipeline.extractors.__path__):
        importlib.import_module(f"pipeline.extractors.{info.name}")
    built_in = {n for n in list_extractors()
                if get_extractor(n).__module__.startswith("pipeline.extractors.")}
    assert built_in == set(EXTRACTORS.lazy_modules())


def test_a_3d_resnet_worker_imports_neither_torchvision_nor_scipy_signal() -> None:
    code = ("import sys; from pipeline.features.worker import extract_group; "
            "from pipeline.extractors import get_extractor; get_extractor('r3d101_conv5'); "
            "print([m for m in ('torchvision', 'scipy.signal', 'librosa') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"

"""The one registry type: its duplicate rule, lazy entries and errors; `vemo list`; and a smoke test per
registered component of every kind, parametrised over the registries so a new one is covered as it lands."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

import pipeline.heads  # noqa: F401  (registers every head)
from pipeline.decode.config import DecodeConfig
from pipeline.extractors import EXTRACTORS, get_extractor, list_extractors
from pipeline.extractors.mfcc import SEGMENTS as MFCC_SEGMENTS
from pipeline.features.inputs import LOADERS, load_inputs
from pipeline.graph import INPUT_SOURCES
from pipeline.heads.base import HEADS, Head, InputSpec, build_head, list_heads, register_head
from pipeline.heads.losses import LOSSES, build_loss, list_losses
from pipeline.manifests.registry import BUILDERS, ManifestError, get_builder
from pipeline.registry import Registry
from pipeline.report.pictures import STRIPS

REPO = Path(__file__).resolve().parents[1]
C = 4
POLARITY = torch.tensor([1, 1, -1, -1])
LENGTHS = [3, 2]  # real rows per video of a "sequence" input; B = 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def plugin(tmp_path: Path, name: str, body: str) -> ModuleType:
    """A real module `name` in tmp_path, imported: what a third-party plugin looks like."""
    (tmp_path / f"{name}.py").write_text(body, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


# --- the duplicate rule ----------------------------------------------------------------------------------

def test_the_same_object_twice_is_a_no_op(tmp_path: Path) -> None:
    widgets: Registry[object] = Registry("widget")
    module = plugin(tmp_path, "vemo_plugin_same", "def build():\n    return 1\n")
    first = module.build
    assert widgets.register("w")(first) is first
    assert widgets.register("w")(first) is first
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.reload(module)  # a re-imported module: a new function object, same module and qualname
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("vemo_plugin_same", None)
    assert module.build is not first
    widgets.add("w", module.build)
    assert widgets.get("w") is first and widgets.names() == ["w"]


def test_a_different_object_under_a_taken_name_raises_naming_both() -> None:
    widgets: Registry[object] = Registry("widget")

    def one() -> None: ...

    def two() -> None: ...

    widgets.add("w", one)
    with pytest.raises(ValueError, match=r"widget 'w' is already registered by .*\.one; .*\.two cannot take"):
        widgets.add("w", two)
    assert widgets.get("w") is one


def test_remove_then_register_overrides() -> None:
    widgets: Registry[object] = Registry("widget")

    def one() -> None: ...

    def two() -> None: ...

    widgets.add("w", one)
    widgets.remove("w")
    widgets.add("w", two)
    assert widgets.get("w") is two


def test_a_real_registry_refuses_a_second_head_under_a_taken_name() -> None:
    def build_impostor(*, num_classes: int, polarity: torch.Tensor | None = None) -> Head:
        raise AssertionError("never called")

    original = HEADS.get("vaanet")
    with pytest.raises(ValueError, match="already registered by pipeline.heads.vaanet.build_vaanet"):
        register_head("vaanet")(build_impostor)
    assert HEADS.get("vaanet") is original
    assert register_head("vaanet")(original) is original  # the module imported again: harmless


# --- lazy entries ----------------------------------------------------------------------------------------

def test_a_lazy_entry_imports_its_module_on_first_get(tmp_path: Path) -> None:
    (tmp_path / "vemo_plugin_lazy.py").write_text(
        "from vemo_widgets import widgets\n\n@widgets.register('lazy')\ndef build():\n    return 2\n",
        encoding="utf-8")
    widgets = plugin(tmp_path, "vemo_widgets", "from pipeline.registry import Registry\n"
                     "widgets = Registry('widget')\nwidgets.lazy('lazy', 'vemo_plugin_lazy')\n").widgets
    sys.path.insert(0, str(tmp_path))
    try:
        assert "lazy" in widgets and widgets.names() == ["lazy"]
        assert "vemo_plugin_lazy" not in sys.modules
        assert widgets.get("lazy")() == 2
        assert "vemo_plugin_lazy" in sys.modules
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("vemo_plugin_lazy", "vemo_widgets"):
            sys.modules.pop(name, None)


def test_a_lazy_name_is_reserved_for_its_module() -> None:
    widgets: Registry[object] = Registry("widget")

    def elsewhere() -> None: ...

    widgets.lazy("w", "some.plugin")
    widgets.lazy("w", "some.plugin")  # declared twice: harmless
    with pytest.raises(ValueError, match="widget 'w' is already registered by module some.plugin"):
        widgets.add("w", elsewhere)
    with pytest.raises(ValueError, match="module other.plugin cannot take it"):
        widgets.lazy("w", "other.plugin")


def test_a_lazy_module_that_does_not_register_its_name_is_named() -> None:
    widgets: Registry[object] = Registry("widget")
    widgets.lazy("w", "json")
    with pytest.raises(LookupError, match="widget 'w': module json was imported but did not register it"):
        widgets.get("w")


def test_extractors_are_lazy_in_a_fresh_interpreter() -> None:
    code = ("import sys; from pipeline.extractors import get_extractor, list_extractors; "
            "names = list_extractors(); "
            "print(sorted(m for m in sys.modules if m.startswith('pipeline.extractors.'))); "
            "get_extractor('r3d101_conv5'); "
            "print(sorted(m for m in sys.modules if m.startswith('pipeline.extractors.'))); print(names)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    before, after, names = done.stdout.splitlines()
    assert before == "['pipeline.extractors.base', 'pipeline.extractors.catalog']"   # no backbone yet
    assert after == "['pipeline.extractors.base', 'pipeline.extractors.catalog', 'pipeline.extractors.r3d']"
    assert names == str(list_extractors()) and "r3d101_conv5" in names


# --- unknown names ---------------------------------------------------------------------------------------

def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown extractor 'nope'; known: alexnet_fc7, alexnet_fc7_spec"):
        get_extractor("nope")
    with pytest.raises(KeyError, match="unknown head 'nope'; known: .*caan.*vaanet"):
        build_head("nope", num_classes=C)
    with pytest.raises(KeyError, match="unknown loss 'nope'; known: ce, pcce"):
        build_loss("nope")
    with pytest.raises(ManifestError, match="unknown dataset builder 'nope'; known: caer, csv"):
        get_builder("nope")
    with pytest.raises(KeyError, match="unknown input kind 'nope'; known: audio, face_crops"):
        load_inputs("nope", {}, "video")
    with pytest.raises(KeyError, match="unknown report picture 'nope'; known: caan, lstm_fusion"):
        STRIPS.get("nope")


# --- vemo list -------------------------------------------------------------------------------------------

def sections(text: str) -> dict[str, list[str]]:
    """`vemo list` output -> {section title: [first word of each entry line]}."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith(" "):
            title = re.sub(r" \(\d+\):$", "", line)
            out[title] = []
        else:
            out[title].append(line.split()[0])
    return out


LIBRARY_NAMES = """
import json
import pipeline.heads
from pipeline.extractors import list_extractors
from pipeline.features.inputs import LOADERS
from pipeline.heads import list_heads
from pipeline.heads.losses import list_losses
from pipeline.manifests.registry import list_builders
from pipeline.report.pictures import STRIPS
print(json.dumps({"extractors": list_extractors(), "heads": list_heads(), "losses": list_losses(),
                  "dataset builders": list_builders(), "input kinds": LOADERS.names(),
                  "report pictures": STRIPS.names()}))
"""


def test_vemo_list_prints_every_registered_name_of_every_kind() -> None:
    """What the library registers, in a fresh interpreter (this one may hold test components too)."""
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "list"], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    library = subprocess.run([sys.executable, "-c", LIBRARY_NAMES], capture_output=True, text=True,
                             cwd=REPO, check=True)
    assert sections(done.stdout) == json.loads(library.stdout)
    for name in list_extractors():
        assert re.search(rf"^  {name} +input: {get_extractor(name).input_kind}$", done.stdout, re.M)


def test_vemo_list_one_kind() -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "list", "losses"], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert sections(done.stdout) == {"losses": list_losses()}
    wrong = subprocess.run([sys.executable, "-m", "pipeline.cli", "list", "widgets"], capture_output=True,
                           text=True, cwd=REPO)
    assert wrong.returncode == 2 and "unknown kind 'widgets'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


# --- one smoke test per registered component -------------------------------------------------------------

def rows_of(spec: InputSpec) -> tuple[int, ...]:
    """The leading shape of a "fixed" input per video, before the extractor's output shape, with the
    default settings: the rows its extractor reads per video (`features.inputs`)."""
    kind = get_extractor(spec.cache).input_kind
    if kind == "audio":
        return ()  # the soundtrack is one row
    if kind == "mfcc":
        return (MFCC_SEGMENTS,)  # one row per cached MFCC segment
    raise AssertionError(f"{spec}: add the rows per video of input kind {kind!r} to this test")


def random_batch(head: Head, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch of len(LENGTHS) videos as `training.data.collate` makes it, random, shaped from the head's
    `inputs()` and the extractors' `outputs` at the default decode settings."""
    g = torch.Generator().manual_seed(seed)
    b = len(LENGTHS)
    batch = {"label": torch.randint(0, C, (b,), generator=g),
             "audio_present": torch.ones(b, dtype=torch.bool)}
    for key, spec in head.inputs().items():
        shape = get_extractor(spec.cache).outputs[spec.array]
        if spec.kind == "views":
            batch[key] = torch.randn(b, DecodeConfig().segments, *shape, generator=g)
        elif spec.kind == "sequence":
            mask = torch.arange(max(LENGTHS)) < torch.tensor(LENGTHS).unsqueeze(1)
            values = torch.randn(b, max(LENGTHS), *shape, generator=g)
            batch[key] = values * mask.view(*mask.shape, *[1] * len(shape))
            batch[f"{key}_mask"] = mask
        else:
            batch[key] = torch.randn(b, *rows_of(spec), *shape, generator=g)
    return batch


def library(registry: Registry, names: list[str]) -> list[str]:
    """The names the library registers (another test file may register its own components)."""
    return [n for n in names if registry.get(n).__module__.startswith("pipeline.")]


@pytest.mark.parametrize("name", library(HEADS, list_heads()))
def test_every_head_builds_runs_and_gives_a_finite_loss(name: str) -> None:
    torch.manual_seed(0)
    head = build_head(name, num_classes=C, polarity=POLARITY)
    batch = random_batch(head)
    out = head(batch)
    assert out["logits"].shape == (len(LENGTHS), C)
    assert torch.isfinite(out["logits"]).all()
    loss = head.loss(out, batch)["loss"]
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_is_a_finite_scalar(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(5, C, generator=g), torch.randint(0, C, (5,), generator=g)
    loss = build_loss(name, polarity=POLARITY)(logits, target)
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_every_input_kind_of_the_graph_has_a_loader() -> None:
    assert LOADERS.names() == sorted(INPUT_SOURCES)


@pytest.mark.parametrize("name", list_extractors())
def test_every_extractor_reads_an_input_kind_with_a_loader(name: str) -> None:
    assert get_extractor(name).input_kind in LOADERS


@pytest.mark.parametrize("name", STRIPS.names())
def test_every_report_picture_is_for_a_registered_head(name: str) -> None:
    assert name in list_heads() and callable(STRIPS.get(name))


def test_each_registry_has_its_kind() -> None:
    kinds = [r.kind for r in (EXTRACTORS, HEADS, LOSSES, BUILDERS, LOADERS, STRIPS)]
    assert kinds == ["extractor", "head", "loss", "dataset builder", "input kind", "report picture"]

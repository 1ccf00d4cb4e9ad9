"""The one stage graph: what each cache is computed from and what each head reads, as DVC, the feature
stages, the heads' stages and `vemo predict` use it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_params
from pipeline.dvc_graph import SLOTS, stage_graph
from pipeline.extractors import get_extractor, list_extractors
from pipeline.graph import INPUT_SOURCES, STAGE_GRAPH_FILE, STAGE_SOURCES, cache_order, sources_of
from pipeline.heads import head_caches, list_heads
from pipeline.training.config import head_setup

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params(REPO / "params.yaml")


def test_the_committed_stage_graph_file_is_what_vemo_graph_writes() -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "graph", "--check",
                           "--params", str(REPO / "params.yaml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_vemo_graph_check_names_an_out_of_date_file_in_one_line(tmp_path: Path) -> None:
    params = dict(PARAMS, heads={"caan_face": PARAMS["heads"]["caan_face"]})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / STAGE_GRAPH_FILE).write_text((REPO / STAGE_GRAPH_FILE).read_text())
    cmd = [sys.executable, "-m", "pipeline.cli", "graph", "--params", str(tmp_path / "params.yaml")]
    stale = subprocess.run([*cmd, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and stale.stderr.strip().count("\n") == 0 and "vemo graph" in stale.stderr
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    written = yaml.safe_load((tmp_path / STAGE_GRAPH_FILE).read_text())
    # as many entries as dvc.yaml has slots, however few the params list (a shorter list fails `dvc repro`)
    assert written["head_stages"] == {"caan_face": {"caches": ["vggface_fc6", "vggface_fc6"]}}


def dvc_slots(field: str) -> int:
    """How many `${item.<field>[i]}` dependencies dvc.yaml's stages list."""
    return len(set(re.findall(rf"\$\{{item\.{field}\[(\d+)\]\}}", (REPO / "dvc.yaml").read_text())))


def test_dvc_yaml_has_a_slot_for_every_cache_a_stage_reads() -> None:
    assert {field: dvc_slots(field) for field in SLOTS} == SLOTS
    graph = stage_graph(PARAMS)
    for section, field in (("feature_stages", "sources"), ("head_stages", "caches")):
        widths = {len(entry[field]) for entry in graph[section].values()}
        assert widths == {dvc_slots(field)}, (section, widths)


@pytest.mark.parametrize("name", list_extractors())
def test_every_extractor_reads_caches_of_the_graph(name: str) -> None:
    assert get_extractor(name).input_kind in INPUT_SOURCES
    for source in sources_of(name):
        assert source in STAGE_SOURCES or source in list_extractors()


@pytest.mark.parametrize("key", sorted(PARAMS["heads"]))
def test_every_head_entry_reads_the_caches_its_head_declares(key: str) -> None:
    setup = head_setup(PARAMS, key)
    assert setup.caches and set(setup.caches) <= set(PARAMS["features"])
    assert stage_graph(PARAMS)["head_stages"][key]["caches"][: len(setup.caches)] == list(setup.caches)


def test_a_heads_caches_follow_its_options() -> None:
    assert head_caches("caan", {"streams": "face"}) == ("vggface_fc6",)
    assert head_caches("caan", {"streams": "fusion"}) == ("vggface_fc6", "vgg16_fc6")
    assert head_caches("vaanet", {"audio_mode": "mfcc", "segments": 4}) == ("r3d101_conv5", "mfcc")
    assert set(list_heads()) >= {entry["head"] for entry in PARAMS["heads"].values()}


def test_cache_order_puts_every_source_first() -> None:
    order = cache_order({"mfcc_resnet18", "vgg16_fc6"})
    assert order.index("decode") < order.index("faces") < order.index("vgg16_fc6")
    assert order.index("mfcc") < order.index("mfcc_resnet18")


def test_a_head_stage_whose_caches_the_written_graph_omits_stops_in_one_line(tmp_path: Path) -> None:
    """`-S heads.caan.options.streams=...` can change what a head reads without `vemo graph`: the stage
    then refuses, since DVC would not re-run it when the unlisted cache changes."""
    params = dict(PARAMS, heads={"caan": {**PARAMS["heads"]["caan"], "options": {"streams": "context"}}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    graph = {"feature_stages": {}, "head_stages": {"caan": {"caches": ["vggface_fc6", "vggface_fc6"]}}}
    (tmp_path / STAGE_GRAPH_FILE).write_text(yaml.safe_dump(graph))
    cmd = [sys.executable, "-m", "stages.train", "caan", "--params", str(tmp_path / "params.yaml")]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "vgg16_fc6" in done.stderr and "vemo graph" in done.stderr

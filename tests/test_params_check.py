"""A mistake in params.yaml is found before any work, in one line naming the key, the value and what is
allowed; the stage exits 2 and writes nothing."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import yaml

from pipeline.params_check import (
    ALLOCATORS,
    DECODE_OUTPUTS,
    FACE_POLICIES,
    FEATURE_SCALES,
    OPTIMIZERS,
    PROTOCOLS,
    SELECTIONS,
    check_params,
)
from pipeline.params_names import registry_problems

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def changed(path: str, value: object) -> dict:
    """The shipped params with the key at dotted `path` set to `value` (deleted for `...`)."""
    params = copy.deepcopy(PARAMS)
    *parents, last = path.split(".")
    node = params
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return params


def test_the_shipped_params_are_valid_to_the_last_option() -> None:
    assert check_params(PARAMS) == [] and registry_problems(PARAMS) == []


@pytest.mark.parametrize(("path", "value", "said"), [
    ("decode.segments", "ten", "decode.segments = 'ten': Input should be a valid integer"),
    ("decode.segments", 0, "decode.segments = 0: Input should be greater than or equal to 1"),
    ("decode.fps", -5, "decode.fps = -5: Input should be greater than 0"),
    ("faces.min_prob", "high", "faces.min_prob = 'high': Input should be a valid number"),
    ("dask.workers", 0, "dask.workers = 0: Input should be greater than or equal to 1"),
    ("dask.memory_limit", "4 gigs", "dask.memory_limit = '4 gigs': not a size: give auto"),   # was Dask's
    ("decode.segmnets", 10, "unknown key decode.segmnets (did you mean decode.segments?)"),
    ("train.lr", True, "train.lr = True: Input should be a valid number"),
    # PyYAML reads `lr: 1e-4` (no dot) as text; the bare "should be a valid number" left users puzzled
    ("train.lr", yaml.safe_load("lr: 1e-4")["lr"],
     "train.lr = '1e-4': Input should be a valid number (YAML reads 1e-4 as text: write 1.0e-4)"),
    ("train.epochs", ..., "train: missing epochs"),
    ("decode.outputs", ["snippets", "frame"], "decode.outputs.1 = 'frame': Input should be 'snippets'"),
    ("faces.select", "biggest", "faces.select = 'biggest': Input should be 'largest' or 'confident'"),
    ("heads.vaanet.train", {"epoch": 3}, "unknown key heads.vaanet.train.epoch (did you mean "
                                         "heads.vaanet.train.epochs?)"),
    ("features.r3d101_conv5.batchsize", 4, "did you mean features.r3d101_conv5.batch_size?"),
    ("features.r3d101_conv5.device", "gpu", "features.r3d101_conv5.device = 'gpu'"),
    ("heads.vaanet.caches", ["r3d101_conv5"], "heads.vaanet.caches is no longer read"),
    ("decode.crop_size", 200, "crop_size (200) is larger than short_side (112)"),
    ("seed", -1, "seed = -1"),
    ("decode.fps", float("inf"), "decode.fps = inf: Input should be a finite number"),   # YAML's .inf
])
def test_a_mistake_is_one_line_naming_key_value_and_what_is_allowed(path: str, value: object,
                                                                     said: str) -> None:
    problems = check_params(changed(path, value))
    assert len(problems) == 1 and said in problems[0], problems


@pytest.mark.parametrize(("path", "value", "said"), [
    ("features.r3d101_conv5.options", {"precison": "fp32"},
     "features.r3d101_conv5.options.precison: not an option of extractor r3d101_conv5 (did you mean "
     "'precision'?"),
    ("heads.vaanet.options", {"spatail": True}, "heads.vaanet.options.spatail: not an option of head vaanet "
                                                "(did you mean 'spatial'?"),
    ("dataset.builder", "ucff", "dataset.builder = 'ucff' is not a known dataset builder (did you mean "
                                "'ucf'?"),
    ("heads.vaanet.head", "vaanett",
     "heads.vaanet.head = 'vaanett' is not a known head (did you mean 'vaanet'?"),
    # option values the builders refuse: found by the run's first stage, not after the extraction
    ("features.r3d101_conv5.options", {"norm": "vaanett"},
     "features.r3d101_conv5.options: r3d101_conv5: norm 'vaanett' is not one of"),
    ("features.mfcc.options", {"pad_mode": "reflct"},
     "features.mfcc.options: mfcc: pad_mode must be 'reflect' or 'constant', not 'reflct'"),
    ("heads.vaanet.options", {"loss": "pcc"}, "heads.vaanet.options: unknown loss 'pcc'; known: ce, pcce"),
    ("heads.lstm_fusion.options", {"fusion": "modall"}, "heads.lstm_fusion.options: unknown fusion 'modall'"),
    ("heads.lstm_fusion.options", {"hidden": "256"}, "heads.lstm_fusion.options: hidden_size should be of "
                                                     "type int, got: str"),
])
def test_deep_checking_knows_every_extractor_and_head_option(path: str, value: object, said: str) -> None:
    assert check_params(changed(path, value)) == []
    problems = registry_problems(changed(path, value))
    assert len(problems) == 1 and said in problems[0], problems


def test_an_unknown_extractor_entry_is_named_with_the_nearest() -> None:
    params = copy.deepcopy(PARAMS)
    params["features"]["r3d10_conv5"] = params["features"].pop("r3d101_conv5")
    [problem] = registry_problems(params)
    assert ("features.r3d10_conv5 = 'r3d10_conv5' is not a known extractor (did you mean "
            "'r3d101_conv5'?") in problem


def test_the_allowed_values_are_the_librarys() -> None:
    from pipeline.decode.config import OUTPUTS
    from pipeline.engine.worker_env import ALLOCATORS as LIBRARY_ALLOCATORS
    from pipeline.faces.config import POLICIES
    from pipeline.training.loop import OPTIMIZERS as LIBRARY_OPTIMIZERS
    from pipeline.training.protocol import PROTOCOLS as LIBRARY_PROTOCOLS
    from pipeline.training.protocol import SELECTION_LABELS

    pairs = [(DECODE_OUTPUTS, OUTPUTS), (FACE_POLICIES, POLICIES), (ALLOCATORS, LIBRARY_ALLOCATORS),
             (PROTOCOLS, LIBRARY_PROTOCOLS), (SELECTIONS, tuple(SELECTION_LABELS)),
             (OPTIMIZERS, tuple(LIBRARY_OPTIMIZERS)), (FEATURE_SCALES, ("rms", "standard", "none"))]
    for literal, constant in pairs:
        assert set(typing.get_args(literal)) == set(constant)


def run_stage(module: str, params: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    (cwd / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, "-m", module, *args, "--params", str(cwd / "params.yaml")],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(("module", "args", "path", "value"), [
    ("stages.decode", (), "decode.segments", "ten"),
    ("stages.decode", (), "dask.workers", 0),
    ("stages.faces", (), "faces.min_prob", "high"),
    ("stages.features", ("r3d101_conv5",), "features.r3d101_conv5.batch_size", 0),
    ("stages.train", ("vaanet",), "train.optimizer", "adamm"),
    ("stages.manifest", (), "heads.vaanet.options", {"spatail": True}),
])
def test_a_stage_given_a_mistake_exits_2_in_one_line_and_writes_nothing(
        tmp_path: Path, module: str, args: tuple[str, ...], path: str, value: object) -> None:
    params = changed(path, value)
    params["dataset"]["name"] = "mistake"
    start = time.monotonic()
    done = run_stage(module, params, tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert path.split(".")[-1] in done.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "reports").exists()
    assert time.monotonic() - start < 60


def test_a_stage_named_for_an_entry_params_lacks_says_which_entries_exist(tmp_path: Path) -> None:
    done = run_stage("stages.features", copy.deepcopy(PARAMS), tmp_path, "r3d50_conv5")
    assert done.returncode == 2 and "no entry features.r3d50_conv5 (entries: " in done.stderr
    assert "r3d101_conv5" in done.stderr and "Traceback" not in done.stderr


def test_broken_yaml_is_one_line_with_its_position(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("decode:\n  segments: [10\n")
    done = subprocess.run([sys.executable, "-m", "stages.decode", "--params", str(tmp_path / "params.yaml")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "not valid YAML at line" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("text", "said"), [
    # PyYAML keeps the last of two equal keys without a word: the second seed, or a second decode section
    # pasted at the end (which drops every key of the first), would have run silently
    ((REPO / "params.yaml").read_text().replace("seed: 0", "seed: 0\nseed: 3"),
     "not valid YAML at line 5, column 1: key 'seed' given twice (first at line 4)"),
    ("decode:\n  segments: 10\nfaces: {}\ndecode:\n  segments: 4\n",
     "not valid YAML at line 4, column 1: key 'decode' given twice (first at line 1)"),
    # an editor saving in Latin-1: an accent in a comment was a UnicodeDecodeError traceback
    ("# caf\xe9\nseed: 0\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at line 1): save it as UTF-8"),
])
def test_a_repeated_key_or_a_file_not_in_utf8_is_one_line(tmp_path: Path, text: str | bytes,
                                                          said: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    done = subprocess.run([sys.executable, "-m", "stages.decode", "--params", str(path)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == f"{path}: {said}"


def test_a_merge_key_may_repeat_what_it_merges() -> None:
    from pipeline.params_check import load_yaml

    assert load_yaml("base: &b {lr: 1, epochs: 2}\nrun: {<<: *b, lr: 3}\n")["run"] == {"lr": 3, "epochs": 2}


@pytest.mark.parametrize(("local", "said"), [
    # was "params.yaml: dask.workers = '4'", naming the file that says `workers: 2`
    ("dask:\n  workers: '4'\n", "params.local.yaml: dask.workers = '4': Input should be a valid integer"),
    # was "dask.wrokers cannot be set per machine: it changes results", which a typo does not
    ("dask:\n  wrokers: 4\n", "params.local.yaml: unknown key dask.wrokers (did you mean dask.workers?)"),
    ("decode:\n  segments: 4\n", "params.local.yaml: decode.segments cannot be set per machine"),
])
def test_a_mistake_in_params_local_yaml_names_that_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        local: str, said: str) -> None:
    from pipeline.params_check import load_valid_params

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    (tmp_path / "params.local.yaml").write_text(local)
    with pytest.raises(SystemExit) as stop:
        load_valid_params(tmp_path / "params.yaml")
    [line] = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and line.startswith(f"{tmp_path}/{said}"), line


@pytest.mark.parametrize(("module", "args"), [("stages.decode", ()), ("stages.train", ("vaanet",))])
def test_a_stage_run_before_the_manifest_says_so_in_one_line(tmp_path: Path, module: str,
                                                            args: tuple[str, ...]) -> None:
    # started by hand before `stages.manifest` (or with reports/ deleted): a FileNotFoundError traceback
    (tmp_path / "stage_graph.yaml").write_text((REPO / "stage_graph.yaml").read_text())
    done = run_stage(module, copy.deepcopy(PARAMS), tmp_path, *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().endswith("reports/demo/manifest.csv not found: run `dvc repro manifest` (or "
                                        "`python -m stages.manifest`) first"), done.stderr

"""What `dvc metrics show` and `dvc exp show` list: each head's scores, not the stages' counts; params.yaml's
keys and no item of stage_graph.yaml; and `vemo exp`, the narrowed table. DVC itself reads the repository's
dvc.yaml and params.yaml in a temporary project where every report file exists."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.dvc_graph import SHOWN_KEY

REPO = Path(__file__).resolve().parents[1]
COUNTS = {"total": 4, "done": 4, "skipped": 0, "failed": 0}
SCORES = {"accuracy": 0.5, "macro_f1": 0.4}  # what evaluate@ writes for a protocol of one run


def dvc(args: list[str], cwd: Path, command: tuple[str, ...] = ("dvc",)) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join([*command, *args])} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def leaves(tree: dict, prefix: str = "") -> set[str]:
    """The dotted names DVC makes columns of: one per leaf, a list being one leaf."""
    found: set[str] = set()
    for key, value in tree.items():
        name = f"{prefix}{key}"
        found |= leaves(value, f"{name}.") if isinstance(value, dict) and value else {name}
    return found


def test_only_the_heads_scores_are_dvc_metrics(tmp_path: Path) -> None:
    for name in ("dvc.yaml", "params.yaml", "stage_graph.yaml"):
        shutil.copy2(REPO / name, tmp_path / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    reports = tmp_path / "reports" / params["dataset"]["name"]
    reports.mkdir(parents=True)
    # every report file the stages write that a metric could be made of
    for name in ("decode_summary", "faces_summary", *(f"feat_{k}_summary" for k in params["features"])):
        (reports / f"{name}.json").write_text(json.dumps(COUNTS))
    (reports / "manifest_report.json").write_text(json.dumps({"videos": 4, "per_split": {"train": 4}}))
    for key in params["heads"]:
        (reports / key).mkdir()
        (reports / key / "metrics.json").write_text(json.dumps({**SCORES, "runs": 1, "head": key,
                                                               "per_class_accuracy": {"joy": 1.0}}))
        (reports / key / "scores.json").write_text(json.dumps({key: SCORES}))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc(["init", "-q"], tmp_path)

    shown = json.loads(dvc(["metrics", "show", "--json"], tmp_path))
    files = {f: v["data"] for f, v in shown[""]["data"].items()}
    assert set(files) == {f"reports/{params['dataset']['name']}/{key}/scores.json" for key in params["heads"]}
    columns = sum(len(leaves(data)) for data in files.values())
    assert columns == 2 * len(params["heads"])  # was about 15 per head plus 4 per stage


    # `dvc exp show`: the scores' columns named by the head (`vaanet.accuracy`), every key of params.yaml (DVC
    # lists the default params file whole, docs/dvc.md) and of stage_graph.yaml only its one param
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "baseline"], cwd=tmp_path, check=True)
    workspace = json.loads(dvc(["exp", "show", "--json"], tmp_path))[0]["data"]
    shown_params = {f: leaves(v["data"]) for f, v in workspace["params"].items()}
    assert shown_params == {"params.yaml": leaves(params), "stage_graph.yaml": {SHOWN_KEY}}
    assert len(shown_params["params.yaml"]) <= 250  # was 246 + 44 items of stage_graph.yaml
    assert set().union(*(leaves(v["data"]) for v in workspace["metrics"].values())) == {
        f"{key}.{score}" for key in params["heads"] for score in SCORES}

    # plain `dvc exp show`, as DVC renders it (1,024 characters wide, folding the columns it cannot fit into
    # `…` from the right): the experiment's name and every head's scores come before anything folds
    table = dvc(["exp", "show"], tmp_path).splitlines()
    header = next(line for line in table if "Experiment" in line).split()
    assert header[:2] == ["Experiment", "Created"]
    assert header[2:2 + len(SCORES) * len(params["heads"])] == sorted(
        f"{key}.{score}" for key in params["heads"] for score in SCORES), header

    # `vemo exp`: what differs from the baseline (one head's lr and its score), no unchanged param or score
    text = (tmp_path / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text.replace("train: {epochs: null, batch_size: null, optimizer: "
                                                       "null, lr: null", "train: {epochs: null, batch_size: "
                                                       "null, optimizer: null, lr: 0.01", 1))
    first = next(iter(params["heads"]))
    (reports / first / "scores.json").write_text(json.dumps({first: {**SCORES, "accuracy": 0.75}}))
    header = dvc(["exp", "--csv"], tmp_path, (sys.executable, "-m", "pipeline.cli")).splitlines()[0]
    assert set(header.split(",")) - {"Experiment", "rev", "typ", "Created", "parent"} == {
        f"heads.{first}.train.lr", f"{first}.accuracy"}, header

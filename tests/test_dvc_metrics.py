"""What `dvc metrics show` and `dvc exp show` list: each head's scores, not the stages' counts. DVC itself
reads the repository's dvc.yaml and params.yaml in a temporary project where every report file exists."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COUNTS = {"total": 4, "done": 4, "skipped": 0, "failed": 0}
SCORES = {"accuracy": 0.5, "accuracy_std": 0.0, "macro_f1": 0.4, "macro_f1_std": 0.0}


def dvc(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


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
        (reports / key / "scores.json").write_text(json.dumps(SCORES))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc(["init", "-q"], tmp_path)

    shown = json.loads(dvc(["metrics", "show", "--json"], tmp_path))
    files = {f: v["data"] for f, v in shown[""]["data"].items()}
    assert set(files) == {f"reports/{params['dataset']['name']}/{key}/scores.json" for key in params["heads"]}
    columns = sum(len(data) for data in files.values())
    assert columns == 4 * len(params["heads"])  # was about 15 per head plus 4 per stage


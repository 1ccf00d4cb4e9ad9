"""A team's project with DVC's own commands (docs/team.md): experiments that change a head run only that
head, in the workspace, in a temporary folder and from the queue; the caches travel through a DVC remote to
a colleague whose videos are elsewhere, and to one without videos; no write ever changes DVC's cache.

Everything is real: git, DVC (its queue's worker included), a local-folder remote, the project's stages on
a small demo."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.cache import CacheReader, CacheWriter
from pipeline.cache.private import make_private
from tests.test_dvc_pipeline import SMALL, set_params

REPO = Path(__file__).resolve().parents[1]
HEADS = ("lstm_audio", "lstm_visual")          # the cheapest heads and extractors: the mechanism is DVC's
FEATURES = ("alexnet_fc7", "alexnet_fc7_spec")
EXTRACTION = re.compile(r"^(decode|faces|feat@.*)$")
GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
          "GIT_COMMITTER_EMAIL": "t@t"}


def sh(cmd: list[str], cwd: Path, timeout: float = 900) -> str:
    env = {**os.environ, **GIT_ID,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def stages_run(output: str) -> set[str]:
    """The stages DVC ran, from its "Running stage 'X':" lines."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def cache_objects_intact(repo: Path) -> int:
    """Every object in DVC's cache still has the md5 it is named by (none was written through a link);
    returns how many were checked."""
    objects = [p for p in (repo / ".dvc/cache/files/md5").rglob("*") if p.is_file()]
    for path in objects:
        if path.suffix == ".dir":
            continue
        name = path.parent.name + path.name
        assert hashlib.md5(path.read_bytes()).hexdigest() == name, f"{path} was modified"
    return len(objects)


@pytest.fixture(scope="module")
def team_repo(module_tmp: Callable[[str], Path]) -> Path:
    """A committed team project (dvc.lock included) with its caches built. Its dataset, like a real one,
    is no DVC output: the demo's clips copied to `videos/` (ignored by git), `dataset.root: videos`."""
    repo = module_tmp("team") / "origin"
    for name in sh(["git", "ls-files", "-co", "--exclude-standard"], REPO).splitlines():
        if (REPO / name).is_file() and not name.startswith(("reports/", "docs/", "bench/")):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, repo / name)
    sh(["git", "init", "-q"], repo)
    set_params(repo, SMALL)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["heads"] = {k: v for k, v in params["heads"].items() if k in HEADS}
    params["features"] = {k: v for k, v in params["features"].items() if k in FEATURES}
    params["dataset"]["root"] = "videos"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with (repo / ".gitignore").open("a") as ignore:
        ignore.write("/videos/\n")
    sh([sys.executable, "-m", "pipeline.cli", "graph"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "project"], repo)
    sh(["dvc", "repro", "demo"], repo)
    shutil.copytree(repo / "data/demo/videos", repo / "videos")
    first = sh(["dvc", "repro"], repo)
    assert {"decode", "faces", "feat@alexnet_fc7"} <= stages_run(first)
    sh(["git", "add", "-A"], repo)       # dvc.lock and the .gitignore files DVC wrote
    sh(["git", "commit", "-qm", "caches built"], repo)
    return repo


@pytest.mark.slow
def test_experiments_on_a_head_run_no_extraction(team_repo: Path) -> None:
    head = "lstm_visual"
    expected = {f"train@{head}", f"evaluate@{head}", f"report@{head}"}
    workspace = sh(["dvc", "exp", "run", "-S", f"heads.{head}.options.hidden=48"], team_repo)
    assert stages_run(workspace) - {"manifest"} == expected, workspace
    temp = sh(["dvc", "exp", "run", "--temp", "-S", f"heads.{head}.options.hidden=40"], team_repo)
    assert stages_run(temp) - {"manifest"} == expected, temp
    sh(["dvc", "exp", "run", "--queue", "--name", "queued", "-S", f"heads.{head}.options.hidden=36"],
       team_repo)
    sh(["dvc", "queue", "start"], team_repo)
    deadline = time.monotonic() + 900
    while "Queued" in (status := sh(["dvc", "queue", "status"], team_repo)) or "Running" in status:
        assert time.monotonic() < deadline, status
        time.sleep(3)
    sh(["dvc", "queue", "stop"], team_repo)
    assert "Success" in status, status
    queued = sh(["dvc", "queue", "logs", "queued"], team_repo)
    assert stages_run(queued) - {"manifest"} == expected, queued
    assert not {s for s in stages_run(workspace + temp + queued) if EXTRACTION.match(s)}
    assert cache_objects_intact(team_repo) > 10


@pytest.mark.slow
def test_colleagues_pull_the_caches_and_run_no_extraction(team_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    sh(["git", "reset", "-q", "--hard"], team_repo)        # the committed state (an experiment may have run)
    sh(["dvc", "checkout", "--force"], team_repo)
    sh(["dvc", "remote", "add", "--local", "-d", "team", str(remote)], team_repo)
    sh(["dvc", "push"], team_repo)

    # with the videos, kept at another path (params.local.yaml, not committed)
    mine = tmp_path / "colleague"
    sh(["git", "clone", "-q", str(team_repo), str(mine)], tmp_path)
    shutil.copytree(team_repo / "videos", tmp_path / "elsewhere/videos")
    (mine / "params.local.yaml").write_text(f"dataset:\n  root: {tmp_path / 'elsewhere/videos'}\n")
    sh(["dvc", "remote", "add", "-d", "team", str(remote)], mine)
    sh(["dvc", "pull"], mine)
    repro = sh(["dvc", "repro", "evaluate@lstm_audio"], mine)
    assert stages_run(repro) <= {"manifest"}, repro
    assert "Running stage 'manifest'" in repro
    status = sh(["dvc", "status"], mine)
    assert "decode" not in status and "feat@" not in status, status

    # without the videos: the manifest and the feature caches (and the small demo the manifest stage
    # depends on), then one command
    bare = tmp_path / "no_videos"
    sh(["git", "clone", "-q", str(team_repo), str(bare)], tmp_path)
    sh(["dvc", "remote", "add", "-d", "team", str(remote)], bare)
    sh(["dvc", "pull", "demo", "manifest", *(f"feat@{f}" for f in FEATURES)], bare)
    assert not (bare / "videos").exists() and not (bare / "cache/demo/decode.h5").exists()
    run = sh(["dvc", "exp", "run", "--allow-missing", "-S", "heads.lstm_visual.options.hidden=40"], bare)
    assert stages_run(run) == {"manifest", "train@lstm_visual", "evaluate@lstm_visual",
                               "report@lstm_visual"}, run
    assert "does not exist on this machine: keeping" in run
    page = (bare / "reports/demo/lstm_visual/report.html").read_text(encoding="utf-8")
    assert "no attention pictures: the decode cache" in page
    assert (bare / "reports/demo/lstm_visual/metrics.json").is_file()


def _small_cache(path: Path, video: str, value: float) -> None:
    with CacheWriter(path, stage="t", config={"a": 1}, config_hash="h") as writer:
        writer.write(video, {"x": np.full((3, 4), value, np.float32)}, {})


@pytest.mark.parametrize("link", ["hardlink", "symlink"])
def test_appending_to_a_cache_linked_from_dvc_leaves_dvc_cache_unchanged(tmp_path: Path, link: str) -> None:
    sh(["git", "init", "-q"], tmp_path)
    sh(["dvc", "init", "-q"], tmp_path)
    sh(["dvc", "config", "cache.type", link], tmp_path)
    cache_file = tmp_path / "features.h5"
    _small_cache(cache_file, "a", 1.0)
    model = tmp_path / "models/head"
    model.mkdir(parents=True)
    (model / "last.pt").write_bytes(b"checkpoint one")
    sh(["dvc", "add", "features.h5", "models"], tmp_path)
    assert cache_file.is_symlink() if link == "symlink" else os.stat(cache_file).st_nlink == 2
    checked = cache_objects_intact(tmp_path)

    _small_cache(cache_file, "b", 2.0)                 # the stages' writer, appending
    make_private(tmp_path / "models")                  # what train@ does before resuming
    (model / "last.pt").write_bytes(b"checkpoint two")
    assert cache_objects_intact(tmp_path) == checked
    assert not cache_file.is_symlink() and os.stat(cache_file).st_nlink == 1
    with CacheReader(cache_file) as reader:
        assert reader.ids() == ["a", "b"]
    assert "modified" in sh(["dvc", "status"], tmp_path)
    sh(["dvc", "checkout", "--force"], tmp_path)       # DVC's copy is still the first version
    with CacheReader(cache_file) as reader:
        assert reader.ids() == ["a"]
    assert (model / "last.pt").read_bytes() == b"checkpoint one"

"""`vemo` answers a user's mistake with one line and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def vemo(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_vemo_weights_help_is_its_own() -> None:
    done = vemo("weights", "--help")
    assert done.returncode == 0 and "usage: vemo weights" in done.stdout and "fetch" in done.stdout


@pytest.mark.parametrize(("args", "said"), [
    (("predict", "clip.mp4", "--head", "vaanett"), "--head vaanett: no entry heads.vaanett in params.yaml"),
    (("predict", "clip.mp4", "--checkpoint", "nowhere/best.pt"), "checkpoint nowhere/best.pt not found"),
    (("graph", "--params", "missing.yaml"), "missing.yaml: cannot be read"),
])
def test_a_mistake_is_one_line_and_exit_2(args: tuple[str, ...], said: str) -> None:
    done = vemo(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and said in done.stderr, done.stderr

"""`vemo` answers a user's mistake with one line and exit status 2, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main

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
    (("weights", "fetch", "vgg16"), "vemo weights: unknown checkpoint 'vgg16'; known: ['alexnet_imagenet'"),
    (("weights", "fetch", "r3d101_kinetics400_2018"), "is published on a sharing page, not a direct link"),
    (("weights", "verify", "vgg16_imagenet", "missing.pth"), "No such file or directory: 'missing.pth'"),
])
def test_a_mistake_is_one_line_and_exit_2(args: tuple[str, ...], said: str) -> None:
    done = vemo(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and said in done.stderr, done.stderr


@pytest.mark.parametrize(("url", "host"), [
    ("http://vemo-weights.invalid/vgg16-397923af.pth", "vemo-weights.invalid"),   # no such name (RFC 2606)
    ("http://127.0.0.1:9/vgg16-397923af.pth", "127.0.0.1"),                       # nothing listens there
])
def test_fetch_without_a_reachable_host_is_one_line_and_leaves_nothing(tmp_path: Path, url: str,
                                                                        host: str) -> None:
    done = vemo("weights", "fetch", "vgg16_imagenet", "--dest", str(tmp_path / "weights"), "--url", url)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"cannot download {url}: the host {host} cannot be reached" in done.stderr
    assert "vemo weights verify vgg16_imagenet FILE" in done.stderr      # what to do instead
    assert list((tmp_path / "weights").iterdir()) == []                  # no .part file


def test_weights_list_shows_a_full_digest_or_says_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "list"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "sha256" in line]
    assert len(lines) >= 8
    for line in lines:
        digest = line.split("sha256", 1)[1]
        full = re.fullmatch(r": [0-9a-f]{64}", digest)
        assert full or digest.startswith(" prefix: ") or digest.startswith(": not published"), line
    assert any(" prefix: 397923af" in line for line in lines)


def help_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*args, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def subcommands(usage: str) -> list[str]:
    """The choices of the first `{a,b,c}` in a --help text: whatever subcommands the parser has now."""
    found = re.search(r"\{([a-z,-]+)\}", usage)
    assert found, usage
    return found.group(1).split(",")


def test_every_subcommand_help_ends_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    commands = subcommands(help_of(capsys))
    assert {"predict", "weights", "graph"} <= set(commands)
    paths = [(c,) for c in commands] + [("weights", a) for a in subcommands(help_of(capsys, "weights"))]
    for path in paths:
        text = help_of(capsys, *path)
        example = re.search(r"^examples?:\n((  vemo .*\n?)+)", text, re.M)
        assert example, f"vemo {' '.join(path)} --help has no example:\n{text}"
        assert all(line.strip().startswith(f"vemo {path[0]}") for line in example.group(1).splitlines())


def test_a_wrong_output_list_or_checkpoint_file_is_one_line(tmp_path: Path) -> None:
    # each was a traceback: --out naming a file (after the workers had started), --list naming a folder,
    # --checkpoint naming an empty file or a pickle that is no trained head (a backbone's .pth)
    import torch

    (tmp_path / "afile").write_text("")
    torch.save({"a": torch.zeros(1)}, tmp_path / "backbone.pth")
    video = str(tmp_path / "afile")
    cases = [
        (("extract", video, "-e", "mfcc", "--out", str(tmp_path / "afile")), "cannot make the output folder "
                                                                             "there (Not a directory)"),
        (("extract", "--list", str(tmp_path), "-e", "mfcc"), "cannot be read (Is a directory)"),
        (("predict", video, "--checkpoint", str(tmp_path / "afile")),
         "not a checkpoint this project can read (EOFError"),
        (("predict", video, "--checkpoint", str(tmp_path / "backbone.pth")),
         "a trained head with format version 0 (none recorded) and a different layout"),
    ]
    for args, said in cases:
        done = vemo(*args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and said in done.stderr, done.stderr

"""bench/peer_video_features.py: what the user must provide (video_features' checkout, the modules it
imports) is named in one line with exit status 2, before any video is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import peer_video_features as peer


def run(capsys: pytest.CaptureFixture[str], root: Path) -> str:
    assert peer.main(["--quick", "--video-features", str(root)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    return err


def test_a_missing_checkout_says_how_to_get_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run(capsys, tmp_path / "video_features")
    assert "no video_features checkout" in err
    assert f"git clone {peer.PEER_URL}" in err and f"checkout {peer.PEER_COMMIT}" in err


def test_a_folder_without_its_code_names_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "r21d.yml").write_text("feature_type: r21d\n")
    err = run(capsys, tmp_path)
    assert "not a video_features checkout" in err and "models/r21d/extract_r21d.py" in err
    assert "configs/r21d.yml" not in err


def test_a_missing_module_names_its_package(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in peer.PEER_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    monkeypatch.setitem(peer.PEER_MODULES, "vemo_no_such_module", "vemo-no-such-package")
    err = run(capsys, tmp_path)
    # listed with whatever else is missing on this machine (opencv is no requirement of the project)
    assert "video_features needs " in err and "vemo-no-such-package" in err and "pip install" in err


def test_a_length_the_memory_cannot_hold_is_refused(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   16000000 kB\n")
    peer.check_memory(14.0, meminfo)                    # 4.0 GB of RSS measured
    with pytest.raises(peer.Unusable, match=r"about 23 GB of memory for stand-ins of 107 s.*--seconds"):
        peer.check_memory(107.0, meminfo)

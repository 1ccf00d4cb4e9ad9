from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.cli import main as vemo
from pipeline.weights import REGISTRY, fetch, verify


def test_fetch_from_a_file_url_verifies_and_renames(tmp_path: Path) -> None:
    source = tmp_path / "vgg_face_dag.pth"
    source.write_bytes(b"checkpoint bytes")
    saved = fetch("vggface_dag", tmp_path / "weights", url=source.as_uri())
    assert saved == tmp_path / "weights/vgg_face_dag.pth"
    assert saved.read_bytes() == b"checkpoint bytes"
    assert verify("vggface_dag", saved) == hashlib.sha256(b"checkpoint bytes").hexdigest()


def test_a_mismatching_download_is_deleted_not_kept(tmp_path: Path) -> None:
    source = tmp_path / "not-vgg16.pth"
    source.write_bytes(b"something else")
    with pytest.raises(ValueError, match="does not match the published 397923af"):
        fetch("vgg16_imagenet", tmp_path / "weights", url=source.as_uri())
    assert list((tmp_path / "weights").iterdir()) == []


def test_sharing_page_checkpoints_explain_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="by hand"):
        fetch("r3d101_kinetics400_2018", tmp_path)


def test_every_entry_is_complete() -> None:
    for entry in REGISTRY.values():
        assert entry.url and entry.filename and entry.format and entry.licence and entry.extractors


def test_cli_lists_and_probes(tmp_path: Path, capsys: pytest.CaptureFixture[str], make_video) -> None:
    assert vemo(["weights", "list"]) == 0
    assert "vgg16-397923af.pth" in capsys.readouterr().out
    assert vemo(["probe", str(make_video())]) == 0
    assert '"vcodec": "h264"' in capsys.readouterr().out
    assert vemo(["probe", str(tmp_path / "absent.mp4")]) == 1
    assert vemo(["manifest", "--list"]) == 0
    assert "ve8" in capsys.readouterr().out

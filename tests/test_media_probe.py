from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.media.probe import probe_video


@pytest.mark.parametrize(("fps", "expected"), [("25", 25.0), ("30000/1001", 30000 / 1001), ("12", 12.0)])
def test_frame_rate_and_count(make_video, fps: str, expected: float) -> None:
    info = probe_video(make_video(seconds=2, fps=fps))
    assert info.ok, info.error
    assert info.fps == pytest.approx(expected, rel=1e-6)
    assert info.n_frames == round(2 * expected)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)


def test_odd_size_audio_and_codecs(make_video) -> None:
    info = probe_video(make_video(size="322x242"))
    assert (info.width, info.height, info.vcodec) == (322, 242, "h264")
    assert info.has_audio and info.acodec == "aac" and info.audio_rate == 44100


def test_no_audio(make_video) -> None:
    info = probe_video(make_video(audio=False))
    assert info.ok and not info.has_audio and info.acodec == ""


def test_rotation_swaps_display_size(make_video) -> None:
    info = probe_video(make_video(size="160x120", rotate=90))
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (120, 160)


def test_bad_files_are_described_not_raised(tmp_path: Path, make_video) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    good = make_video(seconds=2)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    audio_only = tmp_path / "tone.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1",
                    str(audio_only)], check=True)
    expected = {
        empty: "empty file", folder: "directory", tmp_path / "missing.mp4": "not found",
        truncated: "unreadable", audio_only: "no video stream",
    }
    for path, words in expected.items():
        info = probe_video(path)
        assert not info.ok
        assert words in info.error, (path, info.error)


def test_the_probe_runs_in_process_with_no_ffprobe_on_the_path(make_video, tmp_path: Path) -> None:
    """The probe reads the container with PyAV's demuxer: no ffprobe process is started per video."""
    path = make_video(seconds=2, gop=25)
    code = ("from pipeline.media.probe import probe_video\n"
            f"info = probe_video({str(path)!r}, packets=True)\n"
            "print(info.error or 'ok', info.n_frames, *info.packets.keyframes.tolist())")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PATH": str(tmp_path)},
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["ok", "50", "0.0", "1.0"]

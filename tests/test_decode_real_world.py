"""Real-world files that used to decode to wrong data without a word: several audio tracks, a file
replaced while the stage reads it. Every file is made here with the real ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.decode.config import DecodeConfig
from pipeline.decode.worker import CHANGED, decode_group, probe_and_decode
from pipeline.engine.dask_map import VideoTask
from pipeline.manifests.fingerprint import source_fingerprint
from pipeline.media.probe import probe_video

CFG = DecodeConfig(segments=2, frames_per_segment=4, train_views=0, outputs=("snippets", "audio"),
                   audio_rates=(16000,))
RATE = 16000


def tracks_file(path: Path, tracks: list[tuple[int, float]], default: int | None = None,
                container_args: tuple[str, ...] = ()) -> Path:
    """A 2 s test pattern with one audio track per (frequency, seconds); `default` marks one track as
    the default (else ffmpeg marks the first)."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y",
           "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=2"]
    for freq, seconds in tracks:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=44100:duration={seconds}"]
    cmd += ["-map", "0:v"] + [x for i in range(len(tracks)) for x in ("-map", f"{i + 1}:a")]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    if default is not None:
        cmd += [x for i in range(len(tracks))
                for x in (f"-disposition:a:{i}", "default" if i == default else "0")]
    subprocess.run([*cmd, *container_args, str(path)], check=True)
    return path


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[spectrum.argmax()])


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_one_of_several_audio_tracks_is_decoded_and_the_choice_is_said(tmp_path: Path, suffix: str) -> None:
    path = tracks_file(tmp_path / f"film{suffix}", [(440, 2.0), (1000, 2.0)])
    out = probe_and_decode("film", str(path), CFG).decoded
    audio = out.arrays["audio_16000"]
    assert len(audio) == pytest.approx(2 * RATE, rel=0.05), "tracks were mixed or interleaved"
    assert dominant_hz(audio) == pytest.approx(440, abs=5)
    assert out.attrs["audio_stream"] == 1 and "2 audio streams" in out.attrs["warnings"]
    second = probe_and_decode("film", str(path), DecodeConfig(**{**CFG.__dict__, "audio_stream": 1})).decoded
    assert dominant_hz(second.arrays["audio_16000"]) == pytest.approx(1000, abs=5)
    assert second.attrs["audio_stream"] == 2


def test_the_track_marked_default_is_the_one_decoded(tmp_path: Path) -> None:
    path = tracks_file(tmp_path / "dub.mkv", [(440, 2.0), (1000, 2.0), (2000, 2.0)], default=2)
    out = probe_and_decode("dub", str(path), CFG).decoded
    assert dominant_hz(out.arrays["audio_16000"]) == pytest.approx(2000, abs=5)
    assert "3 audio streams" in out.attrs["warnings"] and "decoded #2" in out.attrs["warnings"]


def test_a_missing_wanted_track_decodes_without_audio_and_says_so(tmp_path: Path) -> None:
    path = tracks_file(tmp_path / "one.mp4", [(440, 2.0)])
    out = probe_and_decode("one", str(path), DecodeConfig(**{**CFG.__dict__, "audio_stream": 3})).decoded
    assert not out.attrs["has_audio"] and "audio_16000" not in out.arrays
    assert "no audio stream #3" in out.attrs["warnings"]


def test_a_single_track_file_gets_no_tracks_warning(tmp_path: Path) -> None:
    path = tracks_file(tmp_path / "plain.mp4", [(440, 2.0)])
    info = probe_video(path)
    assert info.audio_streams == 1 and info.audio_stream == 1 and info.warnings == ""


def test_a_file_replaced_after_it_was_listed_is_refused_not_cached_under_the_new_fingerprint(
        tmp_path: Path) -> None:
    path = tracks_file(tmp_path / "v.mp4", [(440, 2.0)])
    listed = source_fingerprint(path)
    shutil.copy(tracks_file(tmp_path / "other.mp4", [(1000, 1.0)]), path)
    [(status, outcome)] = decode_group([VideoTask("v", str(path), listed)], cfg=CFG)
    assert status == "ok" and outcome.decoded is None and outcome.error == CHANGED
    [(_, again)] = decode_group([VideoTask("v", str(path), source_fingerprint(path))], cfg=CFG)
    assert again.decoded is not None and again.source == source_fingerprint(path) != listed

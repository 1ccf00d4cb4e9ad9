"""Containers, codecs, audio layouts and timing quirks a real dataset holds, each made here with ffmpeg:
every one decodes to the frames, keyframes and audio its duration promises, with no warning of damage."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import pipeline.decode.video as decode_video_module
from pipeline.decode.config import DecodeConfig
from pipeline.decode.worker import probe_and_decode

SECONDS, FPS = 3, 25
CFG = DecodeConfig(segments=3, frames_per_segment=4, train_views=0, face_rate=1.0, face_max_frames=8,
                   work_max_side=96, keyframe_size=32, audio_rates=(16000,))
PATTERN = f"testsrc2=size=160x120:rate={FPS}:duration={SECONDS}"
TONE = f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"

# name: (file suffix, video arguments, audio source or None, audio arguments)
VARIANTS = {
    "h264_aac_mp4": (".mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"], TONE,
                     ["-c:a", "aac"]),
    "h264_bframes_mov": (".mov", ["-c:v", "libx264", "-preset", "veryfast", "-bf", "3",
                                  "-pix_fmt", "yuv420p"], TONE, ["-c:a", "aac"]),
    "hevc_10bit_mkv": (".mkv", ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
                                "-x265-params", "log-level=error"], TONE, ["-c:a", "libopus"]),
    "vp9_opus_webm": (".webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                "-b:v", "300k"], TONE, ["-c:a", "libopus"]),
    "mjpeg_pcm_avi": (".avi", ["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"], TONE,
                      ["-c:a", "pcm_s16le"]),
    "mpeg2_interlaced_ts": (".ts", ["-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1", "-b:v", "1M"],
                            TONE, ["-c:a", "mp2"]),
    "surround_5_1": (".mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
                     f"sine=frequency=440:sample_rate=48000:duration={SECONDS},"
                     "aformat=channel_layouts=5.1", ["-c:a", "ac3"]),
    "mono_8khz": (".mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
                  f"sine=frequency=440:sample_rate=8000:duration={SECONDS}", ["-c:a", "aac", "-ar", "8000"]),
    "no_audio_mkv": (".mkv", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"], None, []),
}


def make(tmp_path: Path, name: str) -> Path:
    suffix, video, audio, audio_args = VARIANTS[name]
    path = tmp_path / f"{name}{suffix}"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", PATTERN]
    cmd += ["-f", "lavfi", "-i", audio] if audio else []
    cmd += ["-map", "0:v"] + (["-map", "1:a"] if audio else []) + video + audio_args
    subprocess.run([*cmd, "-t", str(SECONDS), str(path)], check=True)
    return path


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_common_format_decodes_whole_and_silently(tmp_path: Path, name: str) -> None:
    out = probe_and_decode(name, str(make(tmp_path, name)), CFG)
    assert out.decoded is not None, out.error
    attrs, arrays = out.decoded.attrs, out.decoded.arrays
    assert attrs["n_frames"] == pytest.approx(SECONDS * FPS, abs=2), attrs
    assert attrs["duration_ms"] == pytest.approx(SECONDS * 1000, abs=80)
    assert len(arrays["keyframes"]) == SECONDS and arrays["snippets"].shape[:2] == (1, CFG.segments)
    assert arrays["frames_times_ms"][-1, 1] <= attrs["duration_ms"] + 1
    for bad in ("cut or damaged", "variable frame rate", "decoding error"):
        assert bad not in attrs["warnings"], (name, attrs["warnings"])
    if VARIANTS[name][2] is None:
        assert not attrs["has_audio"] and "no audio stream" in attrs["warnings"]
        return
    audio = arrays["audio_16000"]
    assert attrs["has_audio"] and len(audio) == pytest.approx(SECONDS * 16000, rel=0.03)
    assert np.abs(audio.astype(np.float64)).mean() > 200, "the tone was lost in the downmix"


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_cover_art_is_not_taken_for_the_video(tmp_path: Path, suffix: str) -> None:
    """A picture attached to the file (cover art: a video stream marked attached_pic, or a Matroska
    attachment) is never the stream decoded."""
    video = make(tmp_path, "h264_aac_mp4")
    cover = tmp_path / "cover.png"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "color=red:size=64x64",
                    "-frames:v", "1", str(cover)], check=True)
    path = tmp_path / f"with_cover{suffix}"
    attach = (["-i", str(cover), "-map", "0", "-map", "1", "-c", "copy", "-c:v:1", "png",
               "-disposition:v:1", "attached_pic"] if suffix == ".mp4" else
              ["-attach", str(cover), "-metadata:s:t", "mimetype=image/png", "-map", "0", "-c", "copy"])
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video), *attach, str(path)],
                   check=True)
    out = probe_and_decode("cover", str(path), CFG)
    assert out.decoded is not None, out.error
    assert out.decoded.attrs["n_frames"] == pytest.approx(SECONDS * FPS, abs=2)
    assert out.info.width == 160 and out.decoded.attrs["has_audio"]
    frames = out.decoded.arrays["frames"]
    assert not np.all(frames[..., 0] > 200), "the red cover picture was decoded as the video"


def test_an_audio_stream_without_packets_is_no_audio_said_so(tmp_path: Path) -> None:
    path = tmp_path / "empty_audio.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", PATTERN, "-f", "lavfi",
                    "-i", TONE, "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "libopus", "-t", str(SECONDS), "-af", "atrim=0:0",
                    str(path)], check=True)
    out = probe_and_decode("empty", str(path), CFG)
    assert out.decoded is not None, out.error
    assert not out.decoded.attrs["has_audio"] and "audio_16000" not in out.decoded.arrays
    assert "audio" in out.decoded.attrs["warnings"]


def test_an_edit_list_that_starts_mid_gop_decodes_the_edited_span(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream copy cut at 1.3 s (an mp4 edit list over frames kept from the keyframe before it): the
    entry covers what a player shows, 1.7 s, with audio of the same length."""
    source = tmp_path / "gop.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", PATTERN, "-f", "lavfi",
                    "-i", TONE, "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(source)], check=True)
    cut = tmp_path / "cut.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "1.3", "-i", str(source), "-c", "copy",
                    str(cut)], check=True)
    out = probe_and_decode("cut", str(cut), CFG)
    assert out.decoded is not None, out.error
    attrs = out.decoded.attrs
    assert attrs["duration_ms"] == pytest.approx(1700, abs=120), attrs
    assert len(out.decoded.arrays["audio_16000"]) == pytest.approx(1.7 * 16000, rel=0.03)
    assert "audio starts" not in attrs["warnings"], "the discarded frames before the cut moved the clock"
    # the seeking route (no keyframes asked for) shows the frames the one pass shows
    seek_cfg = DecodeConfig(**{**CFG.__dict__, "outputs": ("snippets", "frames")})
    seek = probe_and_decode("cut", str(cut), seek_cfg).decoded
    monkeypatch.setattr(decode_video_module, "_seek_plan", lambda *args: None)
    one_pass = probe_and_decode("cut", str(cut), seek_cfg).decoded
    for name in ("snippets", "frames"):
        np.testing.assert_array_equal(seek.arrays[name], one_pass.arrays[name], err_msg=name)

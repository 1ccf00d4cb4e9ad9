"""Time in the decoded outputs: a browser-like webm (variable rate, no duration) sampled over its whole
span, and streams that start apart put on one clock (t = 0 at the first video frame).

Every file is made here with ffmpeg; the times are checked against what the file was made to show (a
frame's brightness is its number, a white flash and a 1 kHz beep at a known presentation time)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import decode_video
from pipeline.extractors.mfcc import equal_spans_ms
from pipeline.media.probe import START_TOLERANCE, VFR_WARNING, probe_video

FFMPEG = ("ffmpeg", "-nostdin", "-v", "error", "-y")
STALL = "(N+0.4*N*N/30)/30/TB"       # frame N at (N + 0.4 N^2 / 30) / 30 s: intervals from 33 to 200 ms
BRIGHTNESS = 1.2                      # luma per frame number in the webm (frame 179: 231, below white)


def ffprobe(path: Path, *entries: str) -> list[str]:
    out = subprocess.run(["ffprobe", "-v", "error", *entries, "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return [line.strip().strip(",") for line in out.splitlines() if line.strip()]


def browser_webm(path: Path) -> Path:
    """VP8 + Opus webm written to a pipe, as a browser's MediaRecorder streams it: the muxer cannot seek
    back, so there is no duration and no cues; the frames come at irregular times (stalls that grow).
    Frame N has luma 16 + 1.2 N, so a decoded frame says which source frame it is."""
    video = f"color=c=black:size=64x48:rate=30:duration=6,geq=lum='16+{BRIGHTNESS}*N':cb=128:cr=128"
    with path.open("wb") as out:
        subprocess.run([*FFMPEG, "-f", "lavfi", "-i", video,
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
                        "-vf", f"setpts='{STALL}'", "-fps_mode", "vfr", "-c:v", "libvpx", "-b:v", "300k",
                        "-c:a", "libopus", "-f", "webm", "-live", "1", "pipe:"], stdout=out, check=True)
    return path


def test_a_browser_recording_without_duration_is_sampled_over_its_whole_span(tmp_path: Path) -> None:
    path = browser_webm(tmp_path / "recorded.webm")
    assert ffprobe(path, "-show_entries", "format=duration") == ["N/A"]       # what makes it hard
    listed = ffprobe(path, "-select_streams", "v", "-show_entries", "packet=pts_time")
    pts = np.array([float(t) for t in listed])
    pts = np.sort(pts) - pts.min()
    real = pts[-1] + np.median(np.diff(pts))                                   # about 20 s, 180 frames

    info = probe_video(path)
    assert info.duration_s == pytest.approx(real, abs=0.05)
    assert info.fps == pytest.approx(len(pts) / real, rel=0.01)
    cfg = DecodeConfig(segments=4, frames_per_segment=4, train_views=1, work_max_side=64, keyframe_size=32,
                       face_rate=1.0, face_max_frames=64, audio_rates=(16000,))
    decoded = decode_video(path, "recorded", info, cfg)
    warnings = decoded.attrs["warnings"]
    assert VFR_WARNING in warnings and "cut or damaged" not in warnings, warnings
    assert decoded.attrs["duration_ms"] == pytest.approx(real * 1000, abs=200)

    times = decoded.arrays["snippets_times_ms"] / 1000
    segment = real / cfg.segments                                               # the whole clip, evenly
    assert times[0].mean(axis=1) == pytest.approx((np.arange(cfg.segments) + 0.5) * segment, abs=0.5)
    assert times[:, 0, 0].max() < segment and times[:, -1, 1].min() > real - segment
    frames_times = decoded.arrays["frames_times_ms"][:, 0] / 1000
    assert len(frames_times) == min(int(real * cfg.face_rate), cfg.face_max_frames)
    assert frames_times.max() > real - 1.5

    # each face frame is the source frame shown at its time (luma says which; 2 frames of slack for the
    # resampling's rounding and VP8's error)
    shown = np.searchsorted(pts, frames_times + 1e-3, side="right") - 1
    seen = np.round(decoded.arrays["frames"].mean(axis=(1, 2, 3)) * 219 / 255 / BRIGHTNESS)   # limited range
    assert np.abs(seen - shown).max() <= 2, (seen, shown)


def test_a_constant_rate_webm_without_duration_is_not_called_variable(tmp_path: Path) -> None:
    """1 ms timestamps round 30 fps to intervals of 33 and 34 ms: that jitter is not a variable rate."""
    path = tmp_path / "steady.webm"
    with path.open("wb") as out:
        subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=30:duration=2",
                        "-c:v", "libvpx", "-f", "webm", "-live", "1", "pipe:"], stdout=out, check=True)
    info = probe_video(path)
    assert VFR_WARNING not in info.warnings and info.fps == 30
    assert info.duration_s == pytest.approx(2.0, abs=0.01) and info.n_frames == 60


FLASH_AT = 2.0      # s on the video's clock: a white frame and a 1 kHz beep, in the same 40 ms


def flash_and_beep(path: Path, *, video_delay: float = 0.0, audio_delay: float = 0.0) -> Path:
    """H.264 + AAC mp4 whose video starts `video_delay` s and whose audio starts `audio_delay` s into the
    file (`-itsoffset` on each input; the video copied, so that no frame is added to fill the gap; the
    audio encoded in the mux, so that its edit list both delays it and skips the AAC priming), with a
    white frame at FLASH_AT s after the video's start and a 1 kHz beep at that same presentation time:
    FLASH_AT + video_delay - audio_delay s into the audio's own clock."""
    beep = FLASH_AT + video_delay - audio_delay
    seconds = 3.0
    video = (f"color=c=black:size=64x48:rate=25:duration={seconds},"
             f"drawbox=c=white:t=fill:enable='between(t,{FLASH_AT},{FLASH_AT + 0.039})'")
    audio = (f"aevalsrc='if(between(t,{beep},{beep + 0.04}),0.8*sin(2*PI*1000*t),0)'"
             f":s=44100:d={seconds + video_delay - audio_delay}")
    pictures, sound = path.with_suffix(".v.mp4"), path.with_suffix(".a.wav")
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", video, "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(pictures)], check=True)
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", audio, str(sound)], check=True)
    subprocess.run([*FFMPEG, "-itsoffset", f"{video_delay:g}", "-i", str(pictures),
                    "-itsoffset", f"{audio_delay:g}", "-i", str(sound), "-map", "0:v", "-map", "1:a",
                    "-c:v", "copy", "-c:a", "aac", str(path)], check=True)
    return path


def beep_time(samples: np.ndarray, rate: int) -> float:
    """Where the beep starts (its first sample above half the peak), in s from the track's first sample."""
    loud = np.abs(samples.astype(np.float64))
    return float(np.argmax(loud > loud.max() / 2)) / rate


@pytest.mark.parametrize(("video_delay", "audio_delay"), [(0.0, 0.0), (1.5, 0.0), (0.0, 1.5), (0.05, 0.0)])
def test_streams_that_start_apart_are_put_on_one_clock(tmp_path: Path, video_delay: float,
                                                       audio_delay: float) -> None:
    path = flash_and_beep(tmp_path / "flash.mp4", video_delay=video_delay, audio_delay=audio_delay)
    info = probe_video(path)
    assert info.video_start_s == pytest.approx(video_delay, abs=0.03)
    assert info.audio_start_s == pytest.approx(audio_delay, abs=0.03)
    cfg = DecodeConfig(segments=4, frames_per_segment=4, train_views=0, work_max_side=64, keyframe_size=32,
                       face_rate=25.0, face_max_frames=200, audio_rates=(16000, 44100))
    decoded = decode_video(path, "flash", info, cfg)
    arrays, warnings = decoded.arrays, decoded.attrs["warnings"]

    lit = arrays["frames"].mean(axis=(1, 2, 3)) > 128
    flash = arrays["frames_times_ms"][lit][:, 0] / 1000
    assert flash == pytest.approx([FLASH_AT], abs=0.001)                      # frames: the video's clock
    for rate in cfg.audio_rates:                                                # audio: the same clock
        audio = arrays[f"audio_{rate}"]
        assert beep_time(audio, rate) == pytest.approx(FLASH_AT, abs=0.005), rate
        if audio_delay:                                                          # silence before it starts
            assert not audio[: int(audio_delay * rate * 0.95)].any()
    # the segments audio windows are cut at (TEN's MFCC images) hold the flash and the beep together
    spans = equal_spans_ms(decoded.attrs["duration_ms"], cfg.segments) / 1000
    beep = beep_time(arrays["audio_16000"], 16000)
    assert [a <= flash[0] < b for a, b in spans] == [a <= beep < b for a, b in spans]

    offset = audio_delay - video_delay
    assert decoded.attrs["audio_offset_ms"] == pytest.approx(offset * 1000, abs=30)
    if abs(offset) > START_TOLERANCE:
        assert f"video at {info.video_start_s:.3f} s, audio at {info.audio_start_s:.3f} s" in warnings
        assert ("after the video" if offset > 0 else "before the video") in warnings
    else:
        assert "starts" not in warnings, warnings

"""Real-world files that used to decode to wrong data without a word: several audio tracks, a file
replaced while the stage reads it. Every file is made here with the real ffmpeg."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import av
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


FFMPEG = ("ffmpeg", "-nostdin", "-v", "error", "-y")
X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def _box_aspect(frame: np.ndarray) -> float:
    """Width over height of the bright box on the dark picture."""
    rows, cols = np.nonzero(frame.mean(axis=-1) > 128)
    return (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)


@pytest.mark.parametrize("fps", [None, 12.5], ids=["in_process", "one_pass"])
def test_non_square_pixels_are_decoded_to_square_ones(tmp_path: Path, fps: float | None) -> None:
    """An anamorphic picture (a DVD's 720x480 at 32:27, DV, 16:9 squeezed into 4:3): stored 64x48 at a
    pixel aspect of 2:1, a 12x24 box in it is a square on screen, and must be one in every output."""
    path = tmp_path / "anamorphic.mp4"
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "color=black:size=64x48:rate=25:duration=2",
                    "-vf", "drawbox=x=26:y=12:w=12:h=24:color=white:t=fill,setsar=2", *X264, str(path)],
                   check=True)
    assert (probe_video(path).width, probe_video(path).height) == (128, 48)
    cfg = DecodeConfig(segments=2, frames_per_segment=4, train_views=0, outputs=("snippets", "frames"),
                       short_side=48, crop_size=48, fps=fps)
    out = probe_and_decode("anamorphic", str(path), cfg).decoded
    assert out.arrays["frames"].shape[1:3] == (48, 128)
    assert _box_aspect(out.arrays["frames"][0]) == pytest.approx(1.0, abs=0.1)
    assert _box_aspect(out.arrays["snippets"][0, 0, 0]) == pytest.approx(1.0, abs=0.1)


def test_a_gap_in_the_audio_stays_a_gap_on_the_video_clock(tmp_path: Path) -> None:
    """Pieces joined without re-encoding (concat demuxer, -c copy), the middle one with 0.3 s of sound
    for 1 s of picture: the audio timestamps jump over 0.7 s. Joined end to end, the third piece's sound
    would play 0.7 s early against its pictures; it must start at 2 s, after silence."""
    def piece(name: str, freq: int, seconds: float) -> str:
        subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1",
                        "-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=44100:duration={seconds}",
                        *X264, "-c:a", "aac", str(tmp_path / name)], check=True)
        return f"file {name}\n"
    (tmp_path / "list.txt").write_text(piece("a.mp4", 440, 1) + piece("b.mp4", 880, 0.3) + "file a.mp4\n")
    path = tmp_path / "joined.mp4"
    subprocess.run([*FFMPEG, "-f", "concat", "-i", str(tmp_path / "list.txt"), "-c", "copy", str(path)],
                   check=True)
    audio = probe_and_decode("joined", str(path), CFG).decoded.arrays["audio_16000"].astype(np.float64)
    assert len(audio) == pytest.approx(3 * RATE, rel=0.03)
    loud = np.abs(audio) > 1000
    assert not loud[int(1.4 * RATE):int(1.95 * RATE)].any(), "the gap was closed up"
    assert dominant_hz(audio[int(2.1 * RATE):int(2.9 * RATE)]) == pytest.approx(440, abs=5)


def test_which_of_several_video_streams_is_decoded_is_said(tmp_path: Path) -> None:
    path = tmp_path / "angles.mp4"
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1",
                    "-f", "lavfi", "-i", "smptebars=size=96x64:rate=25:duration=1",
                    "-map", "0:v", "-map", "1:v", *X264, str(path)], check=True)
    out = probe_and_decode("angles", str(path), CFG).decoded
    assert "2 video streams (#0 64x48 h264, #1 96x64 h264): decoded #0 only" in out.attrs["warnings"]
    assert "video streams" not in probe_video(tracks_file(tmp_path / "one.mp4", [(440, 1.0)])).warnings


@pytest.mark.parametrize(("video_s", "audio_s", "said", "suffix"),
                         [(1.0, 3.0, "the picture ends 2.0", ".mp4"), (3.0, 0.5, "audio ends 2.4", ".mp4"),
                          (1.0, 3.0, "the picture ends 2.0", ".mkv")])
def test_the_timeline_lasts_until_the_later_stream_ends(tmp_path: Path, video_s: float, audio_s: float,
                                                        said: str, suffix: str) -> None:
    """A soundtrack longer or shorter than the picture: the entry covers the time a player shows, until the
    later stream ends: silence after an early end of the audio, the last frame held while the audio goes
    on; the audio then covers the frames' time exactly, so an audio extractor's T equal segments are the
    visual segments. What was filled or held is said. Matroska states the video's own duration only in a
    tag: the file's, the soundtrack's, must not make the video look cut."""
    path = tmp_path / f"apart{suffix}"
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=25:duration={video_s}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={audio_s}",
                    *X264, "-c:a", "aac", str(path)], check=True)
    out = probe_and_decode("apart", str(path), CFG).decoded
    audio = out.arrays["audio_16000"]
    assert out.attrs["n_frames"] == round(max(video_s, audio_s) * 25)
    assert out.attrs["held_frames"] == round(max(0.0, audio_s - video_s) * 25)
    assert abs(len(audio) - out.attrs["n_frames"] / out.attrs["fps"] * RATE) <= 0.1 * RATE
    assert said in out.attrs["warnings"] and "cut or damaged" not in out.attrs["warnings"]
    heard = np.abs(audio.astype(np.float64)) > 1000
    assert heard[: int(audio_s * RATE * 0.9)].mean() > 0.5
    assert not heard[int((audio_s + 0.1) * RATE):].any()
    last_shown = out.arrays["snippets_times_ms"][0, -1, 1]   # the last segment's snippet, at its middle
    assert last_shown > 0.7 * max(video_s, audio_s) * 1000, last_shown


def test_a_still_picture_under_a_song_keeps_the_song(tmp_path: Path) -> None:
    """One picture and 6 s of sound (a song uploaded with its cover, a podcast): every output spans the 6 s,
    each showing that picture, and the whole song is kept; before, the audio was cut to the one frame's
    40 ms."""
    image, path = tmp_path / "cover.png", tmp_path / "song.mp4"
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc2=size=96x64", "-frames:v", "1", str(image)],
                   check=True)
    subprocess.run([*FFMPEG, "-i", str(image), "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
                    *X264, "-c:a", "aac", str(path)], check=True)
    assert probe_video(path).n_frames == 1
    every_output = dataclasses.replace(CFG, outputs=("snippets", "frames", "keyframes", "audio"))
    out = probe_and_decode("song", str(path), every_output).decoded
    assert out.attrs["n_frames"] == 150 and out.attrs["held_frames"] == 149
    assert abs(len(out.arrays["audio_16000"]) - 6 * RATE) <= 0.1 * RATE
    assert (np.abs(out.arrays["audio_16000"][: 5 * RATE].astype(np.float64)) > 1000).mean() > 0.5
    for name in ("snippets", "frames", "keyframes"):
        frames = out.arrays[name].reshape(-1, *out.arrays[name].shape[-3:])
        assert (frames == frames[:1]).all(), name
        assert out.arrays[f"{name}_times_ms"].max() > 0.7 * 6000, name
    assert len(out.arrays["keyframes"]) == 6


@pytest.mark.parametrize(("suffix", "codec"), [(".mp4", "aac"), (".webm", "libopus"), (".mkv", "libmp3lame")])
def test_an_ordinary_files_audio_is_ffmpegs_bit_for_bit(tmp_path: Path, suffix: str, codec: str) -> None:
    """Streams of the same length: the few ms of codec padding at the end are within the 100 ms that the
    end is fitted by, so the samples are exactly what ffmpeg's own command gives, from the first frame on
    (Opus pre-skip and MP3 encoder delay put the audio's start a few ms before the video's)."""
    path = tmp_path / f"plain{suffix}"
    video = ["-c:v", "libvpx"] if suffix == ".webm" else X264
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=2.3",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2.3",
                    *video, "-c:a", codec, str(path)], check=True)
    out = probe_and_decode("plain", str(path), CFG).decoded
    ffmpeg_says = subprocess.run([*FFMPEG, "-i", str(path), "-map", "0:a", "-ac", "1", "-ar", str(RATE),
                                  "-f", "s16le", "-acodec", "pcm_s16le", "pipe:"],
                                 capture_output=True, check=True).stdout
    info = probe_video(path)
    before_first_frame = -round((info.audio_start_s - info.video_start_s) * RATE)
    assert 0 <= before_first_frame < 0.05 * RATE
    np.testing.assert_array_equal(out.arrays["audio_16000"],
                                  np.frombuffer(ffmpeg_says, np.int16)[before_first_frame:])
    assert "audio" not in out.attrs["warnings"]


def test_a_picture_size_that_changes_mid_stream_keeps_every_frame_in_its_place(tmp_path: Path) -> None:
    """MPEG-TS pieces joined end to end (a capture, `cat a.ts b.ts`), the second at another size. In the
    one pass ffmpeg rebuilt its filters at the change and `select` counted from 0 again: frames 1.5 s
    later were taken in place of the selected ones, silently, or the video failed ("decoded 75 frames but
    not every selected one"); the in-process decoder scaled the new size without a word. Now every route
    ends in the one pass, which scales each frame from its own size, keeps counting, and says so."""
    pieces = []
    for i, (pattern, size) in enumerate([("testsrc", "64x48"), ("testsrc2", "128x96")]):
        piece = tmp_path / f"{i}.ts"
        subprocess.run([*FFMPEG, "-f", "lavfi", "-i", f"{pattern}=size={size}:rate=25:duration=1.5",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1.5", *X264,
                        "-c:a", "aac", "-output_ts_offset", str(1.5 * i), str(piece)], check=True)
        pieces.append(piece.read_bytes())
    path = tmp_path / "joined.ts"
    path.write_bytes(b"".join(pieces))
    cfg = DecodeConfig(segments=2, frames_per_segment=4, train_views=0, outputs=("snippets", "frames"),
                       face_rate=4.0)
    out = probe_and_decode("joined", str(path), cfg)
    assert out.decoded is not None, out.error
    assert out.decoded.attrs["n_frames"] == pytest.approx(76, abs=1)
    assert "the picture changes size or format mid-stream" in out.decoded.attrs["warnings"]
    with av.open(str(path)) as container:            # every picture in order, at the outputs' size
        pictures = [f.reformat(width=64, height=48, format="rgb24", interpolation="BICUBIC").to_ndarray()
                    for f in container.decode(video=0)]
    frames, times = out.decoded.arrays["frames"], out.decoded.arrays["frames_times_ms"][:, 0]
    assert max(times) > 2000, "no frame of the second piece"
    for frame, ms in zip(frames.astype(np.float64), times, strict=True):
        # the muxer leaves the second piece 17 ms early, one frame slot in doubt at the join
        near = pictures[max(0, round(ms * 25 / 1000) - 1):round(ms * 25 / 1000) + 2]
        assert min(np.abs(frame - picture).mean() for picture in near) < 4, ms


@pytest.mark.parametrize(("transfer", "said"), [("arib-std-b67", "HLG"), ("smpte2084", "PQ")])
def test_hdr_video_is_said_to_be_decoded_without_tone_mapping(tmp_path: Path, transfer: str,
                                                              said: str) -> None:
    """A phone's HDR recording (HEVC 10-bit, HLG): swscale converts the BT.2020 matrix to RGB but not the
    transfer curve, so the frames are duller than shown, and the entry says so."""
    path = tmp_path / "hdr.mp4"
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1", "-c:v", "libx265",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error",
                    "-color_primaries", "bt2020", "-colorspace", "bt2020nc", "-color_trc", transfer,
                    str(path)], check=True)
    out = probe_and_decode("hdr", str(path), CFG).decoded
    warnings = out.attrs["warnings"]
    assert f"HDR video ({said} transfer curve) decoded to 8-bit RGB without tone mapping" in warnings


def test_interlaced_video_is_said_to_be_decoded_without_deinterlacing(tmp_path: Path) -> None:
    """A DVD, TV capture or camcorder stream coded as fields (top first): no route deinterlaces, so moving
    edges are combed in every frame, and the entry says so; progressive video does not."""
    path = tmp_path / "fields.mp4"
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=1", *X264,
                    "-flags", "+ilme+ildct", "-x264opts", "tff=1", str(path)], check=True)
    out = probe_and_decode("fields", str(path), CFG).decoded
    assert "interlaced video (top field first) decoded without deinterlacing" in out.attrs["warnings"]
    assert "interlaced" not in probe_video(tracks_file(tmp_path / "one.mp4", [(440, 1.0)])).warnings


def float_audio_file(path: Path, samples: np.ndarray, fmt: str) -> Path:
    """A 2 s test pattern whose stereo 48 kHz audio is `samples` stored as they are (pcm_<fmt>)."""
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=2",
                    "-f", fmt, "-ar", "48000", "-ac", "2", "-i", "-", *X264, "-c:a", f"pcm_{fmt}", str(path)],
                   input=samples.astype(np.float32 if fmt == "f32le" else np.float64).tobytes(), check=True)
    return path


@pytest.mark.parametrize("fmt", ["f32le", "f64le"])
def test_nan_and_inf_audio_samples_are_silenced_and_counted(tmp_path: Path, fmt: str) -> None:
    """Float PCM stores any value: ffmpeg's int16 conversion made NaN and inf full-scale clicks (-32768),
    and resampling spread each over the samples around it, without a word. They are silence now, the
    entry says how many there were, and the same file without them is decoded as ffmpeg's own command."""
    t = np.arange(96000) / 48000
    tone = np.repeat((0.3 * np.sin(2 * np.pi * 440 * t))[:, None], 2, axis=1)
    bad = tone.copy()
    bad[24000:24010, 0] = np.nan
    bad[48000:48005, 1] = np.inf
    bad[60000:60003, 1] = -np.inf
    silenced = np.where(np.isfinite(bad), bad, 0.0)
    cfg = DecodeConfig(**{**CFG.__dict__, "audio_rates": (RATE, 8000)})
    out = probe_and_decode("bad", str(float_audio_file(tmp_path / "bad.mkv", bad, fmt)), cfg).decoded
    assert "audio: 10 NaN and 8 inf sample value(s) in the decoded stream, decoded as silence" \
        in out.attrs["warnings"]
    plain_path = float_audio_file(tmp_path / "plain.mkv", silenced, fmt)
    plain = probe_and_decode("plain", str(plain_path), cfg).decoded
    assert "audio" not in plain.attrs["warnings"]
    ffmpeg_says = subprocess.run([*FFMPEG, "-i", str(plain_path), "-map", "0:a", "-ac", "1", "-ar", str(RATE),
                                  "-f", "s16le", "-acodec", "pcm_s16le", "pipe:"],
                                 capture_output=True, check=True).stdout
    np.testing.assert_array_equal(plain.arrays["audio_16000"], np.frombuffer(ffmpeg_says, np.int16))
    for name in ("audio_16000", "audio_8000"):   # every rate silenced, within rounding of the clean file
        assert np.abs(out.arrays[name].astype(int) - plain.arrays[name]).max() <= 1, name

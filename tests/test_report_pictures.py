"""The attention picture on the video's time: cells and tiles placed by their times on one axis, missing
modalities named, every registered head's strip rendered from hand-built records and caches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text
from PIL import Image

from pipeline.cache import CacheReader, CacheWriter
from pipeline.faces.config import NAN_ROWS
from pipeline.report.pictures import (
    GAP,
    LEFT,
    MAX_TILES,
    RIGHT,
    STRIPS,
    TILE,
    TOP,
    Strip,
    attention_bar,
    axis_ticks,
    build_strip,
    draw_picture,
    figure,
    lanes,
    layout,
    picture_size,
    place_tiles,
    time_x,
    visible,
)

DURATION = 180_000  # ms: a 3-minute clip
T = 10  # snippets, over 9-171 s
SNIPPETS = np.stack([9000 + 16200 * np.arange(T), 9000 + 16200 * np.arange(1, T + 1)], axis=1)
AUDIO = np.stack([3000 * np.arange(16), 3000 * np.arange(1, 17)], axis=1)  # 16 MFCC segments, 0-48 s
FRAMES = np.stack([15000 * np.arange(12), 15000 * np.arange(12) + 40], axis=1)  # one frame every 15 s
FACES = np.array([2, 3, 5, 7])  # the frames with a face
SECONDS = np.stack([1000 * np.arange(180), 1000 * np.arange(1, 181)], axis=1)
W = T * (TILE + GAP) - GAP  # the strip of 10 tiles: 1236 px, 0-180 s


def image(n: int, side: int = 16) -> np.ndarray:
    """n distinguishable tiles: a gradient whose hue moves with the index."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    out = np.empty((n, side, side, 3), np.uint8)
    for i in range(n):
        out[i, ..., 0] = ramp[None, :]
        out[i, ..., 1] = ramp[:, None]
        out[i, ..., 2] = 255 * i / max(1, n - 1)
    return out


@pytest.fixture(scope="module")
def caches(module_tmp: Callable[[str], Path]) -> tuple[Path, Path]:
    """decode.h5 and faces.h5 of "clip" (3 minutes, with audio and faces), "mute" (no audio, which only
    the decode cache says) and "faceless" (no face)."""
    folder = module_tmp("caches")
    snippets = np.repeat(image(T)[:, None], 3, axis=1)[None]  # (1 view, T, 3 frames, 16, 16, 3)
    arrays = {"snippets": snippets, "snippets_times_ms": SNIPPETS[None], "frames": image(12, 24),
              "frames_times_ms": FRAMES, "keyframes": image(180), "keyframes_times_ms": SECONDS}
    with CacheWriter(folder / "decode.h5", stage="decode", config={}, config_hash="x") as writer:
        for video_id, has_audio in (("clip", True), ("mute", False), ("faceless", True)):
            writer.write(video_id, arrays, {"duration_ms": DURATION, "has_audio": has_audio})
    boxes = np.full((12, 4), np.nan, np.float32)
    boxes[FACES] = [4, 4, 16, 18]
    with CacheWriter(folder / "faces.h5", stage="faces", config={}, config_hash="x",
                     nan_rows=NAN_ROWS) as writer:
        for video_id, index in (("clip", FACES), ("mute", FACES), ("faceless", np.zeros(0, np.int64))):
            found = boxes if len(index) else np.full_like(boxes, np.nan)
            writer.write(video_id, {"face_frame_index": index, "boxes": found}, {})
    return folder / "decode.h5", folder / "faces.h5"


def base(video_id: str = "clip", **extra) -> dict:
    return {"video_id": video_id, "probabilities": {"anger": 0.3, "joy": 0.7}, "predicted": "joy", **extra}


def records(video_id: str = "clip") -> dict[str, dict]:
    """A record per registered strip (and one for a head without a strip), shaped as the heads save."""
    rng = np.random.default_rng(0)
    return {
        "vaanet": base(video_id, times_ms={"visual": SNIPPETS.tolist(), "audio": AUDIO.tolist()}, attention={
            "temporal": rng.random(T).tolist(), "spatial": rng.random((T, 16)).tolist(),
            "audio_temporal": rng.random(16).tolist()}),
        "ten": base(video_id, times_ms={"visual": SNIPPETS.tolist(), "audio": SNIPPETS.tolist()}, attention={
            "temporal_visual": rng.random(T).tolist(), "temporal_audio": rng.random(T).tolist(),
            "keyframes": [0.0, 1.0, 1.0] + [0.0] * (T - 3)}),
        "caan": base(video_id, times_ms={"face": FRAMES[FACES].tolist(), "context": FRAMES[FACES].tolist()},
                     attention={"frame_scores": [0.1, 0.2, 0.3, 0.4]}),
        "lstm_fusion": base(video_id, times_ms={"visual": SECONDS.tolist(), "audio": SECONDS.tolist()},
                            attention={"per_second": rng.dirichlet([1, 1], 180).tolist()}),
        "no_strip": base(video_id, times_ms={"visual": SNIPPETS.tolist()}, attention={}),
    }


def texts(fig: plt.Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


# --- the layout, a pure function of the times ---------------------------------------------------------------

def test_time_x_maps_times_linearly_onto_the_axis() -> None:
    axis = (LEFT, LEFT + W)
    x = time_x([0, 9000, 48_000, 171_000, 180_000], DURATION, axis)
    np.testing.assert_allclose(x, [140, 201.8, 469.6, 1314.2, 1376], rtol=0, atol=1e-9)


def test_tiles_sit_at_their_times_where_they_fit_and_move_aside_where_they_would_overlap() -> None:
    step = TILE + GAP
    np.testing.assert_array_equal(place_tiles([200, 500], 0, 1000), [140, 440])  # far apart: exact
    np.testing.assert_array_equal(place_tiles([30, 500], 0, 1000), [0, 440])  # kept inside the axis
    np.testing.assert_array_equal(place_tiles([500, 500, 500], 0, 1000), [440, 440 + step, 440 + 2 * step])
    np.testing.assert_array_equal(place_tiles([990, 995], 0, 1000), [1000 - TILE - step, 1000 - TILE])
    with pytest.raises(ValueError, match="do not fit"):
        place_tiles([10, 20, 30], 0, 2 * step)
    with pytest.raises(ValueError, match="ascending"):
        place_tiles([500, 100], 0, 1000)


def test_cells_of_different_spans_are_placed_by_their_own_times(caches) -> None:
    """VAANet on a 3-minute clip: the 16 audio cells cover 0-48 s, the 10 snippets 9-171 s; neither is
    stretched over the strip."""
    decode_path, _ = caches
    with CacheReader(decode_path) as decode:
        lay = layout(build_strip("vaanet", records()["vaanet"], decode, None))
    assert (lay.width, lay.duration_ms, lay.axis) == (LEFT + W + RIGHT, DURATION, (140.0, 1376.0))
    temporal, audio = lay.bars
    assert (temporal.label, audio.label) == ("temporal", "audio temporal") and not audio.missing
    np.testing.assert_allclose(audio.cells[:, 0], 140 + 20.6 * np.arange(16), rtol=0, atol=1e-9)
    np.testing.assert_allclose(audio.cells[-1], [449.0, 469.6], rtol=0, atol=1e-9)  # 45-48 s
    np.testing.assert_allclose(temporal.cells[0], [201.8, 313.04], rtol=0, atol=1e-9)  # 9-25.2 s
    np.testing.assert_allclose(temporal.cells[-1], [1202.96, 1314.2], rtol=0, atol=1e-9)  # 154.8-171 s
    np.testing.assert_allclose(lay.tile_span, temporal.cells, rtol=0, atol=1e-9)  # tile i: snippet i
    # 10 tiles fill the 10-tile strip: side by side, each with a marker to its snippet's span
    np.testing.assert_array_equal(lay.tile_x, LEFT + (TILE + GAP) * np.arange(T))


def test_tiles_sit_over_their_times_where_there_is_room() -> None:
    """Frames at 60, 120 and 126 s of a 3-minute clip on the narrowest strip (496 px): the first is centred
    on its time; the third, 16.5 px from the second, would overlap it and runs past the axis end, so it
    sits at the end and the second just clear of it; the markers keep the exact times."""
    times = np.array([[59_000, 61_000], [119_000, 121_000], [125_000, 127_000]])
    lay = layout(Strip(image(3), times, duration_ms=DURATION))
    assert lay.axis == (140.0, 636.0)
    first = 140 + 60 / 180 * 496
    np.testing.assert_allclose(lay.tile_x, [first - TILE / 2, 636 - TILE - (TILE + GAP), 636 - TILE],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(lay.tile_span, time_x(times, DURATION, lay.axis), rtol=0, atol=1e-9)


def test_caan_scores_sit_at_their_face_frames(caches) -> None:
    record = records()["caan"]
    with CacheReader(caches[0]) as decode, CacheReader(caches[1]) as faces:
        strip = build_strip("caan", record, decode, faces)
    lay = layout(strip)
    np.testing.assert_array_equal(strip.tile_times_ms, FRAMES[FACES])  # the face frames, boxed
    expected = time_x(FRAMES[FACES], DURATION, lay.axis)
    np.testing.assert_allclose(lay.bars[0].cells, expected, rtol=0, atol=1e-9)


def test_rows_that_overlap_in_time_are_stacked_not_hidden() -> None:
    lane, n = lanes([[0, 10], [10, 20], [5, 15], [0, 20], [20, 30]])
    assert (lane.tolist(), n) == ([0, 0, 2, 1, 0], 3)  # at 5-10 s three rows overlap: three lanes
    assert lanes(AUDIO)[1] == 1 and lanes(np.zeros((0, 2)))[1] == 1


def test_a_clip_shorter_than_the_audio_segments_stacks_them(caches) -> None:
    """VAANet tiles a 1.1 s clip's MFCC into 16 segments that each cover the whole clip: 16 lanes of
    one cell over 0-1138 ms each, not 16 cells drawn over one another."""
    record = records()["vaanet"]
    record["times_ms"]["audio"] = [[0, 1138]] * 16
    bar = layout(Strip(image(T), SNIPPETS, {"audio": attention_bar(record, "audio_temporal", True)},
                       duration_ms=DURATION)).bars[0]
    assert bar.lanes == 16 and sorted(bar.lane.tolist()) == list(range(16))
    boxes = [bar.cell_box(j) for j in range(16)]
    for x0, _, x1, _ in boxes:
        assert (x0, x1) == (140.0, pytest.approx(140 + 1.138 / 180 * W, abs=1e-9))
    assert sorted(b[1] for b in boxes) == pytest.approx(bar.top + np.arange(16) * 26 / 16)


def test_cells_too_narrow_to_see_are_widened_about_their_centre() -> None:
    np.testing.assert_allclose(visible([[10.0, 10.2], [20.0, 30.0]]), [[8.6, 11.6], [20.0, 30.0]], atol=1e-12)


def test_the_axis_is_labelled_in_seconds_up_to_the_duration() -> None:
    ticks = axis_ticks(DURATION, (LEFT, LEFT + W))
    assert ticks[0] == (140.0, "0") and ticks[-1] == (1376.0, "180")
    for x, label in ticks:
        assert x == pytest.approx(float(time_x(float(label) * 1000, DURATION, (LEFT, LEFT + W))))
    short = axis_ticks(2300, (LEFT, LEFT + 496))
    assert short[-1] == (636.0, "2.30") and all(636 - x >= 48 for x, _ in short[:-1])


# --- the drawn figure --------------------------------------------------------------------------------------

def test_what_is_drawn_is_where_the_layout_says(caches) -> None:
    decode_path, _ = caches
    with CacheReader(decode_path) as decode:
        fig, lay = figure(build_strip("vaanet", records()["vaanet"], decode, None), "vaanet")
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for bar in lay.bars:
            patches = {p.get_gid(): p for p in fig.findobj(lambda a: str(a.get_gid()).startswith("cell:"))}
            for j in range(len(bar.cells)):
                x0, y0, x1, y1 = bar.cell_box(j)
                box = patches[f"cell:{bar.label}:{j}"].get_window_extent(renderer)  # pixels, from bottom-left
                assert (box.x0, box.x1) == (pytest.approx(x0, abs=1e-6), pytest.approx(x1, abs=1e-6))
                assert (box.y0, box.y1) == (pytest.approx(lay.height - y1, abs=1e-6),
                                            pytest.approx(lay.height - y0, abs=1e-6))
        tiles = [ax for ax in fig.axes[1:]]
        assert [round(ax.get_window_extent(renderer).x0, 6) for ax in tiles] == list(lay.tile_x)
        assert "#1  17.1 s" in texts(fig) and "180" in texts(fig)
    finally:
        plt.close(fig)


def test_a_video_without_audio_says_so_instead_of_drawing_zeros(caches, tmp_path: Path) -> None:
    decode_path, _ = caches
    predicted = {**records()["vaanet"], "has_audio": False}  # `vemo predict`: the flag in the record
    predicted["attention"]["audio_temporal"] = [0.0] * 16
    evaluated = records("mute")["vaanet"]  # the run report: only the decode cache knows
    with CacheReader(decode_path) as decode:
        for record in (predicted, evaluated):
            fig, lay = figure(build_strip("vaanet", record, decode, None), "no audio")
            try:
                assert [(b.label, b.missing) for b in lay.bars] == [("temporal", ""), ("audio temporal",
                                                                                     "no audio")]
                assert "no audio" in texts(fig)
                assert not fig.findobj(lambda a: str(a.get_gid()).startswith("cell:audio"))
            finally:
                plt.close(fig)
        ten = records("mute")["ten"]
        assert build_strip("ten", ten, decode, None).bars["audio A*"].missing == "no audio"
        visual_only = {**records()["ten"], "times_ms": {"visual": SNIPPETS.tolist()}}
        assert build_strip("ten", visual_only, decode, None).bars["audio A*"].missing == "audio not used"
        lstm = records("mute")["lstm_fusion"]
        assert "no audio: from the frames alone" in build_strip("lstm_fusion", lstm, decode, None).note


def test_a_video_without_a_face_says_so(caches, tmp_path: Path) -> None:
    decode_path, faces_path = caches
    record = {**records("faceless")["caan"], "valid": False, "attention": {"frame_scores": []},
              "times_ms": {"face": [], "context": []}}
    with CacheReader(decode_path) as decode, CacheReader(faces_path) as faces:
        strip = build_strip("caan", record, decode, faces)
        assert strip.bars["frame score"].missing == "no face" and len(strip.tiles) == 12
        fig, _ = figure(strip, "no face")
        try:
            assert "no face" in texts(fig)
        finally:
            plt.close(fig)
        # without the faces cache the record alone tells
        assert build_strip("caan", record, decode, None).bars["frame score"].missing == "no face"


def test_a_map_that_matches_no_input_is_an_error(caches) -> None:
    record = records()["vaanet"]
    record["attention"]["temporal"] = [0.5] * 7
    with CacheReader(caches[0]) as decode, pytest.raises(ValueError, match="cannot be placed in time"):
        build_strip("vaanet", record, decode, None)


@pytest.mark.parametrize("head", ["vaanet", "ten", "caan", "lstm_fusion", "no_strip"])
def test_every_strip_renders_a_picture_of_its_size(caches, head: str, tmp_path: Path) -> None:
    assert set(STRIPS.names()) == set(records()) - {"no_strip"}, "a new strip needs a record here"
    decode_path, faces_path = caches
    record = records()[head]
    with CacheReader(decode_path) as decode, CacheReader(faces_path) as faces:
        strip = build_strip(head, record, decode, faces)
        path = draw_picture(head, record, decode, faces, tmp_path / f"{head}.png", title=f"{head}, 3 minutes")
    expected = {"vaanet": (T, 2), "ten": (T, 2), "caan": (len(FACES), 1), "lstm_fusion": (180, 1),
                "no_strip": (T, 0)}[head]
    assert (len(strip.tiles), len(strip.bars)) == expected
    assert all(not b.missing for b in strip.bars.values())
    with Image.open(path) as picture:
        assert picture.size == picture_size(*expected)
        assert np.asarray(picture.convert("L")).std() > 10, "not a blank picture"
    if head == "lstm_fusion":
        lay = layout(strip)
        assert len(lay.rows) == MAX_TILES and lay.tile_x[0] >= LEFT and lay.tile_x[-1] + TILE <= lay.axis[1]
    if head == "no_strip":
        assert strip.note == "this head saves no attention"
    assert layout(strip).axis_y > TOP + TILE

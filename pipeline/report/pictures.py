"""One picture per video of what a head attended to, drawn on the video's time (after VAANet's Figure 3):

    ┌──────── title: file, predicted class, probability, polarity ───────────────────┐
    │          [#1 9.0 s]   [#2 25.2 s]   ...       sampled frames (fixed size), each as near its time
    │               │  ╲         │                   as the others allow; a marker line to the span
    │               ━━━━        ━━━━                 it covers on the time axis
    │ temporal      ███ ░░░ ▓▓▓ ...                 one colour bar per 1-D attention (viridis, 0 .. max):
    │ audio temporal ░▓██                           each cell from its row's start to end time, grey
    │ time (s)  0 ──── 30 ──── 60 ──── ... ──── 180   where no row is; one axis, 0 to the duration
    └ note ──────────────────────────────────────────────────────────────────────────┘

Bars that weight different inputs cover different spans (a 3-minute clip's 16 MFCC segments may cover its
first 48 s, its snippets 9-171 s), so every cell and every tile is placed by its time, never by its index.
A modality the video lacks is named in its bar ("no audio", "no face") instead of drawn as cells of zeros:
audio from the record's `has_audio` (`vemo predict` sets it from the feature table), else the decode
cache's `has_audio` attribute (the run report's records); a face from the faces cache's face frames and
the record's score rows. A map of a modality the head does not read says so ("audio not used").

Per head (a registry keyed by the head's registered name, `register_strip`): VAANet shows the centre frame of
each test-view snippet with its spatial attention (4 x 4 locations) as a heat map over the frame; TEN the same
frames with its keyframes (the segments the "rest" pass erases) framed in red; CAAN the face frames with the
detected face boxed, and its per-frame scores; LSTM fusion the 1-second keyframes and the probability of the
predicted class per second. Any other head shows frames only. At most `MAX_TILES` frames are drawn, evenly
chosen; bars keep every row. Frames and their times come from the decode cache (and boxes from the faces
cache) the prediction was made from: the dataset's for the report, a temporary one for predict; the
axis ends at the decode cache's `duration_ms` (or at the last row's end, if that is later).

The picture's size in pixels is `picture_size(tiles, bars)`, a function of the counts only; where each
thing goes is `layout(strip)`, a pure function of the strip's times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.cache import CacheReader  # noqa: E402
from pipeline.registry import Registry  # noqa: E402
from pipeline.report.timeline import input_of  # noqa: E402

MAX_TILES = 16
DPI = 100
# pixels: tile side and gap, left margin (bar labels), right margin, title band, marker band (tiles to
# bars), bar height and gap, time-axis band (ticks and their labels), note band
TILE, GAP, LEFT, RIGHT, TOP, MARK, BAR, BAR_GAP, AXIS, BOTTOM = 120, 4, 140, 20, 46, 24, 26, 8, 26, 24
MIN_STRIP = 496  # the strip (tiles, bars) is at least this wide, so the title and notes fit
MIN_LABELLED_CELL = 28  # a cell at least this many pixels wide prints its value
MIN_CELL = 3  # a cell narrower than this (one 40 ms frame of a long video) is drawn this wide, centred
MIN_TICK_GAP = 48  # pixels between the duration's label at the axis end and the tick label before it
UNCOVERED = "#e8e8e8"  # a bar's background: time that none of its rows covers


@dataclass
class Bar:
    """One row of cells: `values` (cells,) over `times_ms` (cells, 2) start and end; or, with `missing`
    (e.g. "no audio"), no cells and that text across the axis."""

    values: np.ndarray
    times_ms: np.ndarray
    missing: str = ""

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, np.float32).reshape(-1)
        self.times_ms = np.asarray(self.times_ms, np.float64).reshape(-1, 2)
        if self.missing:
            self.values, self.times_ms = self.values[:0], self.times_ms[:0]
        elif len(self.values) != len(self.times_ms):
            raise ValueError(f"a bar of {len(self.values)} values with {len(self.times_ms)} time spans")

    @classmethod
    def absent(cls, missing: str) -> Bar:
        return cls(np.zeros(0), np.zeros((0, 2)), missing)


@dataclass
class Strip:
    """What one picture shows: tiles (n, h, w, 3) uint8 with their time spans `tile_times_ms` (n, 2), bars
    {label: Bar}, optional per-tile heat maps (n, gh, gw), boxes (n, 4) x1 y1 x2 y2 in tile pixels (NaN:
    none), marked tiles (n,) bool, a note, and the video's duration (None: `build_strip` reads it from the
    decode cache)."""

    tiles: np.ndarray
    tile_times_ms: np.ndarray
    bars: dict[str, Bar] = field(default_factory=dict)
    heat: np.ndarray | None = None
    boxes: np.ndarray | None = None
    marked: np.ndarray | None = None
    note: str = ""
    duration_ms: float | None = None


StripBuilder = Callable[[dict[str, Any], CacheReader, CacheReader | None], Strip]
STRIPS: Registry[StripBuilder] = Registry("report picture")
"""Keyed by the registered name of the head whose records the builder draws; other heads get `frames_only`."""


def register_strip(*heads: str) -> Callable[[StripBuilder], StripBuilder]:
    def add(builder: StripBuilder) -> StripBuilder:
        for head in heads:
            STRIPS.add(head, builder)
        return builder

    return add


def picture_size(tiles: int, bars: int) -> tuple[int, int]:
    """(width, height) in pixels of a picture of `tiles` frames (at most MAX_TILES drawn) and `bars` bars."""
    n = max(1, min(tiles, MAX_TILES))
    return (LEFT + max(n * (TILE + GAP) - GAP, MIN_STRIP) + RIGHT,
            TOP + TILE + MARK + bars * (BAR + BAR_GAP) + AXIS + BOTTOM)


def shown(n: int) -> np.ndarray:
    """Indices of the rows drawn as tiles: all, or MAX_TILES evenly spaced."""
    return np.arange(n) if n <= MAX_TILES else np.unique(np.linspace(0, n - 1, MAX_TILES).round().astype(int))


# ---------------------------------------------------------------- layout (pure)


def time_x(times_ms: Any, duration_ms: float, axis: tuple[float, float]) -> np.ndarray:
    """Pixel x of each time (ms) on an axis from `axis[0]` (0 ms) to `axis[1]` (`duration_ms`)."""
    x0, x1 = axis
    return x0 + np.asarray(times_ms, np.float64) / duration_ms * (x1 - x0)


def place_tiles(centres: Any, lo: float, hi: float, tile: float = TILE, gap: float = GAP) -> np.ndarray:
    """Left x of tiles `tile` wide that belong at `centres` (ascending): each centred there unless that
    would overlap the tile before it (less than `gap` apart) or leave [lo, hi]; then it moves right just
    past the one before, and tiles pushed past `hi` are moved back left just enough. Exact placement is
    kept wherever the tiles fit; `hi - lo` must hold all of them side by side."""
    left = np.asarray(centres, np.float64) - tile / 2
    n, step = len(left), tile + gap
    if n and n * step - gap > hi - lo + 1e-9:
        raise ValueError(f"{n} tiles of {tile} px do not fit in {hi - lo} px")
    if np.any(np.diff(left) < 0):
        raise ValueError("tile centres must be ascending")
    for i in range(n):
        left[i] = max(left[i], lo if i == 0 else left[i - 1] + step)
    for i in reversed(range(n)):
        left[i] = min(left[i], hi - tile if i == n - 1 else left[i + 1] - step)
    return left


@dataclass(frozen=True)
class BarLayout:
    label: str
    top: float  # pixels from the picture's top
    cells: np.ndarray  # (cells, 2) pixel x of each cell's start and end
    values: np.ndarray  # (cells,)
    missing: str  # drawn across the axis instead of cells, when not ""
    lane: np.ndarray  # (cells,) which of the bar's `lanes` stacked sub-rows each cell is drawn in
    lanes: int  # 1 unless rows overlap in time

    def cell_box(self, j: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of cell j as drawn: `visible` x extent, its lane's share of the bar's height."""
        (x0, x1), = visible(self.cells[j : j + 1])
        height = BAR / self.lanes
        return x0, self.top + self.lane[j] * height, x1, self.top + (self.lane[j] + 1) * height


@dataclass(frozen=True)
class Layout:
    """Where everything of a picture goes, in pixels from its top-left corner."""

    width: int
    height: int
    duration_ms: float
    axis: tuple[float, float]  # x of 0 ms and of `duration_ms`
    axis_y: float  # y of the time axis line
    rows: np.ndarray  # the tiles drawn (indices into the strip's tiles)
    tile_x: np.ndarray  # (n,) left x of each drawn tile; its top is TOP, its side TILE
    tile_span: np.ndarray  # (n, 2) x of the start and end of each drawn tile's time span
    bars: list[BarLayout]

    @property
    def tile_time_y(self) -> float:
        """y of the tiles' time spans (the marker lines' lower end)."""
        return TOP + TILE + MARK - 6


def layout(strip: Strip) -> Layout:
    """The geometry of `strip`'s picture: the axis runs from 0 to the duration (the strip's, or the last
    end of any drawn row where that is later) across the strip's width; cells and tile markers sit at
    their times, tiles where `place_tiles` puts them."""
    rows = shown(len(strip.tiles))
    width, height = picture_size(len(strip.tiles), len(strip.bars))
    tile_times = np.asarray(strip.tile_times_ms, np.float64).reshape(-1, 2)
    if len(tile_times) != len(strip.tiles):
        raise ValueError(f"{len(strip.tiles)} tiles with {len(tile_times)} time spans")
    tile_times = tile_times[rows]
    ends = [float(t[:, 1].max()) for t in (tile_times, *(b.times_ms for b in strip.bars.values())) if len(t)]
    duration = max([float(strip.duration_ms or 0.0), *ends])
    duration = duration if duration > 0 else 1.0  # a video of no time: everything at 0, nothing divides by 0
    axis = (float(LEFT), float(width - RIGHT))
    span = time_x(tile_times, duration, axis)
    order = np.argsort(span.mean(axis=1), kind="stable")
    tile_x = np.empty(len(rows))
    tile_x[order] = place_tiles(span.mean(axis=1)[order], *axis)
    bars = [BarLayout(label, TOP + TILE + MARK + b * (BAR + BAR_GAP), time_x(bar.times_ms, duration, axis),
                      bar.values, bar.missing, *lanes(bar.times_ms))
            for b, (label, bar) in enumerate(strip.bars.items())]
    return Layout(width, height, duration, axis, float(TOP + TILE + MARK + len(bars) * (BAR + BAR_GAP)),
                  rows, tile_x, span, bars)


def lanes(times_ms: Any) -> tuple[np.ndarray, int]:
    """Stack cells whose times overlap (a clip shorter than VAANet's 16 audio segments repeats in them,
    each covering the whole clip): (cells,) the lane of each cell and the number of lanes, so that no two
    cells of a lane overlap (touching ends do not). In order of start, each cell takes the first lane free
    by then, which uses as few lanes as the most rows overlapping at one time."""
    times = np.asarray(times_ms, np.float64).reshape(-1, 2)
    lane, ends = np.zeros(len(times), np.int64), []
    for i in np.argsort(times[:, 0], kind="stable"):
        start, end = times[i]
        free = next((k for k, e in enumerate(ends) if e <= start), len(ends))
        if free == len(ends):
            ends.append(end)
        ends[free] = end
        lane[i] = free
    return lane, max(1, len(ends))


def visible(cells: np.ndarray, min_width: float = MIN_CELL) -> np.ndarray:
    """(cells, 2) x extents as drawn: each cell's own, widened about its centre to `min_width` pixels where
    it is narrower, so a single frame's score still shows."""
    cells = np.asarray(cells, np.float64).reshape(-1, 2)
    half = np.maximum(cells[:, 1] - cells[:, 0], min_width) / 2
    centre = cells.mean(axis=1)
    return np.stack([centre - half, centre + half], axis=1)


def axis_ticks(duration_ms: float, axis: tuple[float, float]) -> list[tuple[float, str]]:
    """(x, label) of the time axis' ticks, in seconds: round values, and the duration at the axis end
    (the round tick before it dropped when their labels would collide)."""
    seconds = duration_ms / 1000
    nbins = max(2, int((axis[1] - axis[0]) // 90))
    values = [float(v) for v in MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(0, seconds)
              if 0 <= v <= seconds]
    end_x = float(time_x(duration_ms, duration_ms, axis))
    ticks = [(float(time_x(v * 1000, duration_ms, axis)), f"{v:g}") for v in values]
    ticks = [(x, text) for x, text in ticks if end_x - x >= MIN_TICK_GAP]
    digits = 2 if seconds < 10 else 1 if seconds < 100 else 0  # a short clip's end is not rounded away
    return [*ticks, (end_x, f"{seconds:.{digits}f}")]


# ---------------------------------------------------------------- what the records hold


def audio_present(record: dict[str, Any], decode: CacheReader) -> bool | None:
    """Whether the video has audio: the record's `has_audio`, else the decode cache's; None when neither
    says."""
    if "has_audio" in record:
        return bool(record["has_audio"])
    flag = decode.attrs(record["video_id"]).get("has_audio")
    return None if flag is None else bool(flag)


def attention_bar(record: dict[str, Any], name: str, audio: bool | None, column: int | None = None
                  ) -> Bar | None:
    """The bar of the record's map `name` (its `column` for a 2-D map) on the time spans of the input whose
    rows it weights (`timeline.input_of`); None when the head did not save it. A map over audio of a video
    without audio, or of a modality the head does not read, is a missing bar that says so."""
    raw = record["attention"].get(name)
    if raw is None:
        return None
    array = np.asarray(raw, np.float32)
    times = record["times_ms"]
    for modality in ("audio", "visual"):
        if modality in name and not any(modality in key for key in times):
            return Bar.absent(f"{modality} not used")
    if "audio" in name and audio is False:
        return Bar.absent("no audio")
    key = input_of(name, len(array), times) if array.ndim else None
    if key is None:
        rows = {k: len(t) for k, t in times.items()}
        raise ValueError(f"{record['video_id']}: attention {name!r} of shape {array.shape} matches the rows "
                         f"of no input ({rows}): it cannot be placed in time")
    if "audio" in key and audio is False:
        return Bar.absent("no audio")
    if not array.size:
        return Bar.absent("no rows")
    return Bar(array if column is None else array[:, column], times[key])


def snippet_centres(decode: CacheReader, video_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(T, S, S, 3): the middle frame of each snippet of the test view (view 0), and (T, 2) the span of
    each snippet (the tile stands for the snippet the head weighed)."""
    clips = decode.read(video_id, "snippets", (0,))
    return clips[:, clips.shape[1] // 2], decode.read(video_id, "snippets_times_ms", (0,))


def _attention(record: dict[str, Any], name: str) -> np.ndarray | None:
    value = record["attention"].get(name)
    return None if value is None else np.asarray(value, np.float32)


def _bars(record: dict[str, Any], audio: bool | None, pairs: tuple[tuple[str, str], ...]) -> dict[str, Bar]:
    built = ((label, attention_bar(record, name, audio)) for label, name in pairs)
    return {label: bar for label, bar in built if bar is not None}


# ---------------------------------------------------------------- the heads' strips


@register_strip("vaanet")
def vaanet_strip(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    tiles, times = snippet_centres(decode, record["video_id"])
    spatial = _attention(record, "spatial")
    side = int(round(np.sqrt(spatial.shape[1]))) if spatial is not None else 0
    bars = _bars(record, audio_present(record, decode),
                 (("temporal", "temporal"), ("audio temporal", "audio_temporal")))
    heat = None if spatial is None else spatial.reshape(len(spatial), side, side)
    note = "heat map: spatial attention over the 4 x 4 conv5 locations" if spatial is not None else ""
    return Strip(tiles, times, bars, heat=heat, note=note)


@register_strip("ten")
def ten_strip(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    tiles, times = snippet_centres(decode, record["video_id"])
    bars = _bars(record, audio_present(record, decode),
                 (("visual A*", "temporal_visual"), ("audio A*", "temporal_audio")))
    keyframes = _attention(record, "keyframes")
    return Strip(tiles, times, bars, marked=None if keyframes is None else keyframes > 0.5,
                 note="red: keyframes (A*v and A*a >= theta), the segments erased in the 'rest' pass")


@register_strip("caan")
def caan_strip(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    video_id = record["video_id"]
    frames, times = decode.read(video_id, "frames"), decode.read(video_id, "frames_times_ms")
    scores = attention_bar(record, "frame_scores", audio_present(record, decode))
    index = np.sort(faces.read(video_id, "face_frame_index")) if faces is not None else None
    if (index is not None and len(index) == 0) or (scores is not None and scores.missing == "no rows"):
        return Strip(frames, times, {"frame score": Bar.absent("no face")},
                     note="no face detected: scored by the training prior")
    bars = {} if scores is None else {"frame score": scores}
    if index is None:  # no boxes to show: every frame, the scores at their own times
        return Strip(frames, times, bars, note="the faces cache is absent: frames without boxes")
    return Strip(frames[index], times[index], bars, boxes=faces.read(video_id, "boxes")[index],
                 note="box: the detected face (MTCNN)")


@register_strip("lstm_fusion")
def lstm_strip(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    video_id = record["video_id"]
    tiles, times = decode.read(video_id, "keyframes"), decode.read(video_id, "keyframes_times_ms")
    audio = audio_present(record, decode)
    column = list(record["probabilities"]).index(record["predicted"])
    bar = attention_bar(record, "per_second", audio, column)
    note = "one keyframe per second; bar: probability of the prediction per second"
    if audio is False and "audio" in record["times_ms"] and bar is not None and not bar.missing:
        note += " (no audio: from the frames alone)"
    return Strip(tiles, times, {} if bar is None else {f"P({record['predicted']})": bar}, note=note)


def frames_only(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    """A head without a registered strip: whatever frames the decode cache holds, no attention."""
    video_id = record["video_id"]
    names = decode.names(video_id)
    if "snippets" in names:
        tiles, times = snippet_centres(decode, video_id)
    else:
        name = "keyframes" if "keyframes" in names else "frames"
        tiles, times = decode.read(video_id, name), decode.read(video_id, f"{name}_times_ms")
    note = ("no picture is registered for this head: its frames only" if record["attention"]
            else "this head saves no attention")
    return Strip(tiles, times, note=note)


# ---------------------------------------------------------------- drawing


def _px(fig: plt.Figure, x: float, y: float, w: float, h: float) -> plt.Axes:
    """Axes at pixel box (x, y from the top-left, width, height)."""
    width, height = fig.get_size_inches() * DPI
    return fig.add_axes((x / width, 1 - (y + h) / height, w / width, h / height))


def _draw_tile(ax: plt.Axes, strip: Strip, row: int) -> None:
    tile = strip.tiles[row]
    h, w = tile.shape[:2]
    ax.imshow(tile, extent=(0, w, h, 0))
    if strip.heat is not None:
        ax.imshow(strip.heat[row], extent=(0, w, h, 0), cmap="jet", alpha=0.45, interpolation="bilinear",
                  vmin=0.0, vmax=max(float(strip.heat.max()), 1e-6))
    if strip.boxes is not None and np.isfinite(strip.boxes[row]).all():
        x1, y1, x2, y2 = strip.boxes[row]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="lime", linewidth=2))
    if strip.marked is not None and strip.marked[row]:
        ax.add_patch(Rectangle((0, 0), w, h, fill=False, edgecolor="red", linewidth=6))
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    start, end = np.asarray(strip.tile_times_ms[row], np.float64) / 1000
    ax.set_title(f"#{row + 1}  {(start + end) / 2:.1f} s", fontsize=7, pad=1)


def _draw_bar(canvas: plt.Axes, bar: BarLayout, axis: tuple[float, float]) -> None:
    x0, x1 = axis
    overlap = not bar.missing and bar.lanes > 1  # room for a second line under the label
    canvas.text(x0 - 6, bar.top + (BAR / 2 - 5 if overlap else BAR / 2), bar.label, ha="right", va="center",
                fontsize=8)
    canvas.add_patch(Rectangle((x0, bar.top), x1 - x0, BAR, facecolor=UNCOVERED, edgecolor="none"))
    if bar.missing:
        canvas.text((x0 + x1) / 2, bar.top + BAR / 2, bar.missing, ha="center", va="center", fontsize=9,
                    style="italic", color="dimgray", gid="missing")
        return
    top = max(float(bar.values.max()), 1e-6) if bar.values.size else 1.0
    cmap = plt.get_cmap("viridis")
    for j, v in enumerate(bar.values):
        c0, y0, c1, y1 = bar.cell_box(j)
        canvas.add_patch(Rectangle((c0, y0), c1 - c0, y1 - y0, facecolor=cmap(v / top), edgecolor="none",
                                   gid=f"cell:{bar.label}:{j}"))
        if bar.lanes == 1 and c1 - c0 >= MIN_LABELLED_CELL:
            canvas.text((c0 + c1) / 2, bar.top + BAR / 2, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < 0.6 * top else "black")
    if bar.lanes > 1:
        canvas.text(x0 - 6, bar.top + BAR - 1, f"rows overlap: {bar.lanes} lanes", ha="right", va="bottom",
                    fontsize=6, color="dimgray")


def _draw_axis(canvas: plt.Axes, lay: Layout) -> None:
    (x0, x1), y = lay.axis, lay.axis_y
    canvas.add_line(Line2D([x0, x1], [y, y], color="black", linewidth=0.8))
    for x, text in axis_ticks(lay.duration_ms, lay.axis):
        canvas.add_line(Line2D([x, x], [y, y + 4], color="black", linewidth=0.8))
        canvas.text(x, y + 6, text, ha="center", va="top", fontsize=7, gid="tick")
    canvas.text(x0 - 6, y + 8, "time (s)", ha="right", va="center", fontsize=8)


def _draw_markers(canvas: plt.Axes, lay: Layout) -> None:
    """A line from each tile's bottom centre to the middle of its span on the time axis, and the span."""
    y = lay.tile_time_y
    for i, ((s0, s1), left) in enumerate(zip(lay.tile_span, lay.tile_x, strict=True)):
        mid = (s0 + s1) / 2
        canvas.add_line(Line2D([left + TILE / 2, mid], [TOP + TILE, y], color="gray", linewidth=0.8))
        half = max((s1 - s0) / 2, 1.0)  # a span narrower than 2 px still shows
        canvas.add_line(Line2D([mid - half, mid + half], [y, y], color="black", linewidth=2,
                               solid_capstyle="butt", gid=f"span:{i}"))
        for x in (mid - half, mid + half):  # end caps: abutting spans stay apart
            canvas.add_line(Line2D([x, x], [y - 3, y + 3], color="black", linewidth=1))
        for x in (s0, s1):  # faint guides down through the bars to the axis
            canvas.add_line(Line2D([x, x], [y, lay.axis_y], color="gray", linewidth=0.4, alpha=0.35))


def figure(strip: Strip, title: str) -> tuple[plt.Figure, Layout]:
    """The figure of `strip` and its layout. Everything but the tiles is drawn on one axes whose data
    coordinates are the layout's pixels (y down), so what is drawn is exactly where `layout` says."""
    lay = layout(strip)
    fig = plt.figure(figsize=(lay.width / DPI, lay.height / DPI), dpi=DPI)
    canvas = fig.add_axes((0, 0, 1, 1))
    canvas.set_xlim(0, lay.width)
    canvas.set_ylim(lay.height, 0)
    canvas.set_axis_off()
    # a long title (a file name, the prior's and the random weights' warnings) wraps onto a second line
    # rather than running off the narrowest picture
    fig.text(8 / lay.width, 1 - 4 / lay.height, title, fontsize=9, va="top", wrap=True,
             linespacing=1.1)
    for left, row in zip(lay.tile_x, lay.rows, strict=True):
        _draw_tile(_px(fig, left, TOP, TILE, TILE), strip, int(row))
    if len(strip.tiles) > len(lay.rows):
        canvas.text(8, TOP + TILE / 2, f"{len(lay.rows)} of\n{len(strip.tiles)} frames", fontsize=8,
                    va="center")
    for bar in lay.bars:
        _draw_bar(canvas, bar, lay.axis)
    _draw_markers(canvas, lay)
    _draw_axis(canvas, lay)
    if strip.note:
        canvas.text(8, lay.height - 12, strip.note, fontsize=8, va="center", color="dimgray")
    return fig, lay


def render(strip: Strip, path: Path, title: str) -> Path:
    """Draw `strip` to the PNG `path` (size `picture_size(len(strip.tiles), len(strip.bars))`)."""
    fig, _ = figure(strip, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def build_strip(head: str, record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    """The strip of head `head`'s builder (`frames_only` without one), with the video's duration from the
    decode cache where the builder left it unset."""
    strip = (STRIPS.get(head) if head in STRIPS else frames_only)(record, decode, faces)
    if strip.duration_ms is None:
        duration = decode.attrs(record["video_id"]).get("duration_ms")
        strip.duration_ms = None if duration is None else float(duration)
    return strip


def draw_picture(head: str, record: dict[str, Any], decode: CacheReader, faces: CacheReader | None,
                 path: Path, *, title: str) -> Path:
    """The attention picture of one prediction record of head `head` (its registered name)."""
    return render(build_strip(head, record, decode, faces), path, title)

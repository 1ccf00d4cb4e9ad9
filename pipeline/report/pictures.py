"""One picture per video of what a head attended to (after VAANet's Figure 3):

    ┌──────── title: file, predicted class, probability, polarity ────────┐
    │ [frame 1] [frame 2] ... [frame n]     sampled frames, one per row the head weights
    │ temporal  ███ ░░░ ▓▓▓ ...            one colour bar per 1-D attention (viridis, 0 .. max)
    │ audio     ░░░░▓▓▓████░░░░            bars need not have n cells (VAANet's 16 audio segments)
    └ note ───────────────────────────────────────────────────────────────┘

Per head (a registry keyed by the head's registered name, `register_strip`): VAANet shows the centre frame of
each test-view snippet with its spatial attention (4 x 4 locations) as a heat map over the frame; TEN the same
frames with its keyframes (the segments the "rest" pass erases) framed in red; CAAN the face frames with the
detected face boxed, and its per-frame scores; LSTM fusion the 1-second keyframes and the probability of the
predicted class per second. Any other head shows frames only. At most `MAX_TILES` frames are drawn, evenly
chosen (with their attention values); bars keep every row. Frames come from the decode cache (and boxes from
the faces cache) the prediction was made from: the dataset's for the report, a temporary one for predict.

The picture's size in pixels is `picture_size(tiles, bars)`, a function of the counts only.
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
from matplotlib.patches import Rectangle  # noqa: E402

from pipeline.cache import CacheReader  # noqa: E402
from pipeline.registry import Registry  # noqa: E402

MAX_TILES = 16
DPI = 100
TILE, GAP, LEFT, RIGHT, TOP, BAR, BAR_GAP, BOTTOM = 120, 4, 140, 20, 40, 26, 8, 34
MIN_STRIP = 496  # the strip (tiles, bars) is at least this wide, so the title and notes fit


@dataclass
class Strip:
    """What one picture shows: tiles (n, h, w, 3) uint8, bars {label: (cells,)}, optional per-tile heat maps
    (n, gh, gw), boxes (n, 4) x1 y1 x2 y2 in tile pixels (NaN: none), marked tiles (n,) bool, a note."""

    tiles: np.ndarray
    bars: dict[str, np.ndarray] = field(default_factory=dict)
    heat: np.ndarray | None = None
    boxes: np.ndarray | None = None
    marked: np.ndarray | None = None
    note: str = ""


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
    return LEFT + max(n * (TILE + GAP) - GAP, MIN_STRIP) + RIGHT, TOP + TILE + bars * (BAR + BAR_GAP) + BOTTOM


def shown(n: int) -> np.ndarray:
    """Indices of the rows drawn as tiles: all, or MAX_TILES evenly spaced."""
    return np.arange(n) if n <= MAX_TILES else np.unique(np.linspace(0, n - 1, MAX_TILES).round().astype(int))


def snippet_centres(decode: CacheReader, video_id: str) -> np.ndarray:
    """(T, S, S, 3): the middle frame of each snippet of the test view (view 0)."""
    clips = decode.read(video_id, "snippets", (0,))
    return clips[:, clips.shape[1] // 2]


def _attention(record: dict[str, Any], name: str) -> np.ndarray | None:
    value = record["attention"].get(name)
    return None if value is None else np.asarray(value, np.float32)


@register_strip("vaanet")
def vaanet_strip(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    tiles = snippet_centres(decode, record["video_id"])
    spatial = _attention(record, "spatial")
    side = int(round(np.sqrt(spatial.shape[1]))) if spatial is not None else 0
    pairs = (("temporal", _attention(record, "temporal")),
             ("audio temporal", _attention(record, "audio_temporal")))
    heat = None if spatial is None else spatial.reshape(len(spatial), side, side)
    note = "heat map: spatial attention over the 4 x 4 conv5 locations" if spatial is not None else ""
    return Strip(tiles, {label: a for label, a in pairs if a is not None}, heat=heat, note=note)


@register_strip("ten")
def ten_strip(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    tiles = snippet_centres(decode, record["video_id"])
    pairs = (("visual A*", _attention(record, "temporal_visual")),
             ("audio A*", _attention(record, "temporal_audio")))
    bars = {label: a for label, a in pairs if a is not None}
    keyframes = _attention(record, "keyframes")
    return Strip(tiles, bars, marked=None if keyframes is None else keyframes > 0.5,
                 note="red: keyframes (A*v and A*a >= theta), the segments erased in the 'rest' pass")


@register_strip("caan")
def caan_strip(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    video_id = record["video_id"]
    frames = decode.read(video_id, "frames")
    index = np.sort(faces.read(video_id, "face_frame_index")) if faces is not None else np.zeros(0, int)
    if len(index) == 0:
        return Strip(frames[shown(len(frames))], note="no face detected: scored by the training prior")
    scores = _attention(record, "frame_scores")
    return Strip(frames[index], {"frame score": scores} if scores is not None else {},
                 boxes=faces.read(video_id, "boxes")[index], note="box: the detected face (MTCNN)")


@register_strip("lstm_fusion")
def lstm_strip(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    tiles = decode.read(record["video_id"], "keyframes")
    per_second = _attention(record, "per_second")
    classes = list(record["probabilities"])
    bars = {} if per_second is None else {f"P({record['predicted']})": per_second[:, classes.index(
        record["predicted"])]}
    return Strip(tiles, bars, note="one keyframe per second; bar: probability of the prediction per second")


def frames_only(record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    """A head without a registered strip: whatever frames the decode cache holds, no attention."""
    names = decode.names(record["video_id"])
    if "snippets" in names:
        tiles = snippet_centres(decode, record["video_id"])
    else:
        tiles = decode.read(record["video_id"], "keyframes" if "keyframes" in names else "frames")
    return Strip(tiles, note="this head saves no attention")


def _px(fig: plt.Figure, x: float, y: float, w: float, h: float) -> plt.Axes:
    """Axes at pixel box (x, y from the top-left, width, height)."""
    width, height = fig.get_size_inches() * DPI
    return fig.add_axes((x / width, 1 - (y + h) / height, w / width, h / height))


def _draw_tile(ax: plt.Axes, strip: Strip, i: int, row: int) -> None:
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
    ax.set_title(f"#{row + 1}", fontsize=7, pad=1)


def _draw_bar(ax: plt.Axes, label: str, values: np.ndarray) -> None:
    top = max(float(values.max()), 1e-6) if values.size else 1.0
    ax.imshow(values[None] if values.size else np.zeros((1, 1)), cmap="viridis", aspect="auto", vmin=0,
              vmax=top)
    if ax.get_position().width * ax.figure.get_size_inches()[0] * DPI / max(1, len(values)) >= 28:
        for j, v in enumerate(values):
            ax.text(j, 0, f"{v:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if v < 0.6 * top else "black")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)


def render(strip: Strip, path: Path, title: str) -> Path:
    """Draw `strip` to the PNG `path` (size `picture_size(len(strip.tiles), len(strip.bars))`)."""
    rows = shown(len(strip.tiles))
    width, height = picture_size(len(strip.tiles), len(strip.bars))
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    fig.text(8 / width, 1 - 14 / height, title, fontsize=10, va="center")
    strip_width = width - LEFT - RIGHT
    for i, row in enumerate(rows):
        _draw_tile(_px(fig, LEFT + i * (TILE + GAP), TOP, TILE, TILE), strip, i, int(row))
    if len(strip.tiles) > len(rows):
        fig.text(8 / width, 1 - (TOP + TILE / 2) / height, f"{len(rows)} of\n{len(strip.tiles)} frames",
                 fontsize=8, va="center")
    for b, (label, values) in enumerate(strip.bars.items()):
        y = TOP + TILE + BAR_GAP + b * (BAR + BAR_GAP)
        _draw_bar(_px(fig, LEFT, y, strip_width, BAR), label, np.asarray(values, np.float32))
    if strip.note:
        fig.text(8 / width, 12 / height, strip.note, fontsize=8, va="center", color="dimgray")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def build_strip(head: str, record: dict[str, Any], decode: CacheReader, faces: CacheReader | None) -> Strip:
    return (STRIPS.get(head) if head in STRIPS else frames_only)(record, decode, faces)


def draw_picture(head: str, record: dict[str, Any], decode: CacheReader, faces: CacheReader | None,
                 path: Path, *, title: str) -> Path:
    """The attention picture of one prediction record of head `head` (its registered name)."""
    return render(build_strip(head, record, decode, faces), path, title)

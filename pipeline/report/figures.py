"""The report's figures as PNG bytes: the summed confusion matrix and the per-epoch curves of every run."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def png_bytes(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def confusion_png(confusion: list[list[int]], classes: list[str]) -> bytes:
    """Rows: actual class, columns: predicted; each cell its count (summed over runs)."""
    matrix = np.asarray(confusion, dtype=np.int64)
    size = 1.6 + 0.55 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1, int(matrix.max())))
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > 0.6 * max(1, matrix.max()) else "black", fontsize=9)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    fig.tight_layout()
    return png_bytes(fig)


def read_curve(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A dvclive TSV (header `step<TAB>name`): steps and values."""
    with path.open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    return np.array([float(r[0]) for r in rows]), np.array([float(r[1]) for r in rows])


def curves(run_dir: Path) -> dict[str, dict[str, Path]]:
    """{metric: {split: tsv}} under `<run_dir>/plots/metrics/<split>/<metric>.tsv` (dvclive's layout)."""
    found: dict[str, dict[str, Path]] = {}
    for tsv in sorted((run_dir / "plots" / "metrics").glob("**/*.tsv")):
        split = tsv.parent.relative_to(run_dir / "plots" / "metrics").as_posix()
        found.setdefault(tsv.stem, {})[split] = tsv
    return found


def curves_png(run_dir: Path) -> bytes | None:
    """One panel per metric (loss, accuracy, loss parts), a line per split (train, val); None without any."""
    metrics = curves(run_dir)
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 2.8), squeeze=False)
    for ax, (metric, splits) in zip(axes[0], metrics.items(), strict=True):
        for split, tsv in splits.items():
            steps, values = read_curve(tsv)
            ax.plot(steps, values, marker="o", markersize=3, label=split)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    return png_bytes(fig)

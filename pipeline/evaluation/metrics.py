"""Classification metrics of the papers' tables: accuracy, per-class accuracy (VAANet Tables 3-4), macro-F1,
the confusion matrix (CAAN Table 5), and their mean and std over runs (VideoEmotion-8's 10 runs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def classification_metrics(
    labels: Sequence[int], predictions: Sequence[int], classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall of each class; None for a class absent from the labels),
    macro-F1 over the classes present, and the confusion matrix (rows: true class, columns: predicted)."""
    y, p = np.asarray(labels), np.asarray(predictions)
    cm = confusion_matrix(y, p, labels=range(len(classes)))
    support = cm.sum(axis=1)
    per_class = {c: (float(cm[i, i] / support[i]) if support[i] else None) for i, c in enumerate(classes)}
    present = sorted(set(y.tolist()))
    return {
        "accuracy": float((y == p).mean()) if len(y) else 0.0,
        "macro_f1": float(f1_score(y, p, labels=present, average="macro", zero_division=0))
        if len(y)
        else 0.0,
        "per_class_accuracy": per_class,
        "confusion": cm.tolist(),
        "n": int(len(y)),
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def aggregate_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and (population) std over runs of accuracy, macro-F1 and each class's accuracy;
    the confusion matrices summed."""
    acc, acc_std = _mean_std([r["accuracy"] for r in runs])
    f1, f1_std = _mean_std([r["macro_f1"] for r in runs])
    per_class = {}
    for c in runs[0]["per_class_accuracy"]:
        values = [r["per_class_accuracy"][c] for r in runs if r["per_class_accuracy"][c] is not None]
        per_class[c] = float(np.mean(values)) if values else None
    return {
        "runs": len(runs),
        "accuracy": acc,
        "accuracy_std": acc_std,
        "macro_f1": f1,
        "macro_f1_std": f1_std,
        "per_class_accuracy": per_class,
        "confusion": np.sum([r["confusion"] for r in runs], axis=0).tolist(),
    }

"""The train and evaluate stages of one head entry of params.yaml (`heads.<key>`), over all protocol runs.

    models/<dataset>/<key>/run_XX/{split.json, last.pt, best.pt}       written by train
    reports/<dataset>/<key>/live/run_XX/                                 per-epoch curves (dvclive)
    reports/<dataset>/<key>/{scores.json, metrics.json, runs.json, confusion.json,
                             predictions/run_XX.json, missing.csv}        written by evaluate

scores.json is the DVC metric (`dvc metrics show`, `dvc exp show`): the few numbers a sweep compares,
under the entry's key ({"vaanet": {"accuracy": ...}}) so that DVC names the columns `vaanet.accuracy`, not
`reports/<dataset>/vaanet/scores.json:accuracy` (its name for a key that several metrics files share).
metrics.json holds them and everything else a report needs (per class, confusion, protocol, weights).

best.pt is a `trained.TrainedHead`: self-describing (head, options, classes, polarity, prior, inputs, caches
and their weights), so evaluation and `vemo predict` rebuild the head from it alone.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.cache.private import make_private
from pipeline.config import config_hash
from pipeline.evaluation.detection import detections_from_predictions, mean_ap, read_ground_truth
from pipeline.evaluation.metrics import aggregate_runs, classification_metrics
from pipeline.heads import build_head
from pipeline.heads.base import Head, InputSpec
from pipeline.heads.polarity import polarity_for
from pipeline.manifests.format import Manifest
from pipeline.training.config import UNHASHED, HeadSetup
from pipeline.training.data import CacheInfo, FeatureTable, norms_to_saved
from pipeline.training.loop import fit, resolve_device
from pipeline.training.predict import Predictions, predict
from pipeline.training.protocol import SELECTION_LABELS, RunSplit, run_splits
from pipeline.training.trained import TrainedHead, load_trained, save_trained

# metrics.json's keys that are scores.json, DVC's metric: one column each per head in `dvc exp show`. The
# spreads only where the protocol has several runs: with one they are a constant 0, and two columns fewer
# per head keep every head's scores inside the first screen of a default `dvc exp show` (docs/dvc.md).
SCORE_KEYS = ("accuracy", "macro_f1", "detection_map")
SPREAD_KEYS = ("accuracy_std", "macro_f1_std")


def scores_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The DVC metric's numbers of one head's evaluation summary (metrics.json)."""
    keys = (*SCORE_KEYS, *SPREAD_KEYS) if summary["runs"] > 1 else SCORE_KEYS
    return {k: summary[k] for k in keys if k in summary}


def targets(manifest: Manifest, target: str) -> tuple[list[str], dict[str, int]]:
    """(classes, video id -> class index) of the label, or of an extra column (classes sorted)."""
    if target == "label":
        return list(manifest.classes), {r.video_id: manifest.label_index(r.label) for r in manifest.records}
    values = {r.video_id: r.extra.get(target, "") for r in manifest.records}
    if not all(values.values()):
        raise ValueError(f"train.target {target!r}: some videos have no value in that manifest column")
    classes = sorted(set(values.values()))
    return classes, {v: classes.index(x) for v, x in values.items()}


def class_polarity(classes: list[str], overrides: dict[str, int]) -> torch.Tensor | None:
    """Polarity per class, or None when some class has none (then a head asking for PCCE fails clearly)."""
    try:
        return polarity_for(classes, overrides or None)
    except ValueError:
        return None


def make_head(
    setup_head: str, options: dict[str, Any], classes: list[str], polarity: torch.Tensor | None
) -> Head:
    return build_head(setup_head, num_classes=len(classes), polarity=polarity, **options)


def check_caches(setup: HeadSetup, inputs: dict[str, InputSpec]) -> None:
    missing = sorted({s.cache for s in inputs.values()} - set(setup.caches))
    if missing:
        raise ValueError(
            f"heads.{setup.key}.caches must list {missing}: the head reads them, and the list is "
            "the stage's DVC dependency"
        )


def log_prior(split_ids: list[str], labels: dict[str, int], n_classes: int) -> torch.Tensor:
    """Log class frequencies of the training videos (add-one smoothed): the score of a video the head
    cannot look at (no face, no frame)."""
    counts = np.bincount([labels[v] for v in split_ids], minlength=n_classes) + 1.0
    return torch.log(torch.as_tensor(counts / counts.sum(), dtype=torch.float32))


def run_dir(model_dir: Path, run: int) -> Path:
    return model_dir / f"run_{run:02d}"


def train_head(
    setup: HeadSetup, manifest: Manifest, *, cache_dir: Path, model_dir: Path, live_dir: Path
) -> list[Path]:
    """Train every run of the protocol; returns the best.pt paths. The model folder (persistent, resumed
    from) is first made this stage's own, so no write reaches a file in DVC's cache."""
    make_private(model_dir)
    classes, labels = targets(manifest, setup.target)
    polarity = class_polarity(classes, setup.polarity)
    splits = run_splits(
        manifest,
        protocol=setup.protocol,
        runs=setup.runs,
        selection=setup.selection,
        val_fraction=setup.val_fraction,
        seed=setup.seed,
    )
    inputs = make_head(setup.head, setup.options, classes, polarity).inputs()
    check_caches(setup, inputs)
    all_ids = [r.video_id for r in manifest.records]
    with FeatureTable(inputs, cache_dir, all_ids, preload=setup.preload) as table:
        caches, usable = table.caches(), set(table.ids)
        written = []
        for split in splits:
            torch.manual_seed(setup.seed + split.run)
            head = make_head(setup.head, setup.options, classes, polarity)
            split = RunSplit(
                split.run,
                [v for v in split.train if v in usable],
                [v for v in split.val if v in usable],
                split.test,
                split.selection,
            )
            table.norms = table.fit_norms(split.train, setup.feature_scale)
            prior = log_prior(split.train, labels, len(classes))
            out = run_dir(model_dir, split.run)
            split.write(out / "split.json")
            run_hash = config_hash(
                {
                    "setup": _hashed(setup),
                    "split": asdict(split),
                    "caches": {k: (v.config_hash, v.updated) for k, v in caches.items()},
                }
            )
            print(
                f"[train@{setup.key}] run {split.run}: {len(split.train)} train, {len(split.val)} selection "
                f"videos ({SELECTION_LABELS[setup.selection]})",
                flush=True,
            )
            state = fit(
                head,
                table,
                split,
                labels,
                setup.train,
                seed=setup.seed + split.run,
                config_hash=run_hash,
                run_dir=out,
                live_dir=live_dir / f"run_{split.run:02d}",
                log_prior=prior,
                label=f"[train@{setup.key}] run {split.run}",
            )
            save_trained(
                out / "best.pt",
                TrainedHead(
                    head=setup.head,
                    key=setup.key,
                    options=setup.options,
                    classes=classes,
                    polarity=None if polarity is None else polarity.tolist(),
                    log_prior=prior,
                    inputs=inputs,
                    caches=caches,
                    feature_scales=norms_to_saved(table.norms),
                    selection=setup.selection,
                    epoch=state.best_epoch,
                    score=list(state.best_score),
                    config_hash=run_hash,
                    state_dict=state.best_state,
                ),
            )
            written.append(out / "best.pt")
    if table.missing:
        print(
            f"[train@{setup.key}] {len(table.missing)} video(s) without features, left out: "
            f"e.g. {next(iter(table.missing.items()))}",
            flush=True,
        )
    _warn_random(setup.key, caches)
    return written


def _warn_random(key: str, caches: dict[str, CacheInfo]) -> None:
    random = sorted(k for k, v in caches.items() if v.random)
    if random:
        print(
            f"[{key}] NOTE: trained on features from RANDOM weights ({', '.join(random)}); "
            "its numbers say nothing about the published method",
            flush=True,
        )


def prediction_records(pred: Predictions, classes: list[str], table: FeatureTable) -> list[dict[str, Any]]:
    """Per test video: label, prediction, probabilities, and what the head attended to, with row times."""
    probs = pred.probabilities
    out = []
    for i, video_id in enumerate(pred.ids):
        out.append(
            {
                "video_id": video_id,
                "label": classes[pred.labels[i]],
                "predicted": classes[pred.predicted[i]],
                "correct": bool(pred.labels[i] == pred.predicted[i]),
                "valid": bool(pred.valid[i]),
                "probabilities": {c: round(float(p), 6) for c, p in zip(classes, probs[i], strict=True)},
                "attention": {k: np.round(v, 6).tolist() for k, v in pred.maps.get(video_id, {}).items()},
                "times_ms": {k: table.times_ms(video_id, k).tolist() for k in table.inputs},
            }
        )
    return out


def evaluate_head(
    setup: HeadSetup, manifest: Manifest, *, cache_dir: Path, model_dir: Path, out_dir: Path
) -> dict[str, Any]:
    """Score each run's best.pt once on its test videos (the deterministic test view); write the reports."""
    classes, labels = targets(manifest, setup.target)
    runs, missing, confusion_rows = [], {}, []
    caches: dict[str, CacheInfo] = {}
    for path in sorted(model_dir.glob("run_*/best.pt")):
        split = RunSplit.read(path.with_name("split.json"))
        trained = load_trained(path)
        head = trained.build()
        with FeatureTable(head.inputs(), cache_dir, split.test, preload=False) as table:
            table.norms = trained.norms()
            caches = table.caches()
            missing |= table.missing
            pred = predict(
                head,
                table,
                table.ids,
                labels,
                batch_size=setup.train.batch_size,
                device=resolve_device(setup.train.device),
                log_prior=trained.log_prior,
                keep_maps=True,
            )
            metrics = classification_metrics(pred.labels, pred.predicted, classes)
            runs.append(
                {
                    "run": split.run,
                    "epoch": trained.epoch,
                    **metrics,
                    "n_missing": len(table.missing),
                    "n_scored_by_prior": int((~pred.valid).sum()),
                }
            )
            records = prediction_records(pred, classes, table)
            _write_json(out_dir / "predictions" / f"run_{split.run:02d}.json", records)
            confusion_rows += [
                {"actual": classes[a], "predicted": classes[p]}
                for a, p in zip(pred.labels, pred.predicted, strict=True)
            ]
    if not runs:
        raise FileNotFoundError(f"no trained run in {model_dir}: run `dvc repro train@{setup.key}` first")
    summary = {
        "head": setup.head,
        "protocol": setup.protocol,
        "selection": SELECTION_LABELS[setup.selection],
        **aggregate_runs(runs),
        "n_test_missing": len(missing),
        "features": {k: ("RANDOM WEIGHTS" if v.random else v.weights) for k, v in caches.items()},
    }
    if setup.detection_ground_truth:
        summary["detection_map"] = detection_scores(out_dir, setup)
    _write_json(out_dir / "metrics.json", summary)
    _write_json(out_dir / "scores.json", {setup.key: scores_of(summary)})
    _write_json(out_dir / "runs.json", runs)
    _write_json(out_dir / "confusion.json", confusion_rows)
    _write_missing(out_dir / "missing.csv", missing)
    return summary


def detection_scores(out_dir: Path, setup: HeadSetup) -> dict[str, float]:
    """Weakly-supervised detection (TEN Table 3): mAP at tIoU 0.1-0.5 of each run's test videos, averaged
    over runs, against the ground-truth segments of the videos that have some."""
    truth = read_ground_truth(setup.detection_ground_truth)
    theta = float(setup.options.get("theta", 0.7))
    per_run = []
    for path in sorted((out_dir / "predictions").glob("run_*.json")):
        found = detections_from_predictions(json.loads(path.read_text(encoding="utf-8")), theta)
        per_run.append(mean_ap({v: d for v, d in found.items() if v in truth}, truth))
    return {f"tiou_{t:.1f}": float(np.mean([r[t] for r in per_run])) for t in per_run[0]}


def _hashed(setup: HeadSetup) -> dict[str, Any]:
    """The setup as the run's configuration hash sees it: without the trainer's speed-only fields."""
    values = asdict(setup)
    values["train"] = {k: v for k, v in values["train"].items() if k not in UNHASHED}
    return values


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")


def _write_missing(path: Path, missing: dict[str, str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["video_id", "reason"])
        writer.writerows(sorted(missing.items()))

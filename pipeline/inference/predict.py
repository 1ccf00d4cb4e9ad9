"""`vemo predict`: a trained head's prediction for new video files, with what it attended to.

    best.pt ─load_trained─> TrainedHead (classes, polarity, prior, feature scales, caches' hashes)
            ─build─> head
    VIDEO... ─build_caches (temporary folder)─> FeatureTable ─training.predict─> one record per video

The JSON written (`predictions.json`) holds, besides the checkpoint, head, classes and the features'
weights ("RANDOM WEIGHTS" or sha256), per video:

    video, video_id, status ("ok" | "failed"), error (failed only),
    predicted, probability, polarity ("positive" | "negative" | "neutral" | "unknown"),
    top [{class, probability, polarity}, ...]  (best first), probabilities {class: p},
    valid (False: the head had nothing to look at, e.g. CAAN without a face; scored by the training prior),
    has_audio, attention {name: array as nested lists}  (the head's `saved` maps),
    times_ms {input: [[start, end], ...]}, segments {name: [{start_ms, end_ms, value}, ...]}  (1-D maps),
    picture (file name of the attention picture, beside the JSON)

A video that cannot be decoded is reported as failed, naming the file; the others go on.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.cache import CacheReader
from pipeline.inference.extract import build_caches, extractor_identities
from pipeline.inference.plan import Plan, expected_hashes
from pipeline.report.pictures import draw_picture
from pipeline.report.timeline import POLARITY_WORDS, segments_of
from pipeline.training.data import FeatureTable
from pipeline.training.loop import resolve_device
from pipeline.training.predict import predict
from pipeline.training.stage import prediction_records
from pipeline.training.trained import TrainedHead, load_trained


@dataclass
class ConfigCheck:
    """Per cache the head reads: the hash its checkpoint was trained with and the one recomputed here."""

    trained: dict[str, str] = field(default_factory=dict)
    recomputed: dict[str, str] = field(default_factory=dict)

    @property
    def differing(self) -> list[str]:
        return sorted(k for k, v in self.trained.items() if self.recomputed.get(k) != v)


def video_ids(videos: list[Path]) -> dict[str, Path]:
    """A distinct id per file: its stem, numbered when two files share one."""
    ids: dict[str, Path] = {}
    for video in videos:
        stem, n = video.stem, 1
        while stem in ids:
            n += 1
            stem = f"{video.stem}~{n}"
        ids[stem] = video
    return ids


def polarity_word(trained: TrainedHead, index: int) -> str:
    polarity = trained.polarity
    return "unknown" if polarity is None else POLARITY_WORDS[int(polarity[index])]


def describe(record: dict[str, Any], trained: TrainedHead, top_k: int) -> dict[str, Any]:
    """A prediction record (`training.stage.prediction_records`) as predict reports it."""
    classes = trained.classes
    probs = np.array([record["probabilities"][c] for c in classes])
    order = np.argsort(-probs, kind="stable")
    top = [{"class": classes[i], "probability": float(probs[i]), "polarity": polarity_word(trained, int(i))}
           for i in order[:top_k]]
    return {
        "predicted": top[0]["class"], "probability": top[0]["probability"], "polarity": top[0]["polarity"],
        "top": top, "probabilities": record["probabilities"], "valid": record["valid"],
        "attention": record["attention"], "times_ms": record["times_ms"],
        "segments": segments_of(record),
    }


def features_used(weights: dict[str, str], needed: list[str]) -> dict[str, str]:
    return {k: "RANDOM WEIGHTS" if weights[k] == "random" else weights[k] for k in needed}


def run_head(head: torch.nn.Module, trained: TrainedHead, cache_dir: Path, ids: list[str],
             device: str) -> tuple[dict[str, dict[str, Any]], dict[str, bool]]:
    """Records of the head on the videos `ids` of `cache_dir`, and whether each has audio."""
    with FeatureTable(head.inputs(), cache_dir, ids, preload=False) as table:
        table.norms = trained.norms()
        pred = predict(head, table, table.ids, dict.fromkeys(table.ids, 0), batch_size=8,
                       device=resolve_device(device), log_prior=trained.log_prior, keep_maps=True)
        records = {r["video_id"]: r for r in prediction_records(pred, trained.classes, table)}
        return records, dict(table.audio_present)


def predict_videos(videos: list[Path], *, checkpoint: Path, plan: Plan, out_dir: Path, top_k: int = 3,
                   device: str = "auto", strict: bool = False, keep_cache: Path | None = None,
                   log: Any = print) -> dict[str, Any]:
    """Predict every file of `videos` with the head of `checkpoint`; write `out_dir/predictions.json` and
    one picture per video; return what the JSON holds. `plan` must cover the caches the head reads.
    With `strict`, a cache configuration that differs from the checkpoint's is an error, else a warning."""
    trained = load_trained(checkpoint)
    head = trained.build()
    needed = sorted({s.cache for s in head.inputs().values()})
    recomputed = expected_hashes(plan, extractor_identities(plan))
    check = ConfigCheck({k: trained.caches[k].config_hash for k in needed if k in trained.caches},
                        {k: v for k, v in recomputed.items() if k in needed})
    if check.differing:
        message = (f"the cache configuration for {check.differing} differs from the one {checkpoint} was "
                   "trained with (decode / faces / features params or weights changed): its features are "
                   "not those the head learnt from")
        if strict:
            raise ValueError(message)
        log(f"[predict] WARNING: {message}")
    ids = video_ids([Path(v) for v in videos])
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vemo-predict-") as tmp:
        cache_dir = keep_cache or Path(tmp)
        failures = build_caches(plan, ids, cache_dir, log=log)
        ok = [v for v in ids if v not in failures]
        records, audio = run_head(head, trained, cache_dir, ok, device) if ok else ({}, {})
        weights = {k: v.weights for k, v in trained.caches.items()}
        now = {k: v.weights for k, v in extractor_identities(plan).items()}
        # the head learnt from random-weight features, or the features computed here are from random weights
        random_weights = any(weights[k] == "random" or now.get(k) == "random" for k in needed)
        results = []
        with CacheReader(cache_dir / "decode.h5") as decode:
            faces = CacheReader(cache_dir / "faces.h5") if (cache_dir / "faces.h5").is_file() else None
            for video_id, video in ids.items():
                row: dict[str, Any] = {"video": str(video), "video_id": video_id}
                if video_id not in records:
                    reason = failures.get(video_id, "no features")
                    results.append({**row, "status": "failed", "error": reason})
                    continue
                row |= {"status": "ok", "has_audio": audio[video_id],
                        **describe(records[video_id], trained, top_k)}
                picture = out_dir / f"{video_id}.png"
                # the table's flag is what the head saw; the picture names the audio it lacked
                draw_picture(trained.head, {**records[video_id], "has_audio": audio[video_id]}, decode, faces,
                             picture, title=_title(row, random_weights))
                results.append({**row, "picture": picture.name})
            if faces is not None:
                faces.close()
    summary = {
        "checkpoint": str(checkpoint), "head": trained.head, "key": trained.key,
        "classes": trained.classes, "features": features_used(weights, needed),
        "random_weights": random_weights,
        "config_check": {k: {"trained": check.trained[k], "recomputed": check.recomputed.get(k, ""),
                             "match": k not in check.differing} for k in check.trained},
        "videos": results,
    }
    (out_dir / "predictions.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def _title(row: dict[str, Any], random_weights: bool) -> str:
    prior = "" if row["valid"] else "  (nothing to look at: scored by the training prior)"
    name = Path(row["video"]).name
    random = "  [RANDOM WEIGHTS: exercises the pipeline only]" if random_weights else ""
    return f"{name}: {row['predicted']} {row['probability']:.2f} ({row['polarity']}){prior}{random}"


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    top = max(values, default=0.0)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1)))] if top > 0 else SPARKS[0]
                   for v in values)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """What `vemo predict` prints: per video the top classes with probability and polarity, and each 1-D
    attention over time as a sparkline with its time range."""
    random = " -- features from RANDOM WEIGHTS: the prediction only exercises the pipeline" \
        if summary["random_weights"] else ""
    lines = [f"head {summary['key']} ({summary['head']}) from {summary['checkpoint']}{random}"]
    for row in summary["videos"]:
        lines.append(row["video"])
        if row["status"] != "ok":
            lines.append(f"  FAILED: {row['error']}")
            continue
        for rank, top in enumerate(row["top"], start=1):
            lines.append(f"  {rank}. {top['class']:<14s} {top['probability']:.3f}  {top['polarity']}")
        if not row["valid"]:
            lines.append("  (the head had nothing to look at, e.g. no face: scored by the training prior)")
        for name, cells in row["segments"].items():
            if cells and not isinstance(cells[0]["value"], list):
                span = f"{cells[0]['start_ms'] / 1000:.1f}-{cells[-1]['end_ms'] / 1000:.1f} s"
                lines.append(f"  {name:<15s} {sparkline([c['value'] for c in cells])}  "
                             f"({len(cells)} rows, {span})")
        lines.append(f"  picture: {row['picture']}")
    return lines

"""The run report of one head entry: one self-contained HTML page from what train@ and evaluate@ wrote.

    reports/<dataset>/<key>/{metrics.json, runs.json, predictions/run_XX.json}   (evaluate@<key>)
    reports/<dataset>/<key>/live/run_XX/                                         (train@<key>)
    cache/<dataset>/<cache>.h5 metadata (config hash, weights, last write), decode.h5 (+ faces.h5) frames
      ──> reports/<dataset>/<key>/report.html

Sections: dataset and protocol; the extractor caches used, each with its weights' sha256 or the words
"random weights"; the metrics table (over runs and per run); per-class accuracy; the confusion matrix
(summed over runs); the training curves of every run; the `n_examples` most and least confident test
predictions (highest and lowest top probability over every run's test videos) with their attention pictures
(`report.pictures`), drawn from the dataset's decode cache (a video missing there is listed without one);
with fewer than 2 x `n_examples` test predictions each list shows half of them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from pipeline.cache import CacheReader
from pipeline.report.figures import confusion_png, curves_png
from pipeline.report.page import figure, page, paragraph, section, table
from pipeline.report.pictures import draw_picture


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def cache_rows(cache_dir: Path, features: dict[str, str]) -> list[list[str]]:
    """Per cache the head read: file, configuration hash, weights ("random weights" or sha256), last write."""
    rows = []
    for name, weights in sorted(features.items()):
        path = cache_dir / f"{name}.h5"
        meta: dict[str, Any] = {}
        if path.is_file():
            with CacheReader(path) as reader:
                meta = reader.metadata
        words = "random weights" if weights == "RANDOM WEIGHTS" else weights
        rows.append([name, str(path), str(meta.get("config_hash", "(cache file absent)")), words,
                     str(meta.get("updated", ""))])
    return rows


def confident(records: list[dict[str, Any]], n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The n most and the n least confident records (by top probability): best first, worst first. With
    fewer than 2n records each list gets half of them, so no prediction is shown twice."""
    ranked = sorted(records, key=lambda r: (-max(r["probabilities"].values()), r["video_id"], r["run"]))
    n = min(n, len(ranked) // 2)
    return ranked[:n], ranked[::-1][:n]


def example_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["video_id"], f"run_{r['run']:02d}", r["label"], r["predicted"],
             float(max(r["probabilities"].values())), "yes" if r["correct"] else "no",
             "" if r["valid"] else "prior (nothing to look at)"] for r in records]


def pictures(head: str, records: list[dict[str, Any]], cache_dir: Path, *, random_weights: bool) -> list[str]:
    """An attention picture (as an HTML figure) per record whose video the decode cache holds; each says
    RANDOM WEIGHTS in its title when the head learnt from random-weight features."""
    decode_path, faces_path = cache_dir / "decode.h5", cache_dir / "faces.h5"
    if not decode_path.is_file():
        # a colleague who pulled only the feature caches (docs/team.md): the page is built without pictures
        why = (f"no attention pictures: the decode cache {decode_path} is not on this machine (pull it with "
               "`dvc pull decode`, or run `dvc repro decode` where the videos are)")
        print(f"report: {why}", flush=True)
        return [paragraph(why)]
    out = []
    with tempfile.TemporaryDirectory() as tmp, CacheReader(decode_path) as decode:
        faces = CacheReader(faces_path) if faces_path.is_file() else None
        for i, r in enumerate(records):
            if r["video_id"] not in decode:
                out.append(paragraph(f"{r['video_id']}: not in {decode_path}, no picture"))
                continue
            title = (f"{r['video_id']}: {r['predicted']} {max(r['probabilities'].values()):.2f} "
                     f"(label {r['label']})" + ("  [RANDOM WEIGHTS]" if random_weights else ""))
            png = draw_picture(head, r, decode, faces, Path(tmp) / f"{i}.png", title=title).read_bytes()
            out.append(figure(png, title))
        if faces is not None:
            faces.close()
    return out


def protocol_section(dataset: str, key: str, metrics: dict[str, Any], n_records: int) -> str:
    return section("Dataset and protocol", table(None, [
        ["dataset", dataset], ["head", metrics["head"]], ["entry", key],
        ["classes", ", ".join(metrics["per_class_accuracy"])], ["protocol", metrics["protocol"]],
        ["runs", metrics["runs"]], ["selection", metrics["selection"]],
        ["test videos without features (left out)", metrics["n_test_missing"]],
        ["test predictions", n_records],
    ]))


def caches_section(cache_dir: Path, metrics: dict[str, Any]) -> str:
    header = ["cache", "file", "configuration hash", "weights", "last written"]
    return section("Extractor caches used", table(header, cache_rows(cache_dir, metrics["features"])))


def metrics_section(metrics: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    many = metrics["runs"] > 1
    summary = [
        ["accuracy", float(metrics["accuracy"]), float(metrics["accuracy_std"]) if many else "-"],
        ["macro-F1", float(metrics["macro_f1"]), float(metrics["macro_f1_std"]) if many else "-"],
        *([[f"mAP at tIoU {t[5:]}", float(v), "-"] for t, v in metrics.get("detection_map", {}).items()]),
    ]
    per_run = [[r["run"], r["epoch"], float(r["accuracy"]), float(r["macro_f1"]), r["n"],
                r["n_scored_by_prior"], r["n_missing"]] for r in runs]
    header = ["run", "epoch", "accuracy", "macro-F1", "test videos", "scored by the prior", "missing"]
    return section("Metrics", table(["", "value", "std over runs"], summary), table(header, per_run))


def class_sections(metrics: dict[str, Any]) -> list[str]:
    classes = list(metrics["per_class_accuracy"])
    caption = "rows: actual class, columns: predicted (summed over runs)"
    rows = [[c, float(a)] for c, a in metrics["per_class_accuracy"].items()]
    return [section("Per-class accuracy", table(["class", "accuracy"], rows)),
            section("Confusion matrix", figure(confusion_png(metrics["confusion"], classes), caption))]


def curves_section(live_dir: Path) -> str:
    runs = sorted(live_dir.glob("run_*"))
    figures = [figure(png, f"{d.name}: per-epoch curves") for d in runs if (png := curves_png(d)) is not None]
    return section("Training curves", *(figures or [paragraph(f"no per-epoch curves in {live_dir}")]))


def example_sections(head: str, records: list[dict[str, Any]], cache_dir: Path, n: int, *,
                     random_weights: bool) -> list[str]:
    most, least = confident(records, n)
    header = ["video", "run", "label", "predicted", "probability", "correct", "note"]
    return [section(title, table(header, example_rows(chosen)),
                    *pictures(head, chosen, cache_dir, random_weights=random_weights))
            for title, chosen in ((f"The {len(most)} most confident test predictions", most),
                                  (f"The {len(least)} least confident test predictions", least))]


def random_caches(metrics: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in metrics["features"].items() if v == "RANDOM WEIGHTS")


def random_warning(metrics: dict[str, Any]) -> list[str]:
    random = random_caches(metrics)
    if not random:
        return []
    return [paragraph(f"Features from RANDOM WEIGHTS ({', '.join(random)}): these numbers only exercise the "
                      "pipeline and say nothing about the published method.", "warning")]


def build_report(*, dataset: str, key: str, report_dir: Path, cache_dir: Path, out: Path,
                 n_examples: int = 10) -> Path:
    """Write the report page of head entry `key` to `out` (see the module docstring)."""
    metrics, runs = _json(report_dir / "metrics.json"), _json(report_dir / "runs.json")
    records = [{**r, "run": int(p.stem.split("_")[1])}
               for p in sorted((report_dir / "predictions").glob("run_*.json")) for r in _json(p)]
    body = [*random_warning(metrics), protocol_section(dataset, key, metrics, len(records)),
            caches_section(cache_dir, metrics), metrics_section(metrics, runs), *class_sections(metrics),
            curves_section(report_dir / "live"),
            *example_sections(metrics["head"], records, cache_dir, n_examples,
                              random_weights=bool(random_caches(metrics)))]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(f"Run report: {key} on {dataset}", body), encoding="utf-8")
    return out

"""What a build found, for people (a printed summary) and for DVC (``manifest_report.json``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.manifests.duplicates import Duplicates
from pipeline.manifests.format import write_manifest
from pipeline.manifests.inventory import write_inventory
from pipeline.manifests.result import BuildResult


def split_class_counts(result: BuildResult) -> dict[str, dict[str, int]]:
    """Videos per split (``""`` written as ``none``) and class, every class listed even at 0."""
    counts = Counter((r.split or "none", r.label) for r in result.manifest.records)
    splits = sorted({s for s, _ in counts})
    return {s: {c: counts[(s, c)] for c in result.manifest.classes} for s in splits}


def build_report(result: BuildResult, duplicates: Duplicates | None = None) -> dict[str, Any]:
    per = split_class_counts(result)
    return {
        "videos": len(result.manifest),
        "classes": list(result.manifest.classes),
        "per_split": {s: sum(c.values()) for s, c in per.items()},
        "per_split_class": per,
        "missing": {"count": len(result.missing), "files": result.missing},
        "unlisted": {"count": len(result.unlisted), "files": result.unlisted},
        "rejected": {"count": len(result.rejected),
                     "files": [{"path": p, "reason": why} for p, why in result.rejected]},
        "warnings": result.warnings,
        "other_files": result.others,
        "duplicates": (duplicates or Duplicates()).report(),
    }


def _named(title: str, items: list[str], limit: int) -> list[str]:
    if not items:
        return []
    more = [f"  ... and {len(items) - limit} more"] if len(items) > limit else []
    return [f"{title}: {len(items)}", *(f"  {x}" for x in items[:limit]), *more]


def format_summary(result: BuildResult, limit: int = 20, duplicates: Duplicates | None = None) -> str:
    report = build_report(result, duplicates)
    lines = [f"manifest: {report['videos']} videos, {len(report['classes'])} classes"]
    for split, per_class in report["per_split_class"].items():
        by_class = ", ".join(f"{c} {n}" for c, n in per_class.items())
        lines.append(f"  {split}: {sum(per_class.values())} ({by_class})")
    lines += _named("listed but not on disk (left out)", result.missing, limit)
    lines += _named("on disk but in no list (left out)", result.unlisted, limit)
    lines += _named("named like a video but not a readable video file (left out)",
                    [f"{p}: {why}" for p, why in result.rejected], limit)
    lines += _named("warnings", result.warnings, limit)
    lines += (duplicates or Duplicates()).lines(limit)
    if result.others:
        kinds = ", ".join(f"{ext or '(no extension)'} {n}" for ext, n in result.others.items())
        lines.append(f"other files, not read (not a video file extension): {kinds}")
    return "\n".join(lines)


def write_outputs(result: BuildResult, out_dir: str | Path, inventory: list[tuple[str, int, str]],
                  duplicates: Duplicates | None = None) -> Path:
    """Write ``manifest.csv`` (+ ``manifest.classes.txt``), ``inventory.csv`` and ``manifest_report.json``;
    return the manifest."""
    out = Path(out_dir)
    write_manifest(result.manifest, out / "manifest.csv")
    write_inventory(inventory, out / "inventory.csv")
    tmp = out / "manifest_report.json.tmp"
    report = build_report(result, duplicates)
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out / "manifest_report.json")
    return out / "manifest.csv"

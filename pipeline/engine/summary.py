"""What a per-video stage reports: counts (a DVC metric) and the failure list with a reason per video."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Failure:
    video_id: str
    path: str
    reason: str


@dataclass
class StageSummary:
    stage: str
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    lost_workers: int = 0       # Dask workers that left during the stage (their tasks ran elsewhere)
    shipped_bytes: int = 0      # inputs sent with the tasks (dask.shared_filesystem: false)
    failures: list[Failure] = field(default_factory=list)

    def fail(self, video_id: str, path: str, reason: str) -> None:
        self.failed += 1
        self.failures.append(Failure(video_id, path, reason))
        print(f"[{self.stage}] FAILED {path}: {reason}", flush=True)

    def counts(self) -> dict[str, int]:
        """The video counts; `lost_workers` too when a worker left (the same inputs give the same counts)."""
        counts = {"total": self.total, "done": self.done, "skipped": self.skipped, "failed": self.failed}
        return counts | ({"lost_workers": self.lost_workers} if self.lost_workers else {})

    def exit_code(self) -> int:
        """0 when at least one video is (now or already) done; a stage that produced nothing fails."""
        return 0 if self.done + self.skipped > 0 else 1

    def line(self) -> str:
        lost = f", {self.lost_workers} Dask workers lost" if self.lost_workers else ""
        shipped = f", {self.shipped_bytes / 1e6:.1f} MB of inputs shipped" if self.shipped_bytes else ""
        return (f"[{self.stage}] {self.done} done, {self.skipped} skipped (cached), {self.failed} failed "
                f"of {self.total} videos in {self.seconds:.1f} s{lost}{shipped}")

    def write(self, metrics_path: Path, failures_path: Path) -> None:
        """Counts as a DVC metric (deterministic), failures as CSV with the reason per video."""
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(json.dumps(self.counts(), indent=2) + "\n", encoding="utf-8")
        with failures_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["video_id", "path", "reason"])
            writer.writeheader()
            writer.writerows(asdict(x) for x in sorted(self.failures, key=lambda x: x.video_id))

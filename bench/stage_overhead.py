"""Fixed cost per stage: each per-video stage's entry point (`python -m stages.<x>`, as dvc.yaml runs it)
on a tiny demo project of 2 one-second clips, first with its cache absent, then again with nothing to do.

    .venv/bin/python -m bench.stage_overhead                  # decode, faces and every feat@ stage
    .venv/bin/python -m bench.stage_overhead --stages decode feat@alexnet_fc7 --keep /tmp/overhead

The fixed cost of a run is its wall time minus the per-video work, the seconds the stage's summary line
reports for its map over the videos (`StageSummary.seconds`: from the first task submitted to the last
result stored). What remains is what every run pays whatever the dataset's size: the interpreter and its
imports, the cluster's start and close, the extractor's build on the workers, the caches opened and the
reports written. The second run has every video cached: its whole wall time is fixed cost.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import loadavg, machine_line, table
from pipeline.engine.warm_pool import stop_pools

REPO = Path(__file__).resolve().parents[1]   # the stages run from this checkout (PYTHONPATH)
SUMMARY = re.compile(r"^\[(?P<stage>[^\]]+)\] \d+ done, .* videos in (?P<seconds>[\d.]+) s$", re.M)


def tiny_project(work: Path, keep_alive: float = 0) -> list[str]:
    """params.yaml (2 demo clips of about 1 s, 2 snippets of 8 frames, every extractor on the CPU) and
    stage_graph.yaml in `work`; returns the per-video stages, in dvc.yaml's order."""
    with (REPO / "params.yaml").open(encoding="utf-8") as f:
        params: dict[str, Any] = yaml.safe_load(f)
    params = copy.deepcopy(params)
    params["demo"].update(classes=["anger", "joy"], clips_per_class=1, min_seconds=1.0, max_seconds=1.2)
    params["decode"].update(segments=2, frames_per_segment=8)
    params["dask"]["keep_alive"] = keep_alive
    for name, section in params["features"].items():
        section["device"] = "cpu"
        if "segments" in section.get("options", {}):
            section["options"]["segments"] = 2
        params["features"][name] = section
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (work / "stage_graph.yaml").write_text((REPO / "stage_graph.yaml").read_text(encoding="utf-8"))
    return ["decode", "faces", *(f"feat@{name}" for name in params["features"])]


def command(stage: str) -> list[str]:
    if stage.startswith("feat@"):
        return [sys.executable, "-m", "stages.features", stage.removeprefix("feat@")]
    return [sys.executable, "-m", f"stages.{stage}"]


def cpu_of_children() -> float:
    """CPU seconds (user + system) of this process's finished children and theirs (the workers)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(cmd: list[str], work: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one entry point run in `work`, as DVC runs it; a failure
    stops the bench. The CPU seconds count the driver and its worker processes: on a machine shared with
    other work they move far less than the wall time."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cpu, start = cpu_of_children(), time.perf_counter()
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:])} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return wall, cpu_of_children() - cpu, done.stdout


def work_seconds(stdout: str) -> float:
    """The per-video work of a run: the seconds its summary line reports."""
    found = SUMMARY.search(stdout)
    if found is None:
        raise SystemExit(f"no summary line in:\n{stdout[-2000:]}")
    return float(found["seconds"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="*", help="stages to time (default: decode, faces, every feat@)")
    parser.add_argument("--quick", action="store_true", help="decode and feat@alexnet_fc7 only")
    parser.add_argument("--keep", type=Path, help="build the tiny project here and keep it")
    parser.add_argument("--keep-alive", type=float, default=0.0,
                        help="dask.keep_alive: the stages share a pool of workers kept warm (its start "
                             "counts in the first stage's row; its workers' CPU is not counted)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vemo-overhead-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        stages = tiny_project(work, args.keep_alive)
        for prep in ("demo", "manifest"):
            run([sys.executable, "-m", f"stages.{prep}"], work)
        chosen = args.stages or (["decode", "feat@alexnet_fc7"] if args.quick else stages)
        load = loadavg()
        rows, totals = [], [0.0, 0.0, 0.0, 0.0]
        for stage in chosen:
            cold, cold_cpu, out = run(command(stage), work)
            work_s = work_seconds(out)
            warm, warm_cpu, _ = run(command(stage), work)
            for i, value in enumerate((cold - work_s, cold_cpu, warm, warm_cpu)):
                totals[i] += value
            rows.append([stage, f"{cold:.1f}", f"{work_s:.1f}", f"**{cold - work_s:.1f}**", f"{cold_cpu:.1f}",
                         f"**{warm:.1f}**", f"{warm_cpu:.1f}"])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
        rows.append(["all", "", "", *(f"{t:.1f}" for t in totals)])
        if args.keep_alive:
            stop_pools()
    pool = (f", dask.keep_alive {args.keep_alive:g} s (one pool of workers for every stage, started by the "
            "first; the CPU columns leave out the pool's workers)") if args.keep_alive else ""
    flag = f" --keep-alive {args.keep_alive:g}" if args.keep_alive else ""
    print(f"### 9. Fixed cost per stage\n\n{machine_line()}; 2 demo clips of about 1 s (2 snippets of 8 "
          f"frames), dask.workers 2 x 1 thread, every extractor on the CPU{pool}; load average {load} at the "
          f"start, {loadavg()} at the end\n\n    .venv/bin/python -m bench.stage_overhead{flag}\n")
    print(table(["stage", "wall s, 2 videos", "per-video work s", "fixed cost s", "CPU s",
                 "wall s, nothing to do", "CPU s"], rows))
    print("\nfixed cost = wall - per-video work (the summary line's seconds); CPU: the driver and its "
          "workers, user + system")


if __name__ == "__main__":
    main()

"""The Dask runner on a real LocalCluster, and on a scheduler and a worker started as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.errors import VideoError
from pipeline.runner import ClusterConfig, StageSummary, VideoTask, dask_client, map_videos


def square_or_fail(video_id: str, path: str, *, offset: int) -> int:
    if video_id.startswith("bad"):
        raise VideoError(path, "deliberately bad")
    if video_id.startswith("crash"):
        raise RuntimeError("unexpected crash")
    return int(video_id.split("-")[1]) ** 2 + offset


TASKS = [VideoTask(f"ok-{i}", f"/videos/ok-{i}.mp4") for i in range(12)] + [
    VideoTask("bad-1", "/videos/bad 1.mp4"), VideoTask("crash-1", "/videos/crash.mp4")]


def run(client, tasks=TASKS) -> tuple[StageSummary, dict[str, int]]:
    results: dict[str, int] = {}

    def store(task: VideoTask, value: int) -> None:
        assert task.video_id not in results, "a video was stored twice"
        results[task.video_id] = value

    summary = StageSummary("test", total=len(tasks))
    map_videos(client, square_or_fail, tasks, store, summary, kwargs={"offset": 1}, retries=1,
               max_in_flight=3)
    return summary, results


def check(summary: StageSummary, results: dict[str, int]) -> None:
    assert results == {f"ok-{i}": i * i + 1 for i in range(12)}
    assert (summary.done, summary.failed) == (12, 2)
    reasons = {f.video_id: f.reason for f in summary.failures}
    assert reasons["bad-1"] == "deliberately bad"
    assert "RuntimeError: unexpected crash" in reasons["crash-1"]


def test_local_cluster_maps_records_failures_and_writes_summary(tmp_path: Path) -> None:
    with dask_client(ClusterConfig(workers=2, threads_per_worker=1)) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        summary, results = run(client)
    check(summary, results)
    summary.write(tmp_path / "s.json", tmp_path / "f.csv")
    assert '"failed": 2' in (tmp_path / "s.json").read_text()
    assert "bad 1.mp4,deliberately bad" in (tmp_path / "f.csv").read_text()


@pytest.fixture
def external_cluster(tmp_path: Path):
    """`dask scheduler` and `dask worker` as separate processes on localhost."""
    bin_dir = Path(sys.executable).parent
    scheduler_file = tmp_path / "scheduler.json"
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here)])}
    scheduler = subprocess.Popen([bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", scheduler_file],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([bin_dir / "dask", "worker", "--scheduler-file", scheduler_file,
                               "--nworkers", "1", "--nthreads", "2", "--no-dashboard", "--host", "127.0.0.1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        yield scheduler_file
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
            proc.wait(timeout=30)


def test_existing_scheduler_by_address(external_cluster: Path) -> None:
    import json

    address = json.loads(external_cluster.read_text())["address"]
    with dask_client(ClusterConfig(scheduler=address)) as client:
        client.wait_for_workers(1, timeout=60)
        summary, results = run(client)
    check(summary, results)

"""The engine's Dask map on a LocalCluster, and on a scheduler and a worker started as separate processes."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from distributed.worker_memory import parse_memory_limit

from pipeline.engine import dask_map, worker_env
from pipeline.engine.cluster import ClusterConfig, dask_client, local_cluster
from pipeline.engine.dask_map import Outcome, VideoTask, chunk, map_groups, per_video, video_outcome
from pipeline.engine.summary import StageSummary
from pipeline.engine.worker_env import PRELOAD_ENV, TRIM_ENV
from pipeline.errors import VideoError

REPO = Path(__file__).resolve().parents[1]


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
    map_groups(client, per_video(square_or_fail), tasks, store, summary, kwargs={"offset": 1}, retries=1,
               max_in_flight=3)
    return summary, results


def check(summary: StageSummary, results: dict[str, int]) -> None:
    assert results == {f"ok-{i}": i * i + 1 for i in range(12)}
    assert (summary.done, summary.failed) == (12, 2)
    reasons = {f.video_id: f.reason for f in summary.failures}
    assert reasons["bad-1"] == "deliberately bad"
    assert "RuntimeError: unexpected crash" in reasons["crash-1"]


def squares_of_group(group: list[VideoTask], *, offset: int) -> list[Outcome]:
    """A group function: (square, size of the group it ran in) per video; the whole task crashes when one
    of its videos does, as a batched network would."""
    if any(t.video_id.startswith("crash") for t in group):
        raise RuntimeError("unexpected crash")
    return [video_outcome(lambda t=t: (square_or_fail(t.video_id, t.path, offset=offset), len(group)))
            for t in group]


def run_groups(client) -> tuple[StageSummary, dict[str, int], dict[str, int]]:
    """TASKS reordered so that groups of 3 mix good videos with the bad and the crashing one:
    [ok0 ok1 ok2] [ok3 bad ok4] [ok5 ok6 crash] [ok7 ok8 ok9] [ok10 ok11]."""
    tasks = [*TASKS[:4], TASKS[12], *TASKS[4:7], TASKS[13], *TASKS[7:12]]
    results: dict[str, int] = {}
    ran_in: dict[str, int] = {}

    def store(task: VideoTask, value: tuple[int, int]) -> None:
        assert task.video_id not in results, "a video was stored twice"
        results[task.video_id], ran_in[task.video_id] = value

    summary = StageSummary("test", total=len(tasks))
    map_groups(client, squares_of_group, tasks, store, summary, videos_per_task=3, kwargs={"offset": 1},
               retries=0, max_in_flight=2)
    return summary, results, ran_in


def test_local_cluster_maps_records_failures_and_writes_summary(tmp_path: Path) -> None:
    with dask_client(ClusterConfig(workers=2, threads_per_worker=1)) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        summary, results = run(client)
        check(summary, results)
        grouped, grouped_results, ran_in = run_groups(client)
    # the bad video fails alone; the crashing group is rerun one video per task, so only the crash fails
    check(grouped, grouped_results)
    assert ran_in == {f"ok-{i}": 1 if i in (5, 6) else 2 if i >= 10 else 3 for i in range(12)}
    summary.write(tmp_path / "s.json", tmp_path / "f.csv")
    assert '"failed": 2' in (tmp_path / "s.json").read_text()
    assert "bad 1.mp4,deliberately bad" in (tmp_path / "f.csv").read_text()


def test_groups_are_consecutive_and_never_empty() -> None:
    tasks = [VideoTask(str(i), f"{i}.mp4") for i in range(7)]
    assert [[t.video_id for t in g] for g in chunk(tasks, 3)] == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert chunk(tasks[:0], 3) == []
    with pytest.raises(ValueError, match="videos_per_task"):
        chunk(tasks, 0)


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


def test_a_worker_that_joins_with_other_code_gets_no_task_and_the_stage_stops(tmp_path: Path) -> None:
    """A late joiner (a scaled-up job, a node started by hand) is checked by every task it gets: the
    driver's check at connection (tests/test_cluster_anywhere.py) has not seen it."""
    from dask.distributed import Client, LocalCluster

    from pipeline.engine.code_identity import WorkerMismatch

    other = tmp_path / "other_commit"
    shutil.copytree(REPO / "pipeline", other / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    (other / "pipeline/engine/summary.py").write_text(
        (REPO / "pipeline/engine/summary.py").read_text() + "\n# a line of another commit\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(other), str(Path(__file__).parent)])}
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        joiner = subprocess.Popen([Path(sys.executable).parent / "dask", "worker", cluster.scheduler_address,
                                   "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(1, timeout=120)
            with pytest.raises(WorkerMismatch, match=r"other code than this stage \(vemo source ") as err:
                run(client)
        finally:
            joiner.terminate()
            joiner.wait(timeout=60)
    assert "\n" not in str(err.value) and "torch" not in str(err.value)


def test_existing_scheduler_by_address(external_cluster: Path) -> None:
    import json

    address = json.loads(external_cluster.read_text())["address"]
    with dask_client(ClusterConfig(scheduler=address)) as client:
        client.wait_for_workers(1, timeout=60)
        summary, results = run(client)
    check(summary, results)


def worker_settings() -> tuple[str | None, bool, bool]:
    """(glibc's trim threshold, Dask's profiler on, jemalloc loaded) in a worker process."""
    import dask

    jemalloc = "libjemalloc" in Path("/proc/self/maps").read_text()
    return os.environ.get(TRIM_ENV), dask.config.get("distributed.worker.profile.enabled"), jemalloc


def settings_of_workers(cfg: ClusterConfig) -> list[tuple[str | None, bool, bool]]:
    with local_cluster(cfg) as cluster, dask_client(
            ClusterConfig(scheduler=cluster.scheduler_address)) as client:
        return list(client.run(worker_settings).values())


def test_local_workers_run_jemalloc_and_neither_glibc_trim_nor_profiler(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's MALLOC_TRIM_THRESHOLD_ slows every forward pass and glibc's heap grows task after task
    (engine.worker_env): our workers preload jemalloc (scripts/bootstrap.sh installs it) and do not get
    the threshold, not even from a second cluster of the same process (the Nanny writes into this
    process's environment, which is put back each time), while a value of the user's is passed on."""
    assert worker_env.jemalloc_library() is not None
    for _ in range(2):
        assert settings_of_workers(ClusterConfig(workers=1)) == [(None, False, True)]
        assert TRIM_ENV not in os.environ and PRELOAD_ENV not in os.environ
    assert settings_of_workers(ClusterConfig(workers=1, allocator="system")) == [(None, False, False)]
    monkeypatch.setitem(worker_env._USER, TRIM_ENV, "131072")
    assert settings_of_workers(ClusterConfig(workers=1, allocator="system")) == [("131072", False, False)]
    with pytest.raises(ValueError, match="allocator"):
        settings_of_workers(ClusterConfig(workers=1, allocator="tcmalloc"))


def test_a_local_cluster_needs_no_fixed_port_and_listens_on_this_machine_only() -> None:
    """Two stages at once (or a notebook's Dask dashboard on 8787) must not collide or warn. A stage with
    one task left starts one worker, whatever `workers` says, with the memory limit it would have had."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):   # already held by another process: the case under test too
            taken.bind(("", 8787))
            taken.listen()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with local_cluster(ClusterConfig(workers=2), tasks=1) as cluster:
                sockets = cluster.scheduler.http_server._sockets.values()
                assert {s.getsockname()[0] for s in sockets} == {"127.0.0.1"}
                assert 8787 not in {s.getsockname()[1] for s in sockets}
                [worker] = cluster.scheduler.workers.values()
                assert worker.memory_limit == parse_memory_limit("auto", 1, logger=logging.getLogger())


TRIM_CHECK = """
import numpy as np
from pipeline.engine.dask_map import TrimWhenGrown

calls = []
trimmer = TrimWhenGrown(slack=64 << 20, trim=calls.append)
first = trimmer()                                  # the first task sets the base
held = np.ones(128 << 17)                          # 128 MiB, touched
grown = trimmer()
again = trimmer()                                  # the base is now what is held after the trim
print(first, grown, again, calls)
"""


def test_freed_memory_goes_back_only_once_a_worker_has_grown_past_the_slack() -> None:
    """In a fresh interpreter, as in a worker: late in the full test run this process's own heap (its
    freed memory reused for the array) hid the growth."""
    done = subprocess.run([sys.executable, "-c", TRIM_CHECK], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "False", "[0]"]


def test_glibc_trim_is_the_real_one_here() -> None:
    assert dask_map._glibc_trim()(0) in (0, 1)

"""Stages on Dask clusters started by hand (docs/cluster.md): workers started in another folder, a cluster
found by its scheduler file, a cluster whose last worker dies, and the dashboard link. Real `dask scheduler`
and `dask worker` processes on localhost; the real stage entry points as subprocesses."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from corpus import lavfi_video

from pipeline.cache import CacheReader
from pipeline.engine.cluster import ClusterConfig, dask_client

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
STAGES = (["stages.manifest"], ["stages.decode"], ["stages.features", "mfcc"],
          ["stages.features", "mfcc_resnet18"])     # every kind of stage: a listing, decode, features on both


class HandStartedCluster:
    """`dask scheduler` writing a scheduler file and `dask worker` processes, all started in `elsewhere`
    (not the project folder)."""

    def __init__(self, tmp: Path, workers: int = 1, hide: Path | None = None,
                 code: Path | None = None) -> None:
        self.elsewhere = tmp / "elsewhere"
        self.elsewhere.mkdir()
        self.file = tmp / "scheduler.json"
        # OMP_NUM_THREADS = --nthreads, as docs/cluster.md asks of workers started by hand (and as the
        # LocalCluster sets): a float sum over other thread counts may differ in its last bit
        # TMPDIR: the workers' temporary files and Dask scratch folders, to see what they leave behind
        self.scratch = tmp / "scratch"
        self.scratch.mkdir()
        # `code`: a folder holding another `pipeline` package, which the workers import instead of this one
        env = {**ENV, "OMP_NUM_THREADS": "1", "TMPDIR": str(self.scratch),
               **({"PYTHONPATH": str(code)} if code else {})}
        quiet = {"env": env, "cwd": self.elsewhere,
                 "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.scheduler = subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                           "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
                                           self.file], **quiet)
        worker = [str(BIN / "dask"), "worker", "--scheduler-file", str(self.file), "--no-nanny", "--nthreads",
                  "1", "--no-dashboard", "--host", "127.0.0.1"]
        if hide is not None:    # a mount namespace in which `hide` is an empty folder: no shared files
            hiding = f'mount -t tmpfs none "{hide}" && exec "$@"'
            worker = ["unshare", "-m", "sh", "-c", hiding, "sh", *worker]
        self.workers = [subprocess.Popen(worker, **quiet) for _ in range(workers)]
        deadline = time.time() + 300
        while not self.file.exists() and time.time() < deadline:
            time.sleep(0.2)
        from dask.distributed import Client

        with Client(scheduler_file=str(self.file)) as client:
            client.wait_for_workers(workers, timeout=300)

    def stop(self) -> None:
        for proc in (*self.workers, self.scheduler):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


def mount_namespaces() -> bool:
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[HandStartedCluster]:
    started = HandStartedCluster(tmp_path)
    try:
        yield started
    finally:
        started.stop()


def project(tmp: Path, dask: dict, videos: int = 3, name: str = "project") -> Path:
    """A project folder whose params name the dataset and the caches by relative paths."""
    folder = tmp / name
    for i in range(videos):
        # a title each: the same picture and sound, other bytes (copies would be split as one clip)
        lavfi_video(folder / f"videos/{'ab'[i % 2]}/v{i}.mp4", seconds=1.0, size="96x72",
                    extra=("-metadata", f"title=v{i}"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["dataset"].update(name="t", builder="folder", root="videos", lists=None)
    params["decode"].update(segments=2, frames_per_segment=4, train_views=0, work_max_side=96)
    params["dask"] = {**params["dask"], **dask}
    params["heads"] = {"lstm_visual": params["heads"]["lstm_visual"]}
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (folder / "stage_graph.yaml").write_text((REPO / "stage_graph.yaml").read_text())
    return folder


def stage(folder: Path, *args: str, timeout: float = 600,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=folder, env=env or ENV, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_workers_started_in_another_folder_run_every_stage_kind(tmp_path: Path,
                                                                cluster: HandStartedCluster) -> None:
    folder = project(tmp_path, {"scheduler_file": str(cluster.file)})
    for args in STAGES:
        done = stage(folder, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "0 failed" in done.stdout or args == ["stages.manifest"], done.stdout
    assert "Dask dashboard: http://127.0.0.1:" in done.stdout
    with CacheReader(folder / "cache/t/mfcc_resnet18.h5") as cache:
        assert len(cache.ids()) == 3


@pytest.mark.slow
def test_when_the_last_worker_dies_the_stage_stops_and_keeps_what_it_wrote(
        tmp_path: Path, cluster: HandStartedCluster) -> None:
    folder = project(tmp_path, {"scheduler_file": str(cluster.file), "no_worker_timeout": 3.0}, videos=24)
    assert stage(folder, "stages.manifest").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "stages.decode"], cwd=folder, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cache = folder / "cache/t/decode.h5"
    deadline = time.time() + 300
    while not cache.exists() or cache.stat().st_size < 20_000:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(cluster.workers[0].pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=300)      # bounded: never waits for a worker forever
    summary = json.loads((folder / "reports/t/decode_summary.json").read_text())
    assert "no Dask worker for 3 s" in output and "1 Dask workers lost" in output, output
    assert summary["lost_workers"] == 1 and summary["done"] >= 1 and summary["failed"] >= 1
    assert summary["done"] + summary["failed"] == 24
    with CacheReader(cache) as reader:
        assert len(reader.ids()) == summary["done"]
    failures = (folder / "reports/t/decode_failures.csv").read_text()
    assert failures.count("no Dask worker for 3 s") == summary["failed"]


def test_the_local_clusters_dashboard_link_is_printed_and_serves(capsys: pytest.CaptureFixture[str]) -> None:
    with dask_client(ClusterConfig(workers=1)) as client:
        link = re.search(r"Dask dashboard: (\S+)", capsys.readouterr().out).group(1)
        assert link == client.dashboard_link
        with urllib.request.urlopen(link, timeout=30) as page:
            assert page.status == 200 and b"Dask" in page.read()


def test_an_unreachable_scheduler_file_is_an_error_in_seconds(tmp_path: Path) -> None:
    folder = project(tmp_path, {"scheduler_file": str(tmp_path / "nowhere.json"), "connect_timeout": 2.0})
    assert stage(folder, "stages.manifest").returncode == 0
    done = stage(folder, "stages.decode", timeout=200)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "nowhere.json: no scheduler address after 2 s" in done.stderr


def test_a_port_that_accepts_but_is_no_scheduler_is_an_error_in_seconds(tmp_path: Path) -> None:
    # the dashboard's port (8787) given for the scheduler's: the port accepts the connection and never
    # answers Dask's handshake, which Dask's own timeout does not cover, so the stage waited forever
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()                         # the kernel accepts connections; nothing ever replies
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        folder = project(tmp_path, {"scheduler": address, "connect_timeout": 2.0})
        assert stage(folder, "stages.manifest").returncode == 0
        done = stage(folder, "stages.decode", timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{address} accepted the connection but did not answer as a Dask scheduler in 2 s" in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not mount_namespaces(), reason="needs mount namespaces (unshare -m) to hide the project")
def test_workers_that_cannot_read_the_project_get_everything_shipped(tmp_path: Path) -> None:
    import torch
    import torchvision

    folder = project(tmp_path, {"shared_filesystem": False})
    (folder / "weights").mkdir()
    torch.save(torchvision.models.resnet18().state_dict(), folder / "weights/resnet18.pth")
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["features"]["mfcc_resnet18"]["weights"] = "weights/resnet18.pth"
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shared = tmp_path / "shared"
    shutil.copytree(folder, shared)

    hidden = HandStartedCluster(tmp_path, workers=2, hide=folder)
    try:
        from dask.distributed import Client

        with Client(scheduler_file=str(hidden.file)) as client:
            assert set(client.run(os.path.exists, str(folder / "videos")).values()) == {False}
        params["dask"]["scheduler_file"] = str(hidden.file)
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for args in STAGES:
            done = stage(folder, *args)
            assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    finally:
        hidden.stop()
    # the workers' copies of the checkpoint went with them (in Dask's scratch folder, not left in /tmp)
    assert not [p.name for p in hidden.scratch.rglob("*.pth")]
    for args in STAGES:
        assert stage(shared, *args).returncode == 0
    for name in ("decode", "mfcc", "mfcc_resnet18"):
        with CacheReader(folder / f"cache/t/{name}.h5") as a, CacheReader(shared / f"cache/t/{name}.h5") as b:
            assert a.ids() == b.ids() and len(a.ids()) == 3
            assert a.metadata["config_hash"] == b.metadata["config_hash"]
            assert a.metadata["weights"] == b.metadata["weights"]
            for video in a.ids():
                assert a.attrs(video)["sha256"] == b.attrs(video)["sha256"], (name, video)
    with CacheReader(folder / "cache/t/mfcc_resnet18.h5") as cache:
        assert cache.metadata["weights"] not in ("random", "none")
    assert str(folder / "videos") in (folder / "reports/t/probe.csv").read_text()


@pytest.mark.slow
def test_workers_running_other_code_are_refused_before_they_compute(tmp_path: Path) -> None:
    other = tmp_path / "other_commit"   # this pipeline with one line more: workers left from another commit
    shutil.copytree(REPO / "pipeline", other / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "pipeline/decode/video.py", "a", encoding="utf-8") as f:
        f.write("\n# a line of another commit\n")
    cluster = HandStartedCluster(tmp_path, code=other)
    try:
        folder = project(tmp_path, {"scheduler_file": str(cluster.file)})
        assert stage(folder, "stages.manifest").returncode == 0
        done = stage(folder, "stages.decode")
    finally:
        cluster.stop()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stdout + done.stderr
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("[decode] dask worker tcp://127.0.0.1:"), said
    assert "runs other code than this stage (vemo source " in said[0] and "torch" not in said[0], said
    with CacheReader(folder / "cache/t/decode.h5") as cache:
        assert cache.ids() == []


@pytest.mark.slow
def test_a_pool_kept_alive_serves_the_next_stages_and_exits_once_idle(tmp_path: Path) -> None:
    pooled, plain = project(tmp_path, {"keep_alive": 20.0}), project(tmp_path, {}, name="plain")
    env = {**ENV, "TMPDIR": str(tmp_path)}          # where the pool keeps its address file
    links = []
    for args in STAGES[:3]:
        done = stage(pooled, *args, env=env)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
        links += re.findall(r"Dask dashboard: (\S+)", done.stdout)
    (address,) = (tmp_path / f"vemo-pools-{os.getuid()}").glob("*/scheduler.json")
    pid = json.loads(address.read_text())["pid"]
    for args in STAGES[:3]:
        assert stage(plain, *args).returncode == 0
    assert len(links) == 2 and len(set(links)) == 1, links        # two stages, one pool's scheduler
    for name in ("decode", "mfcc"):                                 # the values of a LocalCluster's own
        with CacheReader(pooled / f"cache/t/{name}.h5") as a, CacheReader(plain / f"cache/t/{name}.h5") as b:
            assert a.ids() == b.ids() and len(a.ids()) == 3
            assert a.metadata["config_hash"] == b.metadata["config_hash"]
            for video in a.ids():
                assert a.attrs(video)["sha256"] == b.attrs(video)["sha256"], (name, video)
    deadline = time.monotonic() + 120
    while address.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not address.exists(), "the pool outlived dask.keep_alive"
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the pool's process is still running")

    # a pool killed outright leaves its address file, whose process number may be another process's by
    # now (this one's here): its scheduler does not answer, and the next stage starts a new pool
    address.write_text(json.dumps({"address": "tcp://127.0.0.1:1", "pid": os.getpid()}))
    (pooled / "cache/t/mfcc.h5").unlink()
    done = stage(pooled, "stages.features", "mfcc", env=env)
    assert done.returncode == 0 and "3 done" in done.stdout, done.stdout + done.stderr
    assert re.findall(r"Dask dashboard: (\S+)", done.stdout) != links[:1]

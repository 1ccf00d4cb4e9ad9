"""A Dask worker process killed with SIGKILL mid-stage (scheduler and two workers as separate processes on
localhost): the decode stage still completes with every video, each stored once, equal to a clean decode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from corpus import lavfi_video

from pipeline.cache import CacheReader
from pipeline.decode.config import DecodeConfig
from pipeline.decode.stage import run_decode
from pipeline.decode.worker import probe_and_decode
from pipeline.engine.cluster import ClusterConfig
from pipeline.manifests.format import Manifest, VideoRecord

CFG = DecodeConfig(segments=2, frames_per_segment=4, train_views=1, work_max_side=96, keyframe_size=32,
                   audio_rates=(16000,))
N_VIDEOS = 12


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """`dask scheduler` and two `dask worker --no-nanny` processes (the pid is the worker itself)."""
    bin_dir = Path(sys.executable).parent
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", scheduler_file], **quiet)
    workers = [subprocess.Popen([bin_dir / "dask", "worker", "--scheduler-file", scheduler_file, "--no-nanny",
                                 "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], **quiet)
               for _ in range(2)]
    try:
        deadline = time.time() + 300
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        yield json.loads(scheduler_file.read_text())["address"], workers
    finally:
        for proc in (*workers, scheduler):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


def test_a_worker_killed_mid_stage_loses_and_duplicates_nothing(tmp_path: Path, two_workers) -> None:
    address, workers = two_workers
    for i in range(N_VIDEOS):
        lavfi_video(tmp_path / f"videos/v{i}.mp4", seconds=1.5, size="96x72")
    manifest = Manifest([VideoRecord(f"v{i}", f"v{i}.mp4", "a") for i in range(N_VIDEOS)], ["a"])
    cache = tmp_path / "decode.h5"

    def kill_after_first_entry() -> None:
        while not cache.exists() or cache.stat().st_size < 20_000:
            time.sleep(0.02)
        os.kill(workers[0].pid, signal.SIGKILL)

    from dask.distributed import Client

    with Client(address) as client:
        client.wait_for_workers(2, timeout=300)
    killer = threading.Thread(target=kill_after_first_entry, daemon=True)
    killer.start()
    summary = run_decode(manifest=manifest, root=tmp_path / "videos", cache_path=cache,
                         reports_dir=tmp_path / "reports", cfg=CFG, cluster=ClusterConfig(scheduler=address))
    killer.join(timeout=5)
    assert workers[0].wait(timeout=30) == -signal.SIGKILL
    assert summary.counts() == {"total": N_VIDEOS, "done": N_VIDEOS, "skipped": 0, "failed": 0,
                                "lost_workers": 1}
    with CacheReader(cache) as reader:
        assert reader.ids() == sorted(f"v{i}" for i in range(N_VIDEOS))
        for i in (0, N_VIDEOS - 1):
            clean = probe_and_decode(f"v{i}", str(tmp_path / f"videos/v{i}.mp4"), CFG).decoded
            for name, array in clean.arrays.items():
                assert np.array_equal(reader.read(f"v{i}", name), array), (i, name)

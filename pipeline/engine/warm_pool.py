"""A LocalCluster that outlives the stage that started it (`dask.keep_alive`): later stages connect to it.

Each stage of `dvc repro` is its own process. With a LocalCluster of its own, every stage pays for its
workers' start: a Python each, their imports (torch alone is 3 s of CPU here) and the network's build,
5-25 s a stage (bench/README.md, section 9), whatever the number of videos. With `dask.keep_alive: S`
the first stage starts a pool, a detached process holding a LocalCluster of the `dask` section's
workers, and the next stages connect to it, until it has had neither a client nor a task for S seconds:

    stage 1 ── no live pool: starts one ──> pool process: LocalCluster (as `cluster.local_cluster`),
                                            writes <folder>/scheduler.json, exits after S idle seconds
    stage 2..n ── connect ─────────────────> the same workers: imports done, a network kept per worker

One pool per user, cluster settings and code identity (`code_identity`: vemo's source and libraries), so
an edit or an upgrade starts another pool and never reaches the old workers, which exit once idle. A lock
file orders the stages that look for a pool at once (`dvc exp run -j`): one starts it, the others wait
and connect. The stage's own checks apply as with any external cluster (`check_workers`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipeline.config import config_hash
from pipeline.engine.code_identity import code_identity
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from dask.distributed import Client

    from pipeline.engine.cluster import ClusterConfig

POOL_WORKER_ENV = "VEMO_POOL_WORKER"     # set in a pool's workers: they keep one network at a time
ADDRESS_FILE = "scheduler.json"
START_TIMEOUT = 300.0                    # seconds for a new pool's workers to be up
POLL = 0.5
PROBE_TIMEOUT = 2.0                      # seconds for a live pool's scheduler to accept a connection


def pools_root() -> Path:
    return Path(tempfile.gettempdir()) / f"vemo-pools-{os.getuid()}"


def pool_key(cfg: ClusterConfig) -> str:
    """What a pool is shared on: the worker settings, the code identity and the GPUs this process sees."""
    settings = {name: getattr(cfg, name) for name in ("workers", "threads_per_worker", "memory_limit",
                                                       "allocator", "dashboard")}
    return config_hash({**settings, "identity": code_identity(),
                        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")})


@contextmanager
def pool_client(cfg: ClusterConfig) -> Iterator[Client]:
    """A client on this user's pool for `cfg`, started now when there is none alive."""
    from dask.distributed import Client

    folder = pools_root() / pool_key(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        address = _live_address(folder) or _start(folder, cfg)
        # connected while the lock is held: a pool decides it is idle under the same lock, so it never
        # exits between this stage reading its address and becoming its client
        client = Client(address, timeout=cfg.connect_timeout)
    with client:
        yield client


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / "lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _live_address(folder: Path) -> str | None:
    """The pool's scheduler address, if its process is alive and its scheduler answers; a file left by a
    killed pool (its process gone, or its number taken by another process since) is removed."""
    try:
        info = json.loads((folder / ADDRESS_FILE).read_text(encoding="utf-8"))
        os.kill(int(info["pid"]), 0)
        host, port = urlsplit(str(info["address"])).hostname, urlsplit(str(info["address"])).port
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
        return str(info["address"])
    except (OSError, ValueError, KeyError, TypeError):
        (folder / ADDRESS_FILE).unlink(missing_ok=True)
        return None


def _start(folder: Path, cfg: ClusterConfig) -> str:
    settings = json.dumps(dataclasses.asdict(cfg))
    with open(folder / "pool.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.engine.warm_pool", str(folder), settings],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        address = _live_address(folder)
        if address is not None:
            return address
        if proc.poll() is not None:
            raise ConfigError(f"dask.keep_alive: the worker pool did not start ({_last_line(folder)}; "
                              f"log: {folder / 'pool.log'})")
        time.sleep(POLL)
    proc.kill()
    raise ConfigError(f"dask.keep_alive: the worker pool was not up after {START_TIMEOUT:.0f} s "
                      f"(log: {folder / 'pool.log'})")


def _last_line(folder: Path) -> str:
    lines = (folder / "pool.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def serve(folder: Path, cfg: ClusterConfig) -> None:
    """The pool process: the LocalCluster, its address file, and the exit after `keep_alive` idle seconds."""
    from pipeline.engine.cluster import local_cluster

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ[POOL_WORKER_ENV] = "1"       # the workers inherit it
    with local_cluster(cfg) as cluster:
        scheduler = cluster.scheduler
        _write_address(folder, cluster.scheduler_address)
        idle_since = time.monotonic()
        try:
            while True:
                time.sleep(POLL)
                if not _idle(scheduler):
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= cfg.keep_alive:
                    with _locked(folder):
                        if _idle(scheduler):        # no stage connected since
                            (folder / ADDRESS_FILE).unlink(missing_ok=True)
                            return
        finally:
            if _owner(folder) == os.getpid():
                (folder / ADDRESS_FILE).unlink(missing_ok=True)


def _idle(scheduler: Any) -> bool:
    clients = set(scheduler.clients) - {"fire-and-forget"}
    return not clients and not scheduler.tasks


def _write_address(folder: Path, address: str) -> None:
    partial = folder / f".{ADDRESS_FILE}.{os.getpid()}"
    partial.write_text(json.dumps({"address": address, "pid": os.getpid()}), encoding="utf-8")
    partial.replace(folder / ADDRESS_FILE)


def _owner(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / ADDRESS_FILE).read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_pools() -> int:
    """Ask every live pool of this user to exit now (SIGTERM: the workers close, the address file goes);
    returns how many were asked."""
    asked = 0
    for folder in pools_root().glob("*") if pools_root().is_dir() else []:
        pid = _owner(folder)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
                asked += 1
            except OSError:
                (folder / ADDRESS_FILE).unlink(missing_ok=True)
    return asked


def main(argv: list[str] | None = None) -> None:
    from pipeline.engine.cluster import ClusterConfig

    folder, settings = argv or sys.argv[1:]
    serve(Path(folder), ClusterConfig(**json.loads(settings)))


if __name__ == "__main__":
    main()

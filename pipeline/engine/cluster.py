"""Where a stage's tasks run: a LocalCluster of worker processes, or a running scheduler given by address."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import dask
from dask.distributed import Client, LocalCluster

from pipeline.engine.code_identity import check_workers
from pipeline.engine.warm_pool import pool_client
from pipeline.engine.worker_env import restore_user_environ, spawn_environ
from pipeline.errors import ConfigError

LOCAL_WORKER_ENV = "VEMO_LOCAL_CLUSTER_WORKER"   # set in LocalCluster workers: they may share out the GPUs
LOCAL_HTTP_ADDRESS = "127.0.0.1:0"   # the scheduler's HTTP routes (dashboard, health, metrics) on a free
                                     # port of this machine only: Dask's default, 8787 on every interface,
                                     # collides whenever two stages (or a stage and a notebook's cluster)
                                     # run at once


@dataclass(frozen=True)
class ClusterConfig:
    scheduler: str | None = None      # address of a running scheduler (tcp://, tls://, ...)
    scheduler_file: str | None = None  # or the JSON file a scheduler wrote (`dask scheduler
                                       # --scheduler-file`, dask-jobqueue); neither: a LocalCluster
    workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    retries: int = 1                  # reruns of a task that failed unexpectedly (not a VideoError)
    allocator: str = "jemalloc"       # LocalCluster workers' malloc: jemalloc where installed, or system
    no_worker_timeout: float = 300.0  # seconds without any worker before a stage stops (engine.watch)
    connect_timeout: float = 30.0     # seconds to reach an external scheduler, or for its file to appear
    dashboard: bool = True            # serve the LocalCluster's dashboard (localhost) and print its link
    shared_filesystem: bool = True    # workers read the driver's paths; False: inputs ship with the tasks
    keep_alive: float = 0.0           # seconds a LocalCluster outlives its stage for the next (warm_pool)

    @property
    def external(self) -> bool:
        return bool(self.scheduler or self.scheduler_file)


@contextmanager
def local_cluster(cfg: ClusterConfig, *, tasks: int | None = None) -> Iterator[LocalCluster]:
    """`cfg.workers` worker processes named 0..workers-1, each with `threads_per_worker` BLAS threads; no
    more than `tasks` of them when a stage knows it has only that many tasks to run: every worker imports
    torch and builds its network (2-8 s of CPU each, bench/README.md, section 9), which a worker
    without a task would pay for nothing. Each worker's memory limit is the same either way (Dask
    resolves `auto` per worker, from its threads and the machine's cores).

    Their allocator and glibc's trim threshold are set as the process starts (`worker_env`: jemalloc where
    installed, not Dask's MALLOC_TRIM_THRESHOLD_), and the workers' statistical profiler is off: it feeds
    the dashboard, which these clusters do not start, and every 10 ms it walks the stacks of the running
    tasks, about 9% of a worker's CPU on a feature stage (bench/README.md, deliverable 3); the dashboard
    (`dask.dashboard`) shows task streams, progress and memory without it.
    """
    threads = str(cfg.threads_per_worker)
    spawn = {f"distributed.nanny.pre-spawn-environ.{name}": value
             for name, value in spawn_environ(cfg.allocator).items()}
    dashboard = LOCAL_HTTP_ADDRESS if cfg.dashboard and find_spec("bokeh") else None
    workers = cfg.workers if tasks is None else max(1, min(cfg.workers, tasks))
    with dask.config.set({**spawn, "distributed.worker.profile.enabled": False}), LocalCluster(
        n_workers=workers, threads_per_worker=cfg.threads_per_worker, processes=True,
        memory_limit=cfg.memory_limit, dashboard_address=dashboard, silence_logs=logging.ERROR,
        scheduler_kwargs={"dashboard_address": LOCAL_HTTP_ADDRESS},
        env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, LOCAL_WORKER_ENV: "1"},
    ) as cluster:
        restore_user_environ()
        yield cluster


@contextmanager
def dask_client(cfg: ClusterConfig, *, tasks: int | None = None) -> Iterator[Client]:
    """A client on the given scheduler (address or scheduler file), or on a LocalCluster of worker processes
    that ends with it (no more workers than `tasks`, when given). Prints where the dashboard is, when
    there is one."""
    if cfg.external or cfg.keep_alive > 0:      # workers this stage did not start: check them
        with external_client(cfg) if cfg.external else pool_client(cfg) as client:
            check_workers(client)
            _say_dashboard(client)
            yield client
        return
    with local_cluster(cfg, tasks=tasks) as cluster, Client(cluster) as client:
        _say_dashboard(client)
        yield client


def external_client(cfg: ClusterConfig) -> Client:
    """A client on the scheduler `cfg` names (address or scheduler file); ConfigError if it cannot be
    reached in `connect_timeout` seconds."""
    address = cfg.scheduler or scheduler_address(cfg.scheduler_file or "", cfg.connect_timeout)
    check_answers(address, cfg.connect_timeout)
    try:
        return Client(address, timeout=cfg.connect_timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"dask: cannot reach the scheduler at {address} in {cfg.connect_timeout:g} s "
                          f"({type(exc).__name__}: {exc}); is it running?") from None


def check_answers(address: str, timeout: float) -> None:
    """ConfigError unless a Dask scheduler answers at `address` within `timeout` seconds (plus one).

    Dask's own timeout covers reaching the port, not the handshake: a server that accepts the connection
    and never replies (the dashboard's port, 8787, given for the scheduler's, 8786; any HTTP server) made
    the stage wait forever, and one that replies with other bytes made Dask try to allocate exabytes. The
    handshake is tried here under a hard deadline, in a thread of its own so that a caller's running
    event loop (a notebook) does not matter."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect
    from distributed.security import Security

    async def handshake() -> None:
        comm = await asyncio.wait_for(
            connect(address, timeout=timeout, **Security().get_connection_args("client")), timeout + 1)
        await comm.close()

    hint = "is that the scheduler's address (its port is 8786 by default; 8787 is its dashboard)?"
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, handshake()).result()
        except TimeoutError:
            # asyncio's deadline (Dask's own timeout is an OSError, handled by the caller's message)
            raise ConfigError(f"dask: {address} accepted the connection but did not answer as a Dask "
                              f"scheduler in {timeout:g} s: {hint}") from None
        except MemoryError:
            raise ConfigError(f"dask: {address} does not answer as a Dask scheduler: {hint}") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"dask: cannot reach the scheduler at {address} in {timeout:g} s "
                              f"({type(exc).__name__}: {exc}); is it running?") from None


def scheduler_address(path: str, wait: float) -> str:
    """The address in a scheduler file (`dask scheduler --scheduler-file`, dask-jobqueue), waiting up to
    `wait` seconds for a scheduler still starting to write it (Dask's own client would wait forever)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(path, encoding="utf-8") as f:
                return str(json.load(f)["address"])
        except (OSError, ValueError, KeyError) as exc:
            if time.monotonic() > deadline:
                raise ConfigError(f"dask.scheduler_file {path}: no scheduler address after {wait:.0f} s "
                                  f"({type(exc).__name__}: {exc}); start the scheduler with "
                                  f"`dask scheduler --scheduler-file {path}`") from None
        time.sleep(0.2)


def _say_dashboard(client: Client) -> None:
    if "dashboard" in client.scheduler_info(n_workers=0).get("services", {}):
        print(f"Dask dashboard: {client.dashboard_link}", flush=True)


def cluster_config(params: dict[str, Any]) -> ClusterConfig:
    """The `dask` section of parsed params.yaml."""
    return ClusterConfig(**params.get("dask", {}))

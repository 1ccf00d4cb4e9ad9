"""Where a stage's tasks run: a LocalCluster of worker processes, or a running scheduler given by address."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dask
from dask.distributed import Client, LocalCluster

from pipeline.engine.worker_env import restore_user_environ, spawn_environ

LOCAL_WORKER_ENV = "VEMO_LOCAL_CLUSTER_WORKER"   # set in LocalCluster workers: they may share out the GPUs
LOCAL_HTTP_ADDRESS = "127.0.0.1:0"   # the scheduler's HTTP routes (health, metrics; no dashboard is built)
                                     # on a free port of this machine only: Dask's default, 8787 on every
                                     # interface, collides whenever two stages (or a stage and a notebook's
                                     # cluster) run at once


@dataclass(frozen=True)
class ClusterConfig:
    scheduler: str | None = None      # address of a running scheduler; None starts a LocalCluster
    workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    retries: int = 1                  # reruns of a task that failed unexpectedly (not a VideoError)
    allocator: str = "jemalloc"       # LocalCluster workers' malloc: jemalloc where installed, or system


@contextmanager
def local_cluster(cfg: ClusterConfig) -> Iterator[LocalCluster]:
    """`cfg.workers` worker processes named 0..workers-1, each with `threads_per_worker` BLAS threads.

    Their allocator and glibc's trim threshold are set as the process starts (`worker_env`: jemalloc where
    installed, not Dask's MALLOC_TRIM_THRESHOLD_), and the workers' statistical profiler is off: it feeds
    the dashboard, which these clusters do not start, and every 10 ms it walks the stacks of the running
    tasks, about 9% of a worker's CPU on a feature stage (bench/README.md, deliverable 3).
    """
    threads = str(cfg.threads_per_worker)
    spawn = {f"distributed.nanny.pre-spawn-environ.{name}": value
             for name, value in spawn_environ(cfg.allocator).items()}
    with dask.config.set({**spawn, "distributed.worker.profile.enabled": False}), LocalCluster(
        n_workers=cfg.workers, threads_per_worker=cfg.threads_per_worker, processes=True,
        memory_limit=cfg.memory_limit, dashboard_address=None, silence_logs=logging.ERROR,
        scheduler_kwargs={"dashboard_address": LOCAL_HTTP_ADDRESS},
        env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, LOCAL_WORKER_ENV: "1"},
    ) as cluster:
        restore_user_environ()
        yield cluster


@contextmanager
def dask_client(cfg: ClusterConfig) -> Iterator[Client]:
    """A client on the given scheduler, or on a LocalCluster of worker processes that ends with it."""
    if cfg.scheduler:
        with Client(cfg.scheduler) as client:
            yield client
        return
    with local_cluster(cfg) as cluster, Client(cluster) as client:
        yield client


def cluster_config(params: dict[str, Any]) -> ClusterConfig:
    """The `dask` section of parsed params.yaml."""
    return ClusterConfig(**params.get("dask", {}))

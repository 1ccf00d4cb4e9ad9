"""Watch a stage's Dask workers from the driver: count the ones lost, and give up when none is left.

Dask reruns a lost worker's tasks on the others, and waits for a worker forever when there is none: a
cluster whose last worker died (a node reclaimed, a job's walltime over) would hang the stage, and DVC with
it. The watch polls the scheduler's worker list (the client refreshes it every couple of seconds, no extra
round trip); after `timeout` seconds without any worker it cancels what is in flight, so the stage records
the unfinished videos as failed with the reason, keeps everything already written, and ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dask.distributed import Client

NO_WORKERS = "no Dask worker for {seconds:.0f} s (all gone?): stopped; re-run the stage once workers are back"


class WorkerWatch:
    """A driver-side thread for the duration of a `with` block. `stopped` is set once it gave up;
    `lost` counts the workers that left (a restarted LocalCluster worker comes back under a new
    address, and counts)."""

    def __init__(self, client: Client, timeout: float, *, on_stop: Callable[[], object] = lambda: None,
                 poll: float = 1.0) -> None:
        self.client, self.timeout, self.poll, self.on_stop = client, timeout, poll, on_stop
        self.seen: set[str] = set()
        self.lost = 0
        self.stopped = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vemo-worker-watch", daemon=True)

    @property
    def reason(self) -> str:
        return NO_WORKERS.format(seconds=self.timeout)

    def workers(self) -> set[str]:
        return set(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def _run(self) -> None:
        empty_since: float | None = None
        while not self._done.wait(self.poll):
            try:
                present = self.workers()
            except Exception:  # noqa: BLE001 - a scheduler that does not answer counts as no worker,
                present = set()  # but says nothing of which workers left: the counts wait for an answer
            else:
                self.lost += len(self.seen - present)
                self.seen = present
            if present:
                empty_since = None
                continue
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since >= self.timeout:
                print(f"[dask] {self.reason}", flush=True)
                self.stopped.set()
                self.on_stop()
                return

    def __enter__(self) -> WorkerWatch:
        self.seen = self.workers()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

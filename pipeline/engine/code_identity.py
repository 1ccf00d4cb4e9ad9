"""What a worker's values depend on besides a stage's parameters: vemo's source and the libraries it runs.

A cache's configuration hash names the code versions of the driver that writes it. A worker that runs
other code (a hand-started `dask worker` left running across a `git pull`, a node whose environment has
another torch) would compute other values under that hash, and nothing downstream could tell. So the
driver sends its identity with every task and a worker whose own differs refuses the task
(`dask_map`), and a stage on an external cluster checks every worker as it connects (`cluster`): the
stage stops with one line naming the worker and what differs, before that worker writes anything.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from dask.distributed import Client

# The distributions whose code computes cached values on a worker (decode, faces, the extractors).
PACKAGES = ("torch", "torchvision", "facenet-pytorch", "numpy", "scipy", "librosa", "av", "h5py", "pillow")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]      # pipeline/


class WorkerMismatch(ConfigError):
    """A worker runs other code or libraries than the stage's driver."""


@cache
def code_identity() -> dict[str, str]:
    """This process's identity: the sha256 of vemo's source files, the Python, library and ffmpeg versions.
    Cached: the files are read once per process (about 10 ms), as a worker imports them once."""
    identity = {"vemo source": source_digest(PACKAGE_ROOT), "python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            identity[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            identity[name] = "not installed"
    identity["ffmpeg"] = _ffmpeg_version()
    return identity


def source_digest(root: Path) -> str:
    """sha256 of every .py file under `root`: relative paths and contents, in path order."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _ffmpeg_version() -> str:
    try:
        done = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({type(exc).__name__})"
    first = done.stdout.splitlines()[0] if done.stdout else ""
    return first.split(" Copyright")[0].removeprefix("ffmpeg version ").strip() or "unknown"


def differences(driver: dict[str, str], worker: dict[str, str]) -> list[str]:
    """'name worker vs driver' for every entry that differs (a source digest shortened to 12 digits)."""
    out = []
    for name in sorted(driver.keys() | worker.keys()):
        mine, theirs = driver.get(name, "missing"), worker.get(name, "missing")
        if mine != theirs:
            width = 12 if name == "vemo source" else None
            out.append(f"{name} {theirs[:width]} vs {mine[:width]}")
    return out


def mismatch(worker: str, driver_identity: dict[str, str], worker_identity: dict[str, str]) -> WorkerMismatch:
    """The error for a worker whose identity differs: one line, the worker's values first."""
    differ = "; ".join(differences(driver_identity, worker_identity))
    return WorkerMismatch(f"dask worker {worker} runs other code than this stage ({differ}; the worker's "
                          f"first): its values would be cached under this code's hash. {RESTART}")


RESTART = "Restart the workers from this project's environment (docs/cluster.md, 'What every worker needs')"


def check_workers(client: Client) -> None:
    """Driver side: raises WorkerMismatch naming the first worker of `client` that runs other code, or
    cannot run this code's identity check at all (a worker of a vemo from before the check)."""
    own = code_identity()
    for worker, theirs in sorted(client.run(code_identity, on_error="return").items()):
        if isinstance(theirs, BaseException):
            reason = f"{type(theirs).__name__}: {theirs}"
            raise WorkerMismatch(f"dask worker {worker} cannot run this stage's code ({reason}). {RESTART}")
        if theirs != own:
            raise mismatch(worker, own, theirs)


def check_worker(driver_identity: dict[str, str]) -> None:
    """Worker side, before a task: raises WorkerMismatch if this process's identity differs."""
    own = code_identity()
    if own != driver_identity:
        from dask.distributed import get_worker

        try:
            name = get_worker().address
        except ValueError:
            name = "(not a Dask worker)"
        raise mismatch(name, driver_identity, own)

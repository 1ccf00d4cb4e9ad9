"""Caches on a file system without file locks (an NFS mount without a lock daemon, common on lab clusters):
HDF5 refuses every open there with ENOLCK, "unable to lock file", which the stages read as another
process holding the file. They now open such a file without HDF5's lock and say so once per file.

No NFS server can run here, so the file system is made lock-less for one folder only: a preloaded `flock`
fails with ENOLCK for files under $NOLOCK_UNDER, as NFS's does, and calls the real one elsewhere (Dask's
scratch space, the videos). Everything else is real: h5py, HDF5, ffmpeg, a Dask cluster, `vemo extract`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.cache.reader import CacheReader
from pipeline.cache.verify import verify_cache

REPO = Path(__file__).resolve().parents[1]
SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int flock(int fd, int op) {
    const char *under = getenv("NOLOCK_UNDER");
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (under && n > 0) {
        target[n] = 0;
        if (strncmp(target, under, strlen(under)) == 0) { errno = ENOLCK; return -1; }
    }
    return ((int (*)(int, int))dlsym(RTLD_NEXT, "flock"))(fd, op);
}
"""


@pytest.fixture(scope="module")
def shim(module_tmp) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the lock-less flock")
    folder = module_tmp("nolock")
    (folder / "shim.c").write_text(SHIM)
    built = folder / "shim.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(built), str(folder / "shim.c"), "-ldl"],
                   check=True)
    return built


def run(cmd: list[str], shim: Path, under: Path) -> subprocess.CompletedProcess[str]:
    env = {"LD_PRELOAD": str(shim), "NOLOCK_UNDER": str(under), "PATH": "/usr/bin:/bin",
           "HOME": str(under.parent), "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def test_extraction_on_a_lockless_file_system_runs_and_says_so_once_per_file(
        shim: Path, make_video, tmp_path: Path) -> None:
    nfs = tmp_path / "nfs"
    nfs.mkdir()
    plain = run([sys.executable, "-c", f"import h5py; h5py.File({str(nfs / 'x.h5')!r}, 'w')"], shim, nfs)
    assert "errno = 37" in plain.stderr, plain.stderr        # the folder really has no locks for HDF5

    video = make_video("clip.mp4", seconds=1.0)
    out = nfs / "out"
    extract = run([sys.executable, "-m", "pipeline.cli", "extract", "-e", "mfcc", "--out", str(out),
                   "--workers", "1", str(video)], shim, nfs)
    assert extract.returncode == 0, extract.stdout + extract.stderr
    assert "Traceback" not in extract.stderr, extract.stderr
    said = [line for line in extract.stderr.splitlines() if "offers no file locks" in line]
    driver = [line for line in said if line.startswith(f"cache {out / 'cache'}")]
    files = {f"cache {out / 'cache' / name}.h5" for name in ("decode", "mfcc")}
    assert {line.split(":")[0] for line in driver} >= files, said
    assert all("No locks available" in line for line in said), said
    with CacheReader(out / "cache" / "mfcc.h5") as reader:
        assert reader.ids() == ["clip"]
    assert verify_cache(out / "cache" / "decode.h5").ok

    again = run([sys.executable, "-c", textwrap.dedent(f"""
        import numpy as np
        from pipeline.cache.reader import CacheReader
        from pipeline.cache.writer import CacheWriter, cached_sources
        from pipeline.cache.verify import verify_cache
        path = {str(nfs / "t.h5")!r}
        for video_id in ("a", "b"):           # a new file, then reopened to append
            with CacheWriter(path, stage="t", config={{}}, config_hash="h", weights="none") as writer:
                writer.write(video_id, {{"x": np.arange(4.0)}}, {{"source": video_id}})
        with CacheReader(path) as reader:
            print(reader.ids(), sorted(cached_sources(path, "h")), verify_cache(path).ok)
        """)], shim, nfs)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "['a', 'b'] ['a', 'b'] True"
    assert again.stderr.count("offers no file locks") == 1, again.stderr

"""A disk that fills (or a quota) while a cache or a checkpoint is written: one line naming the file and the
OS's reason, every entry before it intact, nothing half-written served as an entry, and the run resumes.

The small disk is a real tmpfs mounted for the test (root with CAP_SYS_ADMIN; skipped with the reason
elsewhere). The last test needs no mount: a file-size limit (RLIMIT_FSIZE) makes HDF5's writes fail with
no room even to close the file, the worst case.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.cache import CacheReader, CacheWriter, space
from pipeline.cache.verify import verify_cache
from pipeline.errors import CacheUnavailable, ConfigError
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
ENTRY = (250, 1000)       # float32: 1 MB, random so that gzip cannot shrink it


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 128 MiB tmpfs mounted for the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128M", "tmpfs", str(disk)],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no `mount` command here to make a small disk")
    if mounted.returncode:
        pytest.skip(f"cannot mount a small disk here (needs root, CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def leave_free(disk: Path, free: int) -> Path:
    """Fill `disk` with a file until `free` bytes are left; returns that file."""
    filler = disk / "filler"
    with open(filler, "ab", buffering=0) as f:
        while space.free_bytes(disk) > free:
            try:
                f.write(b"\0" * min(1 << 20, space.free_bytes(disk) - free))
            except OSError:
                break
    return filler


def entries(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(ENTRY, dtype=np.float32) for _ in range(n)]


def writer(path: Path) -> CacheWriter:
    return CacheWriter(path, stage="x", config={"a": 1}, config_hash="h1")


def assert_holds_exactly(path: Path, arrays: list[np.ndarray]) -> None:
    with CacheReader(path) as reader:
        assert reader.ids() == [f"v{i}" for i in range(len(arrays))]
        for i, array in enumerate(arrays):
            np.testing.assert_array_equal(reader.read(f"v{i}", "a"), array)
    assert verify_cache(path).ok


def test_an_entry_the_disk_cannot_hold_is_refused_before_it_is_written(small_disk: Path) -> None:
    arrays = entries(4)
    cache = writer(small_disk / "c.h5")
    assert cache.reserve.held and (small_disk / "c.h5.reserve").is_file()
    filler = leave_free(small_disk, space.MARGIN_BYTES + int(3.2 * arrays[0].nbytes))
    for i in range(3):
        cache.write(f"v{i}", {"a": arrays[i]}, {})
    with pytest.raises(CacheUnavailable) as refused:
        cache.write("v3", {"a": arrays[3]}, {})
    message = str(refused.value)
    assert "c.h5: no room for the entry of v3" in message and "its 3 entries are kept" in message
    assert "free on its disk" in message and "\n" not in message
    assert not (small_disk / "c.h5.reserve").exists()
    assert_holds_exactly(small_disk / "c.h5", arrays[:3])

    filler.unlink()
    with writer(small_disk / "c.h5") as resumed:
        assert resumed.complete_ids() == {"v0", "v1", "v2"}
        resumed.write("v3", {"a": arrays[3]}, {})
    assert_holds_exactly(small_disk / "c.h5", arrays)


@pytest.mark.parametrize("left", [0, 200_000, 500_000])
def test_a_write_that_fails_half_way_keeps_the_entries_before_it(small_disk: Path, left: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The free-space check cannot see a quota, nor another process filling the disk after it: it is
    turned off here, so that the write itself fails (`left` bytes free: in the data or the metadata)."""
    monkeypatch.setattr(space, "MARGIN_BYTES", -(1 << 40))
    arrays = entries(4)
    cache = writer(small_disk / "c.h5")
    for i in range(3):
        cache.write(f"v{i}", {"a": arrays[i]}, {})
    filler = leave_free(small_disk, left)
    with pytest.raises(CacheUnavailable) as failed:
        cache.write("v3", {"a": arrays[3]}, {})
    assert "c.h5: writing the entry of v3 (No space left on device (errno 28))" in str(failed.value)
    assert "its 3 entries are kept" in str(failed.value) or "could not be closed cleanly" in str(failed.value)
    assert_holds_exactly(small_disk / "c.h5", arrays[:3])
    filler.unlink()
    with writer(small_disk / "c.h5") as resumed:
        resumed.write("v3", {"a": arrays[3]}, {})
    assert_holds_exactly(small_disk / "c.h5", arrays)


def test_a_stage_is_told_early_when_its_pending_videos_will_not_fit(small_disk: Path) -> None:
    with writer(small_disk / "c.h5") as cache:
        for i, array in enumerate(entries(2)):
            cache.write(f"v{i}", {"a": array}, {})
        assert space.forecast(cache.path, cache.entries(), 0) is None
        assert space.forecast(cache.path, 0, 50) is None        # nothing to go by yet
    free = space.free_bytes(small_disk)
    mean = (small_disk / "c.h5").stat().st_size / 2
    fit = int((free - space.MARGIN_BYTES) // mean)
    assert space.forecast(small_disk / "c.h5", 2, max(1, fit - 2)) is None
    said = space.forecast(small_disk / "c.h5", 2, fit + 20)
    assert said and f"the {fit + 20} videos to compute need about" in said, said
    assert f"the stage will stop after about {fit} of them" in said, said


def test_extraction_on_a_full_disk_stops_with_one_line_and_keeps_what_it_wrote(
        small_disk: Path, make_video, tmp_path: Path) -> None:
    videos = [make_video(tmp_path / f"clip{i}.mp4", seconds=2.0) for i in range(4)]
    out = small_disk / "out"
    # room for the decode stage's first entries (the audio alone: about 130 KB each), not for all four
    leave_free(small_disk, space.MARGIN_BYTES + space.RESERVE_BYTES + 300_000)
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", "extract", "-e", "mfcc", "--out", str(out),
                          "--workers", "1", *map(str, videos)], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    line = next(x for x in run.stderr.splitlines() if x.startswith("vemo: cache "))
    assert "decode.h5: no room for the entry of clip" in line and "the stage resumes" in line, line
    with CacheReader(out / "cache" / "decode.h5") as reader:
        kept = reader.ids()
    assert 1 <= len(kept) < 4, kept
    assert verify_cache(out / "cache" / "decode.h5").ok


def test_a_checkpoint_the_disk_refuses_leaves_the_previous_one(small_disk: Path) -> None:
    path = small_disk / "model" / "last.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(10)})
    leave_free(small_disk, 100_000)
    with pytest.raises(ConfigError, match=r"cannot write checkpoint .*last.pt \(No space left on device\)"):
        save_checkpoint(path, {"epoch": 2, "w": torch.ones(1_000_000)})
    assert sorted(os.listdir(path.parent)) == ["last.pt"]
    assert load_checkpoint(path)["epoch"] == 1


WORST_CASE = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    from pipeline.cache import CacheWriter
    from pipeline.errors import CacheUnavailable
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # a write past the limit fails (EFBIG), no signal
    writer = CacheWriter(sys.argv[1], stage="x", config={"a": 1}, config_hash="h1")
    rng = np.random.default_rng(0)
    for i in range(3):
        writer.write(f"v{i}", {"a": rng.random((250, 1000), dtype=np.float32)}, {})
    size = __import__("os").path.getsize(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + int(sys.argv[2]), resource.RLIM_INFINITY))
    try:
        writer.write("v3", {"a": rng.random((250, 1000), dtype=np.float32)}, {})
    except CacheUnavailable as exc:
        print(exc, flush=True)
""")


@pytest.mark.parametrize("room", [0, 200_000, 5_000_000])
def test_no_room_even_to_close_never_serves_a_half_written_entry(tmp_path: Path, room: int) -> None:
    """Nothing can be freed under a file-size limit, so HDF5 cannot close the file cleanly: the next writer
    keeps every entry that reads back whole, or moves a file HDF5 refuses aside (never deletes it)."""
    path = tmp_path / "c.h5"
    first = subprocess.run([sys.executable, "-c", WORST_CASE, str(path), str(room)], capture_output=True,
                           text=True, cwd=REPO)
    if room < 1_000_000:
        assert "c.h5: writing the entry of v3 (File too large (errno 27))" in first.stdout, first
    reopen = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from pipeline.cache import CacheWriter
        with CacheWriter(sys.argv[1], stage="x", config={"a": 1}, config_hash="h1") as writer:
            print(sorted(writer.complete_ids()))
    """), str(path)], capture_output=True, text=True, cwd=REPO)
    assert reopen.returncode == 0 and "Traceback" not in reopen.stderr, reopen
    listed = reopen.stdout.splitlines()[-1]
    assert listed in ("['v0', 'v1', 'v2']", "['v0', 'v1', 'v2', 'v3']", "[]"), reopen.stdout
    if listed == "[]":
        assert "moved aside" in reopen.stdout and list(tmp_path.glob("c.h5.unreadable-*")), reopen.stdout
    assert verify_cache(path).ok

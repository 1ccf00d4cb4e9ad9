from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.cache import CacheReader, CacheWriter, StaleCacheError
from pipeline.cache.layout import INCOMPLETE, chunk_shape, entry_key
from pipeline.errors import BadEntry, CacheUnavailable


def writer(path: Path, config_hash: str = "h1", **kw) -> CacheWriter:
    return CacheWriter(path, stage="test", config={"a": 1}, config_hash=config_hash, **kw)


def test_round_trip_with_slashes_in_ids(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    x = np.arange(24, dtype=np.float16).reshape(2, 3, 4)
    with writer(path, weights="random") as w:
        w.write("Anger/clip 01", {"x": x, "x_times_ms": np.array([[0, 40], [40, 80]])}, {"fps": 25.0})
        w.write("Joy/clip 01", {"x": x + 1}, {})
    with CacheReader(path) as r:
        assert r.ids() == ["Anger/clip 01", "Joy/clip 01"]
        np.testing.assert_array_equal(r.read("Anger/clip 01", "x"), x)
        assert r.read("Joy/clip 01", "x").dtype == np.float16
        np.testing.assert_array_equal(r.read("Anger/clip 01", "x", np.s_[1, :2]), x[1, :2])
        assert r.attrs("Anger/clip 01")["fps"] == 25.0
        assert r.random_weights and r.metadata["config"] == {"a": 1}
        assert set(r.load_all("x")) == {"Anger/clip 01", "Joy/clip 01"}
        assert "Sad/x" not in r


def test_other_configuration_is_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    with writer(path, "h1") as w:
        w.write("a", {"x": np.zeros(3)}, {})
    with writer(path, "h2") as w:
        assert w.complete_ids() == set()
    with pytest.raises(StaleCacheError, match="h1"):
        writer(path, "h1", on_mismatch="error").close()
    with writer(path, "h1") as w:
        assert w.complete_ids() == {"a"}
    assert CacheReader(path, config_hash="h2").ids() == []


def test_reopening_without_writes_leaves_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    with writer(path) as w:
        w.write("a", {"x": np.ones(5)}, {})
    before = path.read_bytes()
    with writer(path) as w:
        assert w.complete_ids() == {"a"}
    assert path.read_bytes() == before


def test_reader_pickles_before_and_after_use(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    with writer(path) as w:
        w.write("a", {"x": np.ones(5)}, {})
    r = CacheReader(path)
    r.ids()
    r.read("a", "x")            # the reader now holds an open file and the entry's group
    clone = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(clone.read("a", "x"), np.ones(5))


def test_reader_reads_each_video_of_alternating_requests_and_rewrites_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    with writer(path) as w:
        w.write("a", {"x": np.full(3, 1.0)}, {"i": 1})
        w.write("b", {"x": np.full(3, 2.0)}, {"i": 2})
    r = CacheReader(path)
    for video_id, value in [("a", 1), ("b", 2), ("b", 2), ("a", 1)]:
        assert video_id in r and "c" not in r and r.attrs(video_id)["i"] == value
        np.testing.assert_array_equal(r.read(video_id, "x"), np.full(3, float(value)))
    r.close()
    with writer(path) as w:
        w.write("a", {"x": np.full(3, 5.0)}, {"i": 5})
    assert r.attrs("a")["i"] == 5 and r.read("a", "x")[0] == 5.0
    other = CacheReader(path, config_hash="other")
    assert other.ids() == [] and "a" not in other


KILLED_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from pipeline.cache import CacheWriter
    w = CacheWriter(sys.argv[1], stage="t", config={}, config_hash="h")
    i = len(w.complete_ids())
    while True:
        rng = np.random.default_rng(i)
        w.write(f"v{i}", {f"d{k}": rng.random((100, 500)).astype("f4") for k in range(4)}, {"i": i})
        print(i, flush=True)
        i += 1
""")


def test_killed_writer_leaves_only_complete_entries(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    script = tmp_path / "w.py"
    script.write_text(KILLED_WRITER)
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                                cwd=Path(__file__).parents[1])
        proc.stdout.readline()
        time.sleep(float(rng.uniform(0.05, 0.6)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with CacheReader(path) as r:
            for vid in r.ids():
                i = int(vid[1:])
                gen = np.random.default_rng(i)
                expected = [gen.random((100, 500)).astype("f4") for _ in range(4)]
                np.testing.assert_array_equal(r.read(vid, "d3"), expected[3])
    with writer(path, "h") as w:
        n = len(w.complete_ids())
    with h5py.File(path, "r") as f:
        assert INCOMPLETE not in f
    assert n >= 4


def test_a_file_open_elsewhere_is_refused_not_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    with writer(path) as w:
        w.write("a", {"x": np.ones(3)}, {})
    with CacheReader(path) as r:
        r.ids()
        with pytest.raises(CacheUnavailable, match="is open in another process"):
            writer(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5"]
    assert CacheReader(path).ids() == ["a"]


def test_an_unreadable_file_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "c.h5"
    path.write_bytes(b"not hdf5 at all")
    with writer(path) as w:
        w.write("a", {"x": np.ones(3)}, {})
    assert len(list(tmp_path.glob("c.h5.unreadable-*"))) == 1
    assert CacheReader(path).ids() == ["a"]


def test_an_entry_packed_by_a_worker_reads_back_as_a_plain_gzip_write(tmp_path) -> None:
    """Chunks deflated outside HDF5 (edge chunks, shuffled int16 / float32, 0-d and empty arrays) give
    the same values, filters, chunks and checksum as HDF5's own gzip write."""
    from pipeline.cache.packed import pack_entry

    rng = np.random.default_rng(0)
    arrays = {
        "snippets": rng.integers(0, 256, (3, 5, 4, 30, 17, 3), dtype=np.uint8),
        "audio_44100": rng.integers(-3000, 3000, 600_001, dtype=np.int16),     # 2 chunks, one padded
        "fc7": rng.standard_normal((7, 33)).astype(np.float32),
        "scalar": np.array(3.5), "none": np.zeros((0, 4), np.int64),
    }
    side_by_side, one_thread = pack_entry(arrays, 1, threads=3), pack_entry(arrays, 1)
    assert side_by_side.sha256 == one_thread.sha256
    assert all(side_by_side.arrays[n] == one_thread.arrays[n] for n in ("snippets", "audio_44100", "fc7"))
    for name, entry in (("plain", arrays), ("packed", pack_entry(arrays, 1))):
        with CacheWriter(tmp_path / f"{name}.h5", stage="decode", config={}, config_hash="h", level=1) as w:
            w.write("v", entry, {"fps": 25.0})
    with h5py.File(tmp_path / "plain.h5") as plain, h5py.File(tmp_path / "packed.h5") as packed:
        a, b = plain["videos"][entry_key("v")], packed["videos"][entry_key("v")]
        assert a.attrs["sha256"] == b.attrs["sha256"]
        for name, array in arrays.items():
            np.testing.assert_array_equal(b[name][()], array)
            assert (b[name].compression, b[name].shuffle, b[name].chunks) == \
                (a[name].compression, a[name].shuffle, a[name].chunks)
        assert b["audio_44100"].chunks == (524_288,) and b["audio_44100"].id.get_num_chunks() == 2


@pytest.mark.parametrize(("shape", "itemsize", "chunks"), [
    ((4, 256, 256, 3), 1, (4, 256, 256, 3)),              # up to 1 MiB: one chunk
    ((8, 256, 256, 3), 1, (5, 256, 256, 3)),              # as many whole rows as fit
    ((3, 10, 16, 112, 112, 3), 1, (1, 1, 16, 112, 112, 3)),   # one snippet of one view
    ((3, 10, 2048, 4, 4), 2, (1, 10, 2048, 4, 4)),         # one view
    ((1, 600, 600, 3), 1, (1, 582, 600, 3)),              # an image over 1 MiB: whole pixel rows
    ((2_000_000,), 4, (262_144,)),
])
def test_chunks_are_whole_trailing_blocks_of_at_most_1_mib(shape, itemsize, chunks) -> None:
    assert chunk_shape(shape, itemsize) == chunks


def truncated_cache(tmp_path: Path) -> Path:
    path = tmp_path / "c.h5"
    with writer(path) as w:
        w.write("v1", {"x": np.arange(40000, dtype=np.float32).reshape(200, 200)}, {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_cache_is_called_damaged_with_the_way_out(tmp_path: Path) -> None:
    path = truncated_cache(tmp_path)
    with pytest.raises(OSError, match=r"c.h5 is damaged \(truncated or not HDF5.*delete it and re-run .*"
                                      r"vemo cache verify") as info:
        CacheReader(path).ids()
    assert "another process" not in str(info.value)


def test_a_truncated_cache_is_moved_aside_by_the_writer_not_blamed_on_a_lock(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = truncated_cache(tmp_path)
    with writer(path) as w:
        w.write("v2", {"x": np.zeros(3, dtype=np.float32)}, {})
    out = capsys.readouterr().out
    assert "is damaged" in out and "moved aside" in out
    assert [p.name.startswith("c.h5.unreadable-") for p in tmp_path.iterdir() if p != path] == [True]
    with CacheReader(path) as r:
        assert r.ids() == ["v2"]


def test_an_entry_with_nan_or_inf_is_refused_whole_and_only_none_rows_may_be_nan(tmp_path: Path) -> None:
    """The writer is every stage's way into a cache: NaN or inf is refused, nothing of the entry written;
    a stage's "none" marker (faces: a frame without a face, its row wholly NaN) is the one exception."""
    boxes = np.full((3, 4), np.nan, np.float32)
    boxes[1] = [1, 2, 3, 4]
    with CacheWriter(tmp_path / "c.h5", stage="faces", config={}, config_hash="h",
                     nan_rows=("boxes",)) as writer:
        writer.write("none_rows", {"boxes": boxes}, {})
        for name, bad in (("mixed", [1, np.nan, 3, 4]), ("inf", [1, np.inf, 3, 4])):
            half = boxes.copy()
            half[1] = bad
            with pytest.raises(BadEntry, match=r"array 'boxes' holds \d NaN and \d inf of its 12 values"):
                writer.write(name, {"boxes": half}, {})
        with pytest.raises(BadEntry, match="array 'fc7' holds 1 NaN and 0 inf of its 2 values: not cached"):
            writer.write("fc7", {"fc7": np.array([1.0, np.nan], np.float16), "n": np.arange(2)}, {})
    with CacheReader(tmp_path / "c.h5") as cache:
        assert cache.ids() == ["none_rows"]

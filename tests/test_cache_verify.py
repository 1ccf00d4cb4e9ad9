"""`vemo cache verify`: every entry read back, its configuration hash and its sha256 checked."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.cache import CacheReader, CacheWriter, StaleCacheError
from pipeline.cache.verify import verify_cache
from pipeline.cli import main
from pipeline.config import config_hash
from pipeline.features.config import ExtractorIdentity, ExtractorSpec, feature_cache_config


def filled(path: Path, hash_: str = "h1") -> Path:
    with CacheWriter(path, stage="t", config={}, config_hash=hash_) as w:
        for i in range(3):
            w.write(f"c/v {i}", {"x": np.arange(12, dtype=np.float16).reshape(3, 4) + i,
                                 "x_times_ms": np.zeros((3, 2), np.int64)}, {})
    return path


def test_a_clean_cache_verifies_and_the_command_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = filled(tmp_path / "c.h5")
    report = verify_cache(path)
    assert report.ok and (report.entries, report.checked, report.unchecked) == (3, 3, 0)
    assert main(["cache", "verify", str(path)]) == 0
    assert "3 checksums match" in capsys.readouterr().out


def test_changed_bytes_stale_entries_and_unreadable_files_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = filled(tmp_path / "c.h5")
    with h5py.File(path, "a") as f:
        f["videos/c%2Fv%201/x"][0, 0] = 99            # a flipped value, as a bad disk or a hand edit would
        f["videos/c%2Fv%202"].attrs["config_hash"] = "h0"
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\0" * 100)
    assert main(["cache", "verify", str(path), str(junk)]) == 1
    out = capsys.readouterr().out
    assert "BAD c/v 1: arrays do not match the sha256" in out
    assert "BAD c/v 2: written with configuration 'h0'" in out
    assert f"{junk}: BAD <file>: cannot be read as HDF5" in out
    assert "BAD c/v 0" not in out


def test_entries_written_before_checksums_count_as_unchecked(tmp_path: Path) -> None:
    path = filled(tmp_path / "c.h5")
    with h5py.File(path, "a") as f:
        del f["videos/c%2Fv%200"].attrs["sha256"]
    report = verify_cache(path)
    assert report.ok and (report.checked, report.unchecked) == (2, 1)


def test_features_of_other_weights_are_recomputed_or_refused(tmp_path: Path) -> None:
    """The weights' id is part of a feature cache's configuration hash: a cache of random weights is never
    read as one of a checkpoint (the writer recomputes, or refuses with on_mismatch=error; readers that
    expect the hash see no entries)."""
    spec = ExtractorSpec(name="alexnet_fc7")
    random_hash = config_hash(feature_cache_config(spec, ExtractorIdentity("random"), {"decode": "d"}))
    trained = ExtractorIdentity("sha256:" + "0" * 64)
    trained_hash = config_hash(feature_cache_config(spec, trained, {"decode": "d"}))
    other_decode = config_hash(feature_cache_config(spec, ExtractorIdentity("random"), {"decode": "e"}))
    assert len({random_hash, trained_hash, other_decode}) == 3
    path = filled(tmp_path / "f.h5", random_hash)
    with CacheWriter(path, stage="t", config={}, config_hash=trained_hash) as w:
        assert w.complete_ids() == set()
    assert CacheReader(path, config_hash=trained_hash).ids() == []
    with pytest.raises(StaleCacheError, match=f"written with configuration {trained_hash}"):
        CacheWriter(path, stage="t", config={}, config_hash=random_hash, on_mismatch="error")

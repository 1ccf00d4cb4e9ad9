"""Split protocols: VE-8's 10 runs, fixed splits, CAER's 7:1:2, carving a validation set."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.manifests.official import OFFICIAL_LISTS
from pipeline.manifests.protocols import (
    DUPLICATE_OF,
    Units,
    caer_split,
    carve_validation,
    ensure_split,
    fixed_split,
    ve8_runs,
    with_splits,
)
from pipeline.manifests.result import BuildResult, ManifestError
from pipeline.manifests.ucf import VE8_CLASSES, official_manifest


def synthetic(per_class: dict[str, int], split: str = "") -> Manifest:
    records = [
        VideoRecord(f"{c}/{i}", f"{c}/{i}.mp4", c, split) for c, n in per_class.items() for i in range(n)
    ]
    return Manifest(records=records, classes=list(per_class))


def train_ids(manifest: Manifest) -> frozenset[str]:
    return frozenset(r.video_id for r in manifest.subset("train"))


def per_class(manifest: Manifest, split: str) -> Counter[str]:
    return Counter(r.label for r in manifest.subset(split))


@pytest.fixture(scope="module")
def ve8() -> Manifest:
    return official_manifest(OFFICIAL_LISTS / "ve8", VE8_CLASSES)


def test_ve8_runs_are_ten_different_stratified_splits(ve8: Manifest) -> None:
    runs = ve8_runs(ve8, seed=0)
    assert len(runs) == 10 and len({train_ids(run) for run in runs}) == 10
    totals = Counter(r.label for r in ve8.records)
    for run in runs:
        assert Counter(r.split for r in run.records) == {"train": 732, "test": 367}
        train, test = per_class(run, "train"), per_class(run, "test")
        assert all(abs(train[c] - totals[c] * 2 / 3) <= 1 and train[c] + test[c] == totals[c] for c in totals)
        assert train_ids(run).isdisjoint(r.video_id for r in run.subset("test"))
        assert len(run) == len(ve8) and run.classes == VE8_CLASSES


def test_ve8_runs_are_deterministic_per_seed(ve8: Manifest) -> None:
    first = [train_ids(run) for run in ve8_runs(ve8, n_runs=3, seed=7)]
    assert first == [train_ids(run) for run in ve8_runs(ve8, n_runs=3, seed=7)]
    assert first != [train_ids(run) for run in ve8_runs(ve8, n_runs=3, seed=8)]


def test_ve8_runs_leave_the_input_alone(ve8: Manifest) -> None:
    before = [r.split for r in ve8.records]
    ve8_runs(ve8, n_runs=2)
    assert [r.split for r in ve8.records] == before


def test_ve8_runs_refuse_a_class_of_one() -> None:
    with pytest.raises(ManifestError, match=r"classes \['b'\] have fewer than 2 videos"):
        ve8_runs(synthetic({"a": 5, "b": 1}))


def test_fixed_split_checks_train_and_test(ve8: Manifest) -> None:
    assert fixed_split(ve8) is ve8
    with pytest.raises(ManifestError, match="needs train and test"):
        fixed_split(synthetic({"a": 3}, split="train"))
    with pytest.raises(ManifestError, match=r"3 video\(s\) have no split"):
        fixed_split(synthetic({"a": 3}))


def test_caer_split_is_7_1_2_per_class() -> None:
    manifest = caer_split(synthetic({c: 100 for c in "abcdefg"}), seed=3)
    for split, share in (("train", 70), ("val", 10), ("test", 20)):
        counts = per_class(manifest, split)
        assert all(abs(counts[c] - share) <= 1 for c in "abcdefg"), (split, counts)
    assert sum(per_class(manifest, "train").values()) == 490


def test_caer_split_is_deterministic_and_seeded() -> None:
    base = synthetic({"a": 40, "b": 60})
    assert caer_split(base, seed=1).records == caer_split(base, seed=1).records
    assert caer_split(base, seed=1).records != caer_split(base, seed=2).records


def test_caer_split_without_val() -> None:
    manifest = caer_split(synthetic({"a": 30, "b": 30}), ratios=(2, 0, 1))
    assert Counter(r.split for r in manifest.records) == {"train": 40, "test": 20}


def test_caer_split_rejects_bad_ratios() -> None:
    with pytest.raises(ManifestError, match="ratios"):
        caer_split(synthetic({"a": 10}), ratios=(7, 1, 0))


def test_carve_validation_is_stratified_and_keeps_test() -> None:
    manifest = synthetic({"a": 50, "b": 100}, split="train")
    carved = carve_validation(manifest, fraction=0.2, seed=0)
    assert per_class(carved, "val") == {"a": 10, "b": 20}
    assert train_ids(carved) | {r.video_id for r in carved.subset("val")} == train_ids(manifest)


def test_carve_validation_leaves_test_and_singletons_alone() -> None:
    train = synthetic({"a": 7, "b": 7, "c": 7, "d": 1}, split="train").records
    test = [VideoRecord(f"t{i}", f"t{i}.mp4", "a", "test") for i in range(4)]
    carved = carve_validation(Manifest(train + test, ["a", "b", "c", "d"]), fraction=0.1, seed=0)
    assert per_class(carved, "val") == {"a": 1, "b": 1, "c": 1}
    assert per_class(carved, "train")["d"] == 1 and len(carved.subset("test")) == 4


def test_carve_validation_rejects_bad_fraction() -> None:
    with pytest.raises(ManifestError, match="fraction 1.5"):
        carve_validation(synthetic({"a": 4}, split="train"), fraction=1.5)


def test_ensure_split_assigns_only_when_there_is_none() -> None:
    unsplit = BuildResult(synthetic({"a": 20, "b": 20}))
    done = ensure_split(unsplit, seed=4)
    assert set(Counter(r.split for r in done.manifest.records)) == {"train", "val", "test"}
    assert "seed 4" in done.warnings[0]
    split = BuildResult(synthetic({"a": 3}, split="test"))
    assert ensure_split(split) is split


@pytest.mark.parametrize("per_class", [{"a": 1, "b": 1}, {"a": 1}])
def test_too_few_videos_to_split_is_a_manifest_error_not_sklearns(per_class: dict[str, int]) -> None:
    # a root pointing at a folder with one video per class: scikit-learn's ValueError was a traceback
    with pytest.raises(ManifestError, match=rf"its videos \({sum(per_class.values())}\) are too few for a "
                                            r"train/val/test split \(7, 1, 2\)"):
        ensure_split(BuildResult(synthetic(per_class)), seed=0)


def with_copies_of(manifest: Manifest, copies: dict[str, list[str]]) -> Manifest:
    """`manifest` plus, for each video id in `copies`, records of its copies (the manifest stage's
    DUPLICATE_OF column on every member, naming the first)."""
    records = []
    for r in manifest.records:
        extra = {DUPLICATE_OF: r.video_id} if r.video_id in copies else {}
        records.append(VideoRecord(r.video_id, r.path, r.label, r.split, extra))
        records += [VideoRecord(c, f"{c}.mp4", r.label, r.split, {DUPLICATE_OF: r.video_id})
                    for c in copies.get(r.video_id, [])]
    return Manifest(records=records, classes=list(manifest.classes))


def sides(manifest: Manifest, ids: list[str]) -> set[str]:
    by_id = manifest.by_id()
    return {by_id[i].split for i in ids}


COPIES = {"a/0": ["a/0-copy", "a/0-again"], "a/3": ["a/3-copy"], "b/1": ["b/1-copy"], "c/2": ["c/2-copy"]}


@pytest.mark.parametrize("seed", range(6))
def test_every_drawn_split_keeps_a_clips_copies_on_one_side(seed: int) -> None:
    plain = synthetic({"a": 9, "b": 7, "c": 8})
    copied = with_copies_of(plain, COPIES)
    groups = [[first, *more] for first, more in COPIES.items()]
    for run in ve8_runs(copied, n_runs=3, seed=seed):
        assert all(len(sides(run, g)) == 1 for g in groups)
    caer = caer_split(copied, seed=seed)
    assert all(len(sides(caer, g)) == 1 for g in groups)
    carved = carve_validation(with_splits(copied, {r.video_id: "train" for r in copied.records}), 0.3,
                              seed=seed)
    assert all(len(sides(carved, g)) == 1 for g in groups)
    assert {r.split for r in carved.records} == {"train", "val"}


def test_without_copies_the_units_are_the_videos_and_the_splits_unchanged() -> None:
    """The column, empty or absent, draws the same splits: a dataset without copies keeps its runs."""
    plain = synthetic({"a": 9, "b": 7, "c": 8})
    empty = Manifest(records=[VideoRecord(r.video_id, r.path, r.label, r.split, {DUPLICATE_OF: ""})
                              for r in plain.records], classes=plain.classes)
    runs = [[train_ids(m) for m in ve8_runs(manifest, n_runs=3)] for manifest in (plain, empty)]
    assert runs[0] == runs[1]
    assert Units(plain.records).keys == [r.video_id for r in plain.records]


def test_a_class_whose_videos_are_all_copies_of_one_clip_cannot_be_split() -> None:
    copied = with_copies_of(synthetic({"a": 5, "b": 1}), {"b/0": ["b/0-copy"]})
    with pytest.raises(ManifestError, match=r"classes \['b'\] have fewer than 2 videos \(copies of one clip"):
        ve8_runs(copied, n_runs=2)


def test_a_dataset_of_copies_too_few_to_split_says_how_many_distinct_clips() -> None:
    copied = with_copies_of(synthetic({"a": 1, "b": 1}), {"a/0": ["a/0-copy", "a/0-again"]})
    with pytest.raises(ManifestError, match=r"its videos \(4, 2 distinct clips\) are too few"):
        ensure_split(BuildResult(copied), seed=0)

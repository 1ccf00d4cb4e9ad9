"""Split protocols of the benchmarks, as functions from a manifest to manifests with their splits set.

- VideoEmotion-8: 10 runs, each a random stratified 2/3 train / 1/3 test split (``ve8_runs``);
- Ekman-6, HEIV, MediaEval 2015: the published split (``fixed_split`` checks it);
- CAER, or any dataset shipped without a split: stratified train/val/test 7:1:2 (``caer_split``);
- the trainer's validation set: a stratified fraction of train moved to ``val`` (``carve_validation``).

All are seeded and deterministic; stratification is scikit-learn's, imported by the protocols that draw
(1.7 s): the manifest stage runs on every `dvc repro`, and a manifest with its split needs none of it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import replace

from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.manifests.result import BuildResult, ManifestError

# The protocols that draw train and test at random from every video (`ve8_runs`, `caer_split`): under them
# the manifest's split column says nothing of which videos are tested (pipeline/training/protocol.py runs
# them; pipeline/manifests/duplicates.py says copies may land on both sides).
RANDOM_PROTOCOLS = ("ve8_runs", "caer")


def with_splits(manifest: Manifest, splits: dict[str, str]) -> Manifest:
    """A copy of the manifest with the split of the named videos replaced."""
    records = [replace(r, split=splits.get(r.video_id, r.split)) for r in manifest.records]
    return Manifest(records=records, classes=list(manifest.classes))


def _check_labelled(records: list[VideoRecord], least: int) -> list[str]:
    labels = [r.label for r in records]
    small = sorted(c for c, n in Counter(labels).items() if n < least)
    if small:
        raise ManifestError(f"classes {small} have fewer than {least} videos: no stratified split")
    return labels


def ve8_runs(
    manifest: Manifest, n_runs: int = 10, train_fraction: float = 2 / 3, seed: int = 0
) -> list[Manifest]:
    """``n_runs`` random splits of the whole manifest, each with ``train_fraction`` of every class in train.

    VideoEmotion-8's protocol: report the mean and std of accuracy over the runs.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    labels = _check_labelled(manifest.records, 2)
    sss = StratifiedShuffleSplit(n_splits=n_runs, train_size=train_fraction, random_state=seed)
    ids = [r.video_id for r in manifest.records]
    runs = []
    for train, _ in sss.split(ids, labels):
        in_train = {ids[i] for i in train}
        runs.append(with_splits(manifest, {v: "train" if v in in_train else "test" for v in ids}))
    return runs


def fixed_split(manifest: Manifest) -> Manifest:
    """The manifest itself, once checked to have a train and a test set and no video without a split."""
    counts = Counter(r.split for r in manifest.records)
    unsplit = [r.video_id for r in manifest.records if not r.split]
    if unsplit:
        raise ManifestError(f"{len(unsplit)} video(s) have no split, e.g. {unsplit[:3]}")
    if not counts["train"] or not counts["test"]:
        raise ManifestError(f"a fixed split needs train and test videos; found {dict(counts)}")
    return manifest


def _stratified(ids: list[str], labels: list[str], test_size: float | int, seed: int) -> tuple[list, list]:
    """Stratified two-way split; unstratified, with a warning, when a class is too small to stratify."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(ids, test_size=test_size, stratify=labels, random_state=seed)
    except ValueError as e:
        # scikit-learn's message names no class; the classes too small to stratify are what users can fix
        small = sorted(c for c, n in Counter(labels).items() if n < 2)
        why = f"classes {small} have a single video" if small else str(e)
        warnings.warn(f"split not stratified: {why}", stacklevel=3)
    try:
        return train_test_split(ids, test_size=test_size, random_state=seed)
    except ValueError:
        # a dataset of two or three videos (a root pointing at one class's folder): one line (the manifest
        # stage's ManifestError), not scikit-learn's traceback
        raise ManifestError(f"{len(ids)} video{'s' * (len(ids) != 1)} cannot be split in two parts") from None


def caer_split(manifest: Manifest, ratios: tuple[float, float, float] = (7, 1, 2), seed: int = 0) -> Manifest:
    """Stratified train/val/test split of every video in the given ratios (CAER's 7:1:2 by default)."""
    train_r, val_r, test_r = (float(r) for r in ratios)
    if min(ratios) < 0 or not train_r or not test_r:
        raise ManifestError(f"ratios {ratios}: train and test must be positive, val not negative")
    ids, labels = [r.video_id for r in manifest.records], [r.label for r in manifest.records]
    rest, test = _stratified(ids, labels, test_r / (train_r + val_r + test_r), seed)
    splits = dict.fromkeys(test, "test") | dict.fromkeys(rest, "train")
    if val_r:
        by_id = manifest.by_id()
        _, val = _stratified(rest, [by_id[i].label for i in rest], val_r / (train_r + val_r), seed)
        splits |= dict.fromkeys(val, "val")
    return with_splits(manifest, splits)


def carve_validation(manifest: Manifest, fraction: float = 0.1, seed: int = 0) -> Manifest:
    """Move a stratified ``fraction`` of train to ``val``, at least one video of each class that has two.

    Classes with a single training video keep it in train. Videos already in ``val`` stay there.
    """
    if not 0 < fraction < 1:
        raise ManifestError(f"validation fraction {fraction} is not between 0 and 1")
    train = manifest.subset("train")
    counts = Counter(r.label for r in train)
    pool = [r for r in train if counts[r.label] >= 2]
    if not pool:
        raise ManifestError("no class has two training videos; no validation set can be carved")
    n_val = max(round(fraction * len(pool)), len({r.label for r in pool}))
    _, val = _stratified([r.video_id for r in pool], [r.label for r in pool], n_val, seed)
    return with_splits(manifest, dict.fromkeys(val, "val"))


def ensure_split(
    result: BuildResult, seed: int = 0, ratios: tuple[float, float, float] = (7, 1, 2)
) -> BuildResult:
    """Give a dataset published without any split a seeded stratified one (``caer_split``), noting it."""
    records = result.manifest.records
    if not records or any(r.split for r in records):
        return result
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            manifest = caer_split(result.manifest, ratios, seed)
        except ManifestError as e:
            raise ManifestError(f"no split in the dataset, and its videos ({len(records)}) are too few for a "
                                f"train/val/test split {ratios} ({e}); is dataset.root the whole "
                                "dataset?") from None
    notes = [f"no split in the dataset: assigned train/val/test {ratios} stratified, seed {seed}"]
    notes += [str(w.message) for w in caught]
    return replace(result, manifest=manifest, warnings=result.warnings + notes)

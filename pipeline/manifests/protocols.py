"""Split protocols of the benchmarks, as functions from a manifest to manifests with their splits set.

- VideoEmotion-8: 10 runs, each a random stratified 2/3 train / 1/3 test split (``ve8_runs``);
- Ekman-6, HEIV, MediaEval 2015: the published split (``fixed_split`` checks it);
- CAER, or any dataset shipped without a split: stratified train/val/test 7:1:2 (``caer_split``);
- the trainer's validation set: a stratified fraction of train moved to ``val`` (``carve_validation``).

Copies of one clip (the same bytes: the manifest stage's ``duplicate_of`` column) are kept on one side of
every split these functions draw, as one unit with the first copy's label, so that no copy of a test or
validation video is trained on. Without copies the units are the videos, and the splits are as before.

All are seeded and deterministic; stratification is scikit-learn's, imported by the protocols that draw
(1.7 s): the manifest stage runs on every `dvc repro`, and a manifest with its split needs none of it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import replace

from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.manifests.result import BuildResult, ManifestError

DUPLICATE_OF = "duplicate_of"
"""The manifest column naming, on every copy of a clip held more than once, the video id of its first copy
(pipeline/manifests/duplicates.py); empty on the others, and absent from a manifest without copies."""

# The protocols that draw train and test at random from every video (`ve8_runs`, `caer_split`): under them
# the manifest's split column says nothing of which videos are tested (pipeline/training/protocol.py runs
# them; `Units` keeps a clip's copies together, so pipeline/manifests/duplicates.py reports none as
# spanning splits).
RANDOM_PROTOCOLS = ("ve8_runs", "caer")


def with_splits(manifest: Manifest, splits: dict[str, str]) -> Manifest:
    """A copy of the manifest with the split of the named videos replaced."""
    records = [replace(r, split=splits.get(r.video_id, r.split)) for r in manifest.records]
    return Manifest(records=records, classes=list(manifest.classes))


class Units:
    """The videos of `records` as the units a split draws: each clip's copies together (``DUPLICATE_OF``),
    keyed by the first copy's id, labelled with the first copy's label, in manifest order."""

    def __init__(self, records: list[VideoRecord]) -> None:
        self.members: dict[str, list[str]] = {}
        self.labels: dict[str, str] = {}
        for r in records:
            key = r.extra.get(DUPLICATE_OF) or r.video_id
            self.members.setdefault(key, []).append(r.video_id)
            self.labels.setdefault(key, r.label)

    @property
    def keys(self) -> list[str]:
        return list(self.members)

    def label_list(self, keys: list[str] | None = None) -> list[str]:
        return [self.labels[k] for k in (self.keys if keys is None else keys)]

    def videos(self, keys: list[str]) -> list[str]:
        """The video ids of `keys`' units."""
        return [v for k in keys for v in self.members[k]]


def _check_labelled(labels: list[str], least: int) -> list[str]:
    small = sorted(c for c, n in Counter(labels).items() if n < least)
    if small:
        raise ManifestError(f"classes {small} have fewer than {least} videos (copies of one clip count "
                            "once): no stratified split")
    return labels


def ve8_runs(
    manifest: Manifest, n_runs: int = 10, train_fraction: float = 2 / 3, seed: int = 0
) -> list[Manifest]:
    """``n_runs`` random splits of the whole manifest, each with ``train_fraction`` of every class in train.

    VideoEmotion-8's protocol: report the mean and std of accuracy over the runs.
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    units = Units(manifest.records)
    keys, labels = units.keys, _check_labelled(units.label_list(), 2)
    sss = StratifiedShuffleSplit(n_splits=n_runs, train_size=train_fraction, random_state=seed)
    runs = []
    for train, _ in sss.split(keys, labels):
        in_train = set(units.videos([keys[i] for i in train]))
        runs.append(with_splits(manifest, {r.video_id: "train" if r.video_id in in_train else "test"
                                           for r in manifest.records}))
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
    units = Units(manifest.records)
    rest, test = _stratified(units.keys, units.label_list(), test_r / (train_r + val_r + test_r), seed)
    splits = dict.fromkeys(units.videos(test), "test") | dict.fromkeys(units.videos(rest), "train")
    if val_r:
        _, val = _stratified(rest, units.label_list(rest), val_r / (train_r + val_r), seed)
        splits |= dict.fromkeys(units.videos(val), "val")
    return with_splits(manifest, splits)


def carve_validation(manifest: Manifest, fraction: float = 0.1, seed: int = 0) -> Manifest:
    """Move a stratified ``fraction`` of train to ``val``, at least one video of each class that has two
    (copies of one clip counting once, and moving together).

    Classes with a single training video keep it in train. Videos already in ``val`` stay there.
    """
    if not 0 < fraction < 1:
        raise ManifestError(f"validation fraction {fraction} is not between 0 and 1")
    units = Units(manifest.subset("train"))
    counts = Counter(units.label_list())
    pool = [k for k in units.keys if counts[units.labels[k]] >= 2]
    if not pool:
        raise ManifestError("no class has two training videos; no validation set can be carved")
    n_val = max(round(fraction * len(pool)), len({units.labels[k] for k in pool}))
    _, val = _stratified(pool, units.label_list(pool), n_val, seed)
    return with_splits(manifest, dict.fromkeys(units.videos(val), "val"))


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
            clips = len(Units(records).keys)
            counted = str(len(records)) + ("" if clips == len(records) else f", {clips} distinct clips")
            raise ManifestError(f"no split in the dataset, and its videos ({counted}) are too few for a "
                                f"train/val/test split {ratios} ({e}); is dataset.root the whole "
                                "dataset?") from None
    notes = [f"no split in the dataset: assigned train/val/test {ratios} stratified, seed {seed}"]
    notes += [str(w.message) for w in caught]
    return replace(result, manifest=manifest, warnings=result.warnings + notes)

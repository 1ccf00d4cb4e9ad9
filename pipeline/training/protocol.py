"""Which videos train, select and test each run, under the dataset's protocol and the selection rule.

Protocols (``train.protocol``): ``fixed`` (the manifest's own split: Ekman-6, HEIV, MediaEval, the demo),
``ve8_runs`` (VideoEmotion-8: ``train.runs`` random stratified 2/3 splits), ``caer`` (a seeded stratified
7:1:2 split when the manifest has none).

Selection (``train.selection``), labelled in every report:
- ``val-best`` (default, honest): a stratified ``val_fraction`` of train is carved off (unless the manifest
  already has ``val`` videos); the epoch with the best validation accuracy is kept; the test set is touched
  once, by the evaluate stage.
- ``test-best``: the authors' public code, which keeps the epoch that scores best on the test set. Offered to
  compare with published numbers; optimistic by construction.
- ``last``: no validation set; the weights after the last epoch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.manifests.format import Manifest
from pipeline.manifests.protocols import RANDOM_PROTOCOLS, caer_split, carve_validation, fixed_split, ve8_runs

PROTOCOLS = ("fixed", *RANDOM_PROTOCOLS)
SELECTIONS = ("val-best", "test-best", "last")
SELECTION_LABELS = {
    "val-best": "val-best: epoch chosen on a validation split carved from train; test set used once",
    "test-best": "test-best (authors' protocol): epoch chosen on the TEST set; optimistic, "
    "for comparison only",
    "last": "last: weights after the final epoch; no model selection",
}


@dataclass(frozen=True)
class RunSplit:
    """The video ids of one run. `val` is the selection set: empty for "last", the test ids for
    "test-best"."""

    run: int
    train: list[str]
    val: list[str]
    test: list[str]
    selection: str

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> RunSplit:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def protocol_manifests(manifest: Manifest, protocol: str, runs: int, seed: int) -> list[Manifest]:
    if protocol == "fixed":
        return [fixed_split(manifest)]
    if protocol == "ve8_runs":
        return ve8_runs(manifest, n_runs=runs, seed=seed)
    if protocol == "caer":
        has_split = all(r.split for r in manifest.records)
        return [manifest if has_split else caer_split(manifest, seed=seed)]
    raise ValueError(f"train.protocol {protocol!r} is not one of {PROTOCOLS}")


def _ids(manifest: Manifest, split: str) -> list[str]:
    return [r.video_id for r in manifest.subset(split)]


def run_splits(
    manifest: Manifest, *, protocol: str, runs: int, selection: str, val_fraction: float, seed: int
) -> list[RunSplit]:
    """One RunSplit per run of the protocol, seeded."""
    if selection not in SELECTIONS:
        raise ValueError(f"train.selection {selection!r} is not one of {SELECTIONS}")
    out = []
    for run, m in enumerate(protocol_manifests(manifest, protocol, runs, seed)):
        if selection == "val-best" and not m.subset("val"):
            m = carve_validation(m, val_fraction, seed=seed + run)
        train, test = _ids(m, "train"), _ids(m, "test")
        val = {"val-best": _ids(m, "val"), "test-best": test, "last": []}[selection]
        if selection != "val-best":
            train = train + _ids(m, "val")
        out.append(RunSplit(run, train, val, test, selection))
    return out

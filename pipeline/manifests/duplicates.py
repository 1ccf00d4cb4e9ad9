"""Videos of the manifest that hold the same bytes: a clip downloaded under two names, copied into two class
folders, listed in both the train and the test list, or a symbolic or hard link to another video.

The same bytes in train and test inflate test accuracy without a word (the test video was trained on);
the same bytes under two labels is a label conflict. Both are said, never fatal: a curated benchmark may
hold known duplicates in its official lists and must still run (docs/dataset.md).

Cheap: the inventory's fingerprint (size and the first and last 64 KiB, ``source_fingerprint``) of every
video is already computed, so only the files whose fingerprints collide are read in full (sha256), to
confirm it: two files that agree in size, head and tail but differ in the middle are no duplicates. A
dataset without duplicates costs nothing more; one file reached by several names (links) is read once.
Empty files are left out: they hold no video (decode rejects each with its own reason).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.file_memo import FileMemo, sha256_of
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.manifests.protocols import DUPLICATE_OF

# The problems a group can have, as the report names them.
ACROSS_SPLITS, ACROSS_LABELS, WITHIN_SPLIT = "across_splits", "across_labels", "within_split"


@dataclass(frozen=True)
class DuplicateGroup:
    sha256: str
    size: int
    members: tuple[VideoRecord, ...]   # manifest order
    problems: tuple[str, ...]          # ACROSS_SPLITS and/or ACROSS_LABELS, or (WITHIN_SPLIT,)
    targets: tuple[str, ...] = ("label",)   # what the heads learn: "label" and any other target column

    def values(self, target: str) -> list[str]:
        """Each member's value of `target` ("label", or a manifest column such as a valence)."""
        return [m.label if target == "label" else m.extra.get(target, "") for m in self.members]


def _content_hashes(paths: Iterable[tuple[Path, str]], cache: FileMemo) -> dict[Path, str]:
    """Full hash of each (path, fingerprint), each underlying file (same device and inode: a link) read
    once; a file that cannot be read is left out (it is then no duplicate of anything, and decode names
    it)."""
    by_inode: dict[tuple[int, int], str] = {}
    hashes = {}
    for path, fingerprint in paths:
        try:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
            if key not in by_inode:
                by_inode[key] = cache.get(path, sha256_of, st=st, salt=fingerprint)
        except OSError:
            continue
        hashes[path] = by_inode[key]
    return hashes


# A manifest column of cross-validation folds (the ``csv`` builder keeps it as an extra column): copies in
# two folds leak the test fold into training as surely as copies in train and test.
FOLD = "fold"


def _problems(group: DuplicateGroup, random_split: bool) -> tuple[str, ...]:
    problems = []
    if not random_split and len({(m.split, m.extra.get(FOLD, "")) for m in group.members}) > 1:
        problems.append(ACROSS_SPLITS)
    if any(len(set(group.values(t))) > 1 for t in group.targets):
        problems.append(ACROSS_LABELS)
    return tuple(problems) or (WITHIN_SPLIT,)


def find_duplicates(
    records: list[VideoRecord], root: Path, inventory: Iterable[tuple[str, int, str]],
    random_split: bool = False, cache: FileMemo | None = None, targets: tuple[str, ...] = ("label",),
) -> list[DuplicateGroup]:
    """Groups of two or more manifest videos with the same bytes, from the inventory rows (path, size,
    fingerprint): files read in full only where fingerprints collide. ``random_split``: every head draws
    its splits at random, which keep each group on one side (``protocols.Units``), and the split column is
    not used: no group spans splits. ``cache``: the full hashes of the last run (``FileMemo``), updated.
    ``targets``: what the heads learn (`train.target`: "label" or a manifest column); copies that disagree
    on one are a label conflict."""
    fingerprints = {path: (size, fp) for path, size, fp in inventory}
    candidates: dict[str, list[VideoRecord]] = defaultdict(list)
    for record in records:
        size, fp = fingerprints.get(record.path, (0, ""))
        if size and fp:
            candidates[fp].append(record)
    groups = []
    for fp, same_fp in candidates.items():
        if len(same_fp) < 2:
            continue
        hashes = _content_hashes(((r.resolve(root), fp) for r in same_fp), cache or FileMemo())
        by_hash: dict[str, list[VideoRecord]] = defaultdict(list)
        for record in same_fp:
            if (digest := hashes.get(record.resolve(root))) is not None:
                by_hash[digest].append(record)
        for digest, members in by_hash.items():
            if len(members) > 1:
                group = DuplicateGroup(digest, fingerprints[members[0].path][0], tuple(members), (), targets)
                groups.append(replace(group, problems=_problems(group, random_split)))
    order = {r.path: i for i, r in enumerate(records)}
    return sorted(groups, key=lambda g: order[g.members[0].path])


def _members(group: DuplicateGroup, shown: int = 4) -> str:
    said = [f"{m.path} ({m.split or 'no split'}{', fold ' + m.extra[FOLD] if m.extra.get(FOLD) else ''}, "
            f"{m.label})" for m in group.members[:shown]]
    more = len(group.members) - shown
    return " = ".join(said) + (f" = {more} more" if more > 0 else "")


def _why(group: DuplicateGroup) -> str:
    reasons = []
    for target in group.targets:
        if len(values := set(group.values(target))) > 1:
            reasons.append(f"{target} conflict (one clip, " + " and ".join(sorted(values)) + ")")
    if ACROSS_SPLITS in group.problems:
        splits = {m.split for m in group.members}
        folds = {m.extra.get(FOLD, "") for m in group.members}
        if len(folds) > 1:
            named = " and ".join(sorted(f or "none" for f in folds))
            reasons.append(f"folds {named} share a video: the test fold leaks into training")
        elif "test" in splits and ("train" in splits or "val" in splits):
            reasons.append("test leaks into training")
        else:
            reasons.append(" and ".join(sorted(s or "no split" for s in splits)) + " share a video")
    return "; ".join(reasons)


@dataclass(frozen=True)
class Duplicates:
    """What the manifest stage found: the groups, and the protocol that draws the splits at random when
    every head trains under one ("": the manifest's split column is used)."""
    groups: tuple[DuplicateGroup, ...] = ()
    random_protocol: str = ""

    def report(self) -> dict:
        """The ``duplicates`` entry of manifest_report.json: counts per problem and every group's members."""
        count = {p: sum(p in g.problems for g in self.groups)
                 for p in (ACROSS_SPLITS, ACROSS_LABELS, WITHIN_SPLIT)}
        return {
            "groups": len(self.groups),
            **count,
            "list": [{"sha256": g.sha256, "size": g.size, "problems": list(g.problems),
                      "members": [{"video_id": m.video_id, "path": m.path, "label": m.label,
                                   "split": m.split or "none",
                                   **({FOLD: m.extra[FOLD]} if FOLD in m.extra else {}),
                                   **{t: m.extra.get(t, "") for t in g.targets if t != "label"}}
                                  for m in g.members]}
                     for g in self.groups],
        }

    def lines(self, limit: int = 20) -> list[str]:
        """The stage's summary lines: one warning per group that spans splits or labels (naming its files,
        up to ``limit``), then the count of harmless copies within one split and label."""
        serious = [g for g in self.groups if WITHIN_SPLIT not in g.problems]
        lines = []
        if serious:
            lines.append(f"warning: {len(serious)} group(s) of videos with the same bytes in different "
                         "splits or under different labels:")
            lines += [f"  {_why(g)}: {_members(g)}" for g in serious[:limit]]
            if len(serious) > limit:
                lines.append(f"  ... and {len(serious) - limit} more, see duplicates in manifest_report.json")
        within = [g for g in self.groups if WITHIN_SPLIT in g.problems]
        if within:
            copies = sum(len(g.members) - 1 for g in within)
            plural = "y" if copies == 1 else "ies"
            where = (f"kept on one side of every split train.protocol {self.random_protocol} draws"
                     if self.random_protocol else "within one split and label")
            lines.append(f"same bytes twice, {where}: {copies} extra cop{plural} in {len(within)} group(s), "
                         "weighing that clip more where its split is used (see duplicates in "
                         "manifest_report.json)")
        return lines


def with_copies(manifest: Manifest, groups: list[DuplicateGroup]) -> Manifest:
    """The manifest with the ``DUPLICATE_OF`` column: on every member of a group, its first member's id, so
    that the splits drawn later keep the copies on one side. Without groups, the manifest as it is (no
    column: a dataset without copies keeps its manifest, and nothing downstream re-runs)."""
    first = {m.video_id: g.members[0].video_id for g in groups for m in g.members}
    if not first:
        return manifest
    return Manifest(records=[replace(r, extra={**r.extra, DUPLICATE_OF: first[r.video_id]})
                             if r.video_id in first else r for r in manifest.records],
                    classes=list(manifest.classes))

"""A trained head as the train stage leaves it (models/<dataset>/<key>/run_XX/best.pt): what the head is,
what it read and how, and its weights. Evaluation and `vemo predict` rebuild the head from this alone.

`save_trained` and `load_trained` are the only code that touches the file. It holds plain dicts, lists,
strings, numbers and tensors, never a pickled class, so it loads with `torch.load(weights_only=True)` (no
code runs on load), written atomically (`checkpoint.save_checkpoint`). Besides the fields of `TrainedHead`
it holds "format_version", `TrainedHead.FORMAT_VERSION` when written.

Versions. A change to the fields or to what one means takes a new FORMAT_VERSION; a file of another
version is refused, naming the file, the version found and the one expected, and saying to train again,
rather than read into fields that mean something else. A file without "format_version" (version 0) was
written before the version existed: its dict had exactly today's keys, so it loads when its keys are
those of the current layout, and is refused as above otherwise (such files already had "key" and
"feature_scales"; ones older still cannot be evaluated anyway). Trained models in users' models/ folders
keep working without retraining.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import torch

from pipeline.errors import ConfigError
from pipeline.heads import build_head
from pipeline.heads.base import Head, InputSpec
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from pipeline.training.data import CacheInfo, FeatureNorm, norms_from_saved

VERSION_KEY = "format_version"
UNVERSIONED = 0


# eq=False: the tensors have no single truth value, so a generated == would raise on any real head
@dataclass(frozen=True, eq=False)
class TrainedHead:
    """One protocol run's selected head, with what is needed to score new videos the same way."""

    FORMAT_VERSION: ClassVar[int] = 1

    head: str  # the head's registry name (`pipeline.heads.build_head`)
    key: str  # its params.yaml entry, heads.<key>
    options: dict[str, Any]  # the head's constructor options
    classes: list[str]  # output order of the logits
    polarity: list[int] | None  # per class; None when some class has none
    log_prior: torch.Tensor  # (C,) log class frequencies of the training videos: the score of a blank video
    inputs: dict[str, InputSpec]  # batch entry -> where it is read from
    caches: dict[str, CacheInfo]  # cache name -> its configuration hash and weights at training time
    feature_scales: dict[str, Any]  # input -> `FeatureNorm.to_saved()` (a bare float in older files)
    selection: str  # how the epoch was chosen (config `selection`)
    epoch: int  # the kept epoch
    score: list[float]  # its selection score (val accuracy, -val loss)
    config_hash: str  # the run's configuration hash
    state_dict: dict[str, torch.Tensor]  # the head's weights, on the CPU

    def build(self) -> Head:
        """The head module with its weights, in eval mode."""
        polarity = None if self.polarity is None else torch.as_tensor(self.polarity, dtype=torch.long)
        head = build_head(self.head, num_classes=len(self.classes), polarity=polarity, **self.options)
        head.load_state_dict(self.state_dict)
        return head.eval()

    def norms(self) -> dict[str, FeatureNorm]:
        """The feature normalisation the head was trained with, per input."""
        return norms_from_saved(self.feature_scales)


FIELDS = tuple(f.name for f in fields(TrainedHead))


def save_trained(path: Path, trained: TrainedHead) -> None:
    # field by field rather than asdict(trained): asdict deep-copies every weight tensor
    payload: dict[str, Any] = {name: getattr(trained, name) for name in FIELDS}
    payload["inputs"] = {k: asdict(v) for k, v in trained.inputs.items()}
    payload["caches"] = {k: asdict(v) for k, v in trained.caches.items()}
    payload[VERSION_KEY] = TrainedHead.FORMAT_VERSION
    save_checkpoint(path, payload)


def load_trained(path: Path) -> TrainedHead:
    """The trained head of a best.pt; a file of another format version is an error (module docstring)."""
    saved = dict(load_checkpoint(path))
    version = saved.pop(VERSION_KEY, UNVERSIONED)
    if version not in (TrainedHead.FORMAT_VERSION, UNVERSIONED) or set(saved) != set(FIELDS):
        _refuse(path, saved, version)
    return TrainedHead(
        **{name: saved[name] for name in FIELDS if name not in ("inputs", "caches")},
        inputs={k: InputSpec(**v) for k, v in saved["inputs"].items()},
        caches={k: CacheInfo(**v) for k, v in saved["caches"].items()},
    )


def _refuse(path: Path, saved: dict[str, Any], version: object) -> NoReturn:
    key = saved.get("key") or Path(path).parent.parent.name
    found = f"format version {version}" + (" (none recorded)" if version == UNVERSIONED else "")
    layout = ""
    if version in (TrainedHead.FORMAT_VERSION, UNVERSIONED):
        missing, extra = sorted(set(FIELDS) - set(saved)), sorted(set(saved) - set(FIELDS))
        layout = f" and a different layout (missing {missing}, unknown {extra})"
    raise ConfigError(
        f"{path}: a trained head with {found}{layout}; this vemo reads format version "
        f"{TrainedHead.FORMAT_VERSION} (or unversioned files of the same layout). "
        f"Re-run `dvc repro train@{key}` (with --force when DVC reports nothing changed) to write it again"
    )

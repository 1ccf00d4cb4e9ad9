"""One head entry of params.yaml (`heads.<key>`), merged with the shared `train:` section."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.errors import ConfigError
from pipeline.heads import head_accepts, head_caches


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adam"  # adam | adamw | sgd (momentum 0.9)
    lr: float = 2e-4
    weight_decay: float = 0.0
    schedule: str = "none"  # none | step (x gamma every step_size epochs) | cosine
    step_size: int = 30
    gamma: float = 0.1
    early_stopping: int = 0  # patience in epochs without a better val accuracy; 0 = off
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
    # Seconds between resume points (last.pt). Speed only, outside the run's configuration hash: on small
    # data an epoch takes less time than writing the model and optimiser state, which would dominate.
    checkpoint_seconds: float = 60.0


UNHASHED = ("checkpoint_seconds",)  # TrainConfig fields left out of the run's configuration hash

# The keys every `heads.<key>.train` of params.yaml lists, null meaning "the shared `train:` value": DVC's
# `dvc exp run -S heads.<key>.train.lr=0.01` sets only keys that exist (a new one needs `-S +...`). Any
# other key of the shared section may still be overridden per head, written in or set with `+`.
HEAD_TRAIN_KEYS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "feature_scale")


@dataclass(frozen=True)
class HeadSetup:
    """One entry of `heads:` in params.yaml, merged with the shared `train:` section."""

    key: str  # the entry's name: models/<dataset>/<key>, train@<key>
    head: str  # registered head (pipeline.heads.list_heads())
    caches: tuple[str, ...]  # caches the stage depends on (must cover the head's inputs)
    options: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = TrainConfig()
    protocol: str = "fixed"
    runs: int = 1
    selection: str = "val-best"
    val_fraction: float = 0.15
    preload: bool = True
    detection_ground_truth: str | None = None  # CSV video_id,start_s,end_s: evaluate adds mAP at tIoU (TEN)
    feature_scale: str = "rms"  # rms | standard | none: FeatureTable.fit_norms
    target: str = "label"  # "label" or an extra manifest column (e.g. valence)
    polarity: dict[str, int] = field(default_factory=dict)  # overrides for classes without a known one
    seed: int = 0


_LOOP_KEYS = frozenset(f.name for f in fields(TrainConfig))
_IDENTITY = {"key", "head", "caches", "options", "train", "seed"}
_SETUP_KEYS = frozenset(f.name for f in fields(HeadSetup)) - _IDENTITY
"""The keys of a `train:` section: the loop's own, and the protocol's (HeadSetup's fields that are not
the entry's identity)."""


def train_overrides(entry: dict[str, Any]) -> dict[str, Any]:
    """A head entry's `train:` overrides, without the keys left null (they keep the shared value)."""
    return {k: v for k, v in (entry.get("train") or {}).items() if v is not None}


def head_options(params: dict[str, Any], key: str) -> dict[str, Any]:
    """`heads.<key>.options`, with `segments` from `decode.segments` for a head that takes it (T of the
    cached snippets sizes its temporal layers)."""
    entry = params["heads"][key]
    options = dict(entry.get("options") or {})
    if head_accepts(entry["head"], "segments"):
        options.setdefault("segments", int(params["decode"]["segments"]))
    return options


def head_setup(params: dict[str, Any], key: str) -> HeadSetup:
    """`heads.<key>` of params.yaml, its `train:` overrides merged over the shared `train:` section; the
    caches are those the head declares (`heads.head_caches`)."""
    if key not in params.get("heads", {}):
        raise ConfigError(f"no entry heads.{key} in params.yaml; entries: {sorted(params.get('heads', {}))}")
    entry = params["heads"][key]
    merged = {**params["train"], **train_overrides(entry)}
    unknown = sorted(set(merged) - _LOOP_KEYS - _SETUP_KEYS)
    if unknown:
        raise ConfigError(f"heads.{key}: unknown train keys {unknown}")
    options = head_options(params, key)
    try:
        caches = head_caches(entry["head"], options)
    except (KeyError, TypeError, ValueError) as exc:
        # the head cannot be built from these options: a setting, named as such, not a traceback
        raise ConfigError(f"heads.{key} ({entry['head']}): {exc.args[0] if exc.args else exc}") from None
    return HeadSetup(
        key=key,
        head=entry["head"],
        caches=caches,
        options=options,
        train=TrainConfig(**{k: v for k, v in merged.items() if k in _LOOP_KEYS}),
        seed=int(params["seed"]),
        **{k: v for k, v in merged.items() if k in _SETUP_KEYS},
    )

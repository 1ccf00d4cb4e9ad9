"""The one training loop every head uses: seeded epochs over cached tensors, model selection, resume.

    for each epoch (shuffle and training views drawn from rng([seed, run, epoch])):
        train on split.train ──> log train/* ──> score split.val (if any) ──> log val/*
        keep the best state by val accuracy (ties: lower val loss); stop after `early_stopping` epochs
        without improvement (0 = never); write last.pt (resume point) when `checkpoint_seconds` have passed
        since the last one, and after the final epoch
    best.pt = the kept state (the final one for selection "last")

A killed run restarts from last.pt when its configuration hash matches, and ends with the same weights as an
uninterrupted run: data order depends only on (seed, run, epoch), and torch's RNG state is checkpointed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dvclive import Live

from pipeline.devices import this_machine
from pipeline.errors import ConfigError
from pipeline.heads.base import Head
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from pipeline.training.config import TrainConfig
from pipeline.training.data import FeatureTable, iter_batches
from pipeline.training.predict import predict, to_device
from pipeline.training.protocol import RunSplit

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def resolve_device(name: str) -> torch.device:
    """`train.device` on this machine (auto, cpu, cuda or cuda:N, as the feature stages take it); a CUDA
    device that is not there is ConfigError, not a silent fall-back to the CPU nor torch's traceback."""
    try:
        return this_machine(name)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"train.device: {exc}") from None


def make_optimizer(head: Head, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"train.optimizer {cfg.optimizer!r} is not one of {sorted(OPTIMIZERS)}")
    extra = {"momentum": 0.9} if cfg.optimizer == "sgd" else {}
    # foreach: one fused update over all parameters (torch picks it on CUDA only; on CPU it is ~2x faster)
    return OPTIMIZERS[cfg.optimizer](
        head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True, **extra
    )


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise ValueError(f"train.schedule {cfg.schedule!r} is not one of none, step, cosine")


class Diverged(ArithmeticError):
    """The loss or the weights became NaN or inf; `fit` turns it into the stage's one line."""


def train_epoch(
    head: Head,
    optimizer: torch.optim.Optimizer,
    table: FeatureTable,
    ids: list[str],
    labels: dict[str, int],
    *,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
) -> dict[str, float]:
    """One pass over `ids`; returns the loss parts and accuracy averaged over videos. A last batch of one
    video is folded into the one before (BatchNorm cannot train on a single sample)."""
    head.train()
    sums: dict[str, float] = {}
    correct = seen = 0
    size = batch_size + 1 if len(ids) % batch_size == 1 and len(ids) > 1 else batch_size
    for number, (chunk, batch) in enumerate(iter_batches(table, ids, labels, batch_size=size, rng=rng), 1):
        batch = to_device(batch, device)
        out = head(batch)
        parts = head.loss(out, batch)
        if not torch.isfinite(loss := parts["loss"].detach()):    # before the step: the weights stay
            raise Diverged(f"the training loss became {float(loss)} at batch {number}")
        optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        try:
            optimizer.step()
        except RuntimeError as exc:   # an lr beyond float32 (3e38) fails inside the step, not as a NaN
            if "overflow" not in str(exc):
                raise
            raise Diverged(f"the optimizer's step overflowed float32 at batch {number} ({exc})") from None
        for name, value in parts.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach()) * len(chunk)
        correct += int((out["logits"].argmax(1) == batch["label"]).sum())
        seen += len(chunk)
    return {**{k: v / max(1, seen) for k, v in sums.items()}, "accuracy": correct / max(1, seen)}


@dataclass
class FitState:
    """Everything a resumed run needs; written to last.pt each epoch."""

    epoch: int = 0  # epochs completed
    best_epoch: int = -1
    best_score: tuple[float, float] = (-1.0, 0.0)  # (val accuracy, -val loss)
    stale: int = 0
    best_state: dict[str, Any] | None = None
    history: list[dict[str, float]] | None = None


def _resume(
    path: Path,
    config_hash: str,
    head: Head,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> FitState | None:
    if not path.is_file():
        return None
    saved = load_checkpoint(path)
    if saved.get("config_hash") != config_hash:
        return None
    head.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    torch.set_rng_state(saved["torch_rng"])
    return FitState(**saved["state"])


def fit(
    head: Head,
    table: FeatureTable,
    split: RunSplit,
    labels: dict[str, int],
    cfg: TrainConfig,
    *,
    seed: int,
    config_hash: str,
    run_dir: Path,
    live_dir: Path,
    log_prior: torch.Tensor,
    label: str = "train",
) -> FitState:
    """Train `head` on `split` and return its state with the selected weights in `best_state`. One line per
    epoch goes to stderr, starting with `label` (e.g. "[train@vaanet] run 0")."""
    device = resolve_device(cfg.device)
    head.to(device)
    optimizer, last = make_optimizer(head, cfg), run_dir / "last.pt"
    schedule = make_schedule(optimizer, cfg)
    state = _resume(last, config_hash, head, optimizer, schedule)
    resumed = state is not None
    state = state or FitState(history=[])
    # A resumed run writes its curves anew from the checkpoint's history, never resuming dvclive's files:
    # DVC removes them when it re-executes the stage, and a kill can leave them cut short (an empty
    # metrics.json, on which dvclive's resume fails) or an epoch ahead of the checkpoint.
    replay = resumed
    if resumed:
        _say(f"{label}: resumed from {last} after epoch {state.epoch}/{cfg.epochs}")
    saved_at = time.monotonic()
    with Live(dir=str(live_dir), resume=False, save_dvc_exp=False, dvcyaml=False) as live:
        for row in state.history if replay else []:
            _log(live, {k: v for k, v in row.items() if k != "epoch"})
        while not _finished(state, cfg):
            started = time.monotonic()
            rng = np.random.default_rng([seed, split.run, state.epoch])
            try:
                row, score = _checked_epoch(head, optimizer, schedule, table, split, labels, cfg, rng=rng,
                                            device=device, log_prior=log_prior)
            except Diverged as exc:
                raise ConfigError(
                    f"head {head.name}, run {split.run}: {exc} of epoch {state.epoch + 1}/{cfg.epochs}: the "
                    f"weights diverged; try a lower train.lr (now {cfg.lr:g}"
                    f"{', times the schedule' if cfg.schedule != 'none' else ''}). No best.pt was written "
                    "from these weights; last.pt, if any, holds an earlier epoch's"
                ) from exc
            if score is not None:
                _select(state, head, score)
            _log(live, row)
            state.history.append({"epoch": state.epoch, **row})
            state.epoch += 1
            _say(f"{label} {epoch_line(state.epoch, cfg.epochs, row, time.monotonic() - started)}")
            if cfg.early_stopping and state.stale >= cfg.early_stopping and state.epoch < cfg.epochs:
                _say(f"{label}: early stop, {state.stale} epochs without a better val accuracy")
            if not _finished(state, cfg) and time.monotonic() - saved_at < cfg.checkpoint_seconds:
                continue
            saved_at = time.monotonic()
            save_checkpoint(
                last,
                {
                    "config_hash": config_hash,
                    "model": head.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "state": asdict(state),
                },
            )
    if not split.val:
        state.best_state, state.best_epoch = _cpu_copy(head), state.epoch - 1
    return state


def _checked_epoch(
    head: Head,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    table: FeatureTable,
    split: RunSplit,
    labels: dict[str, int],
    cfg: TrainConfig,
    *,
    rng: np.random.Generator,
    device: torch.device,
    log_prior: torch.Tensor,
) -> tuple[dict[str, float], tuple[float, float] | None]:
    """One epoch's training and scoring: its log row and its selection score (None without a selection
    split). Raises Diverged when the loss or, after the epoch's last step, the weights are NaN or inf, so
    that no such weights are selected or written to last.pt."""
    row = {
        f"train/{k}": v
        for k, v in train_epoch(
            head, optimizer, table, split.train, labels, batch_size=cfg.batch_size, rng=rng, device=device
        ).items()
    }
    schedule.step()
    if not all(bool(torch.isfinite(p).all()) for p in head.parameters()):
        raise Diverged("the weights became NaN or inf at the last batch")
    if not split.val:
        return row, None
    val = predict(head, table, split.val, labels, batch_size=cfg.batch_size, device=device,
                  log_prior=log_prior)
    if not np.isfinite(val.loss):
        raise Diverged(f"the selection loss became {val.loss} at the scoring")
    return row | {"val/loss": val.loss, "val/accuracy": val.accuracy}, (val.accuracy, -val.loss)


def epoch_line(done: int, epochs: int, row: dict[str, float], seconds: float) -> str:
    """`epoch 3/40: train loss 0.8123 acc 0.625, val loss 0.6100 acc 0.750, 1.2 s` (no val part without a
    selection split)."""
    parts = [f"epoch {done}/{epochs}:",
             f"train loss {row['train/loss']:.4f} acc {row['train/accuracy']:.3f},"]
    if "val/loss" in row:
        parts.append(f"val loss {row['val/loss']:.4f} acc {row['val/accuracy']:.3f},")
    return " ".join([*parts, f"{seconds:.1f} s"])


def _say(line: str) -> None:
    # stderr, flushed: DVC shows a stage's output as it comes, and stdout stays for results
    print(line, file=sys.stderr, flush=True)


def _finished(state: FitState, cfg: TrainConfig) -> bool:
    return state.epoch >= cfg.epochs or bool(cfg.early_stopping and state.stale >= cfg.early_stopping)


def _log(live: Live, row: dict[str, float]) -> None:
    for name, value in row.items():
        live.log_metric(name, value)
    live.next_step()


def _cpu_copy(head: Head) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}


def _select(state: FitState, head: Head, score: tuple[float, float]) -> None:
    if score > tuple(state.best_score):
        state.best_score, state.best_epoch, state.best_state, state.stale = (
            score,
            state.epoch,
            _cpu_copy(head),
            0,
        )
    else:
        state.stale += 1

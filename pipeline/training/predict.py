"""Run a head over videos of a FeatureTable: logits, probabilities, predictions and the attention it saves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.heads.base import Head
from pipeline.training.data import FeatureTable, iter_batches


@dataclass
class Predictions:
    ids: list[str]
    labels: np.ndarray  # (N,) true class indices
    logits: np.ndarray  # (N, C)
    loss: float  # mean of the head's loss over the videos
    valid: np.ndarray  # (N,) False where the head had nothing to look at (scored by the prior)
    maps: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # video -> name -> array

    @property
    def probabilities(self) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.logits), dim=1).numpy()

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean()) if len(self.ids) else 0.0


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _row_count(table: FeatureTable, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """Real rows per video of the first sequence input, to trim padded per-row maps; None without one."""
    keys = [k for k, s in table.inputs.items() if s.kind == "sequence"]
    return batch[f"{keys[0]}_mask"].sum(dim=1) if keys else None


def _maps(
    head: Head, out: dict[str, torch.Tensor], ids: list[str], rows: torch.Tensor | None, padded: int
) -> dict[str, dict[str, np.ndarray]]:
    maps = {}
    for i, video_id in enumerate(ids):
        entry = {}
        for name in head.saved:
            if name in out:
                value = out[name][i].detach().float().cpu().numpy()
                if rows is not None and value.ndim and value.shape[0] == padded:
                    value = value[: int(rows[i])]
                entry[name] = value
        maps[video_id] = entry
    return maps


@torch.inference_mode()
def predict(
    head: Head,
    table: FeatureTable,
    ids: Sequence[str],
    labels: dict[str, int],
    *,
    batch_size: int,
    device: torch.device,
    log_prior: torch.Tensor | None = None,
    keep_maps: bool = False,
) -> Predictions:
    """Test view of every video. A video the head marks invalid (out["valid"] False: no face, no frame) is
    given `log_prior` as its logits, so it is scored with the training prior instead of dropped."""
    head.eval()
    logits, valid, maps, loss_sum = [], [], {}, 0.0
    for chunk, batch in iter_batches(table, ids, labels, batch_size=batch_size):
        batch = to_device(batch, device)
        out = head(batch)
        loss_sum += float(head.loss(out, batch)["loss"]) * len(chunk)
        ok = out.get("valid", torch.ones(len(chunk), dtype=torch.bool, device=device)).bool()
        batch_logits = out["logits"].float()
        if log_prior is not None:
            batch_logits = torch.where(ok[:, None], batch_logits, log_prior.to(device)[None])
        logits.append(batch_logits.cpu().numpy())
        valid.append(ok.cpu().numpy())
        if keep_maps:
            rows = _row_count(table, batch)
            padded = next(
                (batch[f"{k}_mask"].shape[1] for k, s in table.inputs.items() if s.kind == "sequence"), 0
            )
            maps.update(_maps(head, out, chunk, rows, padded))
    return Predictions(
        ids=list(ids),
        labels=np.asarray([labels[v] for v in ids], np.int64),
        logits=np.concatenate(logits) if logits else np.zeros((0, 0), np.float32),
        loss=loss_sum / max(1, len(ids)),
        valid=np.concatenate(valid) if valid else np.zeros(0, bool),
        maps=maps,
    )

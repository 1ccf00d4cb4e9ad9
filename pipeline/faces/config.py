"""What the faces stage is asked to do, and the configuration its cache records and hashes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

POLICIES = ("largest", "confident")
DETECTOR = "facenet-pytorch MTCNN"
NAN_ROWS = ("boxes", "probs", "landmarks")   # a frame without a face: its row wholly NaN (the cache's
                                             # "none"; any other NaN or inf is refused: cache/finite.py)
CODE_VERSION = 2
"""Bump when the boxes or crops change for the same configuration (selection, crop geometry): it enters
the configuration hash; tests/test_golden.py fails when they change and this did not.
2: facenet's MTCNN run by faces/mtcnn.py's BatchedMTCNN instead of facenet's detect_face: the same boxes
up to float noise (the golden digests did not move), bumped so that no cache mixes the two codes."""


@dataclass(frozen=True)
class FaceConfig:
    min_prob: float = 0.9
    min_size: int = 20             # pixels, shorter side of the box in the decoded frame
    select: str = "largest"        # one of POLICIES
    margin: float = 0.2            # crop side = (1 + margin) * longer box side, centred on the box
    crop_size: int = 224
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.select not in POLICIES:
            raise ValueError(f"face selection {self.select!r} is not one of {POLICIES}")



def faces_cache_config(cfg: FaceConfig, decode_hash: str) -> dict[str, Any]:
    """What the faces cache records (and hashes): the detector settings and the decode cache's hash;
    `batch_size` changes speed only and is left out."""
    config = {**asdict(cfg), "detector": DETECTOR, "code_version": CODE_VERSION,
              "upstream": {"decode": decode_hash}}
    config.pop("batch_size")
    return config


def face_config(params: dict[str, Any]) -> FaceConfig:
    """The `faces` section of parsed params.yaml."""
    return FaceConfig(**params["faces"])

"""Worker side of the faces stage: MTCNN on one video's decoded frames, one face per frame, crops.

Entry layout (cache/<dataset>/faces.h5, per video):
    boxes              float32 (F, 4)        x1 y1 x2 y2 in decoded-frame pixels, NaN where no face
    probs              float32 (F,)          NaN where no face
    landmarks          float32 (F, 5, 2)     eyes, nose, mouth corners; NaN where no face
    candidates         int32   (F,)          faces that passed min_prob and min_size
    frames_times_ms    int64   (F, 2)
    face_frame_index   int64   (Nf,)         which of the F frames have a face (Nf may be 0)
    face_crops         uint8   (Nf, 224, 224, 3)
    face_crops_times_ms int64  (Nf, 2)
A video without any face is a complete entry with Nf = 0 (recorded, not a failure); the extractors that
need faces report it by name.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from pipeline.cache.reader import require_entry
from pipeline.engine.worker_state import once_per_worker, reader_for
from pipeline.faces.config import FaceConfig
from pipeline.faces.crop import crop_face
from pipeline.faces.detect import build_detector, detect_faces

_DETECTORS: dict[FaceConfig, Any] = {}


def faces_of_video(video_id: str, path: str, *, cfg: FaceConfig,
                   decode_path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    decode = reader_for(decode_path)
    attrs = require_entry(decode, video_id, "decode")
    frames = decode.read(video_id, "frames")
    detector = once_per_worker(_DETECTORS, cfg, lambda: build_detector(cfg))
    found = detect_faces(detector, frames, cfg)
    index = np.flatnonzero(found.has_face)
    crops = np.zeros((len(index), cfg.crop_size, cfg.crop_size, 3), np.uint8)
    for row, i in enumerate(index):
        crops[row] = crop_face(frames[i], found.boxes[i], margin=cfg.margin, size=cfg.crop_size)
    times = decode.read(video_id, "frames_times_ms")
    arrays = {
        **asdict(found), "frames_times_ms": times,
        "face_frame_index": index, "face_crops": crops, "face_crops_times_ms": times[index],
    }
    kept = {k: attrs[k] for k in ("source_fps", "fps", "source") if k in attrs}
    return arrays, {**kept, "n_face_frames": int(index.size)}

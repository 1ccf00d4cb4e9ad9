"""BatchedMTCNN runs facenet-pytorch's MTCNN algorithm: its area resampling is torch's, and on
real photographed faces (the demo's, from the scikit-image wheel) its boxes, probabilities and landmarks
are facenet's own MTCNN.detect's up to float noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data as skdata

from pipeline.demo.faces import face_sprite
from pipeline.faces.config import FaceConfig
from pipeline.faces.detect import detect_faces
from pipeline.faces.mtcnn import BatchedMTCNN, crop_area, pyramid_scales, resample_area, summed_area
from pipeline.media.resize import resize

H, W = 360, 640


def paste(frame: np.ndarray, name: str, height: int, top: int, left: int) -> None:
    rgb, alpha = face_sprite(name, height)
    h, w = rgb.shape[:2]
    part = frame[top:top + h, left:left + w].astype(np.float32)
    frame[top:top + h, left:left + w] = (alpha * rgb + (1 - alpha) * part).round().astype(np.uint8)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """4 frames of 640x360 on photographs without people (textures that give the P-net many candidates):
    two faces, a small one (60 px photograph, a face of about 25 px), one at the border, none."""
    backgrounds = [resize(np.ascontiguousarray(getattr(skdata, n)()[..., :3]), H, W)
                   for n in ("coffee", "chelsea", "rocket", "coffee")]
    out = np.stack(backgrounds)
    paste(out[0], "astronaut", 150, 40, 60)
    paste(out[0], "camera", 90, 200, 420)
    paste(out[1], "camera", 60, 100, 300)
    paste(out[2], "astronaut", 120, 240, 0)
    return out


@pytest.fixture(scope="module")
def both(frames: np.ndarray) -> tuple[list, tuple]:
    from facenet_pytorch import MTCNN

    torch.manual_seed(0)
    reference = MTCNN(keep_all=True, min_face_size=20, post_process=False)
    return BatchedMTCNN(20).detect(frames), reference.detect(torch.from_numpy(frames), landmarks=True)


def test_boxes_probs_and_landmarks_are_facenets(both) -> None:
    got, (boxes, probs, points) = both
    assert [len(g.boxes) for g in got] == [0 if b is None else len(b) for b in boxes]
    assert sum(len(g.boxes) for g in got) == 4           # the pasted faces
    for g, b, p, lm in zip(got, boxes, probs, points, strict=True):
        if b is None:
            continue
        np.testing.assert_allclose(g.boxes, b, atol=1e-3)             # pixels
        np.testing.assert_allclose(g.probs, p.astype(np.float32), atol=1e-5)
        np.testing.assert_allclose(g.landmarks, lm, atol=1e-3)


def test_the_stage_keeps_the_pasted_faces(frames: np.ndarray) -> None:
    found = detect_faces(BatchedMTCNN(20), frames, FaceConfig(batch_size=3))
    assert found.has_face.tolist() == [True, True, True, False]
    centre = (found.boxes[0, :2] + found.boxes[0, 2:]) / 2           # the largest: the 150 px astronaut
    assert 60 < centre[0] < 60 + 150 and 40 < centre[1] < 40 + 150


def test_area_resampling_is_torchs() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    table = summed_area(frames)
    image = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    for scale in pyramid_scales(37, 53, 20):
        size = (int(37 * scale + 1), int(53 * scale + 1))
        got = resample_area(table, size, 2.0, -1.0)
        assert got.is_contiguous(memory_format=torch.channels_last)
        want = F.interpolate(image, size=size, mode="area") * 2 - 1
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-5)
    rows, cols = torch.tensor([[0, 37], [5, 17], [3, 4]]), torch.tensor([[2, 40], [0, 53], [9, 30]])
    frame = torch.tensor([1, 0, 1])
    for size in (24, 48):
        crops = crop_area(table, frame, rows, cols, size)
        for k in range(3):
            crop = image[frame[k]:frame[k] + 1, :, rows[k, 0]:rows[k, 1], cols[k, 0]:cols[k, 1]]
            torch.testing.assert_close(crops[k:k + 1], F.interpolate(crop, size=(size, size), mode="area"),
                                       rtol=1e-6, atol=1e-5)


def test_the_pyramid_is_facenets() -> None:
    assert len(pyramid_scales(360, 640, 20)) == 9 and pyramid_scales(360, 640, 20)[0] == 0.6
    assert pyramid_scales(19, 19, 20) == []                      # below the P-net's 12 px at 12 / 20


def test_boxes_wholly_outside_the_frame_are_dropped_not_an_error() -> None:
    """facenet skips their crops (and then fails); the nets cannot take an empty batch."""
    detector = BatchedMTCNN(20)
    table = summed_area(np.zeros((1, H, W, 3), np.uint8))
    boxes = torch.tensor([[-100.0, -100.0, -50.0, -50.0, 0.9], [700.0, 10.0, 760.0, 70.0, 0.8]])
    out = detector._refine(table, boxes, torch.tensor([0, 0]), detector.rnet, 24, 0.7)
    assert [len(t) for t in out] == [0, 0, 0, 0]

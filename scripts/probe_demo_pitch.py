"""How well random-weight AlexNet fc7 of the demo's spectrogram images tells the demo's two sounds apart, for
a few base pitches: the measurement behind `BASE_PITCH_HZ` in pipeline/demo/plan.py.

For each base pitch and plan seed: the complementary demo's clips (4 classes, so 2 sound values) are
planned, their sound tracks synthesised as the demo does (`pipeline.demo.audio.tone`, without the AAC
round trip), cut into the LSTM fusion's 1-second spectrogram images, and passed through the seeded
random AlexNet; a logistic regression on each clip's mean fc7 (standardised on the train clips) is scored
on the test clips.

    .venv/bin/python scripts/probe_demo_pitch.py                  # bases 880 and 4000 Hz, seeds 0 and 1
    .venv/bin/python scripts/probe_demo_pitch.py --bases 880 2000 4000 --clips-per-class 12
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import pipeline.demo.plan as plan
from pipeline.demo.audio import tone
from pipeline.demo.clip import SAMPLE_RATE
from pipeline.extractors import get_extractor
from pipeline.media.spectrogram import spectrogram_images

FPS = 25.0


def probe(base_hz: float, seed: int, clips_per_class: int, extractor: object) -> float:
    with mock.patch.object(plan, "BASE_PITCH_HZ", base_hz):
        clips = plan.plan_clips(["a", "b", "c", "d"], clips_per_class=clips_per_class, min_seconds=1.0,
                                max_seconds=1.5, width=320, height=240, no_audio_every=0, no_face_every=0,
                                seed=seed)
    rows, sounds, test = [], [], []
    for clip in clips:
        track = tone(clip, plan.clip_rng(seed, clip.class_index, clip.index_in_class, plan.AUDIO))
        pcm = np.round(track * 32767).astype(np.int16)
        images, _ = spectrogram_images(pcm, SAMPLE_RATE, n_frames=max(1, round(clip.seconds * FPS)), fps=FPS)
        rows.append(extractor(images)["fc7"].mean(axis=0))
        sounds.append(clip.sound)
        test.append(clip.split == "test")
    x, y, t = np.array(rows), np.array(sounds), np.array(test)
    scaler = StandardScaler().fit(x[~t])
    model = LogisticRegression(C=0.1, max_iter=3000).fit(scaler.transform(x[~t]), y[~t])
    return float(model.score(scaler.transform(x[t]), y[t]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=float, nargs="+", default=[880.0, 4000.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--clips-per-class", type=int, default=24)
    args = parser.parse_args()
    torch.manual_seed(0)
    extractor = get_extractor("alexnet_fc7")()  # RANDOM WEIGHTS, seeded
    print("| base pitch (Hz) | plan seed | sound told apart (test clips) |\n|---:|---:|---:|")
    for base in args.bases:
        for seed in args.seeds:
            told = probe(base, seed, args.clips_per_class, extractor)
            print(f"| {base:g} | {seed} | {told:.3f} |", flush=True)


if __name__ == "__main__":
    main()

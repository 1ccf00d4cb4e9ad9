from __future__ import annotations

import numpy as np
import pytest

from pipeline.media import sampling
from pipeline.media import spectrogram as sg

SR = 44100


def tone(seconds: float, freq: float, amplitude: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)


def peak_row(image: np.ndarray) -> int:
    return int(image[:, :, 0].astype(float).mean(axis=1).argmax())


@pytest.mark.parametrize("freq", [2000.0, 8000.0, 15000.0])
def test_pure_tone_peaks_at_its_frequency_row(freq: float) -> None:
    images, _ = sg.spectrogram_images(tone(1.0, freq), SR, n_frames=25, fps=25)
    expected = (1 - freq / (SR / 2)) * 256 - 0.5          # row 0 = Nyquist, row 255 = 0 Hz
    assert abs(peak_row(images[0]) - expected) <= 2


def test_window_hop_and_full_scale_calibration() -> None:
    t = np.arange(SR) / SR
    db = sg.stft_db(0.5 * np.sin(2 * np.pi * 5000 * t), SR)   # 5000 Hz is bin 200 of a 1764-sample window
    assert db.shape == (1764 // 2 + 1, 49)                     # 40 ms window, 20 ms hop, 1 s, no centring
    np.testing.assert_allclose(db[200], 20 * np.log10(0.5), atol=0.05)
    assert db[100].max() < -40
    assert sg.stft_db(np.zeros(16000), 16000).shape == (321, 49)


def test_window_is_hamming() -> None:
    impulse = np.zeros(SR)
    impulse[0] = 1.0                                   # seen only by frame 0, at its first window sample
    db = sg.stft_db(impulse, SR)
    hamming_edge = 0.08 * 2 / (0.54 * 1764)            # w[0] of a periodic Hamming window, amplitude-scaled
    np.testing.assert_allclose(db[:, 0], 20 * np.log10(hamming_edge), atol=0.01)
    assert db[:, 1:].max() == -100.0


def test_times_are_the_keyframe_slices_and_the_last_second_is_padded() -> None:
    images, times = sg.spectrogram_images(tone(2.48, 5000), SR, n_frames=62, fps=25)
    assert images.shape == (3, 256, 256, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(times, [[0, 1000], [1000, 2000], [2000, 2480]])
    np.testing.assert_array_equal(times, sampling.span_times_ms(sampling.second_slices(62, 25) - [0, 1], 25))
    row = peak_row(images[0])
    last = images[2, row, :, 0]
    assert last[:100].min() > 100 and last[140:].max() == 0    # 0.48 s of tone, then padding
    assert images[0, row, :, 0].min() > 100


def test_one_image_per_started_second_at_an_odd_frame_rate() -> None:
    images, times = sg.spectrogram_images(tone(3.2, 1000), SR, n_frames=96, fps=29.97)
    assert len(images) == len(times) == 4
    assert times[-1, 1] == round(96 * 1000 / 29.97)


def test_no_audio_gives_black_grey_images() -> None:
    for audio in (None, np.zeros(0, np.int16)):
        images, times = sg.spectrogram_images(audio, SR, n_frames=50, fps=25)
        assert images.shape == (2, 256, 256, 3) and not images.any()
        np.testing.assert_array_equal(times, [[0, 1000], [1000, 2000]])


def test_fixed_scale_keeps_loudness_and_channels_are_grey() -> None:
    loud, _ = sg.spectrogram_images(tone(1.0, 3000, 0.5), SR, n_frames=25, fps=25)
    quiet, _ = sg.spectrogram_images(tone(1.0, 3000, 0.05), SR, n_frames=25, fps=25)
    row = peak_row(loud[0])
    # 20 dB is 51 grey levels before resizing; the resize averages the tone's row with its darker neighbours.
    # A per-image normalisation would make the two images equal.
    assert int(loud[0, row, :, 0].mean()) - int(quiet[0, row, :, 0].mean()) > 15
    assert np.array_equal(loud[..., 0], loud[..., 1]) and np.array_equal(loud[..., 0], loud[..., 2])
    again, _ = sg.spectrogram_images(tone(1.0, 3000, 0.5), SR, n_frames=25, fps=25)
    np.testing.assert_array_equal(loud, again)

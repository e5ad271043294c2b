"""Checkers for the exercises of notebook 02 (features): frame counts, the HTK mel scale, the TAgram.

Each checker compares the learner's function with :mod:`asdlib` (or librosa) on a few inputs, prints ✓ or a
hint, returns True/False and never raises. Solutions: ``notebooks/solutions/02_solutions.py``.
"""
from __future__ import annotations

import numpy as np
import torch

from asdlib.attention import temporal_attention
from asdlib.exercises import report
from asdlib.features import num_frames

FRAME_CASES = (160000, 32000, 16000, 1024, 511)  # 10 s, 2 s, 1 s, one window, less than one hop


def _crash(err: Exception) -> str:
    return f"your function raised {type(err).__name__}: {err}"


def check_num_frames(fn) -> bool:
    """Exercise 1: ``fn(num_samples, hop_length=512) -> int``, frames T of a centred STFT / of TgramNet."""
    for length in FRAME_CASES:
        try:
            got = fn(length, hop_length=512)
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            return report(False, "", f"{_crash(err)} for {length} samples")
        if got != num_frames(length):
            return report(False, "", f"{length} samples gave {got!r}, expected {num_frames(length)}: a "
                          "centred STFT pads n_fft // 2 on both sides, so every hop starts a frame, plus one")
    return report(True, "1 + L // hop: 313 frames for 10 s, 63 for 2 s", "")


def check_hz_to_mel_htk(fn) -> bool:
    """Exercise 2: ``fn(hz: np.ndarray) -> np.ndarray``, the HTK mel scale (STgram-MFN's), within 1e-3 mel."""
    import librosa

    hz = np.array([0.0, 100.0, 700.0, 1000.0, 4000.0, 8000.0])
    try:
        got = np.asarray(fn(hz), dtype=np.float64)
    except Exception as err:
        return report(False, "", f"{_crash(err)}; use numpy functions so that arrays work")
    expected = librosa.hz_to_mel(hz, htk=True)
    ok = got.shape == expected.shape and np.allclose(got, expected, atol=1e-3)
    return report(ok, "2595·log10(1 + f/700): 1000 Hz is 1000 mel",
                  f"expected {np.round(expected, 1).tolist()}, got {np.round(got, 1).tolist()}; "
                  "the HTK formula is 2595 * log10(1 + f / 700)")


def check_temporal_attention(fn) -> bool:
    """Exercise 3: ``fn(mel (B, F, T)) -> (B, F, T)``, the TAgram σ(max_f X + mean_f X) · X."""
    g = torch.Generator().manual_seed(0)
    mel = 3 * torch.randn(2, 128, 20, generator=g)  # small values, so that the gate is not saturated
    try:
        got = fn(mel.clone())
    except Exception as err:
        return report(False, "", f"{_crash(err)}; reduce over dim=-2 (the mel axis) with keepdim=True")
    expected = temporal_attention(mel)
    ok = isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.allclose(got, expected,
                                                                                           atol=1e-5)
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    return report(ok, "your TAgram equals asdlib.attention.temporal_attention",
                  f"got {shape}, expected a tensor {tuple(expected.shape)} equal to asdlib's: take the max "
                  "and the mean over the mel axis (dim=-2, keepdim=True), add them, apply torch.sigmoid: one "
                  "gate per frame, which multiplies every band of that frame")

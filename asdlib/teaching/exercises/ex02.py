"""Checkers for the exercises of notebook 02 (features): frame counts, the HTK mel scale, the TAgram.

Each checker compares the learner's function with :mod:`asdlib` (or librosa) on a few inputs, prints ✓ or a
specific hint, returns None and never raises. ``solution(k)`` prints the worked solution of exercise ``k``.
"""
from __future__ import annotations

import numpy as np
import torch

from asdlib.nn.attention import temporal_attention
from asdlib.teaching.exercises import report, show_solution
from asdlib.nn.frontends import num_frames

FRAME_CASES = (160000, 32000, 16000, 1024, 511)  # 10 s, 2 s, 1 s, one window, less than one hop


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 02."""
    show_solution("02", k)


def _crash(err: Exception) -> str:
    return f"your function raised {type(err).__name__}: {err}"


def check_num_frames(fn) -> None:
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


def check_hz_to_mel_htk(fn) -> None:
    """Exercise 2: ``fn(hz: np.ndarray) -> np.ndarray``, the HTK mel scale (STgram-MFN's).

    Any equivalent formula passes: 2595·log10(1 + f/700) and the HTK book's 1127·ln(1 + f/700) differ by
    3e-5 relative (their constants are rounded), so the comparison is relative (1e-3), not absolute.
    """
    import librosa

    hz = np.array([0.0, 100.0, 700.0, 1000.0, 4000.0, 8000.0])
    try:
        got = np.asarray(fn(hz), dtype=np.float64)
    except Exception as err:
        return report(False, "", f"{_crash(err)}; use numpy functions so that arrays work")
    expected = librosa.hz_to_mel(hz, htk=True)
    if got.shape != expected.shape:
        return report(False, "", f"{len(hz)} frequencies gave shape {got.shape}: return one mel value per "
                      "frequency (numpy functions work element-wise)")
    if np.allclose(got, expected, rtol=1e-3, atol=1e-6):
        return report(True, "2595·log10(1 + f/700) = 1127·ln(1 + f/700): 1000 Hz is 1000 mel", "")
    ratio = 1 + hz / 700
    with np.errstate(divide="ignore"):
        no_one = 2595 * np.log10(hz / 700)  # -inf at 0 Hz, as the learner's version would give
    wrong = {"the Slaney scale (librosa's default, htk=False); the HTK scale is a single logarithm":
             librosa.hz_to_mel(hz, htk=False),
             "2595 goes with log10; with the natural log the constant is 1127": 2595 * np.log(ratio),
             "1127 goes with the natural log (np.log); with log10 the constant is 2595": 1127 * np.log10(ratio),
             "the formula has log(1 + f/700), not log(f/700): 0 Hz must be 0 mel": no_one}
    for hint, value in wrong.items():
        if np.allclose(got, value, rtol=1e-3, atol=1e-6, equal_nan=True):
            return report(False, "", f"that is {hint}" if hint.startswith("the Slaney") else hint)
    return report(False, "", f"expected {np.round(expected, 1).tolist()}, got {np.round(got, 1).tolist()}: "
                  "the HTK mel of f Hz is 2595·log10(1 + f/700)")


def check_temporal_attention(fn) -> None:
    """Exercise 3: ``fn(mel (B, F, T)) -> (B, F, T)``, the TAgram σ(max_f X + mean_f X) · X."""
    g = torch.Generator().manual_seed(0)
    mel = 3 * torch.randn(2, 128, 20, generator=g)  # small values, so that the gate is not saturated
    try:
        got = fn(mel.clone())
    except Exception as err:
        return report(False, "", f"{_crash(err)}; reduce over dim=-2 (the mel axis) with keepdim=True")
    expected = temporal_attention(mel)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        shape = tuple(got.shape) if hasattr(got, "shape") else type(got).__name__
        return report(False, "", f"got {shape}, expected a torch tensor of shape {tuple(expected.shape)}: "
                      "the gate multiplies the input, so the output has the input's shape")
    if torch.allclose(got, expected, atol=1e-5):
        return report(True, "your TAgram equals asdlib.nn.attention.temporal_attention", "")
    wrong = {"the gate is over the time axis: reduce over the mel axis (dim=-2), one gate per frame":
             torch.sigmoid(mel.amax(-1, keepdim=True) + mel.mean(-1, keepdim=True)) * mel,
             "the gate lacks its sigmoid: σ squashes max + mean into (0, 1)":
             (mel.amax(-2, keepdim=True) + mel.mean(-2, keepdim=True)) * mel,
             "that is the gate alone: multiply it with the input X":
             torch.sigmoid(mel.amax(-2, keepdim=True) + mel.mean(-2, keepdim=True)).expand_as(mel)}
    for hint, value in wrong.items():
        if torch.allclose(got, value, atol=1e-5):
            return report(False, "", hint)
    return report(False, "", "take the max and the mean over the mel axis (dim=-2, keepdim=True), add them, "
                  "apply torch.sigmoid: one gate per frame, which multiplies every band of that frame")

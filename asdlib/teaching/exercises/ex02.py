"""Checkers for the exercises of notebook 02 (features): frame counts, the HTK mel scale, the TAgram.

Each checker compares the learner's function with :mod:`asdlib` (or librosa) on a few inputs, prints ✓ or a
specific hint, returns None and never raises. ``solution(k)`` prints the worked solution of exercise ``k``.
"""
from __future__ import annotations

import numpy as np
import torch

from asdlib.nn.attention import temporal_attention
from asdlib.teaching.exercises import (NoResult, crash_hint, report, run_on_array_and_tensor,
                                       show_solution, whole_number)
from asdlib.nn.frontends import num_frames

FRAME_CASES = (  # (num_samples, hop_length): 10 s, 2 s, 1 s at the model's hop, then other hops
    (160000, 512), (32000, 512), (16000, 512), (16000, 256), (16000, 160), (4000, 1024), (1024, 512))
SHORT_CASES = ((511, 512), (300, 256))  # shorter than n_fft // 2 = 512: torch.stft's reflect padding refuses
N_FFT = 1024


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 02."""
    show_solution("02", k)


def _frames_hint(length: int, hop: int, got) -> str:
    """Why ``got`` frames for ``length`` samples at ``hop`` is wrong: the hop ignored, or the formula."""
    expected = num_frames(length, hop_length=hop)
    if hop != 512 and whole_number(got) == num_frames(length, hop_length=512):
        return (f"{length} samples with hop_length={hop} gave {got!r}, the count for hop 512: your function "
                f"ignores its hop_length argument (expected {expected})")
    return (f"{length} samples with hop_length={hop} gave {got!r}, expected {expected}: a centred STFT pads "
            "n_fft // 2 on both sides, so every hop starts a frame, plus one")


def check_num_frames(fn) -> None:
    """Exercise 1: ``fn(num_samples, hop_length=512) -> int``, frames T of a centred STFT / of TgramNet.

    The cases vary the hop as well as the length. A count measured with ``torch.stft`` passes too: it cannot
    run on clips shorter than ``n_fft // 2`` samples (reflect padding), so a crash on those alone is explained,
    not failed (zero padding, which librosa uses, gives the formula's 1 frame there).
    """
    for length, hop in FRAME_CASES + SHORT_CASES:
        try:
            got = fn(length, hop_length=hop)
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            if (length, hop) in SHORT_CASES:
                return report(True, f"1 + L // hop on {len(FRAME_CASES)} lengths and hops (313 frames for 10 s "
                              f"at hop 512). Your function raised on {length} samples, shorter than n_fft // 2 "
                              f"= {N_FFT // 2}: torch.stft's reflect padding needs more; with zero padding the "
                              "formula holds there too (1 frame)", "")
            return report(False, "", f"{crash_hint(err)} for {length} samples, hop_length={hop}")
        if whole_number(got) != num_frames(length, hop_length=hop):
            return report(False, "", _frames_hint(length, hop, got))
    return report(True, f"1 + L // hop on {len(FRAME_CASES) + len(SHORT_CASES)} lengths and hops: 313 frames "
                  "for 10 s, 63 for 2 s at hop 512", "")


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
        return report(False, "", f"{crash_hint(err)}; use numpy functions so that arrays work")
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


def _tagram_hint(got: np.ndarray, mel: torch.Tensor) -> str:
    """What a wrong TAgram did: the time axis, no sigmoid, the gate alone, or something else."""
    wrong = {"the gate is over the time axis: reduce over the mel axis (dim=-2), one gate per frame":
             torch.sigmoid(mel.amax(-1, keepdim=True) + mel.mean(-1, keepdim=True)) * mel,
             "the gate lacks its sigmoid: σ squashes max + mean into (0, 1)":
             (mel.amax(-2, keepdim=True) + mel.mean(-2, keepdim=True)) * mel,
             "that is the gate alone: multiply it with the input X":
             torch.sigmoid(mel.amax(-2, keepdim=True) + mel.mean(-2, keepdim=True)).expand_as(mel)}
    for hint, value in wrong.items():
        if np.allclose(got, value.double().numpy(), atol=1e-5):
            return hint
    return "take the max and the mean over the mel axis (dim=-2, keepdim=True), add them, apply a sigmoid " \
           "(torch.sigmoid): one gate per frame, which multiplies every band of that frame"


def check_temporal_attention(fn) -> None:
    """Exercise 3: ``fn(mel (B, F, T)) -> (B, F, T)``, the TAgram σ(max_f X + mean_f X) · X.

    The input is given once as a torch tensor and once as a numpy array: a torch or a numpy implementation
    passes, whichever input it works on.
    """
    g = torch.Generator().manual_seed(0)
    mel = 3 * torch.randn(2, 128, 20, generator=g)  # small values, so that the gate is not saturated
    expected = temporal_attention(mel).double().numpy()
    outcomes = run_on_array_and_tensor(fn, mel.numpy())
    ran = [got for _, got, _ in outcomes if got is not None]
    if not ran:
        kind, _, err = outcomes[0]
        fix = "" if isinstance(err, NoResult) else \
            f" on a {kind} (and on a numpy array); reduce over dim=-2 (the mel axis) with keepdim=True"
        return report(False, "", crash_hint(err) + fix)
    if any(got.shape == expected.shape and np.allclose(got, expected, atol=1e-5) for got in ran):
        return report(True, "your TAgram equals asdlib.nn.attention.temporal_attention", "")
    got = ran[0]
    if got.shape != expected.shape:
        return report(False, "", f"the result has shape {got.shape}, the input {expected.shape}: the gate "
                      "multiplies the input, so the output keeps the input's shape (B, F, T)")
    return report(False, "", _tagram_hint(got, mel))

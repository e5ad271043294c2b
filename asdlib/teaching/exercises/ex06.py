"""Checkers for the exercises of ``06_score_your_own_machine``: loading a recording, a threshold, a class.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a specific hint,
returns None, and never raises. ``solution(k)`` prints the worked solution of exercise ``k``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfiltfilt

from asdlib.data.audio import load_audio
from asdlib.data.dcase import LABEL_ORDERS, canonical_type, label_map
from asdlib.teaching.exercises import report, show_solution, whole_number
from asdlib.evaluation.threshold import gamma_threshold

MIN_SNR_DB = 25.0  # agreement with asdlib's resampling below PASSBAND_HZ; good resamplers reach 35-55 dB
PASSBAND_HZ = 6500.0  # below this, resamplers agree; near 8 kHz their anti-aliasing filters differ


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 06."""
    show_solution("06", k)


def passband_snr_db(got: np.ndarray, reference: np.ndarray, *, sr: int = 16000) -> float:
    """How closely ``got`` follows ``reference`` (both ``(L,)`` at ``sr``) below :data:`PASSBAND_HZ`, in dB:
    10·log10(‖ref‖² / ‖ref − got‖²) after the same low-pass filter. Different good resamplers agree here
    (librosa's soxr, torchaudio, scipy's resample_poly: 35–55 dB on white noise) and differ near sr / 2."""
    sos = butter(8, PASSBAND_HZ, fs=sr, output="sos")
    a, b = sosfiltfilt(sos, reference.astype(np.float64)), sosfiltfilt(sos, got.astype(np.float64))
    error = float(np.sum((a - b) ** 2))
    return float("inf") if error == 0 else float(10 * np.log10(np.sum(a ** 2) / error + 1e-30))


def _loading_mistakes(path: str | Path, length: int, sr: int = 16000) -> dict[str, np.ndarray]:
    """What typical mistakes give for the file at ``path``, each ``(length,)``: one channel, no resampling."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)  # (L', C)

    def fit(x: np.ndarray) -> np.ndarray:
        return np.pad(x, (0, max(0, length - len(x))))[:length]

    out = {"the samples at the recorder's rate, not resampled to 16 kHz: resample first (e.g. "
           "scipy.signal.resample_poly or librosa.resample)": fit(data.mean(axis=1))}
    if data.shape[1] > 1 and rate % 100 == 0:
        for c in range(data.shape[1]):
            out[f"channel {c} alone: average the channels (mono = mean over the channel axis)"] = \
                fit(resample_poly(data[:, c], sr // 100, rate // 100))
    return out


def check_loaded(wave, path: str | Path, *, seconds: float) -> None:
    """``wave``: the recording at ``path`` as the model sees it: mono, 16 kHz, ``seconds`` long, ``(L,)``.

    Any good resampler passes (librosa, torchaudio, scipy): below 6.5 kHz the samples must follow asdlib's
    (:func:`passband_snr_db` ≥ 25 dB); near 8 kHz resamplers legitimately differ.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = load_audio(path, seconds=seconds)
        if wave is None:
            return report(False, "", "my_wave is None: load the file into a (L,) array")
        got = np.asarray(wave.detach().cpu() if hasattr(wave, "detach") else wave, dtype=np.float32)
        if got.ndim == 2 and 1 in got.shape:
            return report(False, "", f"got shape {got.shape}: drop the channel axis (mono is one 1-d array "
                          f"{expected.shape}, e.g. .mean(axis=...) or .squeeze())")
        if got.shape != expected.shape:
            return report(False, "", f"expected shape {expected.shape} (mono, 16 kHz, {seconds:g} s), got "
                          f"{got.shape}: average the channels, resample to 16 kHz, keep the first {seconds:g} "
                          "s and zero-pad what is missing")
        snr = passband_snr_db(got, expected)
        if snr >= MIN_SNR_DB:
            return report(True, f"{Path(path).name}: {got.shape[0]} samples at 16 kHz, mono (below "
                          f"{PASSBAND_HZ / 1000:g} kHz within {snr:.0f} dB of asdlib's resampling)", "")
        for what, value in _loading_mistakes(path, len(expected)).items():
            if passband_snr_db(got, value) >= MIN_SNR_DB:
                return report(False, "", f"that is {what}")
        gain = float(np.dot(got, expected) / (np.dot(expected, expected) + 1e-20))
        if abs(gain - 1) > 0.05 and passband_snr_db(got / gain, expected) >= MIN_SNR_DB:
            return report(False, "", f"right samples, but scaled by {gain:.3g}: keep the recorded level "
                          "(no normalisation), the model was trained on levels as recorded")
        return report(False, "", f"right shape, but the samples differ from asdlib's ({snr:.0f} dB below "
                      f"{PASSBAND_HZ / 1000:g} kHz, {MIN_SNR_DB:g} dB needed): average the channels, resample "
                      "with a proper anti-aliasing resampler, keep the *first* seconds, zero-pad at the end")
    except Exception as e:  # a checker never raises
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


def check_threshold(answer, calibration_scores, *, quantile: float) -> None:
    """``answer``: the empirical ``quantile`` of the known-normal calibration scores.

    Any of numpy's quantile methods passes (``"linear"``, ``"higher"``, ``"nearest"``, …): with few scores they
    differ, and every value between the two calibration scores around the quantile is a valid estimate.
    """
    try:
        x = np.sort(np.asarray(calibration_scores, dtype=float))
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return report(False, "", f"expected one number (a score), got {answer!r}")
        low, high = np.quantile(x, quantile, method="lower"), np.quantile(x, quantile, method="higher")
        linear = float(np.quantile(x, quantile))
        tol = 1e-9 + 1e-6 * (abs(low) + abs(high))
        if low - tol <= value <= high + tol:
            flagged = np.mean(x > value)
            note = "" if np.isclose(value, linear) else f" (numpy's default, linear interpolation, gives {linear:.4g})"
            return report(True, f"threshold {value:.4g}{note}: {100 * flagged:.0f} % of the {x.size} calibration "
                          "clips lie above it", "")
        wrong = {f"the {quantile / 100:g} quantile: np.percentile takes percent (np.percentile(s, "
                 f"{100 * quantile:g})), np.quantile a fraction (np.quantile(s, {quantile:g}))":
                 np.quantile(x, quantile / 100),
                 f"the {1 - quantile:.2g} quantile: the threshold is the score that {100 * quantile:g} % of "
                 "normal clips stay below": np.quantile(x, 1 - quantile),
                 "the gamma fit's quantile: this exercise asks for the plain percentile of the scores":
                 gamma_threshold(x, quantile=quantile) if x.size >= 3 and np.ptp(x) > 0 else np.nan}
        for q in (0.9, 0.95):
            if q != quantile:
                wrong[f"the {q:g} quantile; this exercise asks for {quantile:g}"] = np.quantile(x, q)
        for what, reference in wrong.items():
            if np.isclose(value, reference, rtol=1e-6, atol=1e-9):
                return report(False, "", f"that is {what}")
        return report(False, "", f"{value:.4g} is not the {quantile:g} quantile of the {x.size} calibration "
                      f"scores: use np.quantile(scores, {quantile:g}) (any method)")
    except Exception as e:
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


def check_class_index(answer, machine_type: str, machine_id: int) -> None:
    """``answer``: the class of ``(machine_type, machine_id)`` in the 41-class map (``stgram_paper``)."""
    try:
        key = (canonical_type(machine_type), int(machine_id))
        expected = label_map()[key]
        got = whole_number(answer)  # a whole number
        if got == expected:
            return report(True, f"{machine_type} id_{int(machine_id):02d} is class {expected} of 41", "")
        if got is None:
            return report(False, "", f"expected a class index (a whole number 0..40), got {answer!r}")
        others = {order: label_map(order)[key] for order in LABEL_ORDERS if order != "stgram_paper"}
        order = next((o for o, k in others.items() if k == got != expected), None)
        if order:
            hint = f"that is the index in the {order!r} order; this map is stgram_paper (seven slots per type)"
        elif abs(got - expected) == 1:
            hint = "one slot off: the slot is the ID itself for fan, pump, slider, valve and ID − 1 for the " \
                   "two Toy types (their IDs start at 1)"
        else:
            hint = "7 slots per type in the order fan, pump, slider, valve, ToyCar, ToyConveyor: " \
                   "class = 7 · (position of the type) + slot"
        return report(False, "", hint)
    except Exception as e:
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")

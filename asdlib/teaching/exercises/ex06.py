"""Checkers for the exercises of ``06_score_your_own_machine``: loading a recording, a threshold, a class.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a specific hint,
returns None, and never raises. ``solution(k)`` prints the worked solution of exercise ``k``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import butter, resample_poly, sosfiltfilt

from asdlib.data.audio import load_audio
from asdlib.data.dcase import LABEL_ORDERS, canonical_type, label_map
from asdlib.teaching.exercises import (NoResult, crash_hint, report, scalar, show_solution, to_numpy,
                                       whole_number)
from asdlib.evaluation.threshold import gamma_threshold

MIN_SNR_DB = 38.0  # agreement with asdlib's resampling below PASSBAND_HZ: good resamplers 40-65 dB, linear
PASSBAND_HZ = 5000.0  # interpolation 33 dB, the nearest sample 27 dB; near 8 kHz good filters differ


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 06."""
    show_solution("06", k)


def passband_snr_db(got: np.ndarray, reference: np.ndarray, *, sr: int = 16000) -> float:
    """How closely ``got`` follows ``reference`` (both ``(L,)`` at ``sr``) below :data:`PASSBAND_HZ`, in dB:
    10·log10(‖ref‖² / ‖ref − got‖²) after the same low-pass filter. Different good resamplers agree here
    (librosa's soxr, torchaudio, scipy's resample_poly and FFT resampling: 40–60 dB on white noise at 44.1 kHz,
    50–65 dB on the notebook's recordings) and differ near sr / 2; linear interpolation without an
    anti-aliasing filter reaches 33 dB on the notebook's recordings and 0 dB on white noise."""
    sos = butter(8, PASSBAND_HZ, fs=sr, output="sos")
    a, b = sosfiltfilt(sos, reference.astype(np.float64)), sosfiltfilt(sos, got.astype(np.float64))
    error = float(np.sum((a - b) ** 2))
    return float("inf") if error == 0 else float(10 * np.log10(np.sum(a ** 2) / error + 1e-30))


def _loading_mistakes(path: str | Path, length: int, sr: int = 16000) -> dict[str, np.ndarray]:
    """What typical mistakes give for the file at ``path``, each ``(length,)``: no resampling, linear
    interpolation, one channel."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)  # (L', C)

    def fit(x: np.ndarray) -> np.ndarray:
        return np.pad(x, (0, max(0, length - len(x))))[:length]

    mono = data.mean(axis=1)  # (L',)
    positions = np.arange(int(len(mono) * sr / rate)) * (rate / sr)  # where the 16 kHz samples fall, (L'',)
    out = {"the samples at the recorder's rate, not resampled to 16 kHz: resample first (e.g. "
           "scipy.signal.resample_poly or librosa.resample)": fit(mono),
           "linear interpolation (np.interp) between the recorder's samples: it keeps what lies above 8 kHz, "
           "which folds back (aliasing) into the band the model hears; use a resampler with an anti-aliasing "
           "filter (scipy.signal.resample_poly, librosa.resample, torchaudio.functional.resample)":
           fit(np.interp(positions, np.arange(len(mono)), mono))}
    if data.shape[1] > 1 and rate % 100 == 0:
        for c in range(data.shape[1]):
            out[f"channel {c} alone: average the channels (mono = mean over the channel axis)"] = \
                fit(resample_poly(data[:, c], sr // 100, rate // 100))
    return out


def check_loaded(wave, path: str | Path, *, seconds: float) -> None:
    """``wave``: the recording at ``path`` as the model sees it: mono, 16 kHz, ``seconds`` long, ``(L,)``.

    Any good resampler passes (librosa, torchaudio, scipy): below 5 kHz the samples must follow asdlib's
    (:func:`passband_snr_db` ≥ 38 dB); near 8 kHz resamplers legitimately differ. Linear interpolation, which
    has no anti-aliasing filter, does not pass.
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
                          f"{PASSBAND_HZ / 1000:g} kHz it agrees with asdlib's resampling to {snr:.0f} dB)", "")
        for what, value in _loading_mistakes(path, len(expected)).items():
            if passband_snr_db(got, value) >= MIN_SNR_DB:
                return report(False, "", f"that is {what}")
        gain = float(np.dot(got, expected) / (np.dot(expected, expected) + 1e-20))
        if abs(gain - 1) > 0.05 and passband_snr_db(got / gain, expected) >= MIN_SNR_DB:
            return report(False, "", f"right samples, but scaled by {gain:.3g}: keep the recorded level "
                          "(no normalisation), the model was trained on levels as recorded")
        return report(False, "", f"right shape, but the samples differ from asdlib's (below "
                      f"{PASSBAND_HZ / 1000:g} kHz they agree to {snr:.1f} dB, at least {MIN_SNR_DB:g} dB needed): "
                      "average the channels, resample with an anti-aliasing resampler, keep the *first* seconds, "
                      "zero-pad at the end")
    except Exception as e:  # a checker never raises
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


QUANTILE_METHODS = ("linear", "lower", "higher", "nearest", "midpoint", "inverted_cdf", "averaged_inverted_cdf",
                    "closest_observation", "interpolated_inverted_cdf", "hazen", "weibull", "median_unbiased",
                    "normal_unbiased")  # numpy's; torch.quantile and pandas offer the first five


def score_sets(calibration_scores) -> list[np.ndarray]:
    """The score sets a threshold *rule* is tried on: the calibration scores, then sets of 12, 30, 200 and
    1000 scores of other shapes, on which the maximum, mean + 3 sd and nearby quantiles all differ."""
    rng = np.random.default_rng(6)
    return [np.asarray(calibration_scores, dtype=float), rng.gamma(2.0, 1.0, 12), rng.gamma(2.0, 1.0, 30),
            rng.normal(5.0, 1.0, 200), rng.lognormal(0.0, 0.5, 1000)]


def quantile_methods(value: float, scores: np.ndarray, quantile: float) -> set[str]:
    """The numpy quantile methods whose ``quantile`` of ``scores`` is ``value`` (float32 rounding allowed)."""
    return {m for m in QUANTILE_METHODS
            if np.isclose(value, np.quantile(scores, quantile, method=m), rtol=1e-5, atol=1e-9)}


def threshold_mistakes(scores: np.ndarray, quantile: float) -> dict[str, float]:
    """What typical wrong rules give on ``scores``: percent for a fraction, the complement, other quantiles,
    the maximum, mean + 3 sd, the gamma fit."""
    out = {f"the {quantile / 100:g} quantile: np.percentile takes percent (np.percentile(s, {100 * quantile:g})), "
           f"np.quantile a fraction (np.quantile(s, {quantile:g}))": np.quantile(scores, quantile / 100),
           f"the {1 - quantile:.2g} quantile: the threshold is the score that {100 * quantile:g} % of normal clips "
           "stay below": np.quantile(scores, 1 - quantile),
           "the largest score, not a quantile: with more scores the two differ": np.max(scores),
           "mean + 3 sd, which assumes normally distributed scores: take the empirical quantile":
           np.mean(scores) + 3 * np.std(scores),
           "mean + 3 sd (sample sd), which assumes normally distributed scores: take the empirical quantile":
           np.mean(scores) + 3 * np.std(scores, ddof=1),
           "the gamma fit's quantile: this exercise asks for the plain percentile of the scores":
           gamma_threshold(scores, quantile=quantile) if scores.size >= 3 and np.ptp(scores) > 0 else np.nan}
    for q in (0.9, 0.95, 0.97, 0.975):
        if q != quantile:
            out[f"the {q:g} quantile; this exercise asks for {quantile:g}"] = np.quantile(scores, q)
    return out


def _mistake(value: float, scores: np.ndarray, quantile: float) -> str | None:
    return next((what for what, ref in threshold_mistakes(scores, quantile).items()
                 if np.isclose(value, ref, rtol=1e-5, atol=1e-9)), None)


def _check_rule(rule, calibration_scores, quantile: float) -> None:
    """A threshold rule ``rule(scores) -> float``: the same numpy quantile method on every score set."""
    methods, sets = set(QUANTILE_METHODS), score_sets(calibration_scores)
    for k, scores in enumerate(sets):
        where = f"the {scores.size} calibration scores" if k == 0 else f"a set of {scores.size} other scores"
        try:
            value = rule(pd.Series(scores, name="score"))
            if value is None:
                raise NoResult
            value = float(scalar(np.squeeze(to_numpy(value))))
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            return report(False, "", f"{crash_hint(err, 'your rule')} (on {where})")
        methods &= quantile_methods(value, scores, quantile)
        if not methods:
            what = _mistake(value, scores, quantile)
            return report(False, "", f"on {where} your rule gave {value:.4g}, which is "
                          + (what if what else f"not their {quantile:g} quantile by any of numpy's methods"))
    return report(True, f"your rule is np.quantile(scores, {quantile:g}, method={sorted(methods)[0]!r}) on "
                  f"{len(sets)} score sets ({min(x.size for x in sets)} to {max(x.size for x in sets)} scores)", "")


def _ambiguous_hint(value: float, scores: np.ndarray, methods: set[str], quantile: float) -> str:
    """Why a number equal to one of the scores cannot be checked: other rules give it too."""
    rank = int(np.sum(scores >= value - 1e-9 * abs(value)))
    which = "the largest" if rank == 1 else f"the {rank}{'nd' if rank == 2 else 'rd' if rank == 3 else 'th'} largest"
    named = sorted(methods, key=QUANTILE_METHODS.index)
    also = f" and {len(named) - 1} other{'s' * (len(named) > 2)}" if len(named) > 1 else ""
    other = "max(scores)" if rank == 1 else "the quantile of a nearby level"
    return (f"{value:.4g} is {which} of the {scores.size} calibration scores: numpy's {named[0]!r} method{also} "
            f"give{'s' * (not also)} it with so few scores, but so does {other}, and a number cannot tell the "
            f"rules apart. Pass your rule instead, my_threshold = lambda scores: np.quantile(scores, {quantile:g}), "
            "and the checker tries it on other score sets")


def check_threshold(answer, calibration_scores, *, quantile: float) -> None:
    """``answer``: the empirical ``quantile`` of the known-normal calibration scores, as a number or as a rule
    ``answer(scores) -> float``.

    A rule is run on several score sets (:func:`score_sets`) and must be one of numpy's quantile methods on all
    of them. A number must be one of numpy's methods on the calibration scores and not a score itself: with
    few scores, ``method="higher"`` and the maximum are the same number, so a number cannot tell them apart.
    """
    try:
        x = np.sort(np.asarray(calibration_scores, dtype=float))
        if callable(answer):
            return _check_rule(answer, x, quantile)
        try:
            value = float(scalar(np.squeeze(to_numpy(answer))))
        except (TypeError, ValueError):
            return report(False, "", f"expected one number (a score) or a rule, got {answer!r}")
        methods = quantile_methods(value, x, quantile)
        if methods and not np.isclose(value, x, rtol=1e-5, atol=1e-9).any():
            flagged = np.mean(x > value)
            return report(True, f"threshold {value:.4g} (np.quantile, method={sorted(methods)[0]!r}): "
                          f"{100 * flagged:.0f} % of the {x.size} calibration clips lie above it", "")
        if methods:
            return report(False, "", _ambiguous_hint(value, x, methods, quantile))
        what = _mistake(value, x, quantile)
        return report(False, "", f"that is {what}" if what else f"{value:.4g} is not the {quantile:g} quantile of "
                      f"the {x.size} calibration scores: use np.quantile(scores, {quantile:g})")
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

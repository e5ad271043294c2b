"""Checkers for the exercises of ``06_score_your_own_machine``: loading a recording, a threshold, a class.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a hint, returns
True/False, and never raises. Worked answers: ``notebooks/solutions/06_solutions.py``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from asdlib.audio import load_audio
from asdlib.dcase import canonical_type, label_map
from asdlib.exercises import report
from asdlib.threshold import percentile_threshold


def check_loaded(wave, path: str | Path, *, seconds: float) -> bool:
    """``wave``: the recording at ``path`` as the model sees it: mono, 16 kHz, ``seconds`` long, ``(L,)``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = load_audio(path, seconds=seconds)
        got = np.asarray(wave, dtype=np.float32)
        if got.shape != expected.shape:
            return report(False, "", f"expected shape {expected.shape} (mono, 16 kHz, {seconds:g} s), got "
                                     f"{got.shape}: resample, average the channels, crop or pad")
        if not np.allclose(got, expected, atol=1e-4):
            return report(False, "", "right shape, different samples: use asdlib.data.load_audio(path, "
                                     "seconds=...) (resample_poly, channel mean, first seconds)")
        return report(True, f"{Path(path).name}: {got.shape[0]} samples at 16 kHz, mono", "")
    except Exception as e:  # a checker never raises
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


def check_threshold(answer, calibration_scores, *, quantile: float) -> bool:
    """``answer``: the empirical ``quantile`` of the known-normal calibration scores."""
    try:
        expected = percentile_threshold(calibration_scores, quantile=quantile)
        if answer is not None and np.isclose(float(answer), expected, rtol=1e-6, atol=1e-9):
            flagged = np.mean(np.asarray(calibration_scores) > expected)
            return report(True, f"threshold {expected:.4g}: {100 * flagged:.0f} % of the calibration clips "
                                "lie above it", "")
        return report(False, "", f"use np.quantile(scores, {quantile}) (a fraction in (0, 1), not a percent)")
    except Exception as e:
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


def check_class_index(answer, machine_type: str, machine_id: int) -> bool:
    """``answer``: the class of ``(machine_type, machine_id)`` in the 41-class map (``stgram_paper``)."""
    try:
        expected = label_map()[(canonical_type(machine_type), int(machine_id))]
        if answer is not None and int(answer) == expected:
            return report(True, f"{machine_type} id_{int(machine_id):02d} is class {expected} of 41", "")
        return report(False, "", "7 slots per type in the order fan, pump, slider, valve, ToyCar, "
                                 "ToyConveyor; slot = ID (minus 1 for the two Toy types)")
    except Exception as e:
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")

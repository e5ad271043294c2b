"""Checkers for the exercises of notebook 01 (data exploration): the crest factor, the loudest machine type.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a hint, returns
True/False and never raises. Solutions: ``notebooks/solutions/01_solutions.py``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib.baseline import rms_dbfs
from asdlib.dcase import canonical_type
from asdlib.exercises import report


def _test_signals(sr: int = 16000) -> dict[str, np.ndarray]:
    """Signals with known crest factors: a full-scale sine (3.01 dB), a square wave (0 dB), noise, clicks."""
    t = np.arange(sr) / sr
    return {"full-scale 1 kHz sine": np.sin(2 * np.pi * 1000 * t).astype(np.float32),
            "square wave": (0.1 * np.sign(np.sin(2 * np.pi * 50 * t + 0.1))).astype(np.float32),
            "white noise": (0.01 * np.random.default_rng(0).standard_normal(sr)).astype(np.float32),
            "click train": np.where(np.arange(sr) % 1600 == 0, 0.5, 0.001).astype(np.float32)}


def crest_factor_db(wave: np.ndarray) -> float:
    """Peak level minus RMS level, in dB: ``(L,) -> float``."""
    return float(20 * np.log10(np.max(np.abs(wave)) + 1e-12) - rms_dbfs(wave))


def check_crest_factor(fn) -> bool:
    """Exercise 1: ``fn(wave (L,)) -> float``, the crest factor in dB (within 0.01 dB)."""
    for name, wave in _test_signals().items():
        expected = crest_factor_db(wave)
        try:
            got = float(fn(wave))
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            return report(False, "", f"your function raised {type(err).__name__}: {err} on a {name}")
        if not abs(got - expected) < 0.01:
            return report(False, "", f"on a {name} you got {got:.2f} dB, expected {expected:.2f} dB: "
                          "the peak level is 20·log10(max |x|); subtract the RMS level "
                          "(asdlib.baseline.rms_dbfs)")
    return report(True, "a sine has 3.01 dB, a square wave 0 dB, a click train far more", "")


def check_loudest_type(answer, levels: pd.DataFrame, *, value: str = "rms_dbfs") -> bool:
    """Exercise 2: the machine type with the highest *median* clip level in ``levels`` (a type name)."""
    medians = levels.groupby("machine_type")[value].median()
    expected = str(medians.idxmax())
    try:
        ok = canonical_type(str(answer)) == expected
    except ValueError:
        ok = False
    return report(ok, f"{expected} is the loudest, median {medians.max():.1f} dBFS",
                  f"group the levels table by machine_type, take the median of {value!r} and pick the "
                  f"largest (.idxmax()); got {answer!r}")

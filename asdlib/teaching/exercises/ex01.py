"""Checkers for the exercises of notebook 01 (data exploration): the crest factor, the loudest machine type.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a specific hint,
returns None and never raises. ``solution(k)`` prints the worked solution of exercise ``k``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib.evaluation.baseline import rms_dbfs
from asdlib.data.dcase import canonical_type
from asdlib.teaching.exercises import crash_hint, report, show_solution


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 01."""
    show_solution("01", k)


def _test_signals(sr: int = 16000) -> dict[str, np.ndarray]:
    """Signals with known crest factors: a full-scale sine (3.01 dB), a square wave (0 dB), noise, clicks."""
    t = np.arange(sr) / sr
    return {"square wave": (0.1 * np.sign(np.sin(2 * np.pi * 50 * t + 0.1))).astype(np.float32),
            "full-scale 1 kHz sine": np.sin(2 * np.pi * 1000 * t).astype(np.float32),
            "white noise": (0.01 * np.random.default_rng(0).standard_normal(sr)).astype(np.float32),
            "click train": np.where(np.arange(sr) % 1600 == 0, 0.5, 0.001).astype(np.float32)}


def crest_factor_db(wave: np.ndarray) -> float:
    """Peak level minus RMS level, in dB: ``(L,) -> float``."""
    return float(20 * np.log10(np.max(np.abs(wave)) + 1e-12) - rms_dbfs(wave))


def check_crest_factor(fn) -> None:
    """Exercise 1: ``fn(wave (L,)) -> float``, the crest factor in dB (within 0.01 dB)."""
    for name, wave in _test_signals().items():
        expected = crest_factor_db(wave)
        try:
            got = float(fn(wave))
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            return report(False, "", f"{crash_hint(err)} on a {name}")
        if abs(got - expected) < 0.01:
            continue
        peak, rms = np.max(np.abs(wave)), np.sqrt(np.mean(wave.astype(np.float64) ** 2))
        wrong = {"that is the ratio peak / RMS; the crest factor is in dB: 20·log10(peak / RMS)": peak / rms,
                 "that is the peak level alone: subtract the RMS level (asdlib.evaluation.baseline.rms_dbfs)":
                 20 * np.log10(peak),
                 "amplitudes take 20·log10, not 10·log10": 10 * np.log10(peak / rms)}
        hint = next((h for h, v in wrong.items() if abs(got - v) < 0.01 and abs(v) > 0.01), None)  # not the 0 stub
        hint = hint or "the peak level is 20·log10(max |x|); subtract the RMS level (asdlib.evaluation.baseline.rms_dbfs)"
        return report(False, "", f"on a {name} you got {got:.2f} dB, expected {expected:.2f} dB: {hint}")
    return report(True, "a sine has 3.01 dB, a square wave 0 dB, a click train far more", "")


def _variants(levels: pd.DataFrame, value: str) -> list[tuple[str, pd.DataFrame]]:
    """Tables in which another type is the loudest, so a hard-coded name fails: ``[(what, table), …]``.

    The last one makes the quietest type loudest *on average* through one very loud clip, while its median
    stays lowest: a function that takes the mean instead of the median picks it.
    """
    medians = levels.groupby("machine_type")[value].median().sort_values()
    out = [("your levels table", levels)]
    for machine_type in medians.index[:-1][:2]:  # make a quieter type the loudest by 40 dB
        louder = levels[value] + 40.0 * (levels["machine_type"] == machine_type)
        out.append((f"a table where {machine_type} is 40 dB louder", levels.assign(**{value: louder})))
    quietest = levels.index[levels["machine_type"] == medians.index[0]]
    if len(quietest) >= 3:
        spike = levels[value].copy()
        spike.loc[quietest[0]] += 1000.0 * len(levels)
        out.append((f"a table with one extremely loud {medians.index[0]} clip", levels.assign(**{value: spike})))
    return out


def check_loudest_type(loudest_type, levels: pd.DataFrame, *, value: str = "rms_dbfs") -> None:
    """Exercise 2: ``loudest_type(levels) -> str``, the machine type with the highest *median* clip level.

    The function is run on ``levels`` and on changed copies where another type is the loudest, so the answer
    must be computed from the table, not read off a figure.
    """
    if not callable(loudest_type):
        return report(False, "", f"got {loudest_type!r}: write a function loudest_type(levels) that computes "
                      "the answer from the table it is given (the checker runs it on other tables too)")
    for what, table in _variants(levels, value):
        medians = table.groupby("machine_type")[value].median()
        expected = str(medians.idxmax())
        try:
            got = loudest_type(table.copy())
            ok = canonical_type(str(got)) == expected
        except ValueError:
            ok = False
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            return report(False, "", f"{crash_hint(err)} on {what}")
        if ok:
            continue
        means = table.groupby("machine_type")[value].mean()
        if str(got) == str(means.idxmax()):
            hint = "that is the type with the highest *mean*; the median is not moved by a few very loud clips"
        elif isinstance(got, (pd.Series, pd.DataFrame, dict)):
            hint = "return one machine type name (e.g. with .idxmax()), not the whole table"
        else:
            hint = f"group by machine_type, take the median of {value!r} and return the type with the largest"
        return report(False, "", f"on {what} your function returned {got!r}, expected {expected!r}: {hint}")
    medians = levels.groupby("machine_type")[value].median()
    return report(True, f"{medians.idxmax()} is the loudest here, median {medians.max():.1f} dBFS "
                  "(and your function follows the data when they change)", "")

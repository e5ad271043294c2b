"""Worked answers to the exercises of 06_score_your_own_machine.ipynb (checked by asdlib.teaching.exercises.ex06)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from asdlib.data.index import load_audio
from asdlib.data.dcase import MACHINE_TYPES, MIMII_TYPES


def load_like_the_model(path: str | Path, seconds: float) -> np.ndarray:
    """Exercise 1: a recording as the model sees it: mono, 16 kHz, the first ``seconds`` (zero-padded)."""
    return load_audio(path, sr=16000, seconds=seconds)


def calibrated_threshold(calibration_scores, quantile: float) -> float:
    """Exercise 2: the empirical ``quantile`` of the known-normal scores (about 1 - quantile false alarms)."""
    return float(np.quantile(np.asarray(calibration_scores, dtype=float), quantile))


def class_index(machine_type: str, machine_id: int) -> int:
    """Exercise 3: the 41-class label of STgram-MFN's paper-era code: 7 slots per machine type."""
    slot = machine_id if machine_type in MIMII_TYPES else machine_id - 1  # Toy types' IDs start at 1
    return 7 * MACHINE_TYPES.index(machine_type) + slot

"""Worked solutions to the exercises of notebook 01 (data exploration), checked by the tests."""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib.evaluation.baseline import rms_dbfs


def crest_factor_db(wave: np.ndarray) -> float:
    """Exercise 1: peak level minus RMS level, both in dB re. full scale."""
    return float(20 * np.log10(np.max(np.abs(wave))) - rms_dbfs(wave))


def loudest_type(levels: pd.DataFrame) -> str:
    """Exercise 2: the machine type with the highest median clip level."""
    return str(levels.groupby("machine_type")["rms_dbfs"].median().idxmax())

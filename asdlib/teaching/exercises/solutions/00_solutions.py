"""Worked solutions to the exercises of notebook 00 (setup and data), checked by the tests."""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib.data.dcase import class_permutation, label_map, parse_clip_name


def anomaly_count(index: pd.DataFrame, machine_type: str) -> int:
    """Exercise 1: how many anomalous test clips ``machine_type`` has (a boolean mask, summed)."""
    return int(((index["machine_type"] == machine_type) & (index["label"] == "anomaly")).sum())


def class_of(file_name: str, machine_type: str, order: str) -> int:
    """Exercise 2: the 41-class index of a clip in a label order."""
    machine_id = parse_clip_name(file_name).machine_id
    return label_map(order)[(machine_type, machine_id)]


def to_ours(logits: np.ndarray) -> np.ndarray:
    """Exercise 3: ``(B, 41)`` logits from Noisy-ArcMix's class order to asdlib's (``stgram_paper``)."""
    return logits[:, class_permutation("noisy_arcmix", "stgram_paper")]

"""Checkers for the exercises of notebook 00 (setup and data): counting clips, class indices, label orders.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a hint, returns
True/False and never raises (a learner's function that crashes is a hint too). Solutions:
``notebooks/solutions/00_solutions.py``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib import dcase
from asdlib.exercises import report

CLASS_CASES = (  # (file name, machine type, label order): dev, additional and evaluation-test names
    ("normal_id_00_00000000.wav", "fan", "stgram_paper"),
    ("anomaly_id_04_00000012.wav", "valve", "noisy_arcmix"),
    ("normal_id_05_00000101.wav", "ToyCar", "stgram_head"),
    ("id_03_00000007.wav", "pump", "stgram_head"),
    ("anomaly_id_02_00000031.wav", "ToyConveyor", "stgram_paper"),
    ("normal_id_06_00000000.wav", "ToyConveyor", "noisy_arcmix"),
)


def _crash(err: Exception) -> str:
    return f"your code raised {type(err).__name__}: {err}"


def check_anomaly_count(answer, index: pd.DataFrame, *, machine_type: str) -> bool:
    """Exercise 1: the number of anomalous test clips of ``machine_type`` in ``index`` (an int)."""
    expected = int(((index["machine_type"] == machine_type) & (index["label"] == "anomaly")).sum())
    ok = isinstance(answer, (int, np.integer)) and int(answer) == expected
    return report(ok, f"{machine_type} has {expected} anomalous test clips",
                  f"keep the rows whose machine_type is {machine_type!r} and whose label is 'anomaly', then "
                  f"count them (a boolean mask and .sum(), or len(index[...])); got {answer!r}")


def check_class_of(class_of) -> bool:
    """Exercise 2: ``class_of(file_name, machine_type, order) -> int``, the 41-class index of a clip."""
    for name, machine_type, order in CLASS_CASES:
        expected = dcase.label_map(order)[(machine_type, dcase.parse_clip_name(name).machine_id)]
        try:
            got = class_of(name, machine_type, order)
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            return report(False, "", f"{_crash(err)} on {name!r}, {machine_type!r}, {order!r}")
        if got != expected:
            return report(False, "", f"class_of({name!r}, {machine_type!r}, {order!r}) returned {got!r}, "
                          f"expected {expected}; parse the machine ID with asdlib.dcase.parse_clip_name, "
                          "then look up (machine_type, machine_id) in asdlib.dcase.label_map(order)")
    return report(True, f"class_of is right on {len(CLASS_CASES)} file names in all three label orders", "")


def check_reorder(to_ours) -> bool:
    """Exercise 3: ``to_ours(logits)``: ``(B, 41)`` logits from Noisy-ArcMix's class order to asdlib's."""
    logits = np.random.default_rng(0).normal(size=(3, dcase.NUM_CLASSES))
    expected = logits[:, dcase.class_permutation("noisy_arcmix", "stgram_paper")]
    try:
        got = np.asarray(to_ours(logits.copy()))
    except Exception as err:
        return report(False, "", f"{_crash(err)}; index the class axis: logits[:, perm]")
    ok = got.shape == expected.shape and np.allclose(got, expected)
    return report(ok, "column j of the result is now the machine ID that class j means in our order",
                  "use perm = asdlib.dcase.class_permutation('noisy_arcmix', 'stgram_paper') and return "
                  f"logits[:, perm] (got shape {got.shape}, expected {expected.shape})")

"""Checkers for the exercises of notebook 00 (setup and data): counting clips, class indices, label orders.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a specific hint,
returns None and never raises (a learner's function that crashes is a hint too). ``solution(k)`` prints the
worked solution of exercise ``k``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib.data import dcase
from asdlib.teaching.exercises import (NoResult, crash_hint, report, run_on_array_and_tensor, show_solution,
                                       whole_number)

CLASS_CASES = (  # (file name, machine type, label order): dev, additional and evaluation-test names
    ("normal_id_00_00000000.wav", "fan", "stgram_paper"),
    ("anomaly_id_04_00000012.wav", "valve", "noisy_arcmix"),
    ("normal_id_05_00000101.wav", "ToyCar", "stgram_head"),
    ("id_03_00000007.wav", "pump", "stgram_head"),
    ("anomaly_id_02_00000031.wav", "ToyConveyor", "stgram_paper"),
    ("normal_id_06_00000000.wav", "ToyConveyor", "noisy_arcmix"),
)


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 00."""
    show_solution("00", k)


def _not_a_count_hint(answer) -> str:
    """Why ``answer`` is not a count, from what it is: a mask, a table, a several-element array, a fraction."""
    if isinstance(answer, pd.DataFrame):
        return f"that is a table of {len(answer)} rows, not a count: the count is its length, len(...)"
    if hasattr(answer, "dtype") and getattr(answer, "ndim", 0) >= 1:
        kind = type(answer).__name__
        if str(answer.dtype) in ("bool", "torch.bool"):
            return f"that is the boolean mask itself ({kind} of {len(answer)} values): count its True " \
                   "values with .sum()"
        return f"that is a {kind} of {len(answer)} values, not one count: sum a boolean mask, or take len(...)"
    return f"expected a count (a whole number such as 12), got {answer!r} ({type(answer).__name__})"


def check_anomaly_count(answer, index: pd.DataFrame, *, machine_type: str) -> None:
    """Exercise 1: the number of anomalous test clips of ``machine_type`` in ``index`` (a count).

    Any whole number passes: an int, a numpy integer, a float such as 16.0, a 0-d array or tensor.
    """
    of_type, anomalous = index["machine_type"] == machine_type, index["label"] == "anomaly"
    expected = int((of_type & anomalous).sum())
    got = whole_number(answer)
    if got == expected:
        note = f" (a count is a whole number: int(...) gives {expected})" if isinstance(answer, float) else ""
        return report(True, f"{machine_type} has {expected} anomalous test clips{note}", "")
    if got is None:
        return report(False, "", _not_a_count_hint(answer))
    wrong = {int(anomalous.sum()): "that counts the anomalous clips of every machine type: also keep only "
                                   f"the rows whose machine_type is {machine_type!r}",
             int((of_type & (index["split"] == "test")).sum()): "that counts every test clip of the type, "
                                                                "normal ones too: keep label == 'anomaly'",
             int(of_type.sum()): f"that counts every clip of {machine_type!r}: keep only label == 'anomaly'"}
    hint = wrong.get(got, f"got {got}: combine the two conditions (machine_type and label) with & and count "
                          "the rows where both hold")
    return report(False, "", hint)


def check_class_of(class_of) -> None:
    """Exercise 2: ``class_of(file_name, machine_type, order) -> int``, the 41-class index of a clip."""
    for name, machine_type, order in CLASS_CASES:
        machine_id = dcase.parse_clip_name(name).machine_id
        expected = dcase.label_map(order)[(machine_type, machine_id)]
        try:
            got = class_of(name, machine_type, order)
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            return report(False, "", f"{crash_hint(err)} on {name!r}, {machine_type!r}, {order!r}")
        if got == expected:
            continue
        call = f"class_of({name!r}, {machine_type!r}, {order!r}) returned {got!r}, expected {expected}"
        if got == machine_id:
            hint = "that is the machine ID; the class index comes from dcase.label_map(order)"
        elif got in {dcase.label_map(o)[(machine_type, machine_id)] for o in dcase.LABEL_ORDERS}:
            hint = "that is the index in another label order: pass `order` on to dcase.label_map"
        else:
            hint = "read the machine ID from the file name (parse_clip_name), then look up the pair " \
                   "(machine_type, machine_id) in the map of the requested order"
        return report(False, "", f"{call}: {hint}")
    return report(True, f"class_of is right on {len(CLASS_CASES)} file names in all three label orders", "")


def _reorder_hint(got: np.ndarray, logits: np.ndarray, perm: np.ndarray) -> str:
    """What a wrong re-ordering did: nothing, the reverse direction, the rows instead of the columns."""
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(len(perm))
    if np.allclose(got, logits):
        return "the logits are unchanged: the columns must be re-ordered"
    if np.allclose(got, logits[:, inverse]):
        return ("that is the reverse direction (our order -> noisy_arcmix): swap the two orders you pass to "
                "class_permutation, or invert the permutation")
    if np.allclose(np.sort(got, axis=0), np.sort(logits, axis=0)):
        return "the rows (clips) moved: re-order the class axis (columns), not the batch axis"
    return "select the columns with an index array from dcase.class_permutation; check its direction " \
           "against class 21 (see the cell above)"


def check_reorder(to_ours) -> None:
    """Exercise 3: ``to_ours(logits)``: ``(B, 41)`` logits from Noisy-ArcMix's class order to asdlib's.

    The logits are given once as a torch tensor (what a model outputs) and once as a numpy array: torch idioms
    (``logits[:, perm]``, ``index_select``) and numpy ones (``np.take``) pass, whichever input they work on.
    """
    logits = np.random.default_rng(0).normal(size=(3, dcase.NUM_CLASSES))  # (B, K)
    perm = np.asarray(dcase.class_permutation("noisy_arcmix", "stgram_paper"))
    expected = logits[:, perm]
    outcomes = run_on_array_and_tensor(to_ours, logits)
    ran = [got for _, got, _ in outcomes if got is not None]
    if not ran:
        kind, _, err = outcomes[0]
        also = "" if isinstance(err, NoResult) else ", and on a numpy array too"
        return report(False, "", f"{crash_hint(err)} on a {kind} of logits{also}")
    if any(got.shape == expected.shape and np.allclose(got, expected) for got in ran):
        return report(True, "column j of the result is now the machine ID that class j means in our order", "")
    got = ran[0]
    if got.shape != expected.shape:
        return report(False, "", f"the result has shape {got.shape}; it must keep the batch and all "
                      f"{dcase.NUM_CLASSES} classes, {expected.shape}: only the order of the columns changes")
    return report(False, "", _reorder_hint(got, logits, perm))

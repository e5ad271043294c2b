"""The DCASE2020 Task 2 vocabulary in one place.

Machine types, their development / additional-training / evaluation machine IDs, the file-name grammar, and the
41-class machine-ID label maps. Three label orders exist because the original code bases disagree
(STgram-MFN's ``dataset.py`` and ``utils.metadata_to_label``, Noisy-ArcMix's ``dataloader.py``) and every
published checkpoint is tied to one of them:

* ``"stgram_paper"`` (our default): STgram-MFN paper-era formula ``label = 7 * type_index + k`` with type order
  fan, pump, slider, valve, ToyCar, ToyConveyor and ``k`` = numeric ID (minus 1 for the two Toy types).
* ``"stgram_head"``: the current STgram-MFN repository: development IDs first (type order fan, pump, slider,
  ToyCar, ToyConveyor, valve; sorted IDs), then the additional-training IDs in the same type order.
* ``"noisy_arcmix"``: Noisy-ArcMix: type order fan, pump, slider, ToyCar, ToyConveyor, valve with every ID slot
  (``id_00..06`` for MIMII types, ``id_01..07`` ToyCar, ``id_01..06`` ToyConveyor).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MACHINE_TYPES: tuple[str, ...] = ("fan", "pump", "slider", "valve", "ToyCar", "ToyConveyor")
MIMII_TYPES: tuple[str, ...] = ("fan", "pump", "slider", "valve")

DEV_IDS: dict[str, tuple[int, ...]] = {
    "fan": (0, 2, 4, 6), "pump": (0, 2, 4, 6), "slider": (0, 2, 4, 6), "valve": (0, 2, 4, 6),
    "ToyCar": (1, 2, 3, 4), "ToyConveyor": (1, 2, 3),
}
EVAL_IDS: dict[str, tuple[int, ...]] = {  # additional-training set and evaluation test set
    "fan": (1, 3, 5), "pump": (1, 3, 5), "slider": (1, 3, 5), "valve": (1, 3, 5),
    "ToyCar": (5, 6, 7), "ToyConveyor": (4, 5, 6),
}
ALL_IDS: dict[str, tuple[int, ...]] = {t: tuple(sorted(DEV_IDS[t] + EVAL_IDS[t])) for t in MACHINE_TYPES}
NUM_CLASSES = sum(len(v) for v in ALL_IDS.values())  # 41

LABEL_ORDERS: tuple[str, ...] = ("stgram_paper", "stgram_head", "noisy_arcmix")
_HEAD_TYPE_ORDER = ("fan", "pump", "slider", "ToyCar", "ToyConveyor", "valve")

_NAME_RE = re.compile(r"^(?:(?P<label>normal|anomaly)_)?id_(?P<id>\d{2})_(?P<num>\d+)\.wav$")


def canonical_type(name: str) -> str:
    """Return the official spelling of a machine type (``"toycar"`` -> ``"ToyCar"``); raise on unknown names."""
    for t in MACHINE_TYPES:
        if t.lower() == str(name).strip().lower():
            return t
    raise ValueError(f"unknown machine type {name!r}; expected one of {', '.join(MACHINE_TYPES)}")


def parse_types(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"fan,valve"`` / ``["fan", "valve"]`` / ``None`` (all) -> canonical types in official order."""
    if spec is None or spec == "all" or spec == ["all"]:
        return MACHINE_TYPES
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    wanted = {canonical_type(n) for n in names if str(n).strip()}
    return tuple(t for t in MACHINE_TYPES if t in wanted)


@dataclass(frozen=True)
class ClipName:
    """What a DCASE2020 file name says: label (``normal``/``anomaly``/``unknown``), machine ID, clip number."""

    label: str
    machine_id: int
    number: int


def parse_clip_name(name: str) -> ClipName:
    """Parse ``normal_id_00_00000012.wav`` / ``anomaly_id_02_…`` / ``id_05_…`` (evaluation test, unlabelled)."""
    m = _NAME_RE.match(name)
    if m is None:
        raise ValueError(
            f"{name!r} does not follow the DCASE2020 naming 'normal_id_XX_NNNNNNNN.wav', "
            "'anomaly_id_XX_NNNNNNNN.wav' or 'id_XX_NNNNNNNN.wav'; rename it or pass on_error='skip'"
        )
    return ClipName(m["label"] or "unknown", int(m["id"]), int(m["num"]))


def clip_name(label: str, machine_id: int, number: int) -> str:
    """Inverse of :func:`parse_clip_name`: ``("normal", 2, 7)`` -> ``"normal_id_02_00000007.wav"``."""
    prefix = "" if label == "unknown" else f"{label}_"
    return f"{prefix}id_{machine_id:02d}_{number:08d}.wav"


def source_of(machine_type: str, machine_id: int) -> str:
    """``"development"`` for development IDs, ``"additional"`` for the evaluation IDs (train split)."""
    return "development" if machine_id in DEV_IDS[canonical_type(machine_type)] else "additional"


def label_map(order: str = "stgram_paper") -> dict[tuple[str, int], int]:
    """The 41-class map ``(machine_type, machine_id) -> class index`` in one of :data:`LABEL_ORDERS`."""
    if order == "stgram_paper":
        return {(t, i): 7 * MACHINE_TYPES.index(t) + (i if t in MIMII_TYPES else i - 1)
                for t in MACHINE_TYPES for i in ALL_IDS[t]}
    if order == "stgram_head":
        keys = [(t, i) for t in _HEAD_TYPE_ORDER for i in DEV_IDS[t]]
        keys += [(t, i) for t in _HEAD_TYPE_ORDER for i in EVAL_IDS[t]]
        return {k: n for n, k in enumerate(keys)}
    if order == "noisy_arcmix":
        return {k: n for n, k in enumerate((t, i) for t in _HEAD_TYPE_ORDER for i in ALL_IDS[t])}
    raise ValueError(f"unknown label order {order!r}; expected one of {', '.join(LABEL_ORDERS)}")


def class_permutation(src: str, dst: str = "stgram_paper") -> list[int]:
    """``perm`` such that ``x_dst = x_src[..., perm]`` re-orders a class axis from order ``src`` to ``dst``."""
    a, inv_b = label_map(src), {v: k for k, v in label_map(dst).items()}
    return [a[inv_b[j]] for j in range(NUM_CLASSES)]

"""Where the test clips lie around their class centre: per machine ID, how compact the normal clips are and how
far the anomalous ones stand out, in units of that spread.

The Noisy-ArcMix paper (S. Choi and J.-W. Choi, ICASSP 2024) argues with the angles θ_y between a clip's
embedding and its machine ID's class centre (its angle-distribution figures): mixup and the noisy margin should make each ID's normal cluster *compact* and
keep anomalous clips *apart* from it. A median gap (anomalous − normal) mixes both effects: a loss that pulls the
normal cluster tighter but further out can show a smaller gap and still separate better. Hence, per ID:

* compactness of the normal angles: interquartile range and standard deviation (degrees);
* the standardised separation ``(median_anomaly − median_normal) / pooled robust spread``, where a group's robust
  spread is its IQR / 1.349 (the standard deviation of a normal distribution with that IQR) and the pooled spread
  is ``sqrt(((n_n − 1) s_n² + (n_a − 1) s_a²) / (n_n + n_a − 2))``, as in Cohen's d; for normally distributed
  angles it is Cohen's d, and a few far-out clips move it little. Unlike the AUC it does not saturate at 1.

Inputs are score tables with columns machine_type, machine_id, label and ``angle`` (``scores.csv`` of a run).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib.evaluation.metrics import _binary_labels, _require

IQR_TO_SD = 1.349  # interquartile range of the standard normal distribution (2 · 0.6745)


def iqr(values) -> float:
    """Interquartile range ``q75 − q25`` of ``(N,)`` values (linear interpolation, as ``np.percentile``)."""
    q25, q75 = np.percentile(np.asarray(values, dtype=float), [25, 75])
    return float(q75 - q25)


def robust_spread(values) -> float:
    """IQR / 1.349: the standard deviation of a normal distribution with the IQR of ``(N,)`` values."""
    return iqr(values) / IQR_TO_SD


def pooled_robust_spread(normal, anomaly) -> float:
    """The two groups' robust spreads pooled with weights ``n − 1`` (as Cohen's d pools variances)."""
    n, m = len(normal), len(anomaly)
    if n + m < 3:
        raise ValueError(f"a pooled spread needs at least 3 clips in all, got {n} normal and {m} anomalous")
    return float(np.sqrt(((n - 1) * robust_spread(normal) ** 2 + (m - 1) * robust_spread(anomaly) ** 2)
                         / (n + m - 2)))


def standardised_separation(normal, anomaly) -> float:
    """``(median(anomaly) − median(normal)) / pooled robust spread``; NaN where both groups have no spread."""
    spread = pooled_robust_spread(normal, anomaly)
    shift = float(np.median(anomaly) - np.median(normal))
    return shift / spread if spread > 0 else float("nan")


def _by_id(scores: pd.DataFrame, angle: str):
    """``((machine_type, machine_id), normal angles, anomalous angles)`` per machine ID, sorted."""
    _require(scores, ("machine_type", "machine_id", "label", angle))
    labels = _binary_labels(scores["label"])
    values = scores[angle].to_numpy(dtype=float)
    for key, rows in scores.groupby(["machine_type", "machine_id"], sort=True).indices.items():
        yield key, values[rows[labels[rows] == 0]], values[rows[labels[rows] == 1]]


def angle_compactness(scores: pd.DataFrame, *, angle: str = "angle") -> pd.DataFrame:
    """Per machine ID, the spread of its *normal* clips' angles: columns machine_type, machine_id, n_normal,
    median, iqr, sd (degrees; sd with ddof 1). A tighter normal cluster has a smaller iqr / sd."""
    rows = []
    for (machine_type, machine_id), normal, _ in _by_id(scores, angle):
        if len(normal) < 2:
            raise ValueError(f"{machine_type} id_{int(machine_id):02d}: {len(normal)} normal clip(s); "
                             "a spread needs at least 2")
        rows.append({"machine_type": machine_type, "machine_id": int(machine_id), "n_normal": len(normal),
                     "median": float(np.median(normal)), "iqr": iqr(normal), "sd": float(np.std(normal, ddof=1))})
    return pd.DataFrame(rows)


def angle_separation(scores: pd.DataFrame, *, angle: str = "angle") -> pd.DataFrame:
    """Per machine ID: columns machine_type, machine_id, median_normal, median_anomaly, gap (their difference),
    spread (the pooled robust spread) and separation (gap / spread; see the module docstring)."""
    rows = []
    for (machine_type, machine_id), normal, anomaly in _by_id(scores, angle):
        if not len(normal) or not len(anomaly):
            raise ValueError(f"{machine_type} id_{int(machine_id):02d}: {len(normal)} normal and {len(anomaly)} "
                             "anomalous clips; the separation needs both (is this an unlabelled split?)")
        rows.append({"machine_type": machine_type, "machine_id": int(machine_id),
                     "median_normal": float(np.median(normal)), "median_anomaly": float(np.median(anomaly)),
                     "gap": float(np.median(anomaly) - np.median(normal)),
                     "spread": pooled_robust_spread(normal, anomaly),
                     "separation": standardised_separation(normal, anomaly)})
    return pd.DataFrame(rows)

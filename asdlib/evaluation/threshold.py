"""Operating thresholds: turn anomaly scores into normal/anomaly decisions using normal clips only.

AUC and pAUC rank clips and need no threshold, but a deployed detector must decide. Anomalous examples are
rare or absent when a machine is installed, so the threshold comes from scores of *known-normal* clips
(held-out training clips, or recordings of the healthy machine): a clip is flagged when its score exceeds the
``quantile`` of the normal scores, so about ``1 - quantile`` of normal clips raise a false alarm. Two ways to
estimate that quantile: the empirical percentile, or the quantile of a gamma distribution fitted to the normal
scores, as the DCASE2021 Task 2 baseline does (``scipy.stats.gamma.fit`` on its training-clip scores of a
machine type, then the 0.9 quantile, ``decision_threshold: 0.9``). :class:`ThresholdDetector` does one group;
:func:`fit_thresholds` / :func:`flag_anomalies` do one threshold per machine ID (or type) of a score table.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats
from numpy.typing import ArrayLike

METHODS = ("percentile", "gamma")
MIN_CLIPS = {"percentile": 1, "gamma": 3}  # a gamma fit needs a few points to estimate three parameters


def _normal_scores(normal_scores: ArrayLike, *, method: str, name: str = "normal_scores") -> np.ndarray:
    """Validate the calibration scores: a finite 1-d float array ``(N,)`` with enough clips for ``method``."""
    x = np.asarray(normal_scores, dtype=float).ravel()
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite scores; drop those clips before calibrating")
    if x.size < MIN_CLIPS[method]:
        raise ValueError(f"{name} has {x.size} score(s); the {method!r} method needs at least "
                         f"{MIN_CLIPS[method]}: record or hold out more known-normal clips")
    return x


def _check_quantile(quantile: float) -> float:
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), e.g. 0.9 (≈ 10 % false alarms), got {quantile}")
    return float(quantile)


def percentile_threshold(normal_scores: ArrayLike, *, quantile: float = 0.9) -> float:
    """The empirical ``quantile`` of the normal scores (numpy's linear interpolation). ``(N,) -> float``."""
    x = _normal_scores(normal_scores, method="percentile")
    return float(np.quantile(x, _check_quantile(quantile)))


def fit_gamma(normal_scores: ArrayLike) -> tuple[float, float, float]:
    """Maximum-likelihood gamma fit of the normal scores: ``(N,) -> (shape a, loc, scale)`` (scipy order)."""
    x = _normal_scores(normal_scores, method="gamma")
    if np.ptp(x) == 0:
        raise ValueError("normal_scores are all equal; a gamma distribution cannot be fitted (use "
                         "method='percentile', or check that the clips really differ)")
    a, loc, scale = scipy.stats.gamma.fit(x)
    return float(a), float(loc), float(scale)


def gamma_threshold(normal_scores: ArrayLike, *, quantile: float = 0.9) -> float:
    """The ``quantile`` of a gamma distribution fitted to the normal scores. ``(N,) -> float``."""
    a, loc, scale = fit_gamma(normal_scores)
    return float(scipy.stats.gamma.ppf(_check_quantile(quantile), a, loc=loc, scale=scale))


class ThresholdDetector:
    """Flag a clip as anomalous when its score exceeds a threshold calibrated on normal scores.

    ``ThresholdDetector(method="gamma", quantile=0.9).fit(normal_scores).predict(scores)`` -> ``(N,)`` bool.
    After :meth:`fit`: ``threshold_``, ``n_normal_``, and ``gamma_`` = (a, loc, scale) (None for percentile).
    """

    def __init__(self, *, method: str = "gamma", quantile: float = 0.9):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        self.method, self.quantile = method, _check_quantile(quantile)

    def fit(self, normal_scores: ArrayLike) -> ThresholdDetector:
        """Calibrate on scores of known-normal clips ``(N,)``; returns self."""
        x = _normal_scores(normal_scores, method=self.method)
        self.n_normal_ = int(x.size)
        self.gamma_ = fit_gamma(x) if self.method == "gamma" else None
        if self.gamma_ is not None:
            a, loc, scale = self.gamma_
            self.threshold_ = float(scipy.stats.gamma.ppf(self.quantile, a, loc=loc, scale=scale))
        else:
            self.threshold_ = percentile_threshold(x, quantile=self.quantile)
        return self

    def predict(self, scores: ArrayLike) -> np.ndarray:
        """``(N,) -> (N,)`` bool: True where the score is above the threshold (anomalous)."""
        if not hasattr(self, "threshold_"):
            raise RuntimeError("this ThresholdDetector is not calibrated yet; call .fit(normal_scores) first")
        return np.asarray(scores, dtype=float) > self.threshold_

    def __repr__(self) -> str:
        fitted = f", threshold_={self.threshold_:.4g}" if hasattr(self, "threshold_") else ""
        return f"ThresholdDetector(method={self.method!r}, quantile={self.quantile}{fitted})"


# ------------------------------------------------------------------------------------ score tables
def fit_thresholds(normal: pd.DataFrame, *, by: Sequence[str] = ("machine_type", "machine_id"),
                   score: str = "score", method: str = "gamma", quantile: float = 0.9) -> pd.DataFrame:
    """One threshold per group of known-normal clips: columns ``*by, threshold, n_normal``.

    ``normal`` is a score table (e.g. :func:`asdlib.experiment.score_dataset` on held-out normal clips) with
    the ``by`` columns and ``score``; every clip in it is assumed normal.
    """
    _require(normal, (*by, score), "normal")
    rows = []
    for key, group in normal.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        try:
            detector = ThresholdDetector(method=method, quantile=quantile).fit(group[score])
        except ValueError as e:
            raise ValueError(f"group {dict(zip(by, key))}: {e}") from None
        rows.append((*key, detector.threshold_, detector.n_normal_))
    return pd.DataFrame(rows, columns=[*by, "threshold", "n_normal"])


def flag_anomalies(scores: pd.DataFrame, thresholds: pd.DataFrame, *, score: str = "score") -> pd.DataFrame:
    """``scores`` plus columns ``threshold`` and ``is_anomaly`` (score > its group's threshold).

    The group columns are those of ``thresholds`` (from :func:`fit_thresholds`) other than threshold/n_normal.
    """
    by = [c for c in thresholds.columns if c not in ("threshold", "n_normal")]
    _require(scores, (*by, score), "scores")
    merged = scores.merge(thresholds[[*by, "threshold"]], on=by, how="left", validate="many_to_one")
    missing = merged[merged["threshold"].isna()][by].drop_duplicates()
    if len(missing):
        groups = ", ".join(str(dict(zip(by, row))) for row in missing.itertuples(index=False))
        raise ValueError(f"no threshold for {groups}: calibrate fit_thresholds on normal clips of these "
                         "groups too")
    return merged.assign(is_anomaly=merged[score] > merged["threshold"])


def decision_metrics(y_true: ArrayLike, is_anomaly: ArrayLike) -> dict[str, float]:
    """Counts and rates of hard decisions: tp, fp, tn, fn, fpr, tpr (recall), precision, f1.

    ``y_true``: ``(N,)`` "normal"/"anomaly" or 0/1 (1 = anomaly); ``is_anomaly``: ``(N,)`` bool. A rate whose
    denominator is 0 is NaN.
    """
    y = np.asarray(y_true)
    y = (y == "anomaly") if y.dtype.kind in "OUS" else y.astype(bool)
    flag = np.asarray(is_anomaly, dtype=bool)
    if y.shape != flag.shape:
        raise ValueError(f"y_true {y.shape} and is_anomaly {flag.shape} must have the same shape")
    tp, fp = int((flag & y).sum()), int((flag & ~y).sum())
    fn, tn = int((~flag & y).sum()), int((~flag & ~y).sum())
    tpr, precision = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "fpr": _ratio(fp, fp + tn), "tpr": tpr,
            "precision": precision, "f1": f1}


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")

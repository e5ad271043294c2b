"""Operating thresholds from normal scores: numpy / scipy references, false-alarm rates, per-ID tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

from asdlib.evaluation.threshold import (
    ThresholdDetector,
    decision_metrics,
    fit_gamma,
    fit_thresholds,
    flag_anomalies,
    gamma_threshold,
    percentile_threshold,
)


def test_percentile_threshold_is_numpy_quantile():
    x = np.random.default_rng(0).normal(size=101)
    assert percentile_threshold(x, quantile=0.9) == pytest.approx(np.quantile(x, 0.9))
    assert percentile_threshold([3.0], quantile=0.5) == 3.0


def test_gamma_fit_recovers_known_distribution():
    a, loc, scale = 2.5, 0.3, 1.7
    x = scipy.stats.gamma.rvs(a, loc=loc, scale=scale, size=20000, random_state=1)
    true = scipy.stats.gamma.ppf(0.9, a, loc=loc, scale=scale)
    assert gamma_threshold(x, quantile=0.9) == pytest.approx(true, rel=0.02)
    assert fit_gamma(x)[0] == pytest.approx(a, rel=0.1)


@pytest.mark.parametrize("method", ["percentile", "gamma"])
def test_false_alarm_rate_on_fresh_normal_clips(method):
    rng = np.random.default_rng(2)
    calibration, fresh = rng.gamma(2.0, 1.5, 2000), rng.gamma(2.0, 1.5, 20000)
    detector = ThresholdDetector(method=method, quantile=0.95).fit(calibration)
    assert detector.n_normal_ == 2000
    assert np.mean(detector.predict(fresh)) == pytest.approx(0.05, abs=0.015)
    assert (detector.gamma_ is None) == (method == "percentile")
    assert "threshold_=" in repr(detector)


def test_detector_errors_name_the_fix():
    with pytest.raises(RuntimeError, match="call .fit"):
        ThresholdDetector().predict([1.0])
    with pytest.raises(ValueError, match="unknown method 'otsu'"):
        ThresholdDetector(method="otsu")
    with pytest.raises(ValueError, match="quantile must be in"):
        ThresholdDetector(quantile=90)
    with pytest.raises(ValueError, match="needs at least 3"):
        ThresholdDetector(method="gamma").fit([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        percentile_threshold([1.0, np.nan])
    with pytest.raises(ValueError, match="all equal"):
        gamma_threshold([2.0, 2.0, 2.0])


def _table(rng, n_per_id: int) -> pd.DataFrame:
    ids = [("fan", 0), ("fan", 2), ("valve", 0)]
    return pd.DataFrame([{"machine_type": t, "machine_id": i, "score": 10 * k + rng.normal()}
                         for k, (t, i) in enumerate(ids) for _ in range(n_per_id)])


def test_fit_thresholds_one_per_group_and_flagging():
    rng = np.random.default_rng(3)
    normal = _table(rng, 50)
    per_id = fit_thresholds(normal, method="percentile", quantile=0.9)
    assert per_id.columns.tolist() == ["machine_type", "machine_id", "threshold", "n_normal"]
    assert per_id["n_normal"].tolist() == [50, 50, 50]
    fan2 = normal[(normal.machine_type == "fan") & (normal.machine_id == 2)]["score"]
    assert per_id.loc[1, "threshold"] == pytest.approx(np.quantile(fan2, 0.9))
    new = pd.DataFrame({"machine_type": ["fan", "fan", "valve"], "machine_id": [0, 2, 0],
                        "score": [100.0, 0.0, 20.5]})
    flagged = flag_anomalies(new, per_id)
    assert flagged["is_anomaly"].tolist() == [True, False, per_id.loc[2, "threshold"] < 20.5]
    per_type = fit_thresholds(normal, by=("machine_type",), method="percentile")
    assert per_type["n_normal"].tolist() == [100, 50]
    assert len(flag_anomalies(new, per_type)) == 3


def test_flagging_a_group_without_threshold_fails_clearly():
    thresholds = fit_thresholds(_table(np.random.default_rng(4), 5), method="percentile")
    new = pd.DataFrame({"machine_type": ["pump"], "machine_id": [4], "score": [1.0]})
    with pytest.raises(ValueError, match="no threshold for .*pump"):
        flag_anomalies(new, thresholds)
    with pytest.raises(ValueError, match="group .*fan.*needs at least 3"):
        fit_thresholds(_table(np.random.default_rng(4), 2))
    with pytest.raises(KeyError, match="lacks column"):
        fit_thresholds(new.drop(columns="score"))


def test_decision_metrics_match_sklearn():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    flag = rng.random(200) < 0.3 + 0.4 * y
    got = decision_metrics(np.where(y == 1, "anomaly", "normal"), flag)
    tn, fp, fn, tp = confusion_matrix(y, flag).ravel()
    assert (got["tp"], got["fp"], got["tn"], got["fn"]) == (tp, fp, tn, fn)
    assert got["fpr"] == pytest.approx(fp / (fp + tn))
    assert got["tpr"] == pytest.approx(recall_score(y, flag))
    assert got["precision"] == pytest.approx(precision_score(y, flag))
    assert got["f1"] == pytest.approx(f1_score(y, flag))
    assert np.isnan(decision_metrics([0, 0], [False, False])["tpr"])
    with pytest.raises(ValueError, match="same shape"):
        decision_metrics([0, 1], [True])

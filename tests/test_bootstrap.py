"""Comparing runs with uncertainty: mean ± sd over seeds and the paired, ID-stratified bootstrap."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from asdlib.evaluation.metrics import _auc_pauc_batch, paired_bootstrap, per_id_table, seed_table, summary_table


def _clips(seed: int = 0, n_normal: int = 30, n_anomaly: int = 20) -> pd.DataFrame:
    """A test set of two machine types (2 + 1 IDs) with random scores (anomalies a little higher)."""
    rng, rows = np.random.default_rng(seed), []
    for machine_type, ids in (("fan", (0, 2)), ("valve", (4,))):
        for machine_id in ids:
            for label, n, shift in (("normal", n_normal, 0.0), ("anomaly", n_anomaly, 1.0)):
                for k in range(n):
                    rows.append({"file": f"{machine_type}/test/{label}_id_{machine_id:02d}_{k:08d}.wav",
                                 "machine_type": machine_type, "machine_id": machine_id, "label": label,
                                 "score": rng.normal(shift, 1.0)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_normal", [50, 37])  # 37: FPR 0.1 falls inside a step (interpolated)
def test_vectorised_auc_and_pauc_equal_sklearn(n_normal):
    rng = np.random.default_rng(1)
    normal, anomaly = rng.normal(0, 1, n_normal), rng.normal(0.8, 1, 41)
    auc, pauc = _auc_pauc_batch(normal[None], anomaly[None], 0.1)
    y, s = np.r_[np.zeros(n_normal), np.ones(41)], np.r_[normal, anomaly]
    assert auc[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert pauc[0] == pytest.approx(roc_auc_score(y, s, max_fpr=0.1), abs=1e-12)


def test_point_estimate_is_the_difference_of_the_dcase_averages():
    a, b = _clips(0), _clips(1)
    table = paired_bootstrap({"A": [a], "B": [b]}, [("A", "B")], n_boot=50)
    averages = {name: summary_table(per_id_table(t)).set_index("machine_type").loc["Average"]
                for name, t in (("A", a), ("B", b))}
    for metric in ("auc", "pauc", "mauc"):
        row = table[table.metric == metric].iloc[0]
        assert row.estimate == pytest.approx(averages["A"][metric] - averages["B"][metric], abs=1e-12)
        assert row.low <= row.estimate <= row.high


def test_known_answer_perfect_detector_against_reversed_one():
    """A run that ranks every anomaly above every normal clip (AUC = pAUC = 1) against one that ranks them all
    below (AUC 0, raw partial area 0, so McClish pAUC = ½(1 − 0.005 / 0.095) = 0.47368…): every resample gives
    the same differences, so the interval collapses onto them."""
    clips = _clips(0)
    jitter = np.random.default_rng(2).uniform(0, 0.5, len(clips))
    perfect = clips.assign(score=(clips.label == "anomaly") + jitter)
    reversed_ = clips.assign(score=(clips.label == "normal") + jitter)
    table = paired_bootstrap({"perfect": [perfect], "reversed": [reversed_]}, [("perfect", "reversed")],
                             n_boot=200).set_index("metric")
    expected = {"auc": 1.0, "pauc": 1 - 0.5 * (1 - 0.005 / 0.095), "mauc": 1.0}
    for metric, value in expected.items():
        assert table.loc[metric, ["estimate", "low", "high"]].to_numpy() == pytest.approx([value] * 3, abs=1e-12)


def test_identical_runs_differ_by_exactly_zero_and_pairing_matters():
    clips = _clips(0)
    same = paired_bootstrap({"A": [clips], "B": [clips.sample(frac=1, random_state=3)]}, [("A", "B")], n_boot=200)
    assert np.allclose(same[["estimate", "low", "high"]].to_numpy(), 0.0)  # paired: the same draw for both
    noisy = clips.assign(score=clips.score + np.random.default_rng(5).normal(0, 0.3, len(clips)))
    diff = paired_bootstrap({"A": [clips], "B": [noisy]}, [("A", "B")], n_boot=300).set_index("metric")
    assert diff.loc["auc", "low"] < diff.loc["auc", "estimate"] < diff.loc["auc", "high"]
    assert diff.loc["auc", "high"] - diff.loc["auc", "low"] > 0.005


def test_seeds_are_averaged_and_seed_table_gives_mean_and_sd():
    seeds = [_clips(s) for s in range(3)]
    other = [_clips(10)]
    table = paired_bootstrap({"A": seeds, "B": other}, [("A", "B")], n_boot=20).set_index("metric")
    summaries = {"A": [summary_table(per_id_table(t)) for t in seeds], "B": [summary_table(per_id_table(other[0]))]}
    stats = seed_table(summaries)
    assert table.loc["auc", "estimate"] == pytest.approx(stats.at["A", "auc"] - stats.at["B", "auc"], abs=1e-12)
    values = [s.set_index("machine_type").at["Average", "pauc"] for s in summaries["A"]]
    assert stats.at["A", "pauc_sd"] == pytest.approx(np.std(values, ddof=1))
    assert stats.at["B", "auc_sd"] == 0.0 and stats.at["A", "seeds"] == 3


def test_runs_on_different_clips_are_refused():
    with pytest.raises(ValueError, match="same test clips"):
        paired_bootstrap({"A": [_clips(0)], "B": [_clips(0, n_normal=10)]}, [("A", "B")], n_boot=5)

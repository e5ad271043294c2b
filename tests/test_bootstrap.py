"""Comparing runs with uncertainty: mean ± sd over seeds, the paired, ID-stratified bootstrap over clips, and the
hierarchical bootstrap over seeds and clips."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from asdlib.evaluation.bootstrap import (_auc_pauc_batch, contrast_interval, hierarchical_bootstrap,
                                        hierarchical_replicates, paired_bootstrap, replicate_table)
from asdlib.evaluation.metrics import per_id_table, seed_table, summary_table


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
    assert np.isnan(stats.at["B", "auc_sd"]) and stats.at["A", "seeds"] == 3  # one seed: unknown, not 0


def test_runs_on_different_clips_are_refused():
    with pytest.raises(ValueError, match="same test clips"):
        paired_bootstrap({"A": [_clips(0)], "B": [_clips(0, n_normal=10)]}, [("A", "B")], n_boot=5)


# ------------------------------------------------------------------------------------ seeds and clips
def _average(table: pd.DataFrame) -> pd.Series:
    """The DCASE "Average" row of one score table, by sklearn."""
    return summary_table(per_id_table(table)).set_index("machine_type").loc["Average"]


def _ranked(clips: pd.DataFrame, reversed_ids: set[tuple[str, int]], seed: int) -> pd.DataFrame:
    """Scores that rank every anomaly above every normal clip (AUC 1), or below it for ``reversed_ids`` (AUC 0):
    each ID's AUC, pAUC and hence every DCASE average is the same under any redraw of the clips."""
    flip = np.array([(t, i) in reversed_ids for t, i in zip(clips.machine_type, clips.machine_id)])
    anomalous = (clips.label == "anomaly").to_numpy()
    jitter = np.random.default_rng(seed).uniform(0, 0.5, len(clips))
    return clips.assign(score=(anomalous != flip) + jitter)


def test_known_answer_zero_clip_noise_the_interval_is_the_seed_spread():
    """Without clip noise the clip-only interval is the point; with two seeds of A at known averages a1 > a2 and
    one seed of B, the redrawn seed means are a1, (a1 + a2)/2 or a2 (probabilities ¼, ½, ¼), so the 95 %
    interval is exactly [a2 − b, a1 − b]."""
    clips = _clips(0)
    a = [_ranked(clips, set(), 1), _ranked(clips, {("fan", 0)}, 2)]  # fan 1.0 / 0.5, valve 1.0
    b = [_ranked(clips, {("valve", 4)}, 3)]  # fan 1.0, valve 0.0
    table = hierarchical_bootstrap({"A": a, "B": b}, [("A", "B")], n_boot=2000).set_index("metric")
    for metric in ("auc", "pauc", "mauc"):
        value_a, value_b = [_average(t)[metric] for t in a], _average(b[0])[metric]
        row = table.loc[metric]
        assert row.per_seed_a == pytest.approx(value_a, abs=1e-12) and row.per_seed_b == pytest.approx([value_b])
        assert row.estimate == pytest.approx(np.mean(value_a) - value_b, abs=1e-12)
        assert [row.low, row.high] == pytest.approx([row.estimate] * 2, abs=1e-12)
        assert [row.seed_low, row.seed_high] == pytest.approx([min(value_a) - value_b, max(value_a) - value_b],
                                                              abs=1e-12)
        assert row.seed_sd_a == pytest.approx(np.std(value_a, ddof=1)) and np.isnan(row.seed_sd_b)
        assert not row.seed_aware and (row.seeds_a, row.seeds_b) == (2, 1)
    assert table.loc["auc", "seed_low"] == pytest.approx(0.25) and table.loc["auc", "seed_high"] == pytest.approx(0.5)


def test_known_answer_contrast_of_two_differences():
    """(A − B) − (C − D) without clip noise: A has two seeds at known averages a1 > a2, B, C and D one seed each,
    so the contrast's replicates are a1, (a1 + a2)/2 or a2 minus b − (c − d): the interval over seeds and clips is
    exactly [a2 − b − (c − d), a1 − b − (c − d)] and the clip-only one the point. Computed in two calls on the
    same clips, as the replication study does per factor."""
    clips = _clips(0)
    a = [_ranked(clips, set(), 1), _ranked(clips, {("fan", 0)}, 2)]  # AUC averages 1.0, 0.75
    b = [_ranked(clips, {("valve", 4)}, 3)]  # 0.5
    c, d = [_ranked(clips, {("fan", 2)}, 4)], [_ranked(clips, {("fan", 0), ("fan", 2)}, 5)]  # 0.75, 0.5
    first = hierarchical_replicates({"A": a, "B": b}, [("A", "B")], n_boot=2000)
    second = hierarchical_replicates({"C": c, "D": d}, [("C", "D")], n_boot=2000)
    for metric in ("auc", "pauc", "mauc"):
        value_a = [_average(t)[metric] for t in a]
        value_b, value_c, value_d = (_average(t[0])[metric] for t in (b, c, d))
        out = contrast_interval(first["A", "B", metric], second["C", "D", metric])
        offset = value_b + value_c - value_d
        assert out["estimate"] == pytest.approx(np.mean(value_a) - offset, abs=1e-12)
        assert [out["low"], out["high"]] == pytest.approx([out["estimate"]] * 2, abs=1e-12)
        assert [out["seed_low"], out["seed_high"]] == pytest.approx([min(value_a) - offset, max(value_a) - offset],
                                                                    abs=1e-12)
    auc = contrast_interval(first["A", "B", "auc"], second["C", "D", "auc"])
    assert (auc["seed_low"], auc["seed_high"]) == pytest.approx((0.75 - 0.5 - 0.25, 1.0 - 0.5 - 0.25))


def test_a_difference_contrasted_with_itself_is_zero_and_replicates_give_the_table():
    runs = _experiment(np.random.default_rng(2), {"A": 1.5, "B": 1.0}, seeds=3, tau=0.6)
    replicates = hierarchical_replicates(runs, [("A", "B")], n_boot=200)
    same = contrast_interval(replicates["A", "B", "auc"], replicates["A", "B", "auc"])
    assert same == {"estimate": 0.0, "low": 0.0, "high": 0.0, "seed_low": 0.0, "seed_high": 0.0}
    pd.testing.assert_frame_equal(replicate_table(replicates), hierarchical_bootstrap(runs, [("A", "B")], n_boot=200))
    # the clip draws depend only on the clips and the seed: a second call on the same clips pairs with the first
    again = hierarchical_replicates({"C": runs["A"], "D": runs["B"]}, [("C", "D")], n_boot=200)
    assert np.array_equal(again["C", "D", "auc"]["clips"], replicates["A", "B", "auc"]["clips"])
    assert not np.array_equal(again["C", "D", "auc"]["seeds_and_clips"], replicates["A", "B", "auc"]["seeds_and_clips"])
    with pytest.raises(ValueError, match="one n_boot"):
        contrast_interval(replicates["A", "B", "auc"], hierarchical_replicates(runs, [("A", "B")], n_boot=50)["A", "B", "auc"])


def test_identical_seeds_and_single_seeds_give_the_clip_only_interval():
    clips, other = _clips(0), _clips(1)
    same = hierarchical_bootstrap({"A": [clips] * 3, "B": [other] * 2}, [("A", "B")], n_boot=300)
    assert np.array_equal(same[["low", "high"]].to_numpy(), same[["seed_low", "seed_high"]].to_numpy())
    assert (same.seed_sd_a == 0.0).all() and same.seed_aware.all()  # three equal seeds: a measured sd of 0
    single = hierarchical_bootstrap({"A": [clips], "B": [other]}, [("A", "B")], n_boot=300)
    assert np.array_equal(single[["low", "high"]].to_numpy(), single[["seed_low", "seed_high"]].to_numpy())
    assert single.seed_sd_a.isna().all() and single.seed_sd_b.isna().all() and not single.seed_aware.any()
    paired = paired_bootstrap({"A": [clips], "B": [other]}, [("A", "B")], n_boot=300)
    pd.testing.assert_frame_equal(paired, single[list(paired.columns)])


def _experiment(rng: np.random.Generator, shift: dict[str, float], *, seeds: int, tau: float) -> dict:
    """One simulated study: per run, ``seeds`` trainings whose anomaly shift varies by N(0, tau²) around
    ``shift[run]``; every clip has a difficulty shared by all trainings plus N(0, 0.5²) per training."""
    clips = _clips(0, n_normal=25, n_anomaly=25)
    clips = clips[clips.machine_type == "fan"].reset_index(drop=True)
    anomalous, difficulty = (clips.label == "anomaly").to_numpy(), rng.normal(0, 1, len(clips))
    return {run: [clips.assign(score=difficulty + rng.normal(0, 0.5, len(clips))
                               + anomalous * (d + rng.normal(0, tau))) for _ in range(seeds)]
            for run, d in shift.items()}


def test_coverage_of_a_simulated_seed_effect():
    """Score difference anomaly − normal ~ N(d + u, 2.5) with a seed effect u ~ N(0, τ²): a seed's AUC is
    Φ((d + u)/√2.5) and its mean over seeds Φ(d/√(2.5 + τ²)). Where seeds vary more than the test clips do, the
    clip-only interval misses that true difference most of the time; the seed-and-clip one covers it about as
    often as its level says (a percentile bootstrap of 6 seeds runs a little narrow)."""
    from scipy.stats import norm

    rng, tau, shift = np.random.default_rng(0), 0.6, {"A": 1.5, "B": 1.0}
    truth = norm.cdf(shift["A"] / np.sqrt(2.5 + tau**2)) - norm.cdf(shift["B"] / np.sqrt(2.5 + tau**2))
    hits = np.zeros(2)
    for k in range(60):
        table = hierarchical_bootstrap(_experiment(rng, shift, seeds=6, tau=tau), [("A", "B")], n_boot=300, seed=k)
        row = table.set_index("metric").loc["auc"]
        hits += [row.low <= truth <= row.high, row.seed_low <= truth <= row.seed_high]
    clip_only, seed_aware = hits / 60
    assert seed_aware >= 0.8, f"seed-and-clip interval covers the truth in {seed_aware:.0%} of the experiments"
    assert clip_only <= seed_aware - 0.25, f"clip-only {clip_only:.0%} vs seed-and-clip {seed_aware:.0%}"


def test_a_pairs_interval_does_not_depend_on_the_other_runs_beside_it():
    """Notebook 04 compares four losses in one table and the replication study two: the same pair, the same
    replicates, must give the same interval to the digit, whichever runs sit beside it and in whatever order."""
    runs = _experiment(np.random.default_rng(1), {"A": 1.5, "B": 1.0, "C": 0.5}, seeds=3, tau=0.6)
    columns = ["estimate", "low", "high", "seed_low", "seed_high"]
    alone = hierarchical_bootstrap({"A": runs["A"], "B": runs["B"]}, [("A", "B")], n_boot=300)
    beside = hierarchical_bootstrap({"C": runs["C"], "B": runs["B"], "A": runs["A"]},
                                    [("A", "C"), ("A", "B")], n_boot=300)
    beside = beside[beside.comparison == "A − B"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone[columns], beside[columns])
    assert (alone.seed_high > alone.high).any()  # the seed draws matter here, so the check above can fail


def test_empty_run_is_refused_with_its_name():
    with pytest.raises(ValueError, match=r"\['B'\] have no score tables"):
        hierarchical_bootstrap({"A": [_clips(0)], "B": []}, [("A", "B")], n_boot=5)

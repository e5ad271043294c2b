"""The paper's other half, per run: compactness and standardised separation of the angles per machine ID, AUC per
anomaly kind (the generator's clips.csv), and the overfitting diagnostics (history; training vs held-out angles)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from asdlib.data.machines import ANOMALIES
from asdlib.evaluation.angles import (angle_compactness, angle_separation, iqr, robust_spread,
                                      standardised_separation)
from asdlib.evaluation.kinds import auc_per_kind, kind_table, read_clips
from asdlib.evaluation.overfitting import angle_shift, history_gaps, overfitting_summary
from asdlib.teaching.pretrained import load_history, load_scores


def _angles(rng, ids: dict[tuple[str, int], tuple[float, float, float]], n: int = 40) -> pd.DataFrame:
    """Test clips per ID with normal angles N(mu, sd²) and anomalous ones N(mu + shift, sd²)."""
    rows = []
    for (machine_type, machine_id), (mu, sd, shift) in ids.items():
        for label, centre in (("normal", mu), ("anomaly", mu + shift)):
            rows += [{"file": f"{machine_type}/test/{label}_id_{machine_id:02d}_{k:08d}.wav",
                      "machine_type": machine_type, "machine_id": machine_id, "label": label, "angle": a}
                     for k, a in enumerate(rng.normal(centre, sd, n))]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ compactness, separation
def test_robust_spread_and_separation_are_sd_and_cohens_d_for_normal_angles():
    rng = np.random.default_rng(0)
    normal, anomaly = rng.normal(30, 4, 100_000), rng.normal(32, 4, 100_000)
    assert robust_spread(normal) == pytest.approx(4, rel=0.01)
    cohen = (anomaly.mean() - normal.mean()) / np.sqrt((normal.var(ddof=1) + anomaly.var(ddof=1)) / 2)
    assert standardised_separation(normal, anomaly) == pytest.approx(cohen, abs=0.02)
    assert standardised_separation(normal, anomaly) == pytest.approx(0.5, abs=0.02)


def test_separation_is_affine_invariant_and_robust_to_a_few_far_clips():
    rng = np.random.default_rng(1)
    normal, anomaly = rng.normal(30, 4, 200), rng.normal(36, 5, 200)
    d = standardised_separation(normal, anomaly)
    assert standardised_separation(3 * normal + 7, 3 * anomaly + 7) == pytest.approx(d, rel=1e-12)
    far = np.r_[anomaly[:-4], [170.0, 175.0, 178.0, 179.0]]  # four clips thrown to the far side of the sphere
    cohen = (far.mean() - normal.mean()) / np.sqrt((normal.var(ddof=1) + far.var(ddof=1)) / 2)
    assert abs(standardised_separation(normal, far) - d) < 0.1 < abs(cohen - d)


def test_compactness_and_separation_per_id_equal_the_numbers_by_hand():
    ids = {("fan", 0): (30.0, 3.0, 8.0), ("fan", 2): (35.0, 6.0, 4.0), ("valve", 4): (25.0, 2.0, 0.0)}
    scores = _angles(np.random.default_rng(2), ids)
    compact, separation = angle_compactness(scores), angle_separation(scores)
    assert list(zip(compact.machine_type, compact.machine_id)) == sorted(ids)
    for row, sep in zip(compact.itertuples(), separation.itertuples()):
        group = scores[(scores.machine_type == row.machine_type) & (scores.machine_id == row.machine_id)]
        normal, anomaly = group[group.label == "normal"].angle, group[group.label == "anomaly"].angle
        q25, q75 = np.percentile(normal, [25, 75])
        assert (row.n_normal, row.median, row.iqr, row.sd) == pytest.approx(
            (40, np.median(normal), q75 - q25, np.std(normal, ddof=1)))
        n, m = len(normal), len(anomaly)
        pooled = np.sqrt(((n - 1) * (iqr(normal) / 1.349) ** 2 + (m - 1) * (iqr(anomaly) / 1.349) ** 2) / (n + m - 2))
        assert sep.gap == pytest.approx(np.median(anomaly) - np.median(normal))
        assert sep.separation == pytest.approx(sep.gap / pooled)
    by_id = separation.set_index("machine_id").separation
    assert by_id[0] > 2 and by_id[2] < by_id[0] and abs(by_id[4]) < 0.6  # shifts of 8/3, 4/6 and 0 sd


def test_compactness_ignores_anomalies_and_refuses_an_id_without_normal_clips():
    scores = _angles(np.random.default_rng(3), {("fan", 0): (30.0, 3.0, 8.0)})
    moved = scores.assign(angle=np.where(scores.label == "anomaly", 170.0, scores.angle))
    pd.testing.assert_frame_equal(angle_compactness(scores), angle_compactness(moved))
    with pytest.raises(ValueError, match="fan id_00: 0 normal clip"):
        angle_compactness(scores[scores.label == "anomaly"])
    with pytest.raises(ValueError, match="fan id_00: 40 normal and 0 anomalous"):
        angle_separation(scores[scores.label == "normal"])


def test_shipped_run_compactness_is_per_test_id():
    scores = load_scores("tastgram_mfn-arcface-s0")
    compact = angle_compactness(scores)
    assert len(compact) == scores.groupby(["machine_type", "machine_id"]).ngroups == 11
    assert (compact.iqr > 0).all() and (compact.n_normal == 50).all()


# ------------------------------------------------------------------------------------ anomaly kinds
@pytest.fixture(scope="module")
def fan_test_set(tmp_path_factory):
    """A real generated test set: fan, 4 development IDs, 4 normal + 12 anomalous 2-s clips each, no training."""
    from asdlib.data.synth import generate_dataset

    out = tmp_path_factory.mktemp("kinds") / "data"
    generate_dataset(out, size="smoke", machine_types=("fan",), n_train=0, n_test=(4, 12), progress=False)
    return out


def test_clips_csv_holds_a_known_kind_for_every_anomalous_clip(fan_test_set):
    clips = read_clips(fan_test_set)
    anomalous = clips[clips.label == "anomaly"]
    assert len(anomalous) == 48 and set(anomalous.kind) <= set(ANOMALIES["fan"])
    assert (clips[clips.label == "normal"].kind == "").all()
    with pytest.raises(FileNotFoundError, match="python -m asdlib synth"):
        read_clips(fan_test_set / "fan")


def test_auc_per_kind_ranks_each_kind_against_all_normal_clips_of_its_id(fan_test_set):
    clips = read_clips(fan_test_set)
    test = clips[clips.split == "test"].reset_index(drop=True)
    detected = sorted(set(test.kind) - {""})[0]  # this kind scores high, every other one at random
    rng = np.random.default_rng(4)
    scores = test.assign(score=np.where(test.kind == detected, 5.0, 0.0) + rng.normal(0, 1, len(test)))
    per_kind = auc_per_kind(scores, clips)
    for row in per_kind.itertuples():
        group = scores[(scores.machine_id == row.machine_id) & scores.kind.isin(["", row.kind])]
        assert row.n_normal == 4 and row.n_anomaly == (group.kind == row.kind).sum()
        assert row.auc == pytest.approx(roc_auc_score(group.label == "anomaly", group.score))
    assert (per_kind[per_kind.kind == detected].auc == 1.0).all()
    summary = kind_table(per_kind).set_index("kind")
    assert summary.loc[detected, "auc"] == 1.0 and summary.n_anomaly.sum() == 48
    assert summary.loc[detected, "ids"] == (per_kind.kind == detected).sum()
    for kind, rows in per_kind.groupby("kind"):
        assert summary.loc[kind, "auc"] == pytest.approx(rows.auc.mean())
        assert summary.loc[kind, "min_auc"] == rows.auc.min()


def test_auc_per_kind_refuses_scores_of_another_dataset(fan_test_set):
    clips = read_clips(fan_test_set)
    scores = clips[clips.split == "test"].assign(score=0.0)
    scores.loc[scores.label == "anomaly", "file"] = "fan/test/anomaly_id_00_99999999.wav"
    with pytest.raises(KeyError, match="not in clips.csv"):
        auc_per_kind(scores, clips)


# ------------------------------------------------------------------------------------ overfitting
def _history(test_auc, val_loss, val_acc=None) -> pd.DataFrame:
    n = len(test_auc)
    return pd.DataFrame({"epoch": np.arange(1, n + 1), "loss": np.linspace(5, 0.1, n), "acc": np.linspace(0.5, 1, n),
                         "val_loss": val_loss, "val_acc": np.linspace(0.8, 1, n) if val_acc is None else val_acc,
                         "test_auc": test_auc})


def test_detection_falling_while_the_classifier_improves_is_called_overfitting():
    rise_fall = np.r_[np.linspace(0.70, 0.90, 10), np.linspace(0.90, 0.80, 10)]
    falling = np.linspace(3.0, 0.5, 20)
    summary = overfitting_summary(_history(rise_fall, falling))
    assert summary["overfits"] and summary["auc_peak_epoch"] in (10, 11)
    assert summary["auc_end"] == pytest.approx(rise_fall[-3:].mean())
    assert summary["auc_drop"] == pytest.approx(summary["auc_peak"] - summary["auc_end"]) and summary["auc_drop"] > 0.05
    assert summary["val_acc_saturated_at"] == 20 and summary["epochs"] == 20
    plateau = overfitting_summary(_history(np.r_[np.linspace(0.7, 0.9, 10), np.full(10, 0.9)], falling))
    assert not plateau["overfits"] and plateau["auc_drop"] == pytest.approx(0.0, abs=1e-12)
    rising_loss = overfitting_summary(_history(rise_fall, falling[::-1], val_acc=np.full(20, 0.9)))
    assert not rising_loss["overfits"] and rising_loss["val_acc_saturated_at"] is None  # both get worse


def test_history_gaps_of_a_shipped_run():
    history = load_history("tastgram_mfn-arcface-s0")
    gaps = history_gaps(history)
    assert np.allclose(gaps.loss_gap, history.val_loss - history.loss)
    assert np.allclose(gaps.acc_gap, history.acc - history.val_acc) and len(gaps) == len(history)


def test_angle_shift_per_id_and_split():
    rows = [{"machine_type": "fan", "machine_id": i, "split": split, "angle": base + i + k}
            for i in (0, 2) for split, base in (("train", 20.0), ("val", 25.0), ("test", 30.0)) for k in (-1, 0, 1)]
    table = angle_shift(pd.DataFrame(rows)).set_index("machine_id")
    assert table.loc[2, "median_train"] == 22.0 and table.loc[0, "median_test"] == 30.0
    assert (table.val_minus_train == 5.0).all() and (table.test_minus_train == 10.0).all()
    with pytest.raises(ValueError, match="no clips of split 'train'"):
        angle_shift(pd.DataFrame(rows).query("split != 'train'"))

"""Evaluation figures agree with asdlib.evaluation.metrics: AUC/pAUC in the legends, points at the table values."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

from asdlib.evaluation.metrics import auc_pauc, per_id_table, published_results, summary_table  # noqa: E402
from asdlib.teaching.plots import evaluation as ev  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    """A score table like a run's scores.csv: 2 types, anomalies score higher by an ID-dependent amount."""
    rng = np.random.default_rng(0)
    rows = []
    for machine_type, ids in (("fan", (0, 2, 4)), ("valve", (0, 6))):
        for machine_id in ids:
            for label in ("normal", "anomaly"):
                shift = (1.0 + machine_id / 4) * (label == "anomaly")
                rows += [{"machine_type": machine_type, "machine_id": machine_id, "label": label,
                          "score": rng.normal(shift), "margin_free": rng.normal()} for _ in range(12)]
    return pd.DataFrame(rows)


def _span_width(ax) -> float:
    spans = [p for p in ax.patches if isinstance(p, (Polygon, Rectangle)) and "pAUC region" in p.get_label()]
    assert len(spans) == 1
    return float(np.ptp(spans[0].get_xy()[:, 0])) if isinstance(spans[0], Polygon) else spans[0].get_width()


def test_roc_curves_one_line_per_id_with_metrics_in_legend(scores):
    ax = ev.roc_curves(scores, machine_type="fan", max_fpr=0.1)
    labels = [line.get_label() for line in ax.get_lines()]
    assert len(labels) == 4 and labels[-1] == "chance"
    group = scores[(scores.machine_type == "fan") & (scores.machine_id == 2)]
    auc, pauc = auc_pauc(group.label, group.score)
    assert labels[1] == f"id_02: AUC {100 * auc:.1f}, pAUC {100 * pauc:.1f}"
    assert _span_width(ax) == pytest.approx(0.1)
    curve = ax.get_lines()[0].get_xydata()
    assert curve[0].tolist() == [0.0, 0.0] and curve[-1].tolist() == [1.0, 1.0]


def test_roc_grid_and_distributions_one_panel_per_type(scores):
    fig = ev.roc_grid(scores, score="margin_free", max_fpr=0.2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["fan", "valve"]
    assert _span_width(visible[0]) == pytest.approx(0.2)
    fig = ev.score_distributions(scores, machine_types=["valve"])
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["normal (n=24)", "anomaly (n=24)"]
    with pytest.raises(ValueError, match="none of the machine types"):
        ev.roc_grid(scores, machine_types=["pump"])


def test_score_strips_place_every_clip(scores):
    ax = ev.score_strips(scores, machine_type="fan")
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == int((scores.machine_type == "fan").sum())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["id_00", "id_02", "id_04"]


def test_published_comparison_points_at_table_values(scores):
    published = published_results()
    ours = summary_table(per_id_table(scores))
    ax = ev.published_comparison({"ours": ours}, {"STgram-MFN (DCASE2020)": published["STgram-MFN"]})
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["fan", "pump", "slider", "valve", "ToyCar", "ToyConveyor", "Average"]
    ours_y = ax.collections[0].get_offsets()[:, 1]
    expected = ours.set_index("machine_type")["auc"].reindex(ticks).to_numpy() * 100
    np.testing.assert_allclose(np.ma.filled(ours_y, np.nan), expected)
    np.testing.assert_allclose(ax.collections[1].get_offsets()[:, 1], published["STgram-MFN"]["auc"] * 100)


def test_threshold_plot_reports_rates(scores):
    normal, anomaly = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.5, 4.0, 5.0, 6.0])
    ax = ev.threshold_plot(2.5, calibration=[0.5, 1.0, 1.5], normal=normal, anomaly=anomaly,
                           gamma=(2.0, 0.0, 0.5))
    assert ax.get_title().endswith("false alarms 25 % of 4, anomalies caught 75 % of 4")
    assert any(line.get_label().startswith("gamma fit, shape a = 2") for line in ax.get_lines())


def test_threshold_plot_caps_a_runaway_gamma_density():
    calibration = np.random.default_rng(0).gamma(0.5, 1.0, 40) + 1.0  # shape < 1: the density has no maximum
    a, loc, scale = scipy.stats.gamma.fit(calibration)
    ax = ev.threshold_plot(3.0, calibration=calibration, gamma=(a, loc, scale), logx=False)
    top = max(patch.get_height() for patch in ax.patches)
    assert ax.get_ylim()[1] == pytest.approx(1.3 * top)  # the histograms stay visible
    assert any("(clipped)" in line.get_label() for line in ax.get_lines())
    logged = ev.threshold_plot(3.0, calibration=calibration, gamma=(a, loc, scale), logx=True)
    assert logged.get_xscale() == "log"  # there the fit is drawn as its share of clips per bin, like the bars
    assert any(label.startswith("gamma fit") for label in logged.get_legend_handles_labels()[1])


def test_gamma_fit_check_marks_both_thresholds():
    calibration = np.random.default_rng(0).gamma(3.0, 1.0, 50)
    ax = ev.gamma_fit_check(calibration, scipy.stats.gamma.fit(calibration), quantile=0.95)
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(label.startswith("0.95 quantile of the scores") for label in labels)
    assert any(label.startswith("0.95 quantile of the fit") for label in labels)


HISTORY = pd.DataFrame({"epoch": [1, 2, 3, 4], "val_loss": [3.0, 2.0, 2.5, 2.6],
                        "test_auc": [0.6, 0.7, 0.9, np.nan], "test_pauc": [0.5, 0.6, 0.7, np.nan]})


def test_selected_epochs_and_figure():
    assert ev.selected_epochs(HISTORY) == {"honest": 2, "peeking": 3}
    ax = ev.checkpoint_selection(HISTORY)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "honest: epoch 2, test AUC 70.0" in labels and "peeking: epoch 3, test AUC 90.0" in labels
    with pytest.raises(KeyError, match="track_test=True"):
        ev.selected_epochs(HISTORY.drop(columns="test_auc"))


def test_crowded_scores_get_a_log_axis():
    rng = np.random.default_rng(0)
    crowded = np.concatenate([rng.gamma(1.0, 0.01, 900), rng.gamma(1.0, 5.0, 100)])  # most clips near 0
    spread = rng.normal(10.0, 1.0, 1000)
    assert ev.wants_log_axis(crowded) and not ev.wants_log_axis(spread)
    assert not ev.wants_log_axis(-crowded)  # a log axis needs positive scores
    ax = ev.score_histogram(crowded[:500], crowded[500:])
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    assert ev.score_histogram(spread[:500], spread[500:]).get_xscale() == "linear"
    plt.close("all")


def test_threshold_plot_on_a_log_axis_shows_every_clip_above_the_threshold():
    rng = np.random.default_rng(1)
    normal, anomaly = rng.gamma(0.5, 0.02, 300), rng.gamma(2.0, 5.0, 200)  # anomalies spread far to the right
    ax = ev.threshold_plot(2.5, calibration=normal[:80], normal=normal, anomaly=anomaly,
                           gamma=scipy.stats.gamma.fit(normal[:80]))
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "share of clips per bin"
    orange = matplotlib.colors.to_rgb(ev.LABEL_COLORS["anomaly"])
    bars = [r for r in ax.patches if isinstance(r, Rectangle) and r.get_alpha() == 0.5
            and np.allclose(r.get_facecolor()[:3], orange, atol=1e-3)]  # the bars, not the shaded flagged region
    assert sum(r.get_height() for r in bars) == pytest.approx(1.0)  # every anomalous clip is drawn
    beyond = sum(r.get_height() for r in bars if r.get_x() >= 2.5)  # whole bins right of the threshold
    assert 0.8 * np.mean(anomaly > 2.5) < beyond <= np.mean(anomaly > 2.5) + 1e-9
    plt.close("all")

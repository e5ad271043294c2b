"""Figures of the loss comparison (notebook 04): the mixup-and-margin toy, differences between runs with their
bootstrap intervals, the angle gap over training, angle gap against detection, and the replication study's
long schedules and factor effects (:mod:`asdlib.teaching.study`).

Every function takes data (DataFrames from :mod:`asdlib.evaluation.metrics`, :mod:`asdlib.teaching.toy` or a run's ``history.csv``)
and an optional ``ax``, and returns the matplotlib Axes or Figure.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from asdlib.teaching.plots import LABEL_COLORS, LOSS_COLORS
from asdlib.teaching.replication import METRIC_NAMES, deciding_interval
from asdlib.teaching.study import REFERENCE, changes_from_reference
from asdlib.teaching.toy import TOY_LOSSES, mixed_clip_losses, optimal_angles

TOY_COLORS = {k: LOSS_COLORS[k] for k in ("mixup CE", "ArcMix", "Noisy-ArcMix")}


def plot_mixup_toy(lam: float, *, delta_deg: float = 90.0, m: float = 0.7, s: float = 30.0) -> Figure:
    """Left: each loss of a mixed clip (weight λ on class a) against its embedding's angle φ, minimum marked.
    Right: the minimising angle φ* against λ for every loss (:func:`asdlib.teaching.toy.optimal_angles`)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    phi = np.linspace(-30, delta_deg + 30, 1201)
    for name, values in mixed_clip_losses(lam, phi, delta_deg=delta_deg, m=m, s=s).items():
        left.plot(phi, values, color=TOY_COLORS[name], label=name)
        best = np.argmin(np.where((phi >= 0) & (phi <= delta_deg), values, np.inf))
        left.plot(phi[best], values[best], "o", color=TOY_COLORS[name])
    for x, text in ((0, "centre a"), (delta_deg, "centre b")):
        left.axvline(x, color="0.4", ls=":")
        left.text(x + 1.5, 0.97, text, transform=left.get_xaxis_transform(), ha="left", va="top", fontsize=8)
    left.set(xlabel="angle φ of the mixed clip's embedding from centre a (°)", ylabel="loss",
             title=f"one mixed clip, λ = {lam:.2f} (dots: the minimum between the centres)")
    left.legend(fontsize=8)
    table = optimal_angles(np.linspace(0.02, 0.98, 49), delta_deg=delta_deg, m=m, s=s)
    for name in TOY_LOSSES:
        rows = table[table.loss == name]
        right.plot(rows.lam, rows.phi, color=TOY_COLORS[name], label=name)
    right.axhline(delta_deg / 2, color="0.6", ls="--", lw=0.8)
    right.set(xlabel="λ (weight of class a in the mix)", ylabel="φ* (°)", ylim=(0, delta_deg),
              title="where each loss puts the mixed clip")
    right.legend(fontsize=8)
    return fig


def plot_differences(table: pd.DataFrame, *, ax: Axes | None = None, filled: Sequence[bool] | None = None,
                     filled_key: str = "dot filled: the interval excludes 0; dot hollow: it contains 0") -> Axes:
    """Forest plot of bootstrap differences (percentage points). Thin black line: the interval over test clips
    (:func:`asdlib.evaluation.bootstrap.paired_bootstrap`); thick grey line, where the table has one
    (``seed_low``/``seed_high`` of ``hierarchical_bootstrap``): over seeds and clips. Marker filled: the interval
    the verdict rests on (:func:`asdlib.teaching.replication.deciding_interval`) excludes 0; hollow: it contains 0; square: a run with one
    seed, whose seed-to-seed spread is unknown, so no verdict. ``filled`` (one bool per row) and ``filled_key``
    replace that rule where another one decides (the replication study: whether a factor moves the difference)."""
    rows = table.reset_index(drop=True)
    if ax is None:
        ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.6))[1]
    y = np.arange(len(rows))[::-1]
    seeds = "seed_low" in rows.columns
    for k, (yi, row) in enumerate(zip(y, rows.itertuples())):
        low, high = deciding_interval(row)
        sure = (low > 0 or high < 0) if filled is None else bool(filled[k])
        if seeds and row.seed_aware:
            ax.plot([100 * row.seed_low, 100 * row.seed_high], [yi, yi], color="0.7", lw=5, solid_capstyle="butt")
        ax.plot([100 * row.low, 100 * row.high], [yi, yi], color="k", lw=1.5)
        marker = "o" if (not seeds or row.seed_aware) else "s"
        ax.plot(100 * row.estimate, yi, marker, color="k", mfc="k" if sure and marker == "o" else "w")
    ax.axvline(0, color="0.5", ls=":")
    ax.set_yticks(y, [f"{r.comparison}: {METRIC_NAMES.get(r.metric, r.metric)}"
                      for r in rows.itertuples()], fontsize=8)
    grey = seeds and bool(rows.seed_aware.astype(bool).any())  # a grey bar is drawn
    what = "black: 95 % interval over test clips" + ("; grey: over seeds and clips" if grey else "")
    single = seeds and not rows.seed_aware.astype(bool).all()  # some rows are drawn as squares
    dots = not seeds or bool(rows.seed_aware.astype(bool).any())
    keys = ([filled_key] if dots else []) + (
        ["square: one seed, no verdict either way"] if single else [])
    ax.set(xlabel=f"difference (percentage points); {what}",
           title=("\n" if sum(map(len, keys)) > 80 else "; ").join(keys))  # long keys: one line each
    return ax


def plot_angle_gap_history(histories: Mapping[str, Sequence[pd.DataFrame]], *, axes=None) -> Figure:
    """Median angle of normal and anomalous test clips to their class centre per epoch (left) and the gap
    between them (right), one colour per run, one line per seed (``history.csv`` columns angle_*)."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(12, 3.6), layout="constrained")[1]
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, runs) in enumerate(histories.items()):
        color = LOSS_COLORS.get(name, cycle[k % len(cycle)])
        for k, h in enumerate(runs):
            label = name if k == 0 else None
            axes[0].plot(h.epoch, h.angle_normal, color=color, label=label, lw=1.2)
            axes[0].plot(h.epoch, h.angle_anomaly, color=color, ls="--", lw=1.2)
            axes[1].plot(h.epoch, h.angle_anomaly - h.angle_normal, color=color, label=label, lw=1.2)
    axes[0].set(xlabel="epoch", ylabel="median angle θ_y (°)", title="median angle to the class centre; colours as on the right")
    axes[0].legend(handles=[Line2D([], [], color="0.3", lw=1.2, label="normal clips"),
                            Line2D([], [], color="0.3", ls="--", lw=1.2, label="anomalous clips")], fontsize=8)
    axes[1].set(xlabel="epoch", ylabel="anomalous − normal (°)", title="the angle gap")
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5), title="one line per seed", title_fontsize=8)
    return axes[0].figure


def plot_gap_vs_auc(points: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Each run (one dot per seed): its angle gap (median anomalous − normal, °) against its average AUC."""
    if ax is None:
        ax = plt.subplots(figsize=(6, 4))[1]
    for name, group in points.groupby("run", sort=False):
        ax.scatter(group.gap, 100 * group.auc, s=40, label=name, color=LOSS_COLORS.get(name))
    ax.set(xlabel="angle gap: median anomalous − normal (°)", ylabel="average AUC (%)")
    ax.legend(fontsize=8)
    return ax


def peeking_gain(history: pd.DataFrame) -> pd.Series:
    """For each epoch budget k: test AUC + pAUC of the epoch with the best test AUC + pAUC among the first k
    minus that of the epoch with the lowest validation loss among the first k (``history.csv`` columns)."""
    value = (history.test_auc + history.test_pauc).to_numpy()
    val_loss = history.val_loss.to_numpy()
    gains = [value[:k].max() - value[int(np.argmin(val_loss[:k]))] for k in range(1, len(history) + 1)]
    return pd.Series(gains, index=pd.Index(np.arange(1, len(history) + 1), name="epochs"))


def plot_peeking_gain(histories: Mapping[str, pd.DataFrame], *, ax: Axes | None = None) -> Axes:
    """The optimism of test-set selection against the number of epochs peeked at: one thin line per run,
    their mean in black (percentage points of AUC + pAUC)."""
    if ax is None:
        ax = plt.subplots(figsize=(7, 3.6))[1]
    curves = pd.DataFrame({name: 100 * peeking_gain(h) for name, h in histories.items()})
    ax.plot(curves.index, curves.to_numpy(), color="0.7", lw=0.8)
    ax.plot(curves.index, curves.mean(axis=1), color="k", lw=2, label=f"mean over {curves.shape[1]} runs")
    ax.set(xlabel="epochs whose checkpoints are compared", ylabel="peeking − honest (AUC + pAUC, points)",
           title="how much test-set selection flatters the result")
    ax.legend(fontsize=8)
    return ax


def _seed_mean(runs: Sequence[pd.DataFrame], column: str) -> pd.Series:
    """Mean of ``column`` over the seeds' histories, per epoch (epochs a seed lacks are left out of its mean)."""
    return pd.concat([h.set_index("epoch")[column] for h in runs], axis=1).mean(axis=1).dropna()


def _mark_peak(ax: Axes, curve: pd.Series, color: str, k: int) -> None:
    """Dot and label the epoch where ``curve`` (test AUC in %, by epoch) peaks; the label sits inside the axes."""
    epoch, value = curve.idxmax(), curve.max()
    ax.scatter([epoch], [value], s=36, color=color, zorder=3)
    ax.axvline(epoch, color=color, ls=":", lw=1)
    right = epoch > (curve.index.min() + curve.index.max()) / 2
    ax.annotate(f"peak {value:.1f} % (epoch {epoch})", (epoch, 0.04 + 0.08 * k), xycoords=ax.get_xaxis_transform(),
                xytext=(-4 if right else 4, 0), textcoords="offset points", ha="right" if right else "left",
                fontsize=8, color=color, bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1.0})  # over the lines


MIXUP_LABELS = ("ArcMix", "Noisy-ArcMix")  # losses that train on mixed clips


def plot_long_runs(histories: Mapping[str, Sequence[pd.DataFrame]], *, window: int = 3, axes=None) -> Figure:
    """A long schedule per loss (``{"ArcFace": [history of each seed], ...}``, ``history.csv`` frames). Left: test
    AUC per epoch, thin: each seed as recorded; thick: the seeds' mean smoothed by a centred moving mean over
    ``window`` epochs (as :func:`asdlib.evaluation.overfitting.overfitting_summary` reads it), its peak marked
    (dot, dotted line, label; information only: selection never sees the test set), and each seed's kept
    checkpoint (triangle: lowest validation loss). Right: the seeds' mean
    machine-ID accuracy, clean held-out clips (``val_acc``, solid) and training clips as trained (``acc``,
    dashed; mixed clips for a mixup loss)."""
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")[1]
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, runs) in enumerate(histories.items()):
        color = LOSS_COLORS.get(name, cycle[k % len(cycle)])
        for h in runs:
            axes[0].plot(h.epoch, 100 * h.test_auc, color=color, lw=0.8, alpha=0.6)
        smooth = 100 * _seed_mean(runs, "test_auc").rolling(window, center=True, min_periods=1).mean()
        seeds = "one seed" if len(runs) == 1 else f"mean of {len(runs)} seeds"
        axes[0].plot(smooth.index, smooth, color=color, lw=2.2, label=f"{name} ({seeds}, smoothed)")
        _mark_peak(axes[0], smooth, color, k)
        kept = [h.loc[h.val_loss.idxmin()] for h in runs]  # the checkpoint the selection keeps, per seed
        axes[0].plot([r.epoch for r in kept], [100 * r.test_auc for r in kept], "v", color=color, ms=9, mec="k",
                     label=f"{name}: kept checkpoint (lowest validation loss)")
        trained_on = "training (mixed clips)" if name in MIXUP_LABELS else "training"
        for column, ls, what in (("val_acc", "-", "held-out"), ("acc", "--", trained_on)):
            curve = 100 * _seed_mean(runs, column)
            axes[1].plot(curve.index, curve, color=color, ls=ls, lw=1.6, label=f"{name}, {what}")
    axes[0].set(xlabel="epoch", ylabel="test AUC (%)",
                title=f"test AUC (thin: as recorded; thick: over {window} epochs; information only)")
    axes[1].set(xlabel="epoch", ylabel="machine-ID accuracy (%)",
                title="held-out clips (solid), training clips as trained (dashed)")
    for ax in axes:
        ax.legend(fontsize=8)
    return axes[0].figure


def plot_factor_effects(table: pd.DataFrame, *, axes=None) -> Figure:
    """Two rows of :func:`plot_differences`, one column per metric, from
    :func:`asdlib.teaching.study.study_comparison`'s table. Top: Noisy-ArcMix − ArcFace per factor (filled: its
    interval excludes 0; orange dashed: the reference runs' difference). Bottom: each factor's *change* from the
    reference (:func:`changes_from_reference`), the interval that decides whether it moves the difference (filled:
    ``moves``, the change's interval over seeds and clips excludes 0). ``axes``: a (2, n_metrics) array."""
    metrics = list(dict.fromkeys(table.metric))
    changes = changes_from_reference(table)
    if axes is None:
        height = 0.45 * (table.factor.nunique() + changes.factor.nunique()) + 3.6
        axes = plt.subplots(2, len(metrics), figsize=(7 * len(metrics), height), layout="constrained",
                            squeeze=False, height_ratios=[table.factor.nunique() + 2,
                                                          max(changes.factor.nunique(), 1) + 2])[1]
    for top, bottom, metric in zip(axes[0], axes[1], metrics):
        name = METRIC_NAMES.get(metric, metric)
        rows = table[table.metric == metric]
        plot_differences(rows.assign(comparison=rows.factor), ax=top)
        reference = rows[rows.factor == REFERENCE]
        if not reference.empty:
            top.axvline(100 * reference.estimate.iloc[0], color="#D55E00", ls="--", lw=1.2)  # not the dotted 0
        top.set_title(f"Noisy-ArcMix − ArcFace, {name}; orange dashed: the reference runs\n" + top.get_title(),
                      fontsize=8)
        top.set_xlabel("difference (percentage points)")
        moved = changes[changes.metric == metric]
        if moved.empty:
            bottom.set_axis_off()
            continue
        plot_differences(moved.assign(comparison=moved.factor), ax=bottom,
                         filled=list((moved.moves == True) & moved.seed_aware),  # noqa: E712
                         filled_key="dot filled: the factor moves the difference (this interval excludes 0); "
                                    "hollow: it does not")
        unpaired = sorted(set(rows.factor) - set(moved.factor) - {REFERENCE})  # on other test clips
        bottom.set_title(f"its change from the reference (factor's difference − reference's), {name}"
                         + (f"; not drawn: {', '.join(unpaired)} (other test clips)" if unpaired else "")
                         + "\n" + bottom.get_title(), fontsize=8)
        bottom.set_xlabel("change (percentage points)")
    for ax in axes.ravel():
        if ax.get_yticklabels():
            ax.set_yticks(ax.get_yticks(), [t.get_text().split(":")[0] for t in ax.get_yticklabels()])
    fig = axes[0][0].figure
    grey = "seed_aware" in table and bool(table.seed_aware.astype(bool).any())
    fig.supxlabel("black: 95 % interval over test clips" + ("; grey: over seeds and clips" if grey else "")
                  + "; grey dotted: 0", fontsize=8)
    return fig


__all__ = ["plot_mixup_toy", "plot_differences", "plot_angle_gap_history", "plot_gap_vs_auc", "peeking_gain",
           "plot_peeking_gain", "plot_long_runs", "plot_factor_effects", "LABEL_COLORS"]

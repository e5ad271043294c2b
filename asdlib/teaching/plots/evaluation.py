"""Evaluation figures: ROC curves with the pAUC region, score distributions, published-vs-ours, thresholds.

All take the score tables the runs write (``scores.csv``: columns machine_type, machine_id, label
``"normal"`` / ``"anomaly"`` and one column per score) or the tables of :mod:`asdlib.evaluation.metrics`, and return
matplotlib Axes or Figures. AUC/pAUC in legends come from :func:`asdlib.evaluation.metrics.auc_pauc`, so a figure always
agrees with the tables. :func:`checkpoint_selection` shows what choosing the checkpoint on the test set does
(STgram-MFN's ``trainer.py`` selects on the dev test set; see the README's "What is verified", Engine).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from asdlib.data.dcase import MACHINE_TYPES
from asdlib.evaluation.metrics import AVERAGE, auc_pauc
from asdlib.teaching.plots import LABEL_COLORS


def _is_anomaly(labels: ArrayLike) -> np.ndarray:
    """``"normal"``/``"anomaly"`` or 0/1 -> bool ``(N,)``, True for anomalies."""
    y = np.asarray(labels)
    return (y == "anomaly") if y.dtype.kind in "OUS" else y.astype(bool)


def _types(scores: pd.DataFrame, machine_types: list[str] | None) -> list[str]:
    """The requested machine types present in ``scores``, in README order."""
    present = set(scores["machine_type"])
    wanted = [t for t in (machine_types or MACHINE_TYPES) if t in present]
    if not wanted:
        raise ValueError(f"none of the machine types {machine_types or MACHINE_TYPES} are in the scores "
                         f"(it has {sorted(present)})")
    return wanted


def _grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[plt.Figure, np.ndarray]:
    """A figure with ``n`` panels in rows of ``ncols``; unused panels are hidden. Returns (fig, axes (n,))."""
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]


# ------------------------------------------------------------------------------------ ROC curves
def roc_curves(scores: pd.DataFrame, *, machine_type: str, score: str = "score", max_fpr: float = 0.1,
               ax: plt.Axes | None = None) -> plt.Axes:
    """One ROC curve per machine ID of ``machine_type``, the pAUC region FPR ≤ ``max_fpr`` shaded.

    The legend gives each ID's AUC and (McClish-standardised) pAUC, as in the DCASE2020 per-ID table.
    """
    ax = ax or plt.subplots(figsize=(4.5, 4))[1]
    rows = scores[scores["machine_type"] == machine_type]
    ids = sorted(rows["machine_id"].unique())
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(ids), 1)))
    ax.axvspan(0, max_fpr, color="0.5", alpha=0.18, lw=0, label=f"pAUC region (FPR ≤ {max_fpr:g})")
    for color, machine_id in zip(colors, ids):
        group = rows[rows["machine_id"] == machine_id]
        fpr, tpr, _ = roc_curve(_is_anomaly(group["label"]), group[score])
        auc, pauc = auc_pauc(group["label"], group[score], max_fpr=max_fpr,
                             name=f"{machine_type} id_{machine_id}")
        ax.step(fpr, tpr, where="post", color=color, lw=1.6,
                label=f"id_{int(machine_id):02d}: AUC {100 * auc:.1f}, pAUC {100 * pauc:.1f}")
    ax.plot([0, 1], [0, 1], ls=":", color="0.4", lw=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate (normal clips flagged)",
           ylabel="true positive rate (anomalies caught)",
           title=f"{machine_type}: ROC per machine ID" + ("" if score == "score" else f" ({score})"))
    ax.legend(fontsize="x-small", loc="lower right")
    return ax


def roc_grid(scores: pd.DataFrame, *, machine_types: list[str] | None = None, score: str = "score",
             max_fpr: float = 0.1, ncols: int = 3) -> plt.Figure:
    """:func:`roc_curves` for each machine type, one panel per type."""
    types = _types(scores, machine_types)
    fig, axes = _grid(len(types), ncols, (4.6, 4.2))
    for ax, machine_type in zip(axes, types):
        roc_curves(scores, machine_type=machine_type, score=score, max_fpr=max_fpr, ax=ax)
        ax.set_title(machine_type)
    what = "" if score == "score" else f" (score: {score})"  # "score" is the papers' ArcFace CE
    fig.suptitle(f"ROC curves per machine ID{what}; shaded: the pAUC region FPR ≤ {max_fpr:g}")
    return fig


# ------------------------------------------------------------------------------------ score distributions
def wants_log_axis(values: ArrayLike, *, bins: int = 30) -> bool:
    """True when positive scores crowd into the first linear bin: more than a third of them in it, so a linear
    axis would hide the overlap of normal and anomalous scores (the ArcFace CE spans orders of magnitude)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2 or not (values > 0).all() or values.max() <= values.min():
        return False
    first_bin = values.min() + (values.max() - values.min()) / bins
    return bool(np.mean(values <= first_bin) > 1 / 3)


def _edges(values: np.ndarray, bins: int, logx: bool | str, ax: plt.Axes) -> np.ndarray:
    """Common bin edges ``(bins + 1,)``: log-spaced (and a log x axis) when ``logx`` is True, or "auto" and
    :func:`wants_log_axis` says so; linear otherwise."""
    log = wants_log_axis(values, bins=bins) if logx == "auto" else bool(logx) and (values > 0).all()
    if log:
        ax.set_xscale("log")
        return np.geomspace(values.min(), values.max(), bins + 1)
    return np.histogram_bin_edges(values, bins=bins)


def score_histogram(normal: ArrayLike, anomaly: ArrayLike, *, bins: int = 30, ax: plt.Axes | None = None,
                    title: str = "", xlabel: str = "anomaly score", logx: bool | str = "auto") -> plt.Axes:
    """Overlaid density histograms of normal ``(N,)`` and anomalous ``(M,)`` scores on common bins; a log score
    axis when most clips would sit in one linear bin (``logx="auto"``, see :func:`wants_log_axis`)."""
    ax = ax or plt.subplots()[1]
    normal, anomaly = np.asarray(normal, dtype=float), np.asarray(anomaly, dtype=float)
    edges = _edges(np.concatenate([normal, anomaly]), bins, logx, ax)
    for name, values in (("normal", normal), ("anomaly", anomaly)):
        if values.size:
            log = ax.get_xscale() == "log"
            ax.hist(values, bins=edges, density=not log, weights=np.full(values.size, 1.0 / values.size) if log else None,
                    alpha=0.55, color=LABEL_COLORS[name], label=f"{name} (n={values.size})", histtype="stepfilled",
                    edgecolor=LABEL_COLORS[name])
    log = ax.get_xscale() == "log"
    ax.set(xlabel=xlabel + (" (log scale)" if log else ""), ylabel="share of clips per bin" if log else "density",
           title=title)
    ax.legend(fontsize="x-small", loc="upper right", framealpha=0.6)
    return ax


def score_distributions(scores: pd.DataFrame, *, score: str = "score", machine_types: list[str] | None = None,
                        bins: int = 30, ncols: int = 3) -> plt.Figure:
    """One :func:`score_histogram` per machine type (all its IDs), normal blue vs anomaly orange."""
    types = _types(scores, machine_types)
    fig, axes = _grid(len(types), ncols, (4.6, 3.2))
    for ax, machine_type in zip(axes, types):
        rows = scores[scores["machine_type"] == machine_type]
        anomalous = _is_anomaly(rows["label"])
        score_histogram(rows[score][~anomalous], rows[score][anomalous], bins=bins, ax=ax, title=machine_type,
                        xlabel=score)
    fig.suptitle(f"Score distributions of the test clips ({score}; higher = more anomalous)")
    return fig


def score_strips(scores: pd.DataFrame, *, machine_type: str, score: str = "score",
                 ax: plt.Axes | None = None) -> plt.Axes:
    """Every test clip of one type as a dot: x = machine ID, y = score, colour = label (per-ID vs pooled)."""
    ax = ax or plt.subplots()[1]
    rows = scores[scores["machine_type"] == machine_type]
    ids = sorted(rows["machine_id"].unique())
    rng = np.random.default_rng(0)  # horizontal jitter only, for visibility
    for name, offset in (("normal", -0.17), ("anomaly", 0.17)):
        part = rows[_is_anomaly(rows["label"]) == (name == "anomaly")]
        x = np.searchsorted(ids, part["machine_id"]) + offset + rng.uniform(-0.08, 0.08, len(part))
        ax.scatter(x, part[score], s=14, alpha=0.7, color=LABEL_COLORS[name], label=name)
    ax.set_xticks(range(len(ids)), [f"id_{int(i):02d}" for i in ids])
    if wants_log_axis(rows[score]):
        ax.set_yscale("log")
    ax.set(xlabel="machine ID", ylabel=score + (" (log scale)" if ax.get_yscale() == "log" else ""),
           title=f"{machine_type}: test scores per machine ID")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax


# ------------------------------------------------------------------------------------ tables as charts
def published_comparison(ours: dict[str, pd.DataFrame], published: dict[str, pd.DataFrame], *,
                         metric: str = "auc", ax: plt.Axes | None = None) -> plt.Axes:
    """Dot chart of one metric per machine type (and Average): ``ours`` filled, ``published`` hollow.

    Both map a legend label to a per-type table (:func:`asdlib.evaluation.metrics.summary_table` columns); the i-th
    entries of the two share a colour. Label the entries with their data (e.g. DCASE2020 vs procedural).
    """
    ax = ax or plt.subplots(figsize=(9, 4))[1]
    entries = [(name, t, True, i) for i, (name, t) in enumerate(ours.items())]
    entries += [(name, t, False, i) for i, (name, t) in enumerate(published.items())]
    types = [t for t in (*MACHINE_TYPES, AVERAGE) if any(t in set(e[1]["machine_type"]) for e in entries)]
    width = 0.7 / max(len(entries), 1)
    for k, (name, table, filled, i) in enumerate(entries):
        values = table.set_index("machine_type")[metric].reindex(types) * 100
        color = f"C{i}"
        ax.scatter(np.arange(len(types)) + (k - (len(entries) - 1) / 2) * width, values, s=55, label=name,
                   marker="o" if filled else "D", color=color if filled else "none", edgecolors=color, lw=1.6)
    if AVERAGE in types:
        ax.axvline(len(types) - 1.5, color="0.6", lw=1)
    ax.set_xticks(range(len(types)), types)
    ax.set(ylabel=f"{metric.upper() if metric != 'pauc' else 'pAUC'} (%)",
           title="filled: ours; hollow: published (read the labels: the data differ)")
    ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    return ax


# ------------------------------------------------------------------------------------ thresholds
def threshold_plot(threshold: float, *, calibration: ArrayLike | None = None, normal: ArrayLike | None = None,
                   anomaly: ArrayLike | None = None, gamma: tuple[float, float, float] | None = None,
                   bins: int = 30, ax: plt.Axes | None = None, logx: bool | str = "auto") -> plt.Axes:
    """The operating threshold over score histograms: calibration (normal, grey), test normal / anomalous.

    ``gamma`` = (a, loc, scale) overlays the fitted gamma density; the y axis is capped just above the
    histograms, so a density that shoots up (shape a < 1 rises without bound at its lower end) cannot flatten
    them; the legend then says the curve is clipped. ``logx`` uses a log score axis with log-spaced bins (for
    positive scores spread over orders of magnitude; "auto": when :func:`wants_log_axis` says so). The title gives the false-alarm rate (FPR) on ``normal``
    and the share of ``anomaly`` caught (TPR) at this threshold; the legend sits outside the axes.
    """
    import scipy.stats

    ax = ax or plt.subplots(figsize=(8, 3.8))[1]
    given = (("calibration (known normal)", calibration), ("normal", normal), ("anomaly", anomaly))
    sets = {k: np.asarray(v, dtype=float) for k, v in given if v is not None}
    everything = np.concatenate([*sets.values(), [threshold]])
    edges = _edges(everything, bins, logx, ax)
    top, log = 0.0, ax.get_xscale() == "log"
    for name, values in sets.items():
        color = LABEL_COLORS.get(name, "0.45")
        # on log-spaced bins a density per unit score would flatten the wide bins of high scores: show the
        # share of each set's clips per bin instead
        weights = np.full(values.size, 1.0 / max(values.size, 1)) if log else None
        heights = ax.hist(values, bins=edges, density=not log, weights=weights, alpha=0.5, color=color,
                          label=f"{name} (n={values.size})")[0]
        top = max(top, float(np.max(heights, initial=0.0)))
    if gamma is not None and log:  # the fit's share of clips per log-spaced bin, comparable with the bars
        shares = np.diff(scipy.stats.gamma.cdf(edges, gamma[0], loc=gamma[1], scale=gamma[2]))
        clipped = top > 0 and shares.max() > 1.3 * top
        ax.stairs(shares, edges, color="0.2", lw=1.5,
                  label=f"gamma fit, shape a = {gamma[0]:.2g}" + (" (clipped)" if clipped else ""))
    elif gamma is not None:
        x = np.linspace(edges[0], edges[-1], 400)
        density = scipy.stats.gamma.pdf(x, gamma[0], loc=gamma[1], scale=gamma[2])
        clipped = top > 0 and density.max() > 1.3 * top
        ax.plot(x, density, color="0.2", lw=1.5,
                label=f"gamma fit, shape a = {gamma[0]:.2g}" + (" (clipped)" if clipped else ""))
    if top > 0:
        ax.set_ylim(0, 1.3 * top)
    ax.axvspan(threshold, edges[-1], color=LABEL_COLORS["anomaly"], alpha=0.07, lw=0)
    ax.axvline(threshold, color="black", ls="--", lw=1.5, label=f"threshold {threshold:.3g}")
    rates = [f"{what} {100 * np.mean(sets[k] > threshold):.0f} % of {sets[k].size}" for k, what in
             (("normal", "false alarms"), ("anomaly", "anomalies caught")) if k in sets and sets[k].size]
    ax.set(xlabel="anomaly score" + (" (log scale)" if log else ""), ylabel="share of clips per bin" if log else "density",
           title="flagged: score > threshold. " + ", ".join(rates))
    if ax.get_xscale() != "log":
        ax.ticklabel_format(axis="x", useOffset=False)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax


def gamma_fit_check(calibration: ArrayLike, gamma: tuple[float, float, float], *, quantile: float,
                    ax: plt.Axes | None = None) -> plt.Axes:
    """Does a gamma fit describe the calibration scores where it matters? Their empirical CDF ``(N,)`` against
    the fitted gamma CDF, with the ``quantile`` level and the two thresholds it gives (data vs fit).

    Where the two curves part at the level ``quantile``, the gamma threshold misses the intended false-alarm
    rate: the horizontal gap between the curves there is the threshold error.
    """
    import scipy.stats

    x = np.sort(np.asarray(calibration, dtype=float))
    ax = ax or plt.subplots(figsize=(6.5, 3.6))[1]
    grid = np.linspace(x[0] - 0.1 * np.ptp(x), x[-1] + 0.1 * np.ptp(x), 400)
    ax.step(np.r_[grid[0], x, grid[-1]], np.r_[0.0, np.arange(1, x.size + 1) / x.size, 1.0], where="post",
            color="0.35", label=f"calibration scores (n={x.size})")
    ax.plot(grid, scipy.stats.gamma.cdf(grid, gamma[0], loc=gamma[1], scale=gamma[2]), color="0.1", lw=1.5,
            label=f"gamma fit, shape a = {gamma[0]:.2g}")
    ax.axhline(quantile, color="C3", lw=0.8, ls=":")
    by_data = float(np.quantile(x, quantile))
    by_fit = float(scipy.stats.gamma.ppf(quantile, gamma[0], loc=gamma[1], scale=gamma[2]))
    ax.axvline(by_data, color="C0", ls="--", label=f"{quantile:g} quantile of the scores: {by_data:.3g}")
    ax.axvline(by_fit, color="C1", ls="--", label=f"{quantile:g} quantile of the fit: {by_fit:.3g}")
    ax.set(xlabel="anomaly score", ylabel="share of calibration clips ≤ score", ylim=(0, 1.02),
           title="empirical CDF vs gamma fit")
    ax.legend(fontsize="x-small", loc="lower right")
    return ax


# ------------------------------------------------------------------------------------ checkpoint selection
def selected_epochs(history: pd.DataFrame) -> dict[str, int]:
    """The epoch each selection rule picks: ``"honest"`` = min val_loss, ``"peeking"`` = max test AUC+pAUC.

    ``history`` is a run's ``history.csv`` (columns epoch, val_loss, test_auc, test_pauc).
    """
    missing = [c for c in ("epoch", "val_loss", "test_auc", "test_pauc") if c not in history.columns]
    if missing:
        raise KeyError(f"history lacks {missing}: train with track_test=True "
                       "(asdlib.teaching.notebook.ensure_run does)")
    tracked = history.dropna(subset=["test_auc", "test_pauc"])
    if history["val_loss"].isna().all() or tracked.empty:
        raise ValueError("history has no val_loss or no test AUC values to choose from")
    return {"honest": int(history.loc[history["val_loss"].idxmin(), "epoch"]),
            "peeking": int(tracked.loc[(tracked["test_auc"] + tracked["test_pauc"]).idxmax(), "epoch"])}


def checkpoint_selection(history: pd.DataFrame, *, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Validation loss (left axis) and test AUC / pAUC (right axis) per epoch, with both rules' choices."""
    ax = ax or plt.subplots(figsize=(8, 4.2))[1]
    chosen = selected_epochs(history)
    ax.plot(history["epoch"], history["val_loss"], "o-", color="0.3",
            label="validation loss (normal hold-out)")
    ax.set(xlabel="epoch", ylabel="validation loss", title=title or "which checkpoint would be reported?")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    right = ax.twinx()
    right.grid(False)
    tracked = history.dropna(subset=["test_auc"])
    right.plot(tracked["epoch"], 100 * tracked["test_auc"], "s-", color="C0", label="test AUC")
    right.plot(tracked["epoch"], 100 * tracked["test_pauc"], "^-", color="C1", label="test pAUC")
    right.set_ylabel("test AUC / pAUC (%)")
    for rule, style in (("honest", dict(color="C2", ls="-")), ("peeking", dict(color="C3", ls="--"))):
        row = history.set_index("epoch").loc[chosen[rule]]
        ax.axvline(chosen[rule], lw=2, alpha=0.8, **style,
                   label=f"{rule}: epoch {chosen[rule]}, test AUC {100 * row['test_auc']:.1f}")
    lines = ax.get_legend_handles_labels(), right.get_legend_handles_labels()
    ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], fontsize="x-small", loc="upper center",
              bbox_to_anchor=(0.5, -0.25), ncol=3)
    return ax


TYPE_MARKERS = ("o", "s", "^", "D", "v", "P")


def regime_plot(table: pd.DataFrame, *, titles: dict[float, str] | None = None) -> plt.Figure:
    """AUC of each detector at each ``fault_target`` (one panel each): a bar for the average over the machine
    types, one marker per type. ``table``: :func:`asdlib.teaching.regimes.regime_table`."""
    targets = sorted(table.fault_target.unique())
    methods = list(dict.fromkeys(table.method))
    types = [t for t in dict.fromkeys(table.machine_type) if t != AVERAGE]
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.6), sharey=True, squeeze=False)
    for ax, target in zip(axes[0], targets):
        part = table[table.fault_target == target].set_index(["method", "machine_type"]).auc * 100
        x = np.arange(len(methods))
        ax.bar(x, [part[m, AVERAGE] for m in methods], width=0.6, color="#DDDDDD", edgecolor="#555555",
               label="average over types")
        for k, t in enumerate(types):
            ax.scatter(x + (k - (len(types) - 1) / 2) * 0.12, [part[m, t] for m in methods], color="#333333",
                       marker=TYPE_MARKERS[k % len(TYPE_MARKERS)], s=28, zorder=3, label=t)
        ax.axhline(50, color="#999999", lw=1, ls="--")
        ax.set_xticks(x, methods, rotation=15)
        ax.set_title(f"fault_target = {target:g}" + (f"\n{titles[target]}" if titles and target in titles else ""),
                     fontsize=10)
    axes[0, 0].set_ylabel("AUC (%)")
    axes[0, 0].set_ylim(40, 100)
    axes[0, -1].legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig

"""Figures of what trained front ends learned (notebook 02): attention as a deviation from uniform, summaries of
an attention matrix, and a per-bin difference between two groups of clips drawn over the spread that groups of
*normal* clips of the same size already show.

Attention rows sum to one, so a uniform row is 1/F everywhere; on a plain colour scale that flat 1/F looks like
structure. :func:`attention_deviation` draws ``attention − 1/F`` on a diverging scale centred on zero instead.
Each function takes arrays or tensors (shapes in its docstring) and an optional ``ax``, and returns the Axes
or the numbers it computed.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from asdlib.teaching.plots.audio import as_array


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def attention_deviation(attention, *, ax: Axes | None = None, title: str | None = None,
                        limit: float | None = None) -> Axes:
    """An attention matrix ``(F, F)`` (row = query bin, column = key bin, rows sum to 1) as ``attention − 1/F``.

    Red: more attention than uniform, blue: less, white: uniform. The scale is symmetric around 0 and ends at
    ``limit`` (default: the 99.5th percentile of ``|attention − 1/F|``), so panels can share one scale.
    """
    attention = as_array(attention).squeeze()
    deviation = attention - 1.0 / attention.shape[-1]
    limit = limit or float(np.percentile(np.abs(deviation), 99.5)) or 1.0 / attention.shape[-1]
    ax = _axes(ax, (4.6, 4))
    image = ax.imshow(deviation, origin="lower", aspect="auto", cmap="RdBu_r", interpolation="nearest",
                      norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit))
    ax.set(xlabel="key mel bin", ylabel="query mel bin", title=title)
    ax.grid(False)
    ax.figure.colorbar(image, ax=ax, label="attention − 1/F", pad=0.01, extend="both")
    return ax


def attention_summary(attention, *, top: int = 10, near: int = 2) -> dict[str, float]:
    """How far attention ``(..., F, F)`` (rows sum to 1) is from uniform, averaged over all leading dimensions.

    ``effective keys``: exp(entropy) of a row (F when uniform, 1 when one key takes everything);
    ``top-k share``: the share of all attention received by the ``top`` most-attended key bins (uniform:
    top/F); ``near-diagonal share``: attention to keys within ``near`` bins of the query (uniform:
    about (2·near + 1)/F); ``largest weight × uniform``: the largest single weight, as a multiple of 1/F.
    """
    a = as_array(attention).astype(np.float64)
    f = a.shape[-1]
    rows = a.reshape(-1, f, f)  # (N, F, F)
    entropy = -(rows * np.log(np.clip(rows, 1e-30, None))).sum(-1)  # (N, F)
    received = rows.mean(axis=(0, 1))  # (F,): mean attention each key bin receives, sums to 1
    offsets = np.abs(np.arange(f)[:, None] - np.arange(f)[None])  # (F, F)
    return {"effective keys": float(np.exp(entropy).mean()), "keys (F)": f,
            f"top-{top} share": float(np.sort(received)[::-1][:top].sum()), f"top-{top} share if uniform": top / f,
            "near-diagonal share": float(rows[:, offsets <= near].sum(-1).mean() / f),
            "near-diagonal share if uniform": float((offsets <= near).sum() / f ** 2),
            "largest weight × uniform": float(rows.max() * f)}


def most_attended_keys(attention, *, top: int = 5) -> np.ndarray:
    """The ``top`` key bins that receive the most attention ``(..., F, F)`` on average, most first: ``-> (top,)``."""
    a = as_array(attention).astype(np.float64)
    received = a.reshape(-1, a.shape[-2], a.shape[-1]).mean(axis=(0, 1))  # (F,)
    return np.argsort(received)[::-1][:top]


def difference_with_band(group, baseline, reference, *, draws: int = 300, quantiles=(0.05, 0.95),
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``mean(group) − mean(baseline)`` per bin, and the band that normal clips alone give for that difference.

    ``group`` ``(N, F)`` (e.g. anomalous clips, one row per clip), ``baseline`` ``(M, F)`` (normal clips),
    ``reference`` ``(R, F)`` (more normal clips). The band: ``draws`` times, two disjoint random sets of N and M
    rows from the pooled normal clips (baseline and reference; with replacement if there are fewer than
    N + M), the difference of their means; its ``quantiles`` per bin. ``-> (F,), (2, F)``.
    """
    group, baseline, reference = (as_array(x).astype(np.float64) for x in (group, baseline, reference))
    normals = np.concatenate([baseline, reference])  # (M + R, F)
    n, m = len(group), len(baseline)
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(draws):
        if len(normals) >= n + m:
            pick = rng.permutation(len(normals))[:n + m]
        else:
            pick = rng.choice(len(normals), size=n + m, replace=True)
        null.append(normals[pick[:n]].mean(0) - normals[pick[n:]].mean(0))
    return group.mean(0) - baseline.mean(0), np.quantile(np.stack(null), quantiles, axis=0)  # (F,), (2, F)


def difference_band(curve, band, *, ax: Axes | None = None, title: str | None = None, xlabel: str = "mel bin",
                    ylabel: str = "anomaly − normal (dB)", color: str = "#C44E52",
                    band_label: str = "normal − normal (5–95 % of random draws)") -> Axes:
    """A difference ``(F,)`` over a reference band ``(2, F)``; bins where it leaves the band are marked."""
    curve, band = as_array(curve), as_array(band)
    x = np.arange(len(curve))
    outside = (curve < band[0]) | (curve > band[1])
    ax = _axes(ax, (6, 3.2))
    ax.fill_between(x, band[0], band[1], color="0.8", lw=0, label=band_label)
    ax.plot(x, curve, color=color, lw=1.2, label="anomaly − normal")
    ax.scatter(x[outside], curve[outside], s=10, color=color, zorder=3,
               label=f"outside the band: {outside.sum()} of {len(curve)}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(-0.5, len(curve) - 0.5))
    ax.legend(fontsize="x-small", loc="best")
    return ax

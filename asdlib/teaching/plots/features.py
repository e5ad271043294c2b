"""Figures and summaries of what the front ends compute and what training made of them (notebook 02): the two
published mel filterbanks, the shape of a bank of filters (where each peaks, how much of the axis it passes),
attention as a deviation from uniform, how much of the SASgram branch's signal still differs from one mel band
to the next layer by layer, and a per-bin difference between two groups of clips drawn over the spread that
groups of *normal* clips of the same size already show.

Attention rows sum to one, so a uniform row is 1/F everywhere; on a plain colour scale that flat 1/F looks like
structure. :func:`attention_deviation` draws ``attention − 1/F`` on a diverging scale centred on zero instead.
Each function takes arrays or tensors (shapes in its docstring) and an optional ``ax``, and returns the Axes
or the numbers it computed.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from asdlib.teaching.plots.audio import SR, as_array


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


# ------------------------------------------------------------------------------------------- filterbanks
def mel_filterbank_panels(fbs: Mapping[str, object], *, sr: int = SR, every: int = 8) -> Figure:
    """Mel filterbanks ``{name: (n_fft // 2 + 1, F)}``: one panel per bank with every ``every``-th filter drawn
    (the titles say how many of the F), then a panel with every filter's peak frequency; legends below the axes."""
    fig, axes = plt.subplots(1, len(fbs) + 1, figsize=(4.8 * (len(fbs) + 1), 3.9), layout="constrained")
    for ax, (name, fb) in zip(axes, fbs.items()):
        fb = as_array(fb)
        khz = np.linspace(0, sr / 2000, fb.shape[0])
        colors = plt.cm.viridis(np.linspace(0, 1, fb.shape[1]))
        drawn = range(0, fb.shape[1], every)
        for m in drawn:
            ax.plot(khz, fb[:, m], color=colors[m], lw=1)
        ax.set(xlabel="frequency (kHz)", ylabel="filter weight", xlim=(0, sr / 2000),
               title=f"{name}\n(every {every}th filter: {len(drawn)} of {fb.shape[1]} drawn)")
        peaks = khz[fb.argmax(axis=0)] * 1000
        axes[-1].plot(np.flatnonzero(peaks > 0), peaks[peaks > 0], label=name)
    axes[-1].set(xlabel="mel bin", ylabel="peak frequency (Hz)", yscale="log",
                 title="where each mel bin listens (all filters)")
    axes[-1].legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, frameon=False)
    return fig


def filter_shapes(gain_db, *, sr: int = SR, within_db: float = 10.0, split_hz: float = 1000.0) -> dict[str, float]:
    """How a bank of filters covers the frequency axis, from power gains ``(C, n_freqs)`` in dB (0 Hz to sr/2).

    Medians over the C filters of: ``peak (Hz)``; ``share of the axis within 10 dB of the peak`` (a mel
    filter: under 1 %; white noise: about half); ``power share below 1 kHz`` (a filter that only passes low
    frequencies: 1); and the lowest and highest peak, which say whether the bank tiles the axis.
    """
    gain_db = as_array(gain_db).astype(np.float64)
    freqs = np.linspace(0, sr / 2, gain_db.shape[-1])
    relative = gain_db - gain_db.max(axis=-1, keepdims=True)  # (C, n_freqs): 0 dB at each filter's peak
    power = 10 ** (relative / 10)
    peaks = freqs[relative.argmax(axis=-1)]
    return {"median peak (Hz)": float(np.median(peaks)), "lowest peak (Hz)": float(peaks.min()),
            "highest peak (Hz)": float(peaks.max()),
            f"axis within {within_db:g} dB of the peak (%)": float(100 * np.median((relative > -within_db).mean(-1))),
            f"power below {split_hz / 1000:g} kHz (%)": float(100 * np.median(power[:, freqs < split_hz].sum(-1)
                                                                             / power.sum(-1)))}


# ------------------------------------------------------------------------------------------- attention
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


def band_share(maps) -> float:
    """Share of the variance of maps ``(B, F, X)`` that lies across the F axis (mel bins, or tokens): the mean over
    B and X of the variance over F, divided by the total variance (both without Bessel's correction, so the
    share lies in [0, 1]): 0 when every bin holds the same values, 1 when the values change only across bins."""
    x = torch.as_tensor(as_array(maps), dtype=torch.float64)
    return float(x.var(dim=1, correction=0).mean() / x.var(correction=0))


def token_collapse(branch: torch.nn.Module, mel: torch.Tensor) -> pd.DataFrame:
    """How the F tokens (mel bands) of a SASgram branch become alike, stage by stage: ``mel (B, F, T)``.

    Runs ``branch`` (an :class:`asdlib.nn.attention.SpectralTransformer`) once with forward hooks on its input
    projection and on each layer, and returns one row per stage with the ``share across mel bins`` of the
    variance (:func:`band_share`) and ``1 − mean cosine between bands`` (0 when all F tokens point the same way).
    """
    stages: dict[str, torch.Tensor] = {}
    hooks = [branch.hidden_embedding.register_forward_hook(lambda m, i, o: stages.update({"tokens": o}))]
    for k, layer in enumerate(branch.layers):
        hooks.append(layer.register_forward_hook(lambda m, i, o, k=k: stages.update({f"layer {k + 1}": o[0]})))
    try:
        with torch.no_grad():
            out, _ = branch(mel)
    finally:
        for hook in hooks:
            hook.remove()
    rows = {"Sgram (the tokens' source)": mel, **stages, "SASgram (output)": out}
    table = {}
    for name, x in rows.items():  # x: (B, F, E or T)
        unit = torch.nn.functional.normalize(x.double(), dim=-1)
        cosine = (unit @ unit.transpose(1, 2)).mean().item()  # mean over all pairs of bands (and B)
        table[name] = {"share across mel bins": band_share(x), "1 − mean cosine between bands": 1.0 - cosine}
    return pd.DataFrame(table).T


# ------------------------------------------------------------------------------------------- differences
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

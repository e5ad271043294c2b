"""Figures for the notebooks, in one consistent style (``set_style`` once, in every setup cell).

The figure functions live in topic modules that follow the series: :mod:`asdlib.teaching.plots.audio` (waveforms,
spectrograms, spectra, levels), :mod:`asdlib.teaching.plots.training` (curves, ArcFace geometry, angles, embeddings) and
:mod:`asdlib.teaching.plots.evaluation` (ROC curves with the pAUC region, score distributions). Each function takes data
and an optional ``ax`` and returns the matplotlib Axes or Figure, so the caller decides what to show or save.
"""
from __future__ import annotations

# Machine types: neither blue nor red (those mean normal and anomaly), distinct in shades (Tol's muted scheme)
MACHINE_COLORS = {"fan": "#44AA99", "pump": "#DDCC77", "slider": "#999933", "valve": "#AA4499",
                  "ToyCar": "#117733", "ToyConveyor": "#937860"}
LABEL_COLORS = {"normal": "#0072B2", "anomaly": "#D55E00"}  # Okabe & Ito: blue vs vermillion, told apart by colour-blind eyes
# Every other series of a figure takes these (Okabe & Ito's remaining colours), so blue and vermillion mean
# normal and anomaly only; each loss keeps one colour in every figure of the series.
CYCLE = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999999", "#000000", "#F0E442")
LOSS_COLORS = {"CE": "#999999", "mixup CE": "#999999", "ArcFace": "#009E73", "ArcMix": "#E69F00",
               "Noisy-ArcMix": "#CC79A7"}


def set_style(*, context: str = "notebook") -> None:
    """The series' look: seaborn's whitegrid theme, readable sizes, tight layouts."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context=context, style="whitegrid")
    mpl.rcParams.update({"figure.figsize": (8, 3.5), "figure.dpi": 100, "figure.autolayout": True,
                         "axes.titlesize": "medium", "image.cmap": "magma",
                         "axes.prop_cycle": mpl.cycler(color=list(CYCLE))})

"""The DCASE2020 autoencoder baseline for the notebooks: its shipped reference scores, or a fit of its own.

Fitting the baseline with its published recipe (100 epochs, Koizumi et al., DCASE 2020 Workshop) takes minutes
of CPU per machine type, and a few epochs leave it at chance, so a CPU notebook loads the scores of a fit made
with the published recipe on the reference runs' clips (``asdlib/reference_runs/baselines/ae_baseline-default``:
the default procedural dataset, fan / valve / ToyConveyor, the first second of each clip), with the weights that
gave them, so that other clips of those types (notebook 05's two regimes) can be scored too. With training on,
or on another dataset, :func:`autoencoder_baseline` fits it here. Reproduce the shipped scores with
``python -m asdlib baseline --data data/synth/default --out OUT --seconds 1 --machine-types fan,valve,ToyConveyor``.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pandas as pd

SHIPPED = Path(__file__).resolve().parents[1] / "reference_runs" / "baselines" / "ae_baseline-default"


def shipped_scores(index: pd.DataFrame) -> pd.DataFrame | None:
    """The shipped test scores matched to the labelled test clips of ``index``, or None when ``index`` holds
    other clips (another dataset, size, crop or generator version): then they do not describe it."""
    path = SHIPPED / "scores.csv"
    if not path.is_file():
        return None
    shipped = pd.read_csv(path)
    test = index[(index.split == "test") & index.label.isin(["normal", "anomaly"])].reset_index(drop=True)
    names = test.path.map(lambda p: "/".join(Path(p).parts[-3:]))
    if len(test) != len(shipped) or set(names) != set(shipped.file):
        return None
    version, shipped_version = _generator_version(Path(test.path.iloc[0]).parents[2]), _shipped_version()
    if None not in (version, shipped_version) and version != shipped_version:
        return None  # the same file names, other anomalous clips
    return test.assign(score=names.map(shipped.set_index("file").score).to_numpy())


def _generator_version(root: Path) -> int | None:
    """The procedural generator version of the dataset at ``root`` (its ``dataset.json``); None for other data."""
    manifest = root / "dataset.json"
    return json.loads(manifest.read_text()).get("version") if manifest.is_file() else None


def _shipped_version() -> int | None:
    """The generator version of the clips the shipped scores describe (``recipe.json``)."""
    recipe = SHIPPED / "recipe.json"
    return json.loads(recipe.read_text()).get("generator_version") if recipe.is_file() else None


class AEBaseline(NamedTuple):
    """What :func:`autoencoder_baseline` returns: the test ``scores``, a note on their ``source``, and the
    ``models`` folder that gave them (``model_<type>.pt``; None when the shipped scores came without weights)."""

    scores: pd.DataFrame
    source: str
    models: Path | None


def autoencoder_baseline(index: pd.DataFrame, *, seconds: float, train: bool, out: str | Path,
                         epochs: int | None = None) -> AEBaseline:
    """Test scores of the AE baseline for ``index``, where they come from, and the models: the shipped scores
    (and weights) when ``train`` is false and they match ``index``, else a fit here (``epochs``: default the
    published 100) into ``out``."""
    from asdlib.evaluation.autoencoder import autoencoder_scores
    from asdlib.training.autoencoder import AERecipe, fit_autoencoders

    if not train:
        scores = shipped_scores(index)
        if scores is not None:
            weights = SHIPPED if any(SHIPPED.glob("model_*.pt")) else None
            return AEBaseline(scores, "the shipped fit with the published recipe (100 epochs)", weights)
    recipe = replace(AERecipe(), seconds=seconds, epochs=epochs or AERecipe().epochs)
    fit_autoencoders(index, out, recipe=recipe, threads=1)
    epochs_said = f"{recipe.epochs} epoch" + ("s" if recipe.epochs != 1 else "")
    return AEBaseline(autoencoder_scores(index, out, seconds=seconds), f"fitted here ({epochs_said})", Path(out))

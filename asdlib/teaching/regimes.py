"""Which regime is a factory in? The same trained detectors on faults that change what makes a machine itself and
on faults that leave it alone.

An ID classifier (STgram-MFN and its successors) detects an anomaly only as far as the fault moves the clip away
from its own machine ID: it learned what tells the IDs of a type apart and nothing else. A density model on plain
features (the DCASE2020 autoencoder, a per-ID Gaussian on log-mel statistics) notices any change of the sound.
The procedural generator's factory parameter ``fault_target`` (:mod:`asdlib.data.calibration`) chooses between
the two kinds of fault: at 0 every fault displaces the characteristics that tell IDs apart, at 1 every fault is
the same for every ID. All three detectors learn from normal clips only, and the generator's normal clips do not
depend on ``fault_target``; so one trained network, one autoencoder per type and one Gaussian per ID are scored
on small test sets that differ only in their anomalous clips.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

ENDS = {0.0: "faults change what tells the IDs apart", 1.0: "faults leave the identity alone"}


def regime_test_sets(root: str | Path, machine_types, *, per_label: int = 15, seed: int = 0,
                     version: int | None = None, fault_targets=tuple(ENDS)) -> dict[float, pd.DataFrame]:
    """Small test sets, ``per_label`` normal and anomalous clips per development ID, one per ``fault_target``
    (generator ``version``, default the current one): ``{fault_target: index}``. Their normal clips are the same
    files' bytes at every ``fault_target``."""
    from asdlib.data.index import index_dataset
    from asdlib.data.synth import GENERATOR_VERSION, generate_dataset

    if not machine_types:
        raise ValueError("regime_test_sets needs the machine types to generate (e.g. those of the run's config)")
    sets = {}
    for target in fault_targets:
        folder = Path(root) / f"v{version or GENERATOR_VERSION}-fault_target_{target:g}"
        generate_dataset(folder, size="default", machine_types=list(machine_types), seed=seed, n_train=0,
                         n_test=per_label, fault_target=target, version=version or GENERATOR_VERSION,
                         progress=False)
        sets[float(target)] = index_dataset(folder)
    return sets


Scorer = Callable[[pd.DataFrame], pd.DataFrame]  # index -> its labelled test rows with a "score" column


def network_scorer(model, *, seconds: float, cache_dir: str | Path) -> Scorer:
    """Scores of a trained network (:func:`asdlib.experiment.score_dataset`, the first ``seconds`` of each clip)."""
    from asdlib.data.cache import build_cache
    from asdlib.experiment import score_dataset

    def score(index: pd.DataFrame) -> pd.DataFrame:
        test = index[(index.split == "test") & index.label.isin(["normal", "anomaly"])].reset_index(drop=True)
        cache = build_cache(test, seconds=seconds, cache_dir=cache_dir, progress=False)
        return score_dataset(model, cache, np.arange(len(test)), progress=False)
    return score


def autoencoder_scorer(models: Mapping, *, seconds: float) -> Scorer:
    """Scores of the DCASE2020 autoencoders, ``{machine_type: model}`` (or their folder)."""
    from asdlib.evaluation.autoencoder import autoencoder_scores

    return lambda index: autoencoder_scores(index, models, seconds=seconds, progress=False)


def gaussian_scorer(model, *, seconds: float) -> Scorer:
    """Scores of a fitted per-ID Gaussian (:func:`asdlib.evaluation.baseline.fit_baseline`)."""
    from asdlib.evaluation.baseline import baseline_scores

    return lambda index: baseline_scores(index, seconds=seconds, model=model, progress=False)


def regime_table(test_sets: Mapping[float, pd.DataFrame], scorers: Mapping[str, Scorer]) -> pd.DataFrame:
    """AUC of every detector on every test set: columns fault_target, method, machine_type (types + "Average",
    DCASE's mean over IDs), auc."""
    from asdlib.evaluation.metrics import per_id_table, summary_table

    rows = []
    for target, index in test_sets.items():
        for method, score in scorers.items():
            summary = summary_table(per_id_table(score(index)))
            rows += [dict(fault_target=target, method=method, machine_type=t, auc=float(a))
                     for t, a in zip(summary.machine_type, summary.auc)]
    return pd.DataFrame(rows)


def dataset_regime(params: dict, version: int) -> str:
    """In words, where a generated dataset sits between the two ends (its ``dataset.json`` params and version)."""
    from asdlib.data.calibration import calibration

    target = params.get("fault_target", 0.0)
    if target is None:  # the version's calibrated per-type shares
        shares = {t: v for t, v in calibration(version).fault_target.items() if t in params["machine_types"]}
        mixed = {t: v for t, v in shares.items() if v > 0}
        if not mixed:
            return "every fault changes what tells the IDs apart (fault_target 0 for every type): the left panel"
        return ("mostly the left panel: every fault changes what tells the IDs apart, except "
                + ", ".join(f"{t}, where a share of {v:g} leaves the identity alone" for t, v in mixed.items()))
    if target == 0:
        return "every fault changes what tells the IDs apart (fault_target 0): the left panel"
    return f"a share of {target:g} of the faults leaves the identity alone (fault_target {target:g})"


def winners(table: pd.DataFrame) -> dict[float, str]:
    """The detector with the highest average AUC at each ``fault_target``."""
    avg = table[table.machine_type == "Average"]
    return {t: g.loc[g.auc.idxmax(), "method"] for t, g in avg.groupby("fault_target")}


__all__ = ["ENDS", "autoencoder_scorer", "dataset_regime", "gaussian_scorer", "network_scorer", "regime_table",
           "regime_test_sets", "winners"]

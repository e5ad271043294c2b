"""Differences between runs with their uncertainty: a bootstrap over test clips, and one over seeds and clips.

All runs of a comparison are scored on the same test clips, so one resample of the clips serves every run
(*paired*), and since the DCASE averages are taken per machine ID, each ID's normal and anomalous clips are
redrawn separately (*stratified*). :func:`paired_bootstrap` gives the interval of a difference that comes from
the choice of test clips alone. Training again with another seed moves the result as well, often by more;
:func:`hierarchical_bootstrap` adds that spread by also redrawing the seeds of each run with replacement before
the clips (the two-stage bootstrap for hierarchical data, Davison & Hinkley 1997, *Bootstrap Methods and their
Application*, §3.8). With few seeds the seed redraws are coarse (a bootstrap of n values spreads (n − 1)/n of
their variance), so with 2–3 seeds the interval runs narrow. A run with one seed has no seed-to-seed spread to
draw from: its seed sd is NaN, never 0, and the comparison is flagged ``seed_aware=False``.
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from asdlib.evaluation.metrics import METRICS, _binary_labels

PAIRED_COLUMNS = ("comparison", "metric", "estimate", "low", "high")


# ------------------------------------------------------------------------------------ AUC of many resamples
def _strata(frame: pd.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(machine_type, normal rows, anomalous rows)`` per machine ID of an aligned score table."""
    labels = _binary_labels(frame["label"])
    out = []
    for (machine_type, _), rows in frame.groupby(["machine_type", "machine_id"], sort=True).indices.items():
        out.append((machine_type, rows[labels[rows] == 0], rows[labels[rows] == 1]))
    return out


def _auc_pauc_batch(normal: np.ndarray, anomaly: np.ndarray, max_fpr: float) -> tuple[np.ndarray, np.ndarray]:
    """AUC and McClish-standardised pAUC of many score sets at once: ``(..., n), (..., m) -> (...), (...)``.

    Per normal clip (sorted from the highest score down) the ROC's horizontal step has height
    ``h = P(anomaly > normal) + ½ P(tie)``; AUC is the mean of ``h``, the partial area sums ``h / n`` up to
    FPR ``max_fpr`` (a fraction of the step where it falls inside one), as ``roc_auc_score`` computes them.
    (Tied scores count ½; where ties straddle FPR = ``max_fpr`` sklearn's diagonal interpolation differs
    slightly. Continuous network scores do not tie.)
    """
    n = normal.shape[-1]
    normal = -np.sort(-normal, axis=-1)
    above = (anomaly[..., None, :] > normal[..., :, None]).mean(-1)
    ties = (anomaly[..., None, :] == normal[..., :, None]).mean(-1)
    height = above + 0.5 * ties  # (..., n)
    weight = np.clip(max_fpr * n - np.arange(n), 0.0, 1.0) / n  # FPR width of each step inside [0, max_fpr]
    partial = (height * weight).sum(-1)
    lo, hi = 0.5 * max_fpr ** 2, max_fpr
    return height.mean(-1), 0.5 * (1 + (partial - lo) / (hi - lo))


def _dcase_averages(scores: np.ndarray, strata, resample, max_fpr: float) -> dict[str, np.ndarray]:
    """The DCASE "Average" AUC / pAUC / mAUC of ``scores (R, N)`` under clip resamples -> ``{metric: (R, B)}``."""
    per_type: dict[str, list] = {}
    for (machine_type, normal, anomaly), (pick_n, pick_a) in zip(strata, resample):
        auc, pauc = _auc_pauc_batch(scores[:, normal[pick_n]], scores[:, anomaly[pick_a]], max_fpr)  # (R, B)
        per_type.setdefault(machine_type, []).append((auc, pauc))
    types = [np.stack(v) for v in per_type.values()]  # each (IDs, 2, R, B)
    return {"auc": np.mean([t[:, 0].mean(0) for t in types], axis=0),
            "pauc": np.mean([t[:, 1].mean(0) for t in types], axis=0),
            "mauc": np.mean([t[:, 0].min(0) for t in types], axis=0)}


# ------------------------------------------------------------------------------------ resampling
def _aligned(runs: dict[str, list[pd.DataFrame]], score: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Every seed's scores on the same clip order: ``(R, N)`` scores, ``(R,)`` index of the owning run, and the
    first table (sorted by file) for the strata; refuses runs scored on other clips."""
    names = list(runs)
    empty = [name for name in names if not runs[name]]
    if empty:
        raise ValueError(f"run(s) {empty} have no score tables; pass one table per seed")
    key = "file" if "file" in runs[names[0]][0] else "path"
    first = runs[names[0]][0].sort_values(key).reset_index(drop=True)
    columns = []
    for name in names:
        for table in runs[name]:
            aligned = table.sort_values(key).reset_index(drop=True)
            if not aligned[key].equals(first[key]):
                raise ValueError(f"{name}: its scores are not on the same test clips as {names[0]}'s")
            columns.append(aligned[score].to_numpy(dtype=float))
    owner = np.repeat(np.arange(len(names)), [len(runs[n]) for n in names])
    return np.stack(columns), owner, first


def _clip_draws(strata, n_boot: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per machine ID, ``n_boot`` redraws of its normal and of its anomalous clips: ``[((B, n), (B, m)), ...]``."""
    return [(rng.integers(0, len(n), (n_boot, len(n))), rng.integers(0, len(a), (n_boot, len(a))))
            for _, n, a in strata]


def _seed_means(values: np.ndarray, picks: np.ndarray | None) -> np.ndarray:
    """Mean over a run's seeds per replicate: ``(S, B)`` values, ``(S, B)`` seed picks or None -> ``(B,)``."""
    if picks is None:
        return values.mean(0)
    return np.take_along_axis(values, picks, axis=0).mean(0)


def _sd(values: np.ndarray) -> float:
    """Seed-to-seed standard deviation (ddof 1); NaN for one seed, where it cannot be estimated."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _seed_picks(name: str, n_seeds: int, n_boot: int, seed: int) -> np.ndarray:
    """Seeds of run ``name`` redrawn with replacement: ``(S, B)`` indices into its ``S`` seeds.

    The generator is keyed by the run's name, so a pair's interval is the same whichever other runs are compared
    beside it (a notebook's table of all losses and a study's table of two agree to the digit).
    """
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return rng.integers(0, n_seeds, (n_seeds, n_boot))


# ------------------------------------------------------------------------------------ the comparisons
def hierarchical_replicates(runs: dict[str, list[pd.DataFrame]], pairs: list[tuple[str, str]], *,
                            score: str = "score", n_boot: int = 1000, seed: int = 0,
                            max_fpr: float = 0.1) -> dict[tuple[str, str, str], dict]:
    """The bootstrap replicates behind :func:`hierarchical_bootstrap`: ``{(a, b, metric): {"estimate": float,
    "clips": (B,), "seeds_and_clips": (B,), "per_seed_a": (S_a,), "per_seed_b": (S_b,)}}``.

    The clip redraws depend only on the test clips and ``seed``, and a run's seed redraws only on its name, so two
    calls on the same test clips draw the same clip resamples: replicate ``b`` of one call's difference minus
    replicate ``b`` of another's is a replicate of the difference between them, paired on clips
    (:func:`contrast_interval`).
    """
    names = list(runs)
    scores, owner, first = _aligned(runs, score)  # (R, N)
    strata = _strata(first)
    rng = np.random.default_rng(seed)
    identity = [(np.arange(len(n))[None], np.arange(len(a))[None]) for _, n, a in strata]
    draws = _clip_draws(strata, n_boot, rng)  # first, so paired_bootstrap sees the same clip draws
    picks = {i: _seed_picks(name, (owner == i).sum(), n_boot, seed) for i, name in enumerate(names)}
    point, boot = _dcase_averages(scores, strata, identity, max_fpr), _dcase_averages(scores, strata, draws, max_fpr)
    out = {}
    for a, b in pairs:
        ia, ib = names.index(a), names.index(b)
        for metric in METRICS:
            value_a, value_b = point[metric][owner == ia, 0], point[metric][owner == ib, 0]  # (S_a,), (S_b,)
            out[a, b, metric] = {
                "estimate": float(value_a.mean() - value_b.mean()), "per_seed_a": value_a, "per_seed_b": value_b,
                "clips": _seed_means(boot[metric][owner == ia], None) - _seed_means(boot[metric][owner == ib], None),
                "seeds_and_clips": (_seed_means(boot[metric][owner == ia], picks[ia])
                                    - _seed_means(boot[metric][owner == ib], picks[ib]))}  # (B,)
    return out


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def hierarchical_bootstrap(runs: dict[str, list[pd.DataFrame]], pairs: list[tuple[str, str]], *,
                           score: str = "score", n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                           max_fpr: float = 0.1) -> pd.DataFrame:
    """Differences ``A − B`` of the DCASE averages, with a clip-only and a seed-and-clip bootstrap interval.

    ``runs`` maps a name to the score tables of its seeds (columns ``file``, machine_type, machine_id, label and
    ``score``), all on the same test clips. Replicate ``b`` redraws, within every machine ID, the normal and the
    anomalous clips (the same draw for every run and seed), recomputes each seed's average AUC / pAUC / mAUC, and
    averages them per run: over all its seeds for the clip-only interval ``low``, ``high`` (what
    :func:`paired_bootstrap` returns), and over its seeds redrawn with replacement, independently per run, for
    ``seed_low``, ``seed_high``. One row per pair and metric, also with ``estimate`` (clips as they are),
    ``seeds_a``/``seeds_b``, the per-seed values ``per_seed_a``/``per_seed_b`` (tuples), their sd
    ``seed_sd_a``/``seed_sd_b`` (NaN for one seed) and ``seed_aware`` (both runs have ≥ 2 seeds; otherwise the
    second interval lacks the spread of the single-seed run, and with one seed in both it equals the first).
    """
    replicates = hierarchical_replicates(runs, pairs, score=score, n_boot=n_boot, seed=seed, max_fpr=max_fpr)
    return replicate_table(replicates, level=level)


def replicate_table(replicates: dict[tuple[str, str, str], dict], *, level: float = 0.95) -> pd.DataFrame:
    """:func:`hierarchical_bootstrap`'s table from :func:`hierarchical_replicates`' replicates."""
    rows = []
    for (a, b, metric), r in replicates.items():
        value_a, value_b = r["per_seed_a"], r["per_seed_b"]
        (low, high), (seed_low, seed_high) = (_percentiles(r[k], level) for k in ("clips", "seeds_and_clips"))
        rows.append({"comparison": f"{a} − {b}", "metric": metric, "estimate": r["estimate"],
                     "low": low, "high": high, "seed_low": seed_low, "seed_high": seed_high,
                     "seeds_a": len(value_a), "seeds_b": len(value_b),
                     "per_seed_a": tuple(map(float, value_a)), "per_seed_b": tuple(map(float, value_b)),
                     "seed_sd_a": _sd(value_a), "seed_sd_b": _sd(value_b),
                     "seed_aware": bool(len(value_a) > 1 and len(value_b) > 1)})
    return pd.DataFrame(rows)


def contrast_interval(first: dict, second: dict, *, level: float = 0.95) -> dict[str, float]:
    """How far one difference sits from another, ``(A − B) − (C − D)``, from two entries of
    :func:`hierarchical_replicates` computed on the same test clips with the same ``seed`` (so paired on clips;
    the seeds of each run are redrawn independently): ``{"estimate", "low", "high", "seed_low", "seed_high"}``,
    ``low``/``high`` over test clips, ``seed_low``/``seed_high`` over seeds and clips. Both differences'
    uncertainty is in it, unlike reading one difference's interval against the other's estimate."""
    if len(first["clips"]) != len(second["clips"]):
        raise ValueError("the two differences have different numbers of replicates: compute both with one n_boot")
    (low, high), (seed_low, seed_high) = (_percentiles(first[k] - second[k], level)
                                          for k in ("clips", "seeds_and_clips"))
    return {"estimate": first["estimate"] - second["estimate"], "low": low, "high": high,
            "seed_low": seed_low, "seed_high": seed_high}


def paired_bootstrap(runs: dict[str, list[pd.DataFrame]], pairs: list[tuple[str, str]], *, score: str = "score",
                     n_boot: int = 1000, level: float = 0.95, seed: int = 0, max_fpr: float = 0.1) -> pd.DataFrame:
    """Differences of the DCASE averages between runs, with a paired, ID-stratified bootstrap CI over test clips.

    ``runs`` maps a name to the score tables of its seeds (columns ``file``, machine_type, machine_id, label and
    ``score``), all on the same test clips. Each replicate redraws, within every machine ID, its normal and its
    anomalous clips with replacement, the *same* draw for every run (paired), recomputes each seed's average
    AUC / pAUC / mAUC, averages the seeds of a name, and takes the difference ``A − B`` for each ``(A, B)`` in
    ``pairs``. Returns one row per pair and metric: ``estimate`` (on the clips as they are) and the
    percentile interval ``low``, ``high`` at ``level``. The seeds are held fixed: for an interval that also
    covers the seed-to-seed spread use :func:`hierarchical_bootstrap`.
    """
    table = hierarchical_bootstrap(runs, pairs, score=score, n_boot=n_boot, level=level, seed=seed, max_fpr=max_fpr)
    return table[list(PAIRED_COLUMNS)]

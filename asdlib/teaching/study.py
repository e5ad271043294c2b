"""The replication study: which factor of the authors' recipe moves Noisy-ArcMix − ArcFace (notebook 04).

Each study run (``configs/study/``, named ``<model>-<loss>-<factor>-s<seed>``) changes one factor of a TASTgram-MFN
reference run (``<model>-<loss>-s<seed>``) to the authors' value (Choi & Choi, ICASSP 2024). Within every factor
both losses are trained on the same data, so :func:`study_comparison` compares them there, with the interval over
test clips and, where both losses have several seeds, the one over seeds and clips
(:func:`asdlib.evaluation.bootstrap.hierarchical_bootstrap`), and sets each factor's difference beside the
reference runs' one. A factor *moves* the difference when the interval of its change from the reference's
difference excludes 0: both differences' uncertainty is in that interval, paired on the test clips
(:func:`asdlib.evaluation.bootstrap.contrast_interval`). :func:`study_verdict` writes it out.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Sequence

import pandas as pd

from asdlib.evaluation.bootstrap import contrast_interval, hierarchical_replicates, replicate_table
from asdlib.teaching.pretrained import ReferenceRun
from asdlib.teaching.replication import METRIC_NAMES, deciding_interval

REFERENCE = "reference"  # the factor of the reference runs, which change nothing
STUDY_MODEL = "tastgram_mfn"
LOSS_LABELS = {"noisy_arcmix": "Noisy-ArcMix", "arcface": "ArcFace"}  # the compared pair: first − second
STUDY_METRICS = ("auc", "pauc")
_NAME = re.compile(r"^(?P<model>[a-z0-9_]+)-(?P<loss>[a-z0-9_]+)(?:-(?P<factor>[a-z0-9_]+))?-s(?P<seed>\d+)$")


def parse_run_name(name: str) -> tuple[str, str, str, int]:
    """``"tastgram_mfn-arcface-long60-s1"`` -> ``("tastgram_mfn", "arcface", "long60", 1)``; a reference run
    (``"tastgram_mfn-arcface-s0"``) has factor ``"reference"``."""
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"{name!r} is not a run name: expected <model>-<loss>-s<seed> (a reference run, e.g. "
                         "tastgram_mfn-arcface-s0) or <model>-<loss>-<factor>-s<seed> (a study run, e.g. "
                         "tastgram_mfn-arcface-long60-s0), lower case")
    return match["model"], match["loss"], match["factor"] or REFERENCE, int(match["seed"])


def factor_groups(runs: Iterable[ReferenceRun]) -> dict[str, dict[str, list[ReferenceRun]]]:
    """The TASTgram-MFN runs by factor and loss, seeds ascending; ``"reference"`` first, then the factors by name.
    A run whose name disagrees with its entry's model or loss raises."""
    groups: dict[str, dict[str, list[ReferenceRun]]] = {}
    for run in runs:
        model, loss, factor, seed = parse_run_name(run.name)
        if (model, loss, seed) != (run.model, run.loss, run.seed):
            raise ValueError(f"run {run.name}: its name says {model} + {loss}, seed {seed}, its entry "
                             f"{run.model} + {run.loss}, seed {run.seed}")
        if model == STUDY_MODEL:
            groups.setdefault(factor, {}).setdefault(loss, []).append(run)
    order = sorted(groups, key=lambda f: (f != REFERENCE, f))
    return {f: {loss: sorted(rs, key=lambda r: r.seed) for loss, rs in groups[f].items()} for f in order}


RECIPE_ROWS = {"adamw": ("optimiser, learning rate", "schedule", "epochs"), "long60": ("schedule", "epochs"),
               "batch64": ("batch",), "clip2s": ("clip",), "no_precise_bn": ("BatchNorm statistics",),
               "six_types": ("classes",)}  # factor -> the rows of recipe_table it moves toward the authors'


def untested_rows(differing: Sequence[str], tested: Sequence[str]) -> list[str]:
    """The rows of :func:`asdlib.teaching.replication.recipe_table` that differ from the authors' and that no
    factor in ``tested`` (those with both losses shipped) moves toward them; factors outside the recipe (the
    scarcity runs ``clips30``, ``clips60``) move none."""
    moved = {row for f in tested for row in RECIPE_ROWS.get(f, ())}
    return [row for row in differing if row not in moved]


def factor_changes(config, reference) -> str:
    """What a study run's config changes from its reference run's (two ``RunConfig``), e.g.
    ``"train.epochs 15 → 60, train.t_max 15 → 60"``; the seed is not a factor. ``"nothing"`` when they agree."""
    def flat(cfg) -> dict:
        return {f"{section}.{key}": value for section, fields in dataclasses.asdict(cfg).items()
                for key, value in fields.items()}

    new, old = flat(config), flat(reference)
    changed = [f"{key} {_show(key, old[key])} → {_show(key, value)}" for key, value in new.items()
               if key != "train.seed" and value != old.get(key)]
    return ", ".join(changed) or "nothing"


def _show(key: str, value) -> str:
    if key == "data.train_clips_per_id" and value == 0:
        return "all"  # 0 keeps every training clip
    if isinstance(value, (tuple, list)):
        return f"{len(value)} ({', '.join(map(str, value))})"
    return f"{value:g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------ the factor table
def _compare(factor: str, runs: dict[str, list[ReferenceRun]], load_scores, *, n_boot: int, seed: int
             ) -> tuple[pd.DataFrame, dict, frozenset]:
    """Noisy-ArcMix − ArcFace within one factor: ``hierarchical_bootstrap``'s AUC and pAUC rows plus the machine
    types the score tables hold, the bootstrap replicates per metric (``hierarchical_replicates``) and the test
    clips scored."""
    # The bootstrap redraws a run's seeds with a generator keyed by its name: the reference runs keep the plain
    # loss names (section 4 of notebook 04 bootstraps them under the same ones), a factor's runs add the factor,
    # so their seeds are redrawn independently of the reference's.
    names = {loss: label if factor == REFERENCE else f"{label}, {factor}" for loss, label in LOSS_LABELS.items()}
    frames = {names[loss]: [load_scores(run) for run in runs[loss]] for loss in LOSS_LABELS}
    pair = tuple(names.values())
    replicates = hierarchical_replicates(frames, [pair], n_boot=n_boot, seed=seed)
    table = replicate_table(replicates)
    types = sorted({t for tables in frames.values() for f in tables for t in f.machine_type.unique()})
    table = table[table.metric.isin(STUDY_METRICS)].reset_index(drop=True)
    first = frames[pair[0]][0]
    clips = frozenset(first["file" if "file" in first else "path"])
    return (table.assign(machine_types=", ".join(types), n_types=len(types)),
            {metric: replicates[(*pair, metric)] for metric in STUDY_METRICS}, clips)


def change_interval(row) -> tuple[float, float]:
    """The interval a factor's change is judged by: over seeds and clips where every run of the factor and of the
    reference has several seeds (``change_seed_aware``), else over clips."""
    if row.change_seed_aware:
        return row.change_seed_low, row.change_seed_high
    return row.change_low, row.change_high


def moves(row) -> bool | None:
    """Whether ``row``'s change from the reference moves the difference: the interval of the change (over seeds
    and clips where every run of both factors has several seeds, else over clips) excludes 0. None for the
    reference itself, and for a factor scored on other test clips, whose change cannot be paired on clips."""
    if row.factor == REFERENCE or pd.isna(row.change_low):
        return None
    low, high = change_interval(row)
    return bool(low > 0 or high < 0)


def study_comparison(groups: dict[str, dict[str, list[ReferenceRun]]], load_scores: Callable[[ReferenceRun],
                     pd.DataFrame], *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (factor, metric) of every factor with both losses: the Noisy-ArcMix − ArcFace difference
    (``hierarchical_bootstrap``'s columns), ``machine_types``, ``interval`` (which one decides: ``"seeds and
    clips"`` or ``"clips"``), ``change`` (estimate − the reference's; NaN without reference runs) with its
    interval (:func:`asdlib.evaluation.bootstrap.contrast_interval`: ``change_low``/``change_high`` over clips,
    ``change_seed_low``/``change_seed_high`` over seeds and clips, ``change_seed_aware`` where both factors'
    runs all have several seeds; NaN for a factor on other test clips) and ``moves`` (:func:`moves`).
    ``load_scores(run)`` returns a run's score table (``pretrained.load_scores``)."""
    compared = {factor: _compare(factor, runs, load_scores, n_boot=n_boot, seed=seed)
                for factor, runs in groups.items() if all(loss in runs for loss in LOSS_LABELS)}
    if not compared:
        raise ValueError("no factor has runs of both ArcFace and Noisy-ArcMix: nothing to compare")
    table = pd.concat([t.assign(factor=f) for f, (t, _, _) in compared.items()], ignore_index=True)
    reference = {r.metric: r for r in table[table.factor == REFERENCE].itertuples()}
    table["interval"] = ["seeds and clips" if aware else "clips" for aware in table.seed_aware]
    table["change"] = [r.estimate - reference[r.metric].estimate if r.metric in reference else float("nan")
                       for r in table.itertuples()]
    nan = dict.fromkeys(("low", "high", "seed_low", "seed_high"), float("nan"))
    contrasts = []
    for r in table.itertuples():
        paired = REFERENCE in compared and compared[r.factor][2] == compared[REFERENCE][2]
        contrasts.append(contrast_interval(compared[r.factor][1][r.metric], compared[REFERENCE][1][r.metric])
                         if paired else nan)
    for key in ("low", "high", "seed_low", "seed_high"):
        table[f"change_{key}"] = [c[key] for c in contrasts]
    table["change_seed_aware"] = [bool(r.seed_aware and reference[r.metric].seed_aware) if r.metric in reference
                                  else False for r in table.itertuples()]
    table["moves"] = [moves(r) for r in table.itertuples()]
    first = ["factor", "metric", "estimate", "low", "high", "seed_low", "seed_high", "interval", "change",
             "change_low", "change_high", "change_seed_low", "change_seed_high", "moves", "machine_types"]
    return table[first + [c for c in table.columns if c not in first]]


def changes_from_reference(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`study_comparison`'s table that have a change from the reference, the change moved into
    the difference's columns (for :func:`asdlib.teaching.plots.comparison.plot_differences`): ``estimate`` =
    ``change``, ``low``/``high`` = ``change_low``/``change_high`` (over clips), ``seed_low``/``seed_high``/
    ``seed_aware`` = the change's interval over seeds and clips. The reference itself and factors on other test
    clips (no paired change) drop."""
    rows = table[(table.factor != REFERENCE) & table.change_low.notna()]
    columns = {"change": "estimate", "change_low": "low", "change_high": "high", "change_seed_low": "seed_low",
               "change_seed_high": "seed_high", "change_seed_aware": "seed_aware"}
    return (rows.drop(columns=[c for c in columns.values() if c in rows]).rename(columns=columns)
            .assign(seed_aware=lambda t: t.seed_aware.astype(bool)).reset_index(drop=True))


# ------------------------------------------------------------------------------------ the paper's other half
def run_profile(run: ReferenceRun, scores: pd.DataFrame, history: pd.DataFrame | None = None) -> dict:
    """One run beyond its AUC: the AUC per machine type, the normal angles' per-ID IQR (compactness, degrees) and
    the standardised separation of anomalous from normal angles (means over IDs;
    :mod:`asdlib.evaluation.angles`), and with a ``history`` the overfitting diagnostic
    (:func:`asdlib.evaluation.overfitting.overfitting_summary`). ``scores`` is its ``scores.csv``."""
    from asdlib.evaluation.angles import angle_compactness, angle_separation
    from asdlib.evaluation.metrics import per_id_table, summary_table
    from asdlib.evaluation.overfitting import overfitting_summary

    _, loss, factor, seed = parse_run_name(run.name)
    per_type = summary_table(per_id_table(scores)).set_index("machine_type").auc
    row = {"factor": factor, "loss": LOSS_LABELS.get(loss, loss), "seed": seed, "auc": float(per_type["Average"]),
           **{f"auc {t}": float(v) for t, v in per_type.items() if t != "Average"}}
    if "angle" in scores:
        row["normal IQR (°)"] = float(angle_compactness(scores).iqr.mean())
        row["separation"] = float(angle_separation(scores).separation.mean())
    if history is not None:
        fit = overfitting_summary(history)
        row.update(epochs=fit["epochs"], auc_drop=fit["auc_drop"], overfits=fit["overfits"],
                   val_acc_saturated_at=fit["val_acc_saturated_at"])
    return row


def factor_profiles(groups: dict[str, dict[str, list[ReferenceRun]]], load_scores, load_history=None) -> pd.DataFrame:
    """:func:`run_profile` of every ArcFace and Noisy-ArcMix run of :func:`factor_groups`, one row per run."""
    return pd.DataFrame([run_profile(run, load_scores(run), load_history(run) if load_history else None)
                         for losses in groups.values() for loss, runs in losses.items() if loss in LOSS_LABELS
                         for run in runs])


def profile_differences(profiles: pd.DataFrame) -> pd.DataFrame:
    """Per factor, Noisy-ArcMix − ArcFace of every numeric column of :func:`factor_profiles` (means over seeds;
    ``seeds`` says how many of each loss); a machine type a factor does not test is NaN."""
    numeric = [c for c in profiles.columns if c not in ("factor", "loss", "seed", "overfits", "epochs",
                                                         "val_acc_saturated_at")]
    mean = profiles.groupby(["factor", "loss"], sort=False)[numeric].mean()
    count = profiles.groupby(["factor", "loss"], sort=False).seed.count()
    first, second = LOSS_LABELS.values()
    rows = []
    for factor in dict.fromkeys(profiles.factor):
        if (factor, first) in mean.index and (factor, second) in mean.index:
            rows.append({"factor": factor, "seeds": f"{count[factor, first]} + {count[factor, second]}",
                         **(mean.loc[(factor, first)] - mean.loc[(factor, second)]).to_dict()})
    return pd.DataFrame(rows).set_index("factor")


# ------------------------------------------------------------------------------------ the verdict
def _points(value: float) -> str:
    return f"{100 * value:+.2f}"


def _interval(row) -> str:
    low, high = deciding_interval(row)
    return f"[{_points(low)}, {_points(high)}] over {row.interval}"


def _change(row) -> str:
    """The change from the reference with its deciding interval, e.g. ``"change +4.33 [+1.40, +7.20] over seeds
    and clips"``."""
    if pd.isna(row.change_low):
        return f"change {_points(row.change)} (on other test clips, so not paired with the reference)"
    low, high = change_interval(row)
    over = "seeds and clips" if row.change_seed_aware else "clips"
    return f"change {_points(row.change)} [{_points(low)}, {_points(high)}] over {over}"


def _factor_line(row) -> str:
    return f"{row.factor}: {_points(row.estimate)} points, {_interval(row)}, {_change(row)}"


def _metric_verdict(rows: pd.DataFrame, reference) -> list[str]:
    """The lines of one metric: the reference; among factors with several seeds a loss, those that move the
    difference and those that do not; the factors with one seed, which get no verdict (a new seed alone can move a
    difference as far as their clip interval reaches), each with what its clip interval says."""
    name = METRIC_NAMES.get(reference.metric, reference.metric)
    clips = (f" ([{_points(reference.low)}, {_points(reference.high)}] over test clips alone)"
             if reference.seed_aware else "")
    head = (f"**{name}**, Noisy-ArcMix − ArcFace: the reference runs give {_points(reference.estimate)} points, "
            f"95 % interval {_interval(reference)}{clips}.")
    factors = rows[rows.factor != REFERENCE]
    seeded = factors[factors.change_seed_aware.astype(bool)]
    lines = [head, ""]
    verdicts = (("Move it (the interval of its change from the reference, over seeds and clips, excludes 0)", True),
                ("Do not move it (that interval contains 0)", False))
    for label, keep in verdicts if len(seeded) else ():
        chosen = seeded[seeded.moves == keep]
        lines.append(f"- {label}: " + ("none" if chosen.empty else "; ".join(map(_factor_line, chosen.itertuples()))))
    single = factors[~factors.change_seed_aware.astype(bool)]
    if not single.empty:
        def clip_reading(r) -> str:
            if r.moves is None:
                return ""
            return f" (the change's clip interval {'excludes' if r.moves else 'contains'} 0)"
        lines.append("- No verdict, one seed a loss (a second seed is needed): " + "; ".join(
            f"{_factor_line(r)}{clip_reading(r)}" for r in single.itertuples()))
    return lines + [""]


def _seed_check(table: pd.DataFrame) -> list[str]:
    """For factors judged on few seeds: whether every Noisy-ArcMix seed scores above (or below) every ArcFace
    seed, a check that needs no resampling."""
    rows = table[(table.factor != REFERENCE) & table.change_seed_aware.astype(bool) & (table.metric == "auc")]
    if rows.empty:
        return []
    few = int(min(rows.seeds_a.min(), rows.seeds_b.min()))
    chance = math.comb(2 * few, few)  # orderings of few + few seeds; one puts every seed of one loss above
    lines = [f"Few seeds: a bootstrap over n seeds spreads (n − 1)/n of their variance ({few - 1}/{few} with "
             f"{few}), so these intervals over seeds run narrow. A check that needs no resampling, AUC per seed "
             f"(with {few} + {few} seeds and no difference between the losses, every seed of one above every seed "
             f"of the other happens by chance 1 time in {chance // 2}: 1 in {chance} each way):"]
    for r in rows.itertuples():
        a, b = r.per_seed_a, r.per_seed_b
        order = ("every Noisy-ArcMix seed above every ArcFace seed" if min(a) > max(b) else
                 "every Noisy-ArcMix seed below every ArcFace seed" if max(a) < min(b) else "the seeds overlap")
        lines.append(f"- {r.factor}: Noisy-ArcMix {', '.join(f'{100 * v:.1f}' for v in a)} %, ArcFace "
                     f"{', '.join(f'{100 * v:.1f}' for v in b)} %: {order}")
    return lines + [""]


def study_verdict(table: pd.DataFrame) -> str:
    """Markdown read from :func:`study_comparison`'s table: per metric, which factors move the difference and
    which do not, the factors averaged over other machine types, and how many intervals are read at once."""
    reference = {r.metric: r for r in table[table.factor == REFERENCE].itertuples()}
    if not reference:
        return ("No reference runs in the table: without the reference difference no factor can be said to move "
                "it.\n")
    lines = []
    for metric, ref in reference.items():
        lines += _metric_verdict(table[table.metric == metric], ref)
    ref_types = next(iter(reference.values())).machine_types
    other = sorted(set(table.factor[(table.machine_types != ref_types) & (table.factor != REFERENCE)]))
    if other:
        lines += [f"{', '.join(other)} average{'s' if len(other) == 1 else ''} over other machine types "
                  f"({'; '.join(table.machine_types[table.factor == f].iloc[0] for f in other)}) than the "
                  f"reference ({ref_types}): part of its change is the average itself, not the loss.", ""]
    lines += _seed_check(table)
    one_seed = sorted(set(table.factor[~table.seed_aware.astype(bool)]))
    if one_seed:
        lines += [f"{', '.join(one_seed)}: a loss with one seed, so the interval covers the test clips only; a new "
                  "seed alone can move a difference that far (compare the reference's interval over seeds and "
                  "clips with its one over clips).", ""]
    n = int(((table.factor != REFERENCE) & table.change_seed_aware.astype(bool)).sum())  # the judged changes
    lines += [f"These are {n} change intervals judged at once (every factor with a verdict, each metric): about "
              f"one in twenty 95 % intervals misses by chance, so "
              f"about {n / 20:.1f} of them may exclude 0 with no effect behind it; a "
              "factor that moves only one metric, or only barely, needs a second run before it explains anything.",
              ""]
    return "\n".join(lines)

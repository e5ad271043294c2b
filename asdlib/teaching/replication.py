"""Our recipe beside the authors': the differences a replication has to account for (notebook 04).

The authors' recipe is the one of the Noisy-ArcMix repository (Choi & Choi, ICASSP 2024; ``config.yaml``,
``train.py``, ``trainer.py``): AdamW with lr 1e-4 and weight decay 0.01, a cosine schedule over 300 epochs down to
1e-5, batch 64, 10-s clips of all six machine types (41 machine IDs) of the real DCASE2020 development data, plain
BatchNorm. Those are the defaults of :class:`asdlib.training.config.RunConfig`, so :func:`authors_recipe` is the
dataclass itself with the model and loss named (``configs/tastgram_noisy_arcmix.yaml`` is the same preset as a
file; a test keeps the two equal).
"""
from __future__ import annotations

import pandas as pd

from asdlib.data.dcase import ALL_IDS, MACHINE_TYPES
from asdlib.training.config import RunConfig

AUTHORS_DATA = "DCASE2020 Task 2 development + additional training sets (real recordings)"


def authors_recipe(model: str = "tastgram_mfn", loss: str = "noisy_arcmix") -> RunConfig:
    """The Noisy-ArcMix repository's training recipe for ``model`` with ``loss`` (seed 2023, as there)."""
    return RunConfig().replace(model={"name": model}, loss={"name": loss}, train={"seed": 2023})


def _schedule(cfg: RunConfig) -> str:
    t = cfg.train
    return f"cosine over {t.t_max} epochs to {t.eta_min:g}" + (f", after {t.hold_epochs} flat" if t.hold_epochs else "")


def _ids(cfg: RunConfig) -> tuple[int, int]:
    types = cfg.data.machine_types or MACHINE_TYPES
    return len(types), sum(len(ALL_IDS[t]) for t in types)


def recipe_rows(cfg: RunConfig, data: str) -> dict[str, str]:
    """One column of :func:`recipe_table`: what ``cfg`` trains on, and how."""
    t, (n_types, n_ids) = cfg.train, _ids(cfg)
    return {
        "optimiser, learning rate": f"{t.optimizer.replace('adamw', 'AdamW').replace('adam', 'Adam')} {t.lr:g}"
                                    + (f", weight decay {t.weight_decay:g}" if t.weight_decay else ""),
        "schedule": _schedule(cfg),
        "epochs": str(t.epochs),
        "batch": str(t.batch_size),
        "clip": f"{cfg.data.seconds:g} s",
        "classes": f"{n_types} machine types, {n_ids} IDs",
        "BatchNorm statistics": "re-estimated after every epoch" if t.precise_bn else "plain (running averages)",
        "data": data,
    }


def recipe_table(ours: RunConfig, ours_data: str, authors: RunConfig | None = None) -> pd.DataFrame:
    """Rows: the recipe's factors; columns: the authors' and ours; ``differs`` marks the factors that differ."""
    authors = authors or authors_recipe(ours.model.name, ours.loss.name)
    table = pd.DataFrame({"authors' code": recipe_rows(authors, AUTHORS_DATA), "ours": recipe_rows(ours, ours_data)})
    table["differs"] = (table["authors' code"] != table["ours"]).map({True: "yes", False: ""})
    return table


# ------------------------------------------------------------------------------------ reading a difference
METRIC_NAMES = {"auc": "AUC", "pauc": "pAUC", "mauc": "mAUC"}


def deciding_interval(row) -> tuple[float, float]:
    """The interval a verdict rests on: over seeds and clips when both runs have several seeds
    (:func:`asdlib.evaluation.bootstrap.hierarchical_bootstrap`), else over test clips only."""
    if getattr(row, "seed_aware", False):
        return row.seed_low, row.seed_high
    return row.low, row.high


def verdict(row) -> str:
    """One Markdown line for a row of :func:`asdlib.evaluation.bootstrap.hierarchical_bootstrap` (or
    ``paired_bootstrap``): the difference, its interval(s), and what they allow one to say. Only an interval over
    seeds *and* clips supports "higher"/"lower"; a run with one seed gets no verdict, whatever its clip interval."""
    name = METRIC_NAMES.get(row.metric, row.metric)
    clips = f"[{100 * row.low:+.2f}, {100 * row.high:+.2f}] over test clips"
    head = f"- {row.comparison}, {name}: {100 * row.estimate:+.2f} points, 95 % interval {clips}"
    if getattr(row, "seed_aware", None) is None:  # clip-only table
        word = "higher" if row.low > 0 else "lower" if row.high < 0 else "not distinguishable"
        return f"{head}: {word} over these test clips (seed spread not included)"
    if not row.seed_aware:
        single = [n for n, s in ((row.comparison.split(" − ")[0], getattr(row, "seeds_a", 1)),
                                 (row.comparison.split(" − ")[-1], getattr(row, "seeds_b", 1))) if s < 2]
        who = (f"{single[0]} and {single[1]} each have one seed, so their" if len(single) == 2 else
               f"{single[0] if single else 'one side'} has one seed, so its")
        return f"{head}; {who} seed-to-seed spread is unknown: no verdict"
    low, high = deciding_interval(row)
    word = "higher" if low > 0 else "lower" if high < 0 else "not distinguishable"
    return f"{head}, [{100 * low:+.2f}, {100 * high:+.2f}] over seeds and clips: **{word}**"

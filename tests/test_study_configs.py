"""The replication study's configs (configs/study/): each loads, and differs from its reference run's config in
exactly the factor its name says, set to the authors' value (RunConfig's defaults are the Noisy-ArcMix recipe)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from asdlib.data.dcase import MACHINE_TYPES
from asdlib.training.config import RunConfig, to_plain

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STUDY = sorted((CONFIGS / "study").glob("*.yaml"))
NAME = re.compile(r"^(?P<model>[a-z_]+)-(?P<loss>[a-z_]+)-(?P<factor>[a-z0-9_]+)-s(?P<seed>\d+)$")
AUTHORS = to_plain(RunConfig())
BUDGET = 60  # epochs of the long schedule and of the AdamW run

FACTORS = {  # factor -> the fields it changes and their values
    "long60": {"train.epochs": BUDGET, "train.t_max": BUDGET},
    "adamw": {**{f"train.{k}": AUTHORS["train"][k] for k in ("optimizer", "lr", "weight_decay", "eta_min")},
              "train.epochs": BUDGET, "train.t_max": BUDGET},
    "batch64": {"train.batch_size": AUTHORS["train"]["batch_size"]},
    "clip2s": {"data.seconds": 2.0},  # the whole clip of the default procedural dataset
    "no_precise_bn": {"train.precise_bn": AUTHORS["train"]["precise_bn"]},
    "six_types": {"data.machine_types": list(MACHINE_TYPES)},
    "clips30": {"data.train_clips_per_id": 30},  # data scarcity: a quarter of the 120 training clips per ID
    "clips60": {"data.train_clips_per_id": 60},
}
PLANNED = {f"tastgram_mfn-{loss}-{factor}-s{seed}" for loss in ("arcface", "noisy_arcmix") for factor in FACTORS
           for seed in ((0,) if factor == "six_types" else (0, 1))}  # six_types: one seed planned so far


def flat(cfg: RunConfig) -> dict:
    return {f"{section}.{key}": value for section, values in to_plain(cfg).items() for key, value in values.items()}


def test_every_planned_run_has_a_config_and_nothing_else_is_there():
    assert {p.stem for p in STUDY} == PLANNED


@pytest.mark.parametrize("path", STUDY, ids=lambda p: p.stem)
def test_study_config_differs_from_its_reference_in_exactly_its_factor(path):
    match = NAME.match(path.stem)
    assert match, f"{path.name}: expected <model>-<loss>-<factor>-s<seed>.yaml"
    assert match["factor"] in FACTORS, f"{path.name}: unknown factor {match['factor']!r}; known: {sorted(FACTORS)}"
    reference = CONFIGS / "reference" / f"{match['model']}-{match['loss']}-s{match['seed']}.yaml"
    study, base = flat(RunConfig.from_yaml(path)), flat(RunConfig.from_yaml(reference))
    changed = {key: study[key] for key in study if study[key] != base[key]}
    assert changed == FACTORS[match["factor"]], f"{path.name} vs {reference.name}"
    assert study["model.name"] == match["model"] and study["loss.name"] == match["loss"]
    assert study["train.seed"] == int(match["seed"])

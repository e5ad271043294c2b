"""Run configs: every preset loads, YAML values are type-checked with errors that name the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from asdlib.training.config import RunConfig, to_plain
from asdlib.nn.models import MODEL_NAMES

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_preset_loads_and_names_a_known_model(path):
    cfg = RunConfig.from_yaml(path)
    assert cfg.model.name in MODEL_NAMES
    assert RunConfig.from_dict(to_plain(cfg)) == cfg  # round trip through plain types (checkpoints)


def test_presets_reproduce_the_original_recipes():
    paper = RunConfig.from_yaml(CONFIGS[0].parent / "stgram_mfn_paper.yaml")
    assert (paper.train.optimizer, paper.train.weight_decay, paper.train.batch_size) == ("adam", 0.0, 128)
    assert (paper.train.t_max, paper.train.hold_epochs, paper.train.eta_min) == ("iters_per_epoch", 20, 0.0)
    na = RunConfig.from_yaml(CONFIGS[0].parent / "tastgram_noisy_arcmix.yaml")
    assert (na.loss.name, na.loss.alpha, na.train.optimizer, na.train.weight_decay) == ("noisy_arcmix", 0.5, "adamw",
                                                                                      0.01)
    assert (na.train.t_max, na.train.eta_min, na.train.batch_size, na.train.seed) == (300, 1e-5, 64, 2023)
    assert (na.model.m, na.model.s) == (0.7, 30.0)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_string_lr_from_yaml_is_converted(tmp_path):
    # PyYAML reads 1e-4 (no dot) as a string: the original code needed float() casts for exactly this
    cfg = RunConfig.from_yaml(write(tmp_path, "train:\n  lr: 1e-4\n"))
    assert cfg.train.lr == 1e-4 and isinstance(cfg.train.lr, float)


@pytest.mark.parametrize("text, message", [
    ("train:\n  lr: fast\n", "train.lr: expected float, got 'fast'"),
    ("train:\n  epochs: 2.5\n", "train.epochs: expected int"),
    ("train:\n  bogus: 1\n", "unknown key(s) ['bogus']"),
    ("loss:\n  name: focal\n", "loss.name must be one of"),
    ("optimiser:\n  lr: 1\n", "unknown section(s) ['optimiser']"),
    ("train:\n  t_max: forever\n", "train.t_max must be an integer or 'iters_per_epoch'"),
    ("train:\n  val_fraction: 0.7\n", "train.val_fraction must be in [0, 0.5)"),
    ("train:\n  batch_size: 0\n", "train.batch_size must be positive"),
])
def test_bad_values_name_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        RunConfig.from_yaml(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_overrides_use_dotted_keys(tmp_path):
    cfg = RunConfig.from_yaml(write(tmp_path, "train:\n  epochs: 3\n"), ["train.epochs=5", "data.machine_types=fan,valve"])
    assert cfg.train.epochs == 5 and cfg.data.machine_types == ("fan", "valve")
    with pytest.raises(ValueError, match="section.key=value"):
        RunConfig.from_yaml(write(tmp_path, ""), ["epochs=5"])


def test_missing_file_says_where_presets_live(tmp_path):
    with pytest.raises(FileNotFoundError, match="configs/"):
        RunConfig.from_yaml(tmp_path / "nope.yaml")

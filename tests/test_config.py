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
    ("train:\n  val_fraction: 0.7\n", "train.val_fraction is a fraction of the training clips, must be at least 0 "
                                     "and below 0.5, got 0.7"),
    ("train:\n  batch_size: 0\n", "train.batch_size is clips per batch, must be at least 1, got 0"),
    # issue 21, cause 4: every value range-checked, NaN included
    ("data:\n  seconds: .nan\n", "data.seconds is a clip length in seconds, must be at least 0.05"),
    ("model:\n  m: nan\n", "model.m is an angular margin in radians, must be at least 0 and below 1.5708, got nan"),
    ("data:\n  sample_rate: 0\n", "data.sample_rate is a sample rate in Hz, must be at least 1000"),
    ("data:\n  sample_rate: -16000\n", "data.sample_rate is a sample rate in Hz"),
    ("train:\n  device: tpu\n", "train.device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    ("train:\n  num_workers: -1\n", "train.num_workers is DataLoader worker processes (0 = none), must be at least 0"),
    ("train:\n  t_max: 0\n", "train.t_max is the cosine period in epochs, must be at least 1, got 0"),
    ("train:\n  select_every: 0\n", "train.select_every is every how many epochs, must be at least 1, got 0"),
    ("train:\n  lr: .inf\n", "train.lr is a learning rate, must be at least 1e-12, got inf"),
    ("model:\n  name: resnet\n", "model.name must be one of stgram_mfn_paper, stgram_mfn"),
    ("data:\n  machine_types: [fan, drill]\n", "data.machine_types must be one of fan, pump"),
    ("data:\n  cache_dtype: int8\n", "data.cache_dtype must be one of int16, float16, float32"),
    ("loss:\n  alpha: 0\n", "loss.alpha is the mixup Beta(alpha, alpha) parameter"),
    # the YAML itself: tabs, Python tags, duplicate keys, aliases, size
    ("train:\n\tlr: 1\n", "line 2, column 1: a tab character; YAML indents with spaces only"),
    ("train: !!python/object/apply:os.system [echo hi]\n",
     "line 1, column 8: the tag !!python/object/apply:os.system is not allowed"),
    ("train:\n  lr: 0.1\n  epochs: 3\n  lr: 0.2\n", "line 4: duplicate key 'lr' (the second would silently "
                                                    "replace the first); keep one"),
    ("train:\n  epochs: 3\ntrain:\n  epochs: 4\n", "line 3: duplicate key 'train'"),
    ("train: [1, 2\n", "is it valid YAML?"),
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


def billion_laughs(levels: int = 9) -> str:
    """A 1-kB YAML whose aliases of aliases expand to 9**levels strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"
    for prev, name in zip(names[:levels - 1], names[1:levels]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_at_once(tmp_path):
    path = write(tmp_path, billion_laughs())
    assert path.stat().st_size < 1200
    with pytest.raises(ValueError, match=f"{path}: more than 16 aliases"):
        RunConfig.from_yaml(path)
    ok = write(tmp_path, "defaults: &d {epochs: 3}\ntrain: *d\n")  # a few aliases are fine (then: unknown section)
    with pytest.raises(ValueError, match=r"unknown section\(s\) \['defaults'\]"):
        RunConfig.from_yaml(ok)


def test_oversized_and_binary_files_are_refused(tmp_path):
    big = write(tmp_path, "train:\n" + "  # padding\n" * 7000)
    with pytest.raises(ValueError, match=r"bytes, more than a config needs \(64000\)"):
        RunConfig.from_yaml(big)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not a text file"):
        RunConfig.from_yaml(binary)


def test_overrides_are_checked_like_the_file(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(ValueError, match=r"train\.t_max is the cosine period in epochs, must be at least 1"):
        RunConfig.from_yaml(path, ["train.t_max=0"])
    with pytest.raises(ValueError, match="the tag !!python/name:os.system is not allowed"):
        RunConfig.from_yaml(path, ["train.lr=!!python/name:os.system"])


def test_checkpoint_configs_are_range_checked_too():
    plain = to_plain(RunConfig())
    plain["train"]["select_every"] = 0
    with pytest.raises(ValueError, match=r"best\.pt: train\.select_every"):
        RunConfig.from_dict(plain, source="best.pt")

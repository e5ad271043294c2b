"""Run configuration: one small frozen dataclass per concern, read from and written to YAML.

A preset in ``configs/`` has four sections, ``data``, ``model``, ``loss`` and ``train``, each mapping onto the
dataclass of the same name; anything left out keeps its default. Values are type-checked when read, so a YAML
slip such as ``lr: 1e-4`` (PyYAML reads that as the *string* "1e-4", the pitfall the STgram-MFN code papered over
with ``float()``) is accepted only when it converts cleanly, and ``lr: fast`` fails with the file and key named.
Every value is then range-checked (``lr: .nan``, ``sample_rate: 0``, ``device: tpu``, ``t_max: 0`` are refused
the same way). The YAML is read with a safe loader that refuses tags (``!!python/...``), duplicate keys, files
over 64 kB and more than a few aliases (a "billion laughs" file), each with the file and line named.
Overrides from the command line use dotted keys: ``train.epochs=5 model.seconds=2``.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml


@dataclass(frozen=True)
class DataConfig:
    """Which clips, how long, and where the decoded-waveform cache lives."""

    machine_types: tuple[str, ...] = ()  # empty = every type found in the data folder
    seconds: float = 10.0
    sample_rate: int = 16000
    cache_dir: str = "data/cache"
    cache_dtype: str = "int16"
    train_clips_per_id: int = 0  # 0 = every training clip; N = the first N of each machine ID (data scarcity)


@dataclass(frozen=True)
class ModelConfig:
    """The network (one of ``asdlib.nn.models.MODEL_NAMES``) and its ArcFace head (margin ``m``, scale ``s``)."""

    name: str = "stgram_mfn"
    m: float = 0.7
    s: float = 30.0
    sub: int = 1


@dataclass(frozen=True)
class LossConfig:
    """The training criterion (``ce``, ``arcface``, ``arcmix``, ``noisy_arcmix``) and the mixup α."""

    name: str = "arcface"
    alpha: float = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, cosine schedule, batches, model selection and speed options."""

    epochs: int = 300
    batch_size: int = 64
    optimizer: str = "adamw"  # "adam" | "adamw" | "sgd" (momentum 0.9; not in the papers)
    lr: float = 1e-4
    weight_decay: float = 0.01
    t_max: int | str = 300  # cosine period in epochs, or "iters_per_epoch" (STgram-MFN paper-era quirk)
    eta_min: float = 1e-5
    hold_epochs: int = 0  # constant lr for this many epochs before the cosine starts (STgram-MFN: 20)
    drop_last: bool = False
    seed: int = 2023
    val_fraction: float = 0.05  # held-out normal *training* clips, stratified by machine ID
    selection: str = "val_loss"  # "val_loss" (honest) | "peek_test_auc" (the original STgram-MFN, leaks)
    select_every: int = 1
    precise_bn: int = 0  # after each epoch, recompute BatchNorm statistics over this many training batches (0: off)
    device: str = "auto"  # "auto" = cuda -> mps -> cpu
    amp: str = "auto"  # "auto" (bf16 on CUDA, off elsewhere) | "off" | "bf16" | "fp16"
    channels_last: bool = False
    compile: bool = False
    num_workers: int = 0
    threads: int = 0  # torch CPU threads; 0 = leave PyTorch's default


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs; ``asdict(cfg)`` is stored in every checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
        """Read a preset and apply ``section.key=value`` overrides; errors name the file and the key."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found; presets live in configs/ (e.g. configs/smoke.yaml)")
        raw = read_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected sections data/model/loss/train, got {type(raw).__name__}")
        for item in overrides:
            _apply_override(raw, item)
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, *, source: str = "config") -> RunConfig:
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {sorted(unknown)}; expected data, model, loss, train")
        sections = typing.get_type_hints(cls)
        parts = {name: _build(kind, raw.get(name) or {}, f"{source}: {name}") for name, kind in sections.items()}
        cfg = cls(**parts)
        cfg.validate(source)
        return cfg

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(to_plain(self), sort_keys=False))

    def replace(self, **sections: dict) -> RunConfig:
        """``cfg.replace(train={"epochs": 3})``: a copy with some fields of some sections changed."""
        return dataclasses.replace(self, **{k: replace(getattr(self, k), **v) for k, v in sections.items()})

    def validate(self, source: str = "config") -> None:
        """Check what types alone cannot: choices, ranges, finite numbers; the error names the key."""
        from asdlib.data.cache import DTYPES
        from asdlib.data.dcase import MACHINE_TYPES
        from asdlib.nn.models import MODEL_NAMES

        d, t = self.data, self.train
        for key, value, allowed in (
                ("model.name", self.model.name, MODEL_NAMES), ("data.cache_dtype", d.cache_dtype, DTYPES),
                ("train.optimizer", t.optimizer, ("adam", "adamw", "sgd")),
                ("train.selection", t.selection, ("val_loss", "peek_test_auc")),
                ("train.amp", t.amp, ("auto", "off", "bf16", "fp16")),
                ("loss.name", self.loss.name, ("ce", "arcface", "arcmix", "noisy_arcmix"))):
            _choice(source, key, value, allowed)
        for mtype in d.machine_types:
            _choice(source, "data.machine_types", mtype, MACHINE_TYPES)
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", t.device):
            raise ValueError(f"{source}: train.device must be auto, cpu, cuda, cuda:N or mps, got {t.device!r}")
        if isinstance(t.t_max, str) and t.t_max != "iters_per_epoch":
            raise ValueError(f"{source}: train.t_max must be an integer or 'iters_per_epoch', got {t.t_max!r}")
        for key, value, low, high, what in _ranges(self):
            _in_range(source, key, value, low, high, what)


def _ranges(cfg: RunConfig) -> list[tuple[str, float, float, float | None, str]]:
    """``(key, value, low, high, meaning)``: ``low <= value`` (``< high`` when given), finite."""
    d, m, t = cfg.data, cfg.model, cfg.train
    ranges = [("data.seconds", d.seconds, 0.05, 3600.0, "a clip length in seconds"),
              ("data.sample_rate", d.sample_rate, 1000, 384001, "a sample rate in Hz"),
              ("data.train_clips_per_id", d.train_clips_per_id, 0, None, "training clips per machine ID (0 = all)"),
              ("model.m", m.m, 0.0, math.pi / 2, "an angular margin in radians"),
              ("model.s", m.s, 1e-3, None, "a logit scale"), ("model.sub", m.sub, 1, 65, "sub-centres per class"),
              ("loss.alpha", cfg.loss.alpha, 1e-6, None, "the mixup Beta(alpha, alpha) parameter"),
              ("train.epochs", t.epochs, 1, None, "a number of epochs"),
              ("train.batch_size", t.batch_size, 1, None, "clips per batch"),
              ("train.lr", t.lr, 1e-12, None, "a learning rate"), ("train.eta_min", t.eta_min, 0.0, None,
                                                                   "the final learning rate"),
              ("train.weight_decay", t.weight_decay, 0.0, None, "a weight decay"),
              ("train.hold_epochs", t.hold_epochs, 0, None, "a number of epochs"),
              ("train.seed", t.seed, 0, 2**63, "a seed"), ("train.val_fraction", t.val_fraction, 0.0, 0.5,
                                                           "a fraction of the training clips"),
              ("train.select_every", t.select_every, 1, None, "every how many epochs"),
              ("train.precise_bn", t.precise_bn, 0, None, "a number of batches (0 = off)"),
              ("train.num_workers", t.num_workers, 0, 257, "DataLoader worker processes (0 = none)"),
              ("train.threads", t.threads, 0, 4097, "CPU threads (0 = PyTorch's default)")]
    if not isinstance(t.t_max, str):
        ranges.append(("train.t_max", t.t_max, 1, None, "the cosine period in epochs"))
    return ranges


def _in_range(source: str, key: str, value: float, low: float, high: float | None, what: str) -> None:
    if math.isfinite(value) and low <= value and (high is None or value < high):
        return
    bounds = f"at least {low:g}" + (f" and below {high:g}" if high is not None else "")
    raise ValueError(f"{source}: {key} is {what}, must be {bounds}, got {value!r}")


def to_plain(cfg: RunConfig) -> dict:
    """Nested dict of plain Python types (tuples as lists), safe for YAML and ``torch.load(weights_only=True)``."""
    def plain(v):
        return [plain(x) for x in v] if isinstance(v, (tuple, list)) else v
    return {section: {k: plain(v) for k, v in values.items()} for section, values in asdict(cfg).items()}


def _apply_override(raw: dict, item: str) -> None:
    key, sep, value = item.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot:
        raise ValueError(f"override {item!r} must look like section.key=value, e.g. train.epochs=5")
    raw.setdefault(section, {})
    if not isinstance(raw[section], dict):
        raise ValueError(f"override {item!r}: section {section!r} is not a mapping")
    raw[section][name] = _parse_yaml(value, f"override {item!r}")


def _build(cls: type, values: dict, where: str):
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of keys, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()})


def _coerce(value, hint, where: str):
    """Convert a YAML value to the annotated type, or raise naming the key, the value and the expected type."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        try:
            return _convert(value, option)
        except (TypeError, ValueError):
            continue
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ValueError(f"{where}: expected {names}, got {value!r} ({type(value).__name__})")


def _convert(value, kind):
    if typing.get_origin(kind) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise TypeError
        return tuple(str(x).strip() for x in items if str(x).strip())
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if kind is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
            raise TypeError
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError
        return float(value)  # also "1e-4" strings, which PyYAML leaves unparsed
    if kind is str and isinstance(value, str):
        return value
    raise TypeError


def _choice(source: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{source}: {key} must be one of {', '.join(allowed)}, got {value!r}")


# ------------------------------------------------------------------------------------------------ safe YAML
MAX_YAML_BYTES, MAX_YAML_ALIASES = 64_000, 16


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys and more than :data:`MAX_YAML_ALIASES` aliases (``*name``):
    a few aliases of aliases expand into billions of values ("billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases = getattr(self, "aliases", 0) + 1
            if self.aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name); a config needs none")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r} (the second "
                                     "would silently replace the first); keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path):
    """A YAML config file as plain Python values (safe loader, size and alias limits, no duplicate keys)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ValueError(f"{path}: {size} bytes, more than a config needs ({MAX_YAML_BYTES}); is it a config?")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (UTF-8); a config is YAML text") from None
    return _parse_yaml(text, str(path))


def _parse_yaml(text: str, source: str):
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise ValueError(f"{source}: {_yaml_problem(e)}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """One line saying what is wrong with a YAML text and where."""
    if type(error) is yaml.YAMLError:  # ours: duplicate keys, too many aliases
        return str(error)
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = str(getattr(error, "problem", None) or error)
    if r"'\t'" in problem:
        return f"{where}a tab character; YAML indents with spaces only"
    if "constructor for the tag" in problem:
        tag = re.search(r"'([^']+)'", problem)
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!") if tag else "used"
        return f"{where}the tag {name} is not allowed: a config holds plain values (numbers, strings, lists)"
    return f"{where}{problem.splitlines()[0]}; is it valid YAML?"

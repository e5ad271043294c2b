"""Reference runs shipped with asdlib: converged trainings on the default procedural dataset.

Training every model of the series long enough to converge takes hours on a CPU, so asdlib ships the results
of those trainings as package data (``asdlib/reference_runs/``), the way pretrained-model tutorials do: on a
CPU the notebooks load them, on a GPU (or by choice) they train from scratch, and one command reproduces each.

Every run folder holds ``config.yaml`` (the :class:`~asdlib.training.config.RunConfig`), ``history.csv`` (per epoch:
training loss, clean validation loss and accuracy, and, for information only, test AUC/pAUC and the median
angle of normal and anomalous test clips to their class centre), ``scores.csv`` (every test clip: the three
anomaly scores and the angle), ``results.csv`` / ``summary.csv`` (the DCASE tables), and for one seed per
model × loss the selected checkpoint ``best.pt`` (fp16 storage) and the test embeddings ``embeddings.npy``.
The scores of a run with a checkpoint are computed from exactly the weights that ship. ``registry.json`` lists
each run with its dataset, epochs, selected epoch, metrics, the sha256 and size of every file, and the command
that reproduces it.

    python -m asdlib pretrained list [--json]     # the runs and their results
    python -m asdlib pretrained verify            # hashes, checkpoints, scores re-computed on regenerated clips
    python -m asdlib pretrained train NAME        # reproduce a run from scratch
"""
from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference_runs"
REGISTRY = "registry.json"
SCORE_COLUMNS = ("arcface_ce", "margin_free", "cosine_distance")
VERIFY_TOLERANCE = 1e-4  # absolute, on every recorded score


class ReferenceRunError(RuntimeError):
    """A shipped file is missing or corrupted, or a run is unknown; the message names the run and the fix."""


@dataclass(frozen=True)
class ReferenceRun:
    """One entry of the registry; ``path`` is the folder with its files."""

    name: str
    model: str
    loss: str
    seed: int
    epochs: int
    selected_epoch: int
    auc: float
    pauc: float
    mauc: float
    path: Path
    dataset: dict
    files: dict
    info: dict = field(default_factory=dict)  # per-type metrics, timing, machine, command, plateau

    @property
    def has_checkpoint(self) -> bool:
        return "best.pt" in self.files

    def summary(self) -> dict:
        """The JSON row of ``pretrained list --json``."""
        return {"name": self.name, "model": self.model, "loss": self.loss, "seed": self.seed,
                "epochs": self.epochs, "selected_epoch": self.selected_epoch, "auc": self.auc, "pauc": self.pauc,
                "mauc": self.mauc, "checkpoint": self.has_checkpoint, "path": str(self.path),
                "dataset": self.dataset, **self.info}


# ------------------------------------------------------------------------------------------------- the registry
def _read_registry(root: Path) -> dict:
    path = root / REGISTRY
    if not path.is_file():
        raise ReferenceRunError(f"{path} not found: this asdlib has no reference runs; reinstall asdlib from the "
                                "repository (pip install --force-reinstall 'asdlib @ git+...')")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReferenceRunError(f"{path} is not valid JSON ({err}); reinstall asdlib") from None


def registry(root: str | Path | None = None) -> dict[str, ReferenceRun]:
    """Every shipped run by name, in the registry's order."""
    root = Path(root) if root is not None else REFERENCE_DIR
    raw = _read_registry(root)
    runs = {}
    for name, entry in raw["runs"].items():
        keys = ("model", "loss", "seed", "epochs", "selected_epoch", "auc", "pauc", "mauc", "files")
        runs[name] = ReferenceRun(name=name, **{k: entry[k] for k in keys}, path=root / name,
                                  dataset=raw["dataset"], info={k: v for k, v in entry.items() if k not in keys})
    return runs


def get(name: str, root: str | Path | None = None) -> ReferenceRun:
    """The registry entry of ``name``; an unknown name lists the known ones."""
    runs = registry(root)
    if name not in runs:
        raise ReferenceRunError(f"unknown reference run {name!r}; known: {', '.join(runs)}")
    return runs[name]


def find(model: str, loss: str, *, checkpoint: bool = False, root: str | Path | None = None) -> list[ReferenceRun]:
    """The runs of one model × loss (all seeds, lowest seed first); ``checkpoint`` keeps those with ``best.pt``."""
    runs = [r for r in registry(root).values() if (r.model, r.loss) == (model, loss)
            and (r.has_checkpoint or not checkpoint)]
    return sorted(runs, key=lambda r: r.seed)


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fix(name: str) -> str:
    return (f"reinstall asdlib (pip install --force-reinstall from the repository; `git checkout "
            f"asdlib/reference_runs` in a clone) or retrain it: python -m asdlib pretrained train {name}")


def check_file(run: ReferenceRun, file: str) -> Path:
    """The path of one shipped file after checking its size and sha256; raises naming the run and the fix."""
    path = run.path / file
    expected = run.files.get(file)
    if expected is None:
        raise ReferenceRunError(f"reference run {run.name} ships no {file} (it has {', '.join(run.files)})")
    if not path.is_file():
        raise ReferenceRunError(f"reference run {run.name}: {path} is missing; {_fix(run.name)}")
    if path.stat().st_size != expected["bytes"] or sha256(path) != expected["sha256"]:
        raise ReferenceRunError(f"reference run {run.name}: {path} is corrupted (its size or sha256 differs "
                                f"from the registry); {_fix(run.name)}")
    return path


def generator_mismatch(run: ReferenceRun) -> str | None:
    """A message when this asdlib's procedural generator differs from the one the run was trained on."""
    from asdlib.data.synth import GENERATOR_VERSION

    trained = run.dataset["generator_version"]
    if trained == GENERATOR_VERSION:
        return None
    return (f"reference run {run.name} was trained on data of asdlib.data.synth version {trained}, but this asdlib "
            f"generates version {GENERATOR_VERSION}: its scores do not describe today's clips. Retrain and "
            f"re-ship it (python -m asdlib pretrained train {run.name}), never mix the two")


def _warn_generator(run: ReferenceRun) -> None:
    message = generator_mismatch(run)
    if message:
        warnings.warn(message, stacklevel=3)


# ---------------------------------------------------------------------------------------------------- loading
def load_model(name: str, *, device: str | torch.device = "cpu", root: str | Path | None = None):
    """The run's selected checkpoint as a model in eval mode (``weights_only=True``, fp16 storage -> fp32)."""
    from asdlib.training.checkpoints import load_model as load_checkpoint_model

    run = get(name, root)
    if not run.has_checkpoint:
        with_ckpt = [r.name for r in find(run.model, run.loss, checkpoint=True, root=root)]
        raise ReferenceRunError(f"reference run {name} ships no checkpoint (one seed per model × loss does): "
                                f"use {' or '.join(with_ckpt) or 'another run'}")
    _warn_generator(run)
    return load_checkpoint_model(check_file(run, "best.pt"), map_location=device)


def load_history(name: str, root: str | Path | None = None) -> pd.DataFrame:
    """Per-epoch ``history.csv``: ``epoch, lr, loss, acc, val_loss, val_acc, test_auc, test_pauc, angle_*``…"""
    run = get(name, root)
    _warn_generator(run)
    return pd.read_csv(check_file(run, "history.csv"))


def load_scores(name: str, *, data: str | Path | None = None, root: str | Path | None = None) -> pd.DataFrame:
    """Every test clip's scores and angle; with ``data`` (the dataset folder) also its ``path`` for listening."""
    run = get(name, root)
    _warn_generator(run)
    scores = pd.read_csv(check_file(run, "scores.csv"))
    if data is not None:
        scores.insert(0, "path", [str(Path(data) / f) for f in scores.file])
    return scores


def load_table(name: str, table: str = "summary", root: str | Path | None = None) -> pd.DataFrame:
    """``summary`` (per type + Average) or ``results`` (per machine ID), as ``evaluate`` writes them."""
    return pd.read_csv(check_file(get(name, root), f"{table}.csv"))


def load_embeddings(name: str, root: str | Path | None = None) -> np.ndarray:
    """``(N, 128)`` float32 test embeddings, row ``i`` = row ``i`` of :func:`load_scores`."""
    return np.load(check_file(get(name, root), "embeddings.npy")).astype(np.float32)


def load_config(name: str, root: str | Path | None = None):
    from asdlib.training.config import RunConfig

    return RunConfig.from_yaml(check_file(get(name, root), "config.yaml"))


# ---------------------------------------------------------------------------------------------- convergence
def plateau_gap(val_loss, *, last: float = 0.2) -> float:
    """How far above its minimum the validation loss stays over the last fifth of training:
    ``mean(val_loss[last 20 %]) / min(val_loss) − 1`` (0.05 = within 5 % of the minimum). The mean, not the
    worst epoch: the loss on a few hundred held-out clips moves by several % from one epoch to the next."""
    values = np.asarray(val_loss, dtype=float)
    tail = values[-max(1, int(round(last * len(values)))):]
    return float(tail.mean() / values.min() - 1)


# ---------------------------------------------------------------------------------------------- verification
def _verify_slice(run: ReferenceRun, work: Path, per_label: int) -> pd.DataFrame:
    """Regenerate the first ``per_label`` normal and anomalous test clips of each development ID, score them."""
    from asdlib.data.cache import build_cache
    from asdlib.data.index import index_dataset
    from asdlib.data.dcase import DEV_IDS
    from asdlib.experiment import score_dataset
    from asdlib.data.synth import _write_job

    cfg, ds = load_config(run.name, root=run.path.parent), run.dataset
    params = {"seed": ds["seed"], "seconds": ds["seconds"], "sr": ds["sr"], "difficulty": ds["difficulty"]}
    data = work / "data"
    for mtype in cfg.data.machine_types:
        (data / mtype / "test").mkdir(parents=True, exist_ok=True)
        for mid in DEV_IDS[mtype]:
            for label in ("normal", "anomaly"):
                for number in range(per_label):
                    _write_job((mtype, mid, "test", label, number), str(data), params)
    index = index_dataset(data)
    cache = build_cache(index, sr=cfg.data.sample_rate, seconds=cfg.data.seconds, cache_dir=work / "cache",
                        dtype=cfg.data.cache_dtype, progress=False)
    model = load_model(run.name, root=run.path.parent)
    scores = score_dataset(model, cache, np.arange(len(cache.index)), batch_size=64, progress=False)
    scores["file"] = [Path(p).relative_to(data).as_posix() for p in scores.path]
    return scores


def verify(names: list[str] | None = None, *, root: str | Path | None = None, per_label: int = 1,
           progress: bool = True) -> list[str]:
    """Check every (or the named) run: file hashes, generator version, and for runs with a checkpoint the
    recorded scores of a deterministic slice of the test clips, regenerated and re-scored (``VERIFY_TOLERANCE``).
    Returns the problems (empty when all is well)."""
    from tqdm.auto import tqdm

    runs = registry(root)
    chosen = [get(n, root) for n in names] if names else list(runs.values())
    problems = []
    for run in tqdm(chosen, desc="verify", disable=not progress):
        try:
            message = generator_mismatch(run)
            if message:
                raise ReferenceRunError(message)
            for file in run.files:
                check_file(run, file)
            if run.has_checkpoint:
                with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fresh = _verify_slice(run, Path(tmp), per_label)
                recorded = load_scores(run.name, root=root).set_index("file").loc[fresh.file]
                worst = max(float(np.abs(fresh[c].to_numpy() - recorded[c].to_numpy()).max()) for c in SCORE_COLUMNS)
                if not worst <= VERIFY_TOLERANCE:
                    raise ReferenceRunError(f"reference run {run.name}: scores of {len(fresh)} regenerated test "
                                            f"clips differ from scores.csv by up to {worst:.3g} (> "
                                            f"{VERIFY_TOLERANCE:g}); {_fix(run.name)}")
        except (ReferenceRunError, OSError, ValueError, KeyError) as err:
            problems.append(f"{run.name}: {err}")
    return problems


# ------------------------------------------------------------------------------------------- training, shipping
def default_data() -> Path:
    """Where ``pretrained train`` looks for (and generates) the default procedural dataset."""
    from asdlib.teaching.paths import repo_root

    return repo_root() / "data" / "synth" / "default"


def ensure_reference_data(run: ReferenceRun, data: str | Path | None = None) -> Path:
    """The dataset the run was trained on, generated if missing (refuses a folder holding other data)."""
    from asdlib.data.synth import generate_dataset

    ds, data = run.dataset, Path(data) if data is not None else default_data()
    generate_dataset(data, size=ds["size"], seed=ds["seed"], n_test=(ds["n_test_normal"], ds["n_test_anomaly"]),
                     workers=2)
    return data


def reproduce(name: str, *, data: str | Path | None = None, out: str | Path | None = None,
              progress: bool = True, root: str | Path | None = None) -> dict:
    """Train ``name`` from scratch with its shipped config on its dataset, evaluate it, compare with the record."""
    from asdlib.experiment import evaluate_run, train_from_config
    from asdlib.teaching.paths import repo_root

    run = get(name, root)
    _warn_generator(run)
    data = ensure_reference_data(run, data)
    out = Path(out) if out is not None else repo_root() / "data" / "runs" / "reference" / name
    train_from_config(load_config(name, root), data, out, progress=progress, track_test=True)
    result = evaluate_run(out, data=data, quiet=True)
    avg = result["summary"].query("machine_type == 'Average'").iloc[0]
    if progress:
        print(f"{name}: recorded AUC {100 * run.auc:.2f} / pAUC {100 * run.pauc:.2f} %, "
              f"reproduced {100 * avg.auc:.2f} / {100 * avg.pauc:.2f} % ({out})")
    return {"run_dir": out, "auc": float(avg.auc), "pauc": float(avg.pauc)}


def _half_checkpoint(src: Path, dst: Path) -> None:
    """Copy an asdlib checkpoint with its floating-point weights stored as fp16 (half the size)."""
    from asdlib.training.checkpoints import load_checkpoint

    ckpt = load_checkpoint(src)
    ckpt["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    keep = {k: ckpt[k] for k in ("format", "version", "model", "label_order", "state_dict", "run_config",
                                 "selected")}
    torch.save(keep, dst)


def ship(name: str, run_dir: str | Path, *, data: str | Path, checkpoint: bool, command: str,
         root: str | Path | None = None) -> ReferenceRun:
    """Package a finished run (``train_from_config(..., track_test=True)``) as reference run ``name``.

    With ``checkpoint``, ``best.pt`` is stored in fp16 and the test clips are re-scored from exactly those
    weights (and their embeddings saved); otherwise the scores come from ``best.pt`` as trained.
    """
    from asdlib.training.checkpoints import load_checkpoint
    from asdlib.training.checkpoints import load_model as load_checkpoint_model
    from asdlib.training.config import RunConfig
    from asdlib.experiment import prepare_data, score_dataset
    from asdlib.evaluation.metrics import per_id_table, summary_table

    root = Path(root) if root is not None else REFERENCE_DIR
    run_dir, data = Path(run_dir), Path(data)
    folder = root / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    cfg = RunConfig.from_yaml(run_dir / "config.yaml")
    cfg.to_yaml(folder / "config.yaml")
    history = pd.read_csv(run_dir / "history.csv")
    history.to_csv(folder / "history.csv", index=False)
    if checkpoint:
        _half_checkpoint(run_dir / "best.pt", folder / "best.pt")
    model = load_checkpoint_model(folder / "best.pt" if checkpoint else run_dir / "best.pt")
    cache, _, _, test_rows = prepare_data(data, cfg, progress=False)
    scores, embeddings = score_dataset(model, cache, test_rows, batch_size=64, progress=False,
                                       return_embeddings=True)
    scores.insert(0, "file", [Path(p).resolve().relative_to(data.resolve()).as_posix() for p in scores.path])
    scores = scores.drop(columns=[c for c in ("path", "split") if c in scores])
    scores.to_csv(folder / "scores.csv", index=False, float_format="%.8g")
    if checkpoint:
        np.save(folder / "embeddings.npy", embeddings.astype(np.float16))
    per_id = per_id_table(scores)
    summary = summary_table(per_id)
    per_id.to_csv(folder / "results.csv", index=False)
    summary.to_csv(folder / "summary.csv", index=False)
    manifest = json.loads((data / "dataset.json").read_text())
    selected = load_checkpoint(run_dir / "best.pt")["selected"]
    avg = summary.set_index("machine_type").loc["Average"]
    entry = {
        "model": cfg.model.name, "loss": cfg.loss.name, "seed": cfg.train.seed, "epochs": int(len(history)),
        "selected_epoch": int(selected["epoch"]), "auc": round(float(avg.auc), 6), "pauc": round(float(avg.pauc), 6),
        "mauc": round(float(avg.mauc), 6),
        "per_type": {t: {k: round(float(v), 6) for k, v in row.items()}
                     for t, row in summary.set_index("machine_type")[["auc", "pauc", "mauc"]].iterrows()},
        "plateau_gap": round(plateau_gap(history.val_loss), 4),
        "train_minutes": round(float(history.epoch_seconds.sum()) / 60, 1) if "epoch_seconds" in history else None,
        "trained_on": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
        "config": f"configs/reference/{name}.yaml",
        "command": command,
        "files": {f.name: {"sha256": sha256(f), "bytes": f.stat().st_size} for f in sorted(folder.iterdir())},
    }
    _update_registry(root, name, entry, manifest)
    return get(name, root)


def _update_registry(root: Path, name: str, entry: dict, manifest: dict) -> None:
    path = root / REGISTRY
    raw = json.loads(path.read_text()) if path.is_file() else {"format": 1, "runs": {}}
    params = manifest["params"]
    dataset = {"generator": manifest["generator"], "generator_version": manifest["version"], **{
        k: params[k] for k in ("size", "seed", "seconds", "sr", "n_train", "n_test_normal", "n_test_anomaly",
                               "difficulty", "machine_types")}}
    if raw.get("dataset", dataset) != dataset:
        raise ValueError(f"{path} holds runs on another dataset ({raw['dataset']}); ship every run on one dataset")
    raw["dataset"] = dataset
    raw["runs"][name] = entry
    raw["runs"] = dict(sorted(raw["runs"].items()))
    path.write_text(json.dumps(raw, indent=1) + "\n")


def total_bytes(root: str | Path | None = None) -> int:
    """Size of everything shipped (the registry and every run's files)."""
    root = Path(root) if root is not None else REFERENCE_DIR
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------- the CLI
def _cmd_list(args) -> int:
    runs = list(registry().values())
    if args.json:
        print(json.dumps([r.summary() for r in runs], indent=1))
        return 0
    table = pd.DataFrame([{"name": r.name, "model": r.model, "loss": r.loss, "seed": r.seed, "epochs": r.epochs,
                           "selected": r.selected_epoch, "AUC %": 100 * r.auc, "pAUC %": 100 * r.pauc,
                           "checkpoint": "yes" if r.has_checkpoint else "-"} for r in runs])
    print(table.to_string(index=False, float_format="%.2f"))
    print(f"\n{len(runs)} runs in {REFERENCE_DIR} ({total_bytes() / 1e6:.1f} MB)")
    return 0


def _cmd_verify(args) -> int:
    problems = verify(args.names or None)
    for problem in problems:
        print(f"FAILED {problem}")
    checked = len(args.names) if args.names else len(registry())
    print(f"{checked - len(problems)} of {checked} reference runs verified" + ("" if problems else ": all good"))
    return 1 if problems else 0


def _cmd_train(args) -> int:
    reproduce(args.name, data=args.data, out=args.out)
    return 0


def add_cli_commands(sub) -> None:
    """``python -m asdlib pretrained {list,verify,train}`` (called by :func:`asdlib.cli.build_parser`)."""
    p = sub.add_parser("pretrained", help="the reference runs shipped with asdlib: list, verify, reproduce")
    commands = p.add_subparsers(dest="pretrained_command", required=True)
    q = commands.add_parser("list", help="the runs, their epochs and results")
    q.add_argument("--json", action="store_true", help="machine-readable: a list of objects")
    q.set_defaults(func=_cmd_list)
    q = commands.add_parser("verify", help="check hashes and reproduce recorded scores on regenerated clips")
    q.add_argument("names", nargs="*", help="runs to check (default: all)")
    q.set_defaults(func=_cmd_verify)
    q = commands.add_parser("train", help="reproduce a run from scratch (its config, its dataset)")
    q.add_argument("name")
    q.add_argument("--data", type=Path, default=None, help="default dataset folder (default: data/synth/default)")
    q.add_argument("--out", type=Path, default=None, help="run folder (default: data/runs/reference/NAME)")
    q.set_defaults(func=_cmd_train)

"""Verify, reproduce and ship the runs of :mod:`asdlib.teaching.pretrained`; the ``pretrained`` commands.

``verify`` checks every shipped file against the registry's sha256, the registry's AUC/pAUC/mAUC against the
run's own ``summary.csv``, the generator version, and for runs with a checkpoint re-scores regenerated test
clips (``VERIFY_RTOL``, ``VERIFY_ATOL``). ``reproduce`` trains a run from scratch with its config on its dataset; ``ship``
packages a finished run (fp16 checkpoint, scores from exactly those weights) and records it in the registry.
Study runs (``ship(..., study=True)``) go through the same three, marked as such in the registry and the listing.
A full disk (or a file-size limit) while writing clips, caches or checkpoints is reported naming the folder,
its free space and, for ``verify``, ``TMPDIR``.
"""
from __future__ import annotations

import errno
import json
import os
import platform
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asdlib.teaching.pretrained import (REFERENCE_DIR, REGISTRY, SCORE_COLUMNS, VERIFY_ATOL, VERIFY_RTOL,
                                        ReferenceRun,
                                        ReferenceRunError, _fix, check_file, generator_mismatch, get, load_config,
                                        load_model, load_scores, load_table, plateau_gap, registry, sha256,
                                        total_bytes, warn_generator)

METRIC_TOLERANCE = 1e-5  # the registry rounds AUC/pAUC/mAUC to 6 digits


def no_room(error: BaseException, folder: str | Path) -> str | None:
    """``"the disk is full … (N MB free in FOLDER)"`` when ``error`` (or what it arose from) is a full disk or an
    exceeded file-size limit, else None. libsndfile reports both only as "System error", torch as "file write
    failed"."""
    while error is not None:
        text = str(error)
        if (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)) or \
                "System error" in text or "file write failed" in text or "No space left" in text:
            existing = next(p for p in [Path(folder), *Path(folder).absolute().parents] if p.exists())
            free = shutil.disk_usage(existing).free
            return f"the disk is full or a file-size limit was reached ({free / 1e6:.0f} MB free in {existing})"
        error = error.__cause__ or error.__context__
    return None


def _verify_slice(run: ReferenceRun, work: Path, per_label: int) -> pd.DataFrame:
    """Regenerate the first ``per_label`` normal and anomalous test clips of each development ID, score them."""
    from asdlib.data.cache import build_cache
    from asdlib.data.index import index_dataset
    from asdlib.data.dcase import DEV_IDS
    from asdlib.experiment import score_dataset
    from asdlib.data.synth import FACTORY_DEFAULTS, _write_job

    cfg, ds = load_config(run.name, root=run.path.parent), run.dataset
    params = {"seed": ds["seed"], "seconds": ds["seconds"], "sr": ds["sr"], "difficulty": ds["difficulty"],
              "version": ds["generator_version"],  # the run's clips, whatever version this asdlib writes by default
              **{k: ds.get(k, default) for k, default in FACTORY_DEFAULTS.items()}}  # older registries lack them
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
    recorded scores of a deterministic slice of the test clips, regenerated and re-scored (each within
    ``VERIFY_ATOL + VERIFY_RTOL * |score|``, which allows for the CPU's float math; see ``VERIFY_RTOL``).
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
            _check_metrics(run)
            if run.has_checkpoint:
                fresh = _verify_in_tmp(run, per_label)
                recorded = load_scores(run.name, root=root).set_index("file").loc[fresh.file]
                worst, at = _worst_score_error(fresh, recorded)
                if not worst <= 1:
                    raise ReferenceRunError(f"{run.kind} {run.name}: scores of {len(fresh)} regenerated test "
                                            f"clips differ from scores.csv, the worst by {at} (tolerance "
                                            f"{VERIFY_ATOL:g} + {VERIFY_RTOL:g} x |score|); {_fix(run.name)}")
        except (ReferenceRunError, OSError, ValueError, KeyError, RuntimeError) as err:
            problems.append(f"{run.name}: {err}")
    return problems


def _worst_score_error(fresh: pd.DataFrame, recorded: pd.DataFrame) -> tuple[float, str]:
    """The largest ``|fresh - recorded| / (VERIFY_ATOL + VERIFY_RTOL |recorded|)`` over the score columns (a
    value above 1 fails) and a description of where it is, e.g. ``"0.0021 (margin_free 8.47)"``."""
    worst, at = -1.0, ""
    for c in SCORE_COLUMNS:
        new, old = fresh[c].to_numpy(float), recorded[c].to_numpy(float)
        ratio = np.abs(new - old) / (VERIFY_ATOL + VERIFY_RTOL * np.abs(old))
        ratio = np.where(np.isnan(ratio), np.inf, ratio)  # a NaN score is never within tolerance
        i = int(np.argmax(ratio))
        if ratio[i] > worst:
            worst, at = float(ratio[i]), f"{abs(new[i] - old[i]):.3g} ({c} {old[i]:.3g})"
    return worst, at


def _verify_in_tmp(run: ReferenceRun, per_label: int) -> pd.DataFrame:
    """:func:`_verify_slice` in a temporary folder; a full disk there says which folder and how to move it."""
    tmp_root = tempfile.gettempdir()
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _verify_slice(run, Path(tmp), per_label)
    except (OSError, RuntimeError) as err:
        reason = no_room(err, tmp_root)
        if reason is None:
            raise
        raise ReferenceRunError(f"could not write the regenerated test clips to the temporary folder {tmp_root}: "
                                f"{reason}. Free some space there, or set TMPDIR to a folder on a disk with room "
                                f"(TMPDIR is {os.environ.get('TMPDIR', 'not set')})") from None


def _check_metrics(run: ReferenceRun) -> None:
    """The registry's AUC / pAUC / mAUC (average and per type) must be those of the run's ``summary.csv``."""
    summary = load_table(run.name, "summary", root=run.path.parent).set_index("machine_type")
    recorded = [("Average", {"auc": run.auc, "pauc": run.pauc, "mauc": run.mauc}),
                *run.info.get("per_type", {}).items()]
    for mtype, metrics in recorded:
        for metric, value in metrics.items():
            actual = summary.at[mtype, metric] if mtype in summary.index and metric in summary else None
            if actual is None or not abs(float(actual) - float(value)) <= METRIC_TOLERANCE:
                raise ReferenceRunError(f"{run.kind} {run.name}: the registry says {metric} {value} for "
                                        f"{mtype}, its summary.csv {actual}: the registry was edited or damaged; "
                                        f"{_fix(run.name)}")



def default_data() -> Path:
    """Where ``pretrained train`` looks for (and generates) the default procedural dataset."""
    from asdlib.teaching.paths import repo_root

    return repo_root() / "data" / "synth" / "default"


def ensure_reference_data(run: ReferenceRun, data: str | Path | None = None) -> Path:
    """The dataset the run was trained on, generated if missing (refuses a folder holding other data)."""
    from asdlib.data.synth import FACTORY_DEFAULTS, generate_dataset

    ds, data = run.dataset, Path(data) if data is not None else default_data()
    factory = {k: ds.get(k, default) for k, default in FACTORY_DEFAULTS.items()}  # older registries lack them
    generate_dataset(data, size=ds["size"], seed=ds["seed"], n_test=(ds["n_test_normal"], ds["n_test_anomaly"]),
                     machine_types=ds["machine_types"], version=ds["generator_version"], workers=2, **factory)
    return data


def reproduce(name: str, *, data: str | Path | None = None, out: str | Path | None = None,
              progress: bool = True, root: str | Path | None = None, on_epoch=None) -> dict:
    """Train ``name`` from scratch with its shipped config on its dataset, evaluate it, compare with the record."""
    from asdlib.experiment import evaluate_run, train_from_config
    from asdlib.teaching.paths import repo_root

    run = get(name, root)
    warn_generator(run)
    data = Path(data) if data is not None else default_data()
    kind = "study" if run.study else "reference"
    out = Path(out) if out is not None else repo_root() / "data" / "runs" / kind / name
    with _say_which_disk(data, "--data"):
        ensure_reference_data(run, data)
    with _say_which_disk(out, "--out"):
        train_from_config(load_config(name, root), data, out, progress=progress, track_test=True, on_epoch=on_epoch)
    result = evaluate_run(out, data=data, quiet=True)
    avg = result["summary"].query("machine_type == 'Average'").iloc[0]
    if progress:
        print(f"{run.kind} {name}: recorded AUC {100 * run.auc:.2f} / pAUC {100 * run.pauc:.2f} %, "
              f"reproduced {100 * avg.auc:.2f} / {100 * avg.pauc:.2f} % ({out})")
    return {"run_dir": out, "auc": float(avg.auc), "pauc": float(avg.pauc)}


class _say_which_disk:
    """Re-raise a full-disk error inside the block as one ``OSError`` naming the folder and the option to move."""

    def __init__(self, folder: Path, option: str):
        self.folder, self.option = folder, option

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if not isinstance(error, (OSError, RuntimeError)):
            return False
        reason = no_room(error, self.folder)
        if reason is None:
            return False
        raise OSError(errno.ENOSPC, f"could not write to {self.folder}: {reason}; free some space, or pass "
                      f"{self.option} with a folder on a disk with room") from None


def _half_checkpoint(src: Path, dst: Path) -> None:
    """Copy an asdlib checkpoint with its floating-point weights stored as fp16 (half the size)."""
    from asdlib.training.checkpoints import load_checkpoint, weights_sha256

    ckpt = load_checkpoint(src)
    ckpt["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    keep = {k: ckpt[k] for k in ("format", "version", "model", "label_order", "state_dict", "run_config",
                                 "selected")}
    keep["weights_sha256"] = weights_sha256(keep["state_dict"], keep["model"], keep["label_order"])
    torch.save(keep, dst)


def ship(name: str, run_dir: str | Path, *, data: str | Path, checkpoint: bool, command: str,
         root: str | Path | None = None, study: bool = False) -> ReferenceRun:
    """Package a finished run (``train_from_config(..., track_test=True)``) as reference run ``name``, or with
    ``study`` as study run ``name`` (its entry marked ``"study": true``, its config in ``configs/study/``).

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
        "config": f"configs/{'study' if study else 'reference'}/{name}.yaml",
        **({"study": True} if study else {}),  # reference entries carry no key (the registry's older entries)
        "command": command,
        "files": {f.name: {"sha256": sha256(f), "bytes": f.stat().st_size} for f in sorted(folder.iterdir())},
    }
    _update_registry(root, name, entry, manifest)
    return get(name, root)


def _update_registry(root: Path, name: str, entry: dict, manifest: dict) -> None:
    from asdlib.data.synth import FACTORY_DEFAULTS  # recorded only when not the defaults (older registries)

    path = root / REGISTRY
    raw = json.loads(path.read_text()) if path.is_file() else {"format": 1, "runs": {}}
    params = manifest["params"]
    dataset = {"generator": manifest["generator"], "generator_version": manifest["version"], **{
        k: params[k] for k in ("size", "seed", "seconds", "sr", "n_train", "n_test_normal", "n_test_anomaly",
                               "difficulty", "machine_types")},
        **{k: params[k] for k, default in FACTORY_DEFAULTS.items() if params.get(k, default) != default}}
    if raw.get("dataset", dataset) != dataset:
        raise ValueError(f"{path} holds runs on another dataset ({raw['dataset']}); ship every run on one dataset")
    raw["dataset"] = dataset
    raw["runs"][name] = entry
    raw["runs"] = dict(sorted(raw["runs"].items()))
    path.write_text(json.dumps(raw, indent=1) + "\n")


# ---------------------------------------------------------------------------------------------- the CLI
def count_runs(runs) -> str:
    """``"11 reference runs and 2 study runs"`` (``"11 reference runs"`` without study runs)."""
    runs = list(runs)
    study = sum(r.study for r in runs)
    reference = f"{len(runs) - study} reference run{'' if len(runs) - study == 1 else 's'}"
    return reference + (f" and {study} study run{'' if study == 1 else 's'}" if study else "")


def list_runs(root: str | Path | None = None, *, as_json: bool = False) -> str:
    """What ``pretrained list`` prints: a table of every run (a ``study`` column), then their count and size."""
    runs = list(registry(root).values())
    if as_json:
        return json.dumps([r.summary() for r in runs], indent=1)
    table = pd.DataFrame([{"name": r.name, "model": r.model, "loss": r.loss, "seed": r.seed, "epochs": r.epochs,
                           "selected": r.selected_epoch, "AUC %": 100 * r.auc, "pAUC %": 100 * r.pauc,
                           "checkpoint": "yes" if r.has_checkpoint else "-", "study": "yes" if r.study else "-"}
                          for r in runs])
    root = Path(root) if root is not None else REFERENCE_DIR
    return (f"{table.to_string(index=False, float_format='%.2f')}\n\n"
            f"{count_runs(runs)} in {root} ({total_bytes(root) / 1e6:.1f} MB)")


def _cmd_list(args) -> int:
    print(list_runs(as_json=args.json))
    return 0


def _cmd_verify(args) -> int:
    problems = verify(args.names or None)
    for problem in problems:
        print(f"FAILED {problem}")
    checked = [get(n) for n in args.names] if args.names else list(registry().values())
    print(f"{len(checked) - len(problems)} of {len(checked)} runs verified ({count_runs(checked)})"
          + ("" if problems else ": all good"))
    return 1 if problems else 0


def _cmd_train(args) -> int:
    from asdlib.training.loop import epoch_summary

    epochs = get(args.name).epochs
    reproduce(args.name, data=args.data, out=args.out,
              on_epoch=lambda row: print(epoch_summary(row, epochs), flush=True))
    return 0


def add_cli_commands(sub) -> None:
    """``python -m asdlib pretrained {list,verify,train}`` (called by :func:`asdlib.cli.build_parser`)."""
    p = sub.add_parser("pretrained", help="the reference and study runs shipped with asdlib: list, verify, reproduce")
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
    q.add_argument("--out", type=Path, default=None,
                   help="run folder (default: data/runs/reference/NAME, data/runs/study/NAME for a study run)")
    q.set_defaults(func=_cmd_train)

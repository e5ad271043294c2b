"""Retrain the shipped reference runs for a new generator version, keeping every epoch's weights, then ship them.

The networks learn from normal clips only, and every generator version writes the same normal clips, so a
reference run's training does not depend on the version. What does is everything measured on the test clips: the
per-epoch test AUC/pAUC and angles of the history (``pretrained train`` records them with ``track_test``) and the
scores. ``train`` trains from scratch (one CPU thread) and keeps each epoch's weights; ``finish`` computes those
test metrics from the weights of every epoch on the new version's test clips (the function ``track_test`` calls),
writes them into the history, and ships the run (:func:`asdlib.teaching.reproduce.ship`). ``train`` also prints
how far the held-out losses are from the shipped history's: not bit-identical (another thread count sums in
another order, and the difference grows over the steps), the same run in distribution.

    nice -n 10 python bench/retrain_reference.py train NAME [--threads 1]   (a reference or a study run)
    python bench/retrain_reference.py finish NAME --data data/synth/default_v3 [--root asdlib/reference_runs]
    python bench/retrain_reference.py baseline ae_baseline-default --data data/synth/default
    python bench/retrain_reference.py adopt all --root bench/staged_runs

``adopt`` ships a staging registry's runs (``finish --root``): added to the shipped ones on the same dataset, or,
for a new generator version, replacing them all once it holds every shipped run.

``baseline`` re-scores the shipped DCASE2020 autoencoder weights (``asdlib/reference_runs/baselines``; they too
learnt from normal clips only) on ``--data``'s test clips and rewrites their ``scores.csv``, ``summary.md`` and the
dataset line of ``recipe.json``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import REPO  # noqa: F401  (puts the checkout on sys.path)

WORK = REPO / "data" / "runs" / "retrain"
TEST_COLUMNS = ("test_auc", "test_pauc", "test_auc_pauc", "angle_normal", "angle_anomaly")


def config_of(name: str) -> Path:
    """``configs/reference/NAME.yaml``, or ``configs/study/NAME.yaml`` for a study run."""
    for kind in ("reference", "study"):
        path = REPO / "configs" / kind / f"{name}.yaml"
        if path.is_file():
            return path
    raise SystemExit(f"no configs/reference/{name}.yaml nor configs/study/{name}.yaml")


def train(name: str, data: Path, threads: int) -> Path:
    """Train ``name``'s shipped config from scratch into ``WORK/NAME``, keeping ``epochs/epoch_NNN.pt``."""
    from asdlib.experiment import train_from_config
    from asdlib.teaching.pretrained import get, registry
    from asdlib.training.config import RunConfig
    from asdlib.training.loop import epoch_summary

    out = WORK / name
    cfg = RunConfig.from_yaml(config_of(name))
    torch.set_num_threads(threads)  # not in the config: the shipped config stays the reference config
    (out / "epochs").mkdir(parents=True, exist_ok=True)

    def on_epoch(row: dict) -> None:
        shutil.copyfile(out / "last.pt", out / "epochs" / f"epoch_{row['epoch']:03d}.pt")
        print(f"{name}: {epoch_summary(row, cfg.train.epochs)}", flush=True)

    train_from_config(cfg, data, out, progress=False, on_epoch=on_epoch)
    shipped = get(name).path / "history.csv" if name in registry() else None
    if shipped is not None and shipped.is_file():
        old, new = pd.read_csv(shipped), pd.read_csv(out / "history.csv")
        same = np.allclose(old.val_loss, new.val_loss, rtol=1e-5, atol=1e-7)
        print(f"{name}: held-out loss per epoch {'equals' if same else 'DIFFERS FROM'} the shipped history "
              f"(max |diff| {np.max(np.abs(old.val_loss - new.val_loss)):.2e})", flush=True)
    return out


def finish(name: str, data: Path, root: Path | None, command: str, threads: int) -> None:
    """Per-epoch test metrics on ``data`` from the kept weights, into the history; then ship the run."""
    from asdlib.experiment import _test_metrics_fn, prepare_data
    from asdlib.teaching.pretrained import get, registry
    from asdlib.teaching.reproduce import ship
    from asdlib.training.checkpoints import load_model
    from asdlib.training.config import RunConfig

    out = WORK / name
    torch.set_num_threads(threads)  # ship() records the threads of this process as the training's
    cfg = RunConfig.from_yaml(out / "config.yaml")
    cache, _, _, test_rows = prepare_data(data, cfg, progress=False)
    metrics = _test_metrics_fn(cache, test_rows, None, cfg.train.batch_size)
    history = pd.read_csv(out / "history.csv")
    rows = []
    for epoch in history.epoch:
        model = load_model(out / "epochs" / f"epoch_{epoch:03d}.pt")
        rows.append(metrics(model))
        print(f"{name}: epoch {epoch} test AUC {100 * rows[-1]['test_auc']:.2f} %", flush=True)
    tested = pd.DataFrame(rows, index=history.index)
    history = history.drop(columns=[c for c in TEST_COLUMNS if c in history]).join(tested)
    history = history[[c for c in history if c != "epoch_seconds"] + ["epoch_seconds"]]
    history.to_csv(out / "history.csv", index=False)
    study = config_of(name).parent.name == "study"
    # a shipped run keeps what it shipped; a new reference run ships its weights, a study run only its scores
    has_checkpoint = get(name).has_checkpoint if name in registry() else not study
    shipped = ship(name, out, data=data, checkpoint=has_checkpoint, command=command, root=root, study=study)
    print(f"{name}: shipped, AUC {100 * shipped.auc:.2f} / pAUC {100 * shipped.pauc:.2f} %", flush=True)


def rescore_baseline(data: Path, threads: int) -> None:
    """Score the shipped autoencoders on ``data``'s test clips; rewrite the shipped scores and tables."""
    import json

    from asdlib.data.index import index_dataset
    from asdlib.evaluation.autoencoder import autoencoder_scores
    from asdlib.evaluation.metrics import per_id_table, summary_table, to_markdown
    from asdlib.teaching.baselines import SHIPPED

    torch.set_num_threads(threads)
    recipe = json.loads((SHIPPED / "recipe.json").read_text())
    types = list(recipe["machine_types"])
    scores = autoencoder_scores(index_dataset(data, machine_types=types), SHIPPED,
                                seconds=recipe["recipe"]["seconds"], progress=False)
    scores.insert(0, "file", [Path(p).resolve().relative_to(data.resolve()).as_posix() for p in scores.path])
    scores = scores[["file", "machine_type", "machine_id", "label", "score"]]
    scores.to_csv(SHIPPED / "scores.csv", index=False)
    summary = summary_table(per_id_table(scores))
    (SHIPPED / "summary.md").write_text(to_markdown(summary), encoding="utf-8")
    manifest = json.loads((data / "dataset.json").read_text())
    recipe["dataset"] = (f"data/synth/default (python -m asdlib synth --size default, generator version "
                         f"{manifest['version']}, seed {manifest['params']['seed']})")
    recipe["generator_version"] = manifest["version"]
    (SHIPPED / "recipe.json").write_text(json.dumps(recipe, indent=1) + "\n")
    print(to_markdown(summary))


def adopt(staging: Path) -> None:
    """Ship the runs of ``staging`` into ``asdlib/reference_runs``: on the same dataset they are added (or replace
    their namesakes); on another one (a new generator version) they replace every shipped run, so the staging
    registry must hold them all."""
    import json

    from asdlib.teaching.pretrained import REFERENCE_DIR, REGISTRY

    shipped = json.loads((REFERENCE_DIR / REGISTRY).read_text())
    staged = json.loads((staging / REGISTRY).read_text())
    switch = staged["dataset"] != shipped["dataset"]
    missing = sorted(set(shipped["runs"]) - set(staged["runs"])) if switch else []
    if missing:
        raise SystemExit(f"{staging} holds runs on another dataset and lacks {len(missing)} shipped run(s): "
                         f"{', '.join(missing)}; retrain and finish them first")
    for name in (shipped["runs"] if switch else staged["runs"]):
        shutil.rmtree(REFERENCE_DIR / name, ignore_errors=True)
    for name in staged["runs"]:
        shutil.copytree(staging / name, REFERENCE_DIR / name)
    runs = staged["runs"] if switch else {**shipped["runs"], **staged["runs"]}
    merged = {**shipped, "dataset": staged["dataset"], "runs": dict(sorted(runs.items()))}
    (REFERENCE_DIR / REGISTRY).write_text(json.dumps(merged, indent=1) + "\n")
    print(f"{REFERENCE_DIR}: {len(staged['runs'])} runs from {staging} "
          f"({'replacing every run: generator version ' + str(staged['dataset']['generator_version']) if switch else 'added'})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=["train", "finish", "baseline", "adopt"])
    p.add_argument("names", nargs="+")
    p.add_argument("--data", type=Path, default=REPO / "data" / "synth" / "default")
    p.add_argument("--root", type=Path, default=None, help="registry folder (default: asdlib/reference_runs)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    for name in args.names:
        if args.stage == "adopt":
            adopt(args.root)
        elif args.stage == "baseline":
            rescore_baseline(args.data, args.threads)
        elif args.stage == "train":
            train(name, args.data, args.threads)
        else:
            finish(name, args.data, args.root, f"python -m asdlib pretrained train {name}", args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())

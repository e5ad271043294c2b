"""Experiments from a config: index → cache → honest split → train → score → tables (the CLI and notebooks' glue).

A run folder holds everything about one training run: ``config.yaml`` (the resolved :class:`RunConfig`),
``run.json`` (data root, split sizes), ``last.pt`` / ``best.pt`` checkpoints, ``history.csv``, and after
evaluation ``scores.csv``, ``results.csv`` (per ID), ``summary.csv`` (per type + Average) and the official
``anomaly_score_<type>_id_XX.csv`` files under ``scores/``.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from asdlib.cache import ClipBatchDataset, EpochBatchSampler, build_cache
from asdlib.checkpoints import load_checkpoint, load_model
from asdlib.config import RunConfig, to_plain
from asdlib.data import index_dataset, load_audio
from asdlib.dcase import canonical_type, label_map, parse_clip_name
from asdlib.metrics import per_id_table, summary_table, to_markdown, write_score_files
from asdlib.models import build_model
from asdlib.scoring import SCORES, anomaly_score
from asdlib.train import fit, pick_device


def split_train_val(index: pd.DataFrame, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of the normal training clips, split per machine ID: ``fraction`` held out for validation.

    Stratified so every ID keeps at least one training clip and (when it has ≥ 2 clips) one validation clip.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for _, rows in index.groupby("class_index").groups.items():
        rows = rng.permutation(np.asarray(rows))
        n_val = min(len(rows) - 1, max(1, round(fraction * len(rows)))) if fraction > 0 else 0
        val.extend(rows[:n_val])
        train.extend(rows[n_val:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))


def make_loader(cache, rows, *, batch_size: int, shuffle: bool = False, seed: int = 0, num_workers: int = 0,
                drop_last: bool = False, device: torch.device | None = None, distributed: bool = False) -> DataLoader:
    """A DataLoader over ``rows`` of a waveform cache yielding ``(wave (B, L), class_index (B,), row (B,))``.

    Each batch is one read from the cache (:class:`~asdlib.cache.ClipBatchDataset`), yet the batches are
    exactly those of a per-item ``DataLoader(ClipDataset(cache, rows), batch_size, shuffle, generator=
    torch.Generator().manual_seed(seed))``. Pinned memory on CUDA. ``distributed``: each process of a
    ``torchrun`` job gets its own shard (``batch_size`` is per process).
    """
    dataset = ClipBatchDataset(cache, rows)
    generator = torch.Generator().manual_seed(seed) if shuffle and not distributed else None
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    else:
        sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=EpochBatchSampler(sampler, batch_size, drop_last), batch_size=None,
                      num_workers=num_workers, pin_memory=device is not None and device.type == "cuda",
                      persistent_workers=num_workers > 0, generator=generator)


def prepare_data(data: str | Path, cfg: RunConfig, *, progress: bool = True):
    """Index the dataset and decode it once into the cache; returns ``(cache, train_rows, val_rows, test_rows)``."""
    index = index_dataset(data, machine_types=cfg.data.machine_types or None)
    usable = index[(index.split == "train") | (index.label != "unknown")].reset_index(drop=True)
    cache = build_cache(usable, sr=cfg.data.sample_rate, seconds=cfg.data.seconds, cache_dir=cfg.data.cache_dir,
                        dtype=cfg.data.cache_dtype, progress=progress)
    ci = cache.index
    train_pool = ci[(ci.split == "train") & (ci.label == "normal")]
    train_rows, val_rows = split_train_val(train_pool, fraction=cfg.train.val_fraction, seed=cfg.train.seed)
    test_rows = np.flatnonzero(((ci.split == "test") & (ci.label != "unknown")).to_numpy())
    return cache, train_rows, val_rows, test_rows


def train_from_config(config: str | Path | RunConfig, data: str | Path, out: str | Path, *,
                      overrides: list[str] | tuple[str, ...] = (), resume: bool = True, progress: bool = True,
                      track_test: bool = False, on_epoch=None) -> dict:
    """Train one run as the config says; returns ``{"run_dir", "history", "config"}``.

    ``track_test`` records the test AUC/pAUC in the history every ``train.select_every`` epochs *without*
    using it, so a notebook can measure what picking the checkpoint on the test set would have reported.
    """
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_yaml(config, overrides)
    out = Path(out)
    _check_run_dir(out, cfg, resume)
    device = pick_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    cache, train_rows, val_rows, test_rows = prepare_data(data, cfg, progress=progress)
    t = cfg.train
    train_loader = make_loader(cache, train_rows, batch_size=t.batch_size, shuffle=True, seed=t.seed,
                               num_workers=t.num_workers, drop_last=t.drop_last, device=device,
                               distributed=dist.is_initialized())
    val_loader = make_loader(cache, val_rows, batch_size=t.batch_size, device=device)
    torch.manual_seed(t.seed)
    model = build_model(cfg.model.name, seconds=cfg.data.seconds, head="softmax" if cfg.loss.name == "ce" else
                        "arcface", m=cfg.model.m, s=cfg.model.s, sub=cfg.model.sub)
    if t.selection == "peek_test_auc":
        warnings.warn("train.selection=peek_test_auc picks the checkpoint on the TEST set (as the original "
                      "STgram-MFN code did): its AUC is optimistic and not a fair result", stacklevel=2)
    peek = t.selection == "peek_test_auc" or track_test
    monitor_fn = _test_metrics_fn(cache, test_rows, device, t.batch_size) if peek else None
    (out / "run.json").write_text(json.dumps({"data": str(Path(data).resolve()), "train_clips": len(train_rows),
                                              "val_clips": len(val_rows), "test_clips": len(test_rows)}, indent=1))
    history = fit(model, train_loader, val_loader, run_config=to_plain(cfg), out_dir=out, device=device,
                  resume=resume, progress=progress, monitor_fn=monitor_fn, on_epoch=on_epoch)
    return {"run_dir": out, "history": history, "config": cfg}


def _check_run_dir(out: Path, cfg: RunConfig, resume: bool) -> None:
    """Never mix two different runs in one folder: resume only with the same config (more epochs are fine)."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.yaml"
    if saved.exists() and (out / "last.pt").exists():
        if not resume:
            raise FileExistsError(f"{out} already holds a run; choose another --out or delete {out}")
        if RunConfig.from_yaml(saved).replace(train={"epochs": cfg.train.epochs}) != cfg:
            raise ValueError(f"{out} holds a run with a different config ({saved}); choose another --out")
    cfg.to_yaml(saved)


def _test_metrics_fn(cache, test_rows, device, batch_size):
    """``model -> {"test_auc", "test_pauc", "test_auc_pauc", "angle_normal", "angle_anomaly"}``: the DCASE
    averages on the labelled test clips and the median angle of normal / anomalous clips to their class centre."""
    def test_metrics(model) -> dict:
        scores = score_dataset(model, cache, test_rows, device=device, batch_size=batch_size, progress=False)
        avg = summary_table(per_id_table(scores)).query("machine_type == 'Average'").iloc[0]
        angle = scores.groupby("label").angle.median()  # θ to the own class centre, degrees
        return {"test_auc": float(avg.auc), "test_pauc": float(avg.pauc), "test_auc_pauc": float(avg.auc + avg.pauc),
                "angle_normal": float(angle.get("normal", np.nan)), "angle_anomaly": float(angle.get("anomaly", np.nan))}
    return test_metrics


@torch.inference_mode()
def score_dataset(model, cache, rows, *, device: torch.device | None = None, batch_size: int = 64,
                  progress: bool = True, return_embeddings: bool = False):
    """Anomaly scores of ``rows`` of a cache: a DataFrame with the index columns plus one column per score.

    ``score`` is the original (ArcFace CE with the margin on the true ID); ``margin_free`` and
    ``cosine_distance`` are the alternatives of :mod:`asdlib.scoring`; ``angle`` is θ to the class centre in
    degrees. With ``return_embeddings`` also returns the ``(N, D)`` embeddings.
    """
    from tqdm.auto import tqdm

    device = device or next(model.parameters()).device
    model.to(device).eval()
    out, embeddings = {name: [] for name in SCORES}, []
    loader = make_loader(cache, rows, batch_size=batch_size, device=device)  # pinned memory on CUDA
    for wave, labels, _ in tqdm(loader, desc="scoring", disable=not progress, leave=False):
        wave, labels = wave.to(device), labels.to(device)
        logits, embedding = model(wave, labels)
        cosine = model.head.cosine(embedding)
        for name, fn in SCORES.items():
            out[name].append(fn(logits=logits, cosine=cosine, labels=labels).float().cpu())
        embeddings.append(embedding.float().cpu())
    table = cache.index.iloc[np.asarray(rows)].reset_index(drop=True).copy()
    for name, values in out.items():
        table[name] = torch.cat(values).numpy() if values else []
    table["score"] = table["arcface_ce"]
    table["angle"] = np.degrees(np.arccos(np.clip(1 - table["cosine_distance"], -1, 1)))
    emb = torch.cat(embeddings).numpy() if embeddings else np.zeros((0, 0))
    return (table, emb) if return_embeddings else table


def evaluate_run(run_dir: str | Path, *, data: str | Path | None = None, checkpoint: str = "best.pt",
                 score: str = "score", quiet: bool = False) -> dict:
    """Score the labelled test clips with a run's checkpoint, write the tables and score files, print them."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / checkpoint
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{ckpt_path} not found: train first (python -m asdlib train ... --out {run_dir})")
    cfg = RunConfig.from_dict(load_checkpoint(ckpt_path)["run_config"], source=str(ckpt_path))
    data = data or json.loads((run_dir / "run.json").read_text())["data"]
    device = pick_device(cfg.train.device)
    model = load_model(ckpt_path, map_location=device)
    cache, _, _, test_rows = prepare_data(data, cfg, progress=not quiet)
    scores = score_dataset(model, cache, test_rows, device=device, batch_size=cfg.train.batch_size,
                           progress=not quiet)
    per_id = per_id_table(scores.assign(score=scores[score]))
    summary = summary_table(per_id)
    scores.to_csv(run_dir / "scores.csv", index=False)
    per_id.to_csv(run_dir / "results.csv", index=False)
    summary.to_csv(run_dir / "summary.csv", index=False)
    write_score_files(scores, run_dir / "scores", overwrite=True)
    if not quiet:
        print(f"{run_dir}: {len(scores)} test clips, checkpoint {checkpoint}\n")
        print(to_markdown(summary))
    return {"scores": scores, "per_id": per_id, "summary": summary}


def score_files(checkpoint: str | Path, paths, *, machine_type: str | None = None,
                machine_id: int | None = None, batch_size: int = 16, device: torch.device | None = None,
                progress: bool = True) -> pd.DataFrame:
    """Score any wav files or folders with a checkpoint: ``path, machine_type, machine_id, score`` per file.

    Files may have any sample rate, channels and length (``load_audio`` resamples, mixes down, pads or trims, and
    warns). The machine type and ID come from DCASE-style paths (``fan/test/normal_id_00_…wav``) unless given.
    """
    from tqdm.auto import tqdm

    device = device or pick_device()
    model = load_model(checkpoint, map_location=device)
    seconds, sr = model.config["seconds"], model.config["sample_rate"]
    files = [f for p in map(Path, paths) for f in (sorted(p.rglob("*.wav")) if p.is_dir() else [p])]
    if not files:
        raise FileNotFoundError(f"no .wav files found in {', '.join(map(str, paths))}")
    table = pd.DataFrame([(str(f), *_machine_of(f, machine_type, machine_id)) for f in files],
                         columns=["path", "machine_type", "machine_id", "class_index"])
    scores = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(table), batch_size), desc="scoring", disable=not progress, leave=False):
            batch = table.iloc[start:start + batch_size]
            wave = torch.from_numpy(np.stack([load_audio(p, sr=sr, seconds=seconds) for p in batch.path]))
            labels = torch.tensor(batch.class_index.to_numpy(), device=device)
            logits, _ = model(wave.to(device), labels)
            scores.append(anomaly_score(logits, labels).float().cpu())
    return table.drop(columns="class_index").assign(score=torch.cat(scores).numpy())


def _machine_of(path: Path, machine_type: str | None, machine_id: int | None) -> tuple[str, int, int]:
    """``(machine_type, machine_id, class_index)`` of a file, from the arguments or its DCASE-style path."""
    try:
        mtype = canonical_type(machine_type or path.parent.parent.name)
        mid = machine_id if machine_id is not None else parse_clip_name(path.name).machine_id
        return mtype, mid, label_map()[(mtype, mid)]
    except (ValueError, KeyError) as err:
        raise ValueError(f"{path}: cannot tell which machine it is ({err}); pass --machine-type and "
                         "--machine-id (machine_type=/machine_id= in Python) with one of the 41 known IDs") from None

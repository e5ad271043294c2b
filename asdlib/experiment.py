"""Experiments from a config: index → cache → honest split → train → score → tables (the CLI and notebooks' glue).

A run folder holds everything about one training run: ``config.yaml`` (the resolved :class:`RunConfig`),
``run.json`` (data root, fingerprint of its file list, split sizes), ``last.pt`` / ``best.pt`` checkpoints,
``history.csv``, and after evaluation ``scores.csv``, ``results.csv`` (per ID), ``summary.csv`` (per type +
Average) and the official ``anomaly_score_<type>_id_XX.csv`` files under ``scores/``. A run resumes only on the
data and config it was started with; ``resume=False`` (``--no-resume``) starts it over after moving the old
files to ``previous-<time>/`` inside the run folder. Result files are written atomically and only when every
score is finite, so a failed evaluation keeps the previous results.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from asdlib.data.cache import ClipBatchDataset, EpochBatchSampler, build_cache
from asdlib.training.checkpoints import load_checkpoint, load_model
from asdlib.training.config import RunConfig, to_plain
from asdlib.data.audio import AudioError, check_on_error
from asdlib.data.index import DataError, content_fingerprint, find_wav_files, fingerprint, index_dataset, load_audio
from asdlib.data.dcase import canonical_type, label_map, parse_clip_name
from asdlib.evaluation.metrics import per_id_table, summary_table, to_markdown, write_score_files
from asdlib.nn.models import build_model
from asdlib.evaluation.scoring import SCORES, anomaly_score
from asdlib.training.loop import fit, pick_device
from asdlib.training.rundir import (atomic_csv, atomic_text, check_own_checkpoints, check_run_dir, check_same_data,
                                    locked, move_aside)


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

    Each batch is one read from the cache (:class:`~asdlib.data.cache.ClipBatchDataset`), yet the batches are
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


def prepare_data(data: str | Path, cfg: RunConfig, *, progress: bool = True, on_error: str = "raise"):
    """Index the dataset and decode it once into the cache; returns ``(cache, train_rows, val_rows, test_rows)``.

    ``data.train_clips_per_id`` > 0 keeps only the first that many training clips of each machine ID (before the
    validation split), for data-scarcity experiments.

    ``on_error="skip"`` leaves unreadable files and folders out (listed in warnings) instead of stopping.
    """
    index = index_dataset(data, machine_types=cfg.data.machine_types or None, on_error=on_error)
    usable = index[(index.split == "train") | (index.label != "unknown")].reset_index(drop=True)
    cache = build_cache(usable, sr=cfg.data.sample_rate, seconds=cfg.data.seconds, cache_dir=cfg.data.cache_dir,
                        dtype=cfg.data.cache_dtype, progress=progress, on_error=on_error)
    ci = cache.index
    train_pool = ci[(ci.split == "train") & (ci.label == "normal")]
    if cfg.data.train_clips_per_id:  # data scarcity: the first N clips (by file name) of every machine ID
        train_pool = train_pool.sort_values("path").groupby("class_index").head(cfg.data.train_clips_per_id)
    train_rows, val_rows = split_train_val(train_pool, fraction=cfg.train.val_fraction, seed=cfg.train.seed)
    test_rows = np.flatnonzero(((ci.split == "test") & (ci.label != "unknown")).to_numpy())
    return cache, train_rows, val_rows, test_rows


def train_from_config(config: str | Path | RunConfig, data: str | Path, out: str | Path, *,
                      overrides: list[str] | tuple[str, ...] = (), resume: bool = True, progress: bool = True,
                      track_test: bool = False, on_epoch=None, on_error: str = "raise") -> dict:
    """Train one run as the config says; returns ``{"run_dir", "history", "config"}``.

    ``track_test`` records the test AUC/pAUC in the history every ``train.select_every`` epochs *without*
    using it, so a notebook can measure what picking the checkpoint on the test set would have reported.
    An existing run in ``out`` is resumed only with the same config and the same data (root and file-list
    fingerprint); ``resume=False`` starts over, moving the old run's files to ``out/previous-<time>/``.
    """
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_yaml(config, overrides)
    out = Path(out)
    with locked(out):  # a second training into the same folder refuses (asdlib.training.rundir)
        return _train(cfg, data, out, resume=resume, progress=progress, track_test=track_test, on_epoch=on_epoch,
                      on_error=on_error)


def _train(cfg: RunConfig, data, out: Path, *, resume: bool, progress: bool, track_test: bool, on_epoch,
           on_error: str) -> dict:
    check_run_dir(out, cfg, resume)
    if resume:
        check_own_checkpoints(out)
    device = pick_device(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    cache, train_rows, val_rows, test_rows = prepare_data(data, cfg, progress=progress, on_error=on_error)
    info = {"data": str(Path(data).resolve()), "fingerprint": fingerprint(cache.index),
            "content": content_fingerprint(cache.index), "train_clips": len(train_rows), "val_clips": len(val_rows),
            "test_clips": len(test_rows)}
    if resume:
        check_same_data(out, info)
    else:
        move_aside(out)
    cfg.to_yaml(out / "config.yaml")
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
    atomic_text(out / "run.json", json.dumps(info, indent=1))
    history = fit(model, train_loader, val_loader, run_config=to_plain(cfg), out_dir=out, device=device,
                  resume=resume, progress=progress, monitor_fn=monitor_fn, on_epoch=on_epoch)
    return {"run_dir": out, "history": history, "config": cfg}


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
    ``cosine_distance`` are the alternatives of :mod:`asdlib.evaluation.scoring`; ``angle`` is θ to the class centre in
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
    check_own_checkpoints(run_dir, (checkpoint,))  # the results are written next to it
    cfg = RunConfig.from_dict(load_checkpoint(ckpt_path)["run_config"], source=str(ckpt_path))
    data = data or _recorded_data(run_dir)
    device = pick_device(cfg.train.device)
    model = load_model(ckpt_path, map_location=device)
    cache, _, _, test_rows = prepare_data(data, cfg, progress=not quiet)
    if len(test_rows) == 0:
        types = ", ".join(cfg.data.machine_types or ["any type"])
        raise DataError(f"{data} has no labelled test clips for {types} (the run's machine types); nothing was "
                        f"evaluated and the results in {run_dir} are kept. Pass --data with a dataset that has "
                        "<type>/test/{normal,anomaly}_id_XX_*.wav clips (or the ground truth for eval_data)")
    scores = score_dataset(model, cache, test_rows, device=device, batch_size=cfg.train.batch_size,
                           progress=not quiet)
    _check_finite(scores[score], ckpt_path, scores.path)
    per_id = per_id_table(scores.assign(score=scores[score]))
    summary = summary_table(per_id)
    _write_results(run_dir, scores, per_id, summary)
    if not quiet:
        print(f"{run_dir}: {len(scores)} test clips, checkpoint {checkpoint}\n")
        print(to_markdown(summary))
    return {"scores": scores, "per_id": per_id, "summary": summary}


def _recorded_data(run_dir: Path) -> str:
    """The dataset root a run recorded in its ``run.json``."""
    try:
        return json.loads((run_dir / "run.json").read_text())["data"]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{run_dir / 'run.json'} is missing or damaged ({e}); pass --data DATASET") from None


def _check_finite(values, checkpoint: Path, paths) -> None:
    """Raise when any score is NaN or infinite (a diverged checkpoint): never write such a table."""
    bad = ~np.isfinite(np.asarray(values, dtype=float))
    if bad.any():
        first = list(paths)[int(np.flatnonzero(bad)[0])]
        raise ValueError(f"{checkpoint} gave {int(bad.sum())} of {len(bad)} non-finite scores (first: {first}); "
                         "the model is broken (a diverged training?). Nothing was written; retrain with a lower "
                         "train.lr or use another checkpoint")


def _write_results(run_dir: Path, scores: pd.DataFrame, per_id: pd.DataFrame, summary: pd.DataFrame) -> None:
    """Write the evaluation tables and the official score files, each file atomically."""
    atomic_csv(scores, run_dir / "scores.csv")
    atomic_csv(per_id, run_dir / "results.csv")
    atomic_csv(summary, run_dir / "summary.csv")
    staging = run_dir / f".scores.tmp{os.getpid()}"
    try:
        write_score_files(scores, staging, overwrite=True)
        (run_dir / "scores").mkdir(exist_ok=True)
        for f in staging.iterdir():
            os.replace(f, run_dir / "scores" / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def score_files(checkpoint: str | Path, paths, *, machine_type: str | None = None,
                machine_id: int | None = None, batch_size: int = 16, device: torch.device | None = None,
                progress: bool = True, on_error: str = "skip") -> pd.DataFrame:
    """Score any wav files or folders with a checkpoint: ``path, machine_type, machine_id, score`` per file.

    Files may have any sample rate, channels and length (``load_audio`` resamples, mixes down, pads, and warns).
    A recording longer than the model's clips is scored on its first ``seconds`` (one warning lists them).
    The machine type and ID come from DCASE-style paths (``fan/test/normal_id_00_…wav``) unless given.
    ``on_error="skip"`` (default) scores every readable file and lists the others with their reasons in
    ``table.attrs["skipped"]`` (and a warning); ``"raise"`` stops at the first. Non-finite scores raise.
    """
    from tqdm.auto import tqdm

    check_on_error(on_error)
    device = device or pick_device()
    model = load_model(checkpoint, map_location=device)
    seconds, sr = model.config["seconds"], model.config["sample_rate"]
    files, skipped = find_wav_files(paths)
    if skipped and on_error == "raise":
        raise DataError(f"{skipped[0][0]}: {skipped[0][1]}; pass on_error='skip' to score the other files")
    if not files:
        raise FileNotFoundError(f"no .wav files found in {', '.join(map(str, paths))}"
                                + "".join(f"; {p}: {r}" for p, r in skipped[:3]))
    table = pd.DataFrame([(str(f), *_machine_of(f, machine_type, machine_id)) for f in files],
                         columns=["path", "machine_type", "machine_id", "class_index"])
    kept, scores, long, notes = [], [], [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(table), batch_size), desc="scoring", disable=not progress, leave=False):
            rows, waves = [], []
            for i in range(start, min(start + batch_size, len(table))):
                path = table.path.iloc[i]
                try:
                    duration = _duration(path)
                    with warnings.catch_warnings(record=True) as caught:  # one summary line per kind, below
                        warnings.simplefilter("always")
                        waves.append(load_audio(path, sr=sr, seconds=seconds))
                    notes += [str(w.message) for w in caught]
                except AudioError as e:
                    if on_error == "raise":
                        raise
                    skipped.append((path, str(e).removeprefix(f"{path}: ")))
                    continue
                rows.append(i)
                long += [(path, duration)] if duration > seconds + 1e-3 else []
            if not rows:
                continue
            labels = torch.tensor(table.class_index.to_numpy()[rows], device=device)
            logits, _ = model(torch.from_numpy(np.stack(waves)).to(device), labels)
            scores.append(anomaly_score(logits, labels).float().cpu())
            kept += rows
    if not kept:
        raise DataError(f"none of the {len(table)} file(s) could be read; first: {skipped[0][0]}: {skipped[0][1]}")
    table = table.iloc[kept].reset_index(drop=True)
    table = table.drop(columns="class_index").assign(score=torch.cat(scores).numpy())
    _check_finite(table.score, Path(checkpoint), table.path)
    _report(table, skipped, long, seconds)
    _summarise(notes)
    return table


def _duration(path: str) -> float:
    """Length of a wav file in seconds, from its header."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except (RuntimeError, OSError):
        return 0.0  # load_audio says why it cannot be read
    return info.frames / info.samplerate if info.samplerate else 0.0


def _report(table: pd.DataFrame, skipped: list, long: list, seconds: float) -> None:
    """Attach the skipped files to the table and warn about them and about long recordings."""
    table.attrs["skipped"] = skipped
    table.attrs["longer_than_clip"] = long
    if skipped:
        first = "; ".join(f"{p} ({r})" for p, r in skipped[:3]) + ("; …" if len(skipped) > 3 else "")
        warnings.warn(f"skipped {len(skipped)} file(s) that could not be scored (listed in table.attrs['skipped'];"
                      f" on_error='raise' stops at the first): {first}", stacklevel=3)
    if long:
        warnings.warn(f"{len(long)} recording(s) are longer than the model's {seconds:g}-s clips (first: "
                      f"{long[0][0]}, {long[0][1]:.1f} s): each is scored on its first {seconds:g} s only",
                      stacklevel=3)


def _summarise(notes: list[str]) -> None:
    """One warning per kind of note from :func:`load_audio` (resampled, zero-padded, clipped), with a count."""
    kinds: dict[str, list[str]] = {}
    for note in notes:
        path, _, what = note.partition(": ")
        kinds.setdefault(re.sub(r"[-\d.]+", "#", what), []).append(note)
    for same in kinds.values():
        more = f" (and {len(same) - 1} more file(s) alike)" if len(same) > 1 else ""
        warnings.warn(same[0] + more, stacklevel=3)


def _machine_of(path: Path, machine_type: str | None, machine_id: int | None) -> tuple[str, int, int]:
    """``(machine_type, machine_id, class_index)`` of a file, from the arguments or its DCASE-style path."""
    try:
        mtype = canonical_type(machine_type or path.parent.parent.name)
        mid = machine_id if machine_id is not None else parse_clip_name(path.stem + ".wav").machine_id  # .WAV
        return mtype, mid, label_map()[(mtype, mid)]
    except (ValueError, KeyError) as err:
        raise ValueError(f"{path}: cannot tell which machine it is ({err}); pass --machine-type and "
                         "--machine-id (machine_type=/machine_id= in Python) with one of the 41 known IDs") from None

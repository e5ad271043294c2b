"""A run folder belongs to one run: a lock while it trains, the same config and data to resume, its own checkpoints.

``train`` holds an exclusive lock on ``<run>/.lock`` (``fcntl.flock``, released when the process ends, however it
ends), so a second training into the same folder refuses instead of interleaving the two runs' files. A run
resumes only with the config it was started with (more epochs are fine) and on the same data: the same file
names and sizes (:func:`~asdlib.data.index.fingerprint`) and the same sampled audio bytes
(:func:`~asdlib.data.index.content_fingerprint`, which tells two seeds of the procedural generator apart). A
``last.pt`` / ``best.pt`` that is a link to a file outside the folder (another run's checkpoint) is refused.
Starting over (``resume=False``) moves the old run's files into ``previous-<time>/``; nothing is deleted.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch.distributed as dist

from asdlib.data.index import DataError
from asdlib.training.config import RunConfig

RUN_FILES = ("config.yaml", "run.json", "last.pt", "best.pt", "history.csv", "history.json", "scores.csv",
             "results.csv", "summary.csv", "scores")
LOCK = ".lock"


class RunFolderError(RuntimeError):
    """A run folder in use by another process, or holding files that are not its own."""


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` exclusively while training into ``out``; raise :class:`RunFolderError` if another
    process holds it. One lock per job: the other processes of a ``torchrun`` job share rank 0's."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; runs are not locked there
        yield
        return
    if dist.is_initialized() and dist.get_rank() != 0:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise RunFolderError(f"{out} is in use by another training (process {holder}): two runs in one folder "
                                 "would overwrite each other's checkpoints; wait for it to finish, or choose "
                                 "another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def check_own_checkpoints(out: Path, names: tuple[str, ...] = ("last.pt", "best.pt")) -> None:
    """Refuse a checkpoint of ``out`` that resolves to a file outside it (a link to another run's)."""
    home = out.resolve()
    for name in names:
        path = out / name
        if path.exists() and path.resolve().parent != home:
            raise RunFolderError(f"{path} is a link to {path.resolve()}, outside the run folder {out}: resuming "
                                 "or evaluating it would mix two runs. Copy the file into the folder if you mean "
                                 "it, or remove the link (resume=False starts over)")


def check_run_dir(out: Path, cfg: RunConfig, resume: bool) -> None:
    """Never mix two different runs in one folder: resume only with the same config (more epochs are fine)."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.yaml"
    if resume and saved.exists() and (out / "last.pt").exists():
        if RunConfig.from_yaml(saved).replace(train={"epochs": cfg.train.epochs}) != cfg:
            raise ValueError(f"{out} holds a run with a different config ({saved}); choose another --out, or "
                             "pass resume=False to start a new run there (the old files are moved "
                             "to previous-<time>/)")


def check_same_data(out: Path, info: dict) -> None:
    """Refuse to resume a run on other data than it was started on (another file list, or other content)."""
    saved_path = out / "run.json"
    if not (out / "last.pt").exists() or not saved_path.is_file():
        return
    try:
        saved = json.loads(saved_path.read_text())
    except ValueError as e:
        raise DataError(f"{saved_path} is damaged ({e}); pass resume=False to start this run over") from None
    same_files = saved.get("fingerprint", info["fingerprint"]) == info["fingerprint"]
    same_content = saved.get("content", info["content"]) == info["content"]
    if same_files and same_content and (saved.get("data") == info["data"] or "fingerprint" in saved):
        return  # the same files (perhaps moved elsewhere)
    what = ("a different file list" if not same_files else "the same file names and sizes but other audio "
            "(another seed of the generator?)" if not same_content else "another folder")
    raise DataError(f"{out} was trained on {saved.get('data')} ({saved.get('train_clips', '?')} training clips, "
                    f"fingerprint {saved.get('fingerprint', 'not recorded')}), but --data is {info['data']} "
                    f"({info['train_clips']} training clips, fingerprint {info['fingerprint']}): {what}. "
                    "Choose another --out for this data, or pass resume=False to start a new run here (the old "
                    "files are moved to previous-<time>/)")


def move_aside(out: Path) -> Path | None:
    """Move an old run's files into ``out/previous-<time>/`` so that a new run starts clean; nothing is deleted."""
    if dist.is_initialized() and dist.get_rank() != 0:
        return None  # one process moves the files
    present = [out / name for name in RUN_FILES if (out / name).exists() or (out / name).is_symlink()]
    if not any(p.name in ("last.pt", "best.pt") for p in present):
        return None  # no run yet: config.yaml / run.json are simply rewritten
    aside = out / time.strftime("previous-%Y%m%d-%H%M%S")
    while aside.exists():
        aside = aside.with_name(aside.name + "_")
    aside.mkdir()
    for path in present:
        os.replace(path, aside / path.name)
    print(f"starting {out} over; the previous run's files are in {aside}")
    return aside


def atomic_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_csv(table: pd.DataFrame, path: Path) -> None:
    """:func:`atomic_text` for a table (``index=False``)."""
    atomic_text(path, table.to_csv(index=False))

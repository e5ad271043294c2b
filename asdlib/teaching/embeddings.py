"""Embeddings of a run's test clips, cached on disk, and 2-D maps of them that can be compared across runs.

:func:`run_embeddings` passes the labelled test clips once through a run's checkpoint and keeps the ``(N, D)``
embeddings, their cos θ to every class centre ``(N, K)`` and the clips' index columns in
``<run_dir>/embeddings.npz``; later calls read that file for as long as the checkpoint and the data are the same.
The reference runs shipped with asdlib carry their test embeddings (``embeddings.npy``), read as they are.
:func:`project_2d` maps embeddings to 2-D with UMAP (umap-learn) when it is installed, else with t-SNE
(scikit-learn), both with the cosine metric since ArcFace only looks at directions. Two networks have unrelated
embedding spaces, so fitting one map on their stacked embeddings would only put them side by side; instead
:func:`shared_layout` maps each run on its own and turns, flips and scales each map onto the first run's map
(orthogonal Procrustes on the same test clips), so that a clip lands in about the same place in every panel.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from asdlib.evaluation.scoring import angle_to_centre
from asdlib.teaching.paths import repo_root

INDEX_COLUMNS = ("path", "machine_type", "machine_id", "class_index", "label")
CACHE_NAME = "embeddings.npz"
SHIPPED_NAME = "embeddings.npy"  # what a shipped reference run holds instead


@dataclass
class RunEmbeddings:
    """Test-clip embeddings of one run: ``embedding`` ``(N, D)``, ``cosine`` ``(N, K)``, ``table`` (N rows)."""

    embedding: np.ndarray
    cosine: np.ndarray
    table: pd.DataFrame

    @property
    def angle(self) -> np.ndarray:
        """θ_y in degrees between each embedding and its machine ID's class centre: ``(N,)``."""
        return angles_to_centres(self.cosine, self.table["class_index"].to_numpy())


def angles_to_centres(cosine: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """θ_y in degrees from cos θ to every centre and the true IDs: ``(N, K), (N,) -> (N,)``."""
    return angle_to_centre(torch.tensor(np.asarray(cosine)), torch.tensor(np.asarray(labels))).numpy()


def compute_embeddings(run_dir: str | Path, *, data: str | Path | None = None, checkpoint: str = "best.pt",
                       progress: bool = True) -> RunEmbeddings:
    """Embed the labelled test clips of ``data`` (default: the run's) with ``run_dir/checkpoint``; no caching."""
    from asdlib.experiment import prepare_data, score_dataset

    cfg, model, device = _run_model(run_dir, checkpoint)
    cache, _, _, test_rows = prepare_data(_data_root(run_dir, data), cfg, progress=progress)
    table, embedding = score_dataset(model, cache, test_rows, device=device, batch_size=cfg.train.batch_size,
                                     progress=progress, return_embeddings=True)
    with torch.inference_mode():
        cosine = model.head.cosine(torch.from_numpy(embedding).to(device)).float().cpu().numpy()  # (N, K)
    return RunEmbeddings(embedding, cosine, table[list(INDEX_COLUMNS)].copy())


def split_angles(run_dir: str | Path, *, data: str | Path | None = None, checkpoint: str = "best.pt",
                 per_id: int | None = 12, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """θ_y of the normal clips of a run's own splits: the clips it trained on, the ones it held out, the test clips.

    The run's data split is rebuilt from its config (``train``: trained on; ``val``: normal training clips held
    out from training, the same machines' distribution; ``test``: the labelled normal test clips), at most
    ``per_id`` clips of each machine ID and split drawn at random (``seed``) to keep it quick (None: all). One
    row per clip: machine_type, machine_id, ``split``, ``angle`` (degrees), ``score`` (the anomaly score, the
    ArcFace CE with the margin on the true ID) and ``correct`` (the margin-free arg-max is the true ID).
    Held-out clips that sit further out than trained-on ones are overfitting in angles
    (:func:`asdlib.evaluation.overfitting.angle_shift`)."""
    from asdlib.experiment import prepare_data, score_dataset

    cfg, model, device = _run_model(run_dir, checkpoint)
    cache, train_rows, val_rows, test_rows = prepare_data(_data_root(run_dir, data), cfg, progress=progress)
    rng, parts = np.random.default_rng(seed), []
    normal = cache.index.label.to_numpy() == "normal"
    for split, rows in (("train", train_rows), ("val", val_rows), ("test", test_rows)):
        rows = np.asarray(rows)
        rows = rows[normal[rows]]
        if per_id is not None:  # the same number of clips from every ID, so no ID dominates a split
            ids = cache.index.class_index.to_numpy()[rows]
            rows = np.sort(np.concatenate([
                rng.permutation(rows[ids == k])[:per_id] for k in np.unique(ids)])) if len(rows) else rows
        table, embedding = score_dataset(model, cache, rows, device=device, batch_size=cfg.train.batch_size,
                                         progress=progress, return_embeddings=True)
        with torch.inference_mode():
            cosine = model.head.cosine(torch.from_numpy(embedding).to(device)).float().cpu().numpy()  # (n, K)
        table["correct"] = cosine.argmax(1) == table["class_index"].to_numpy()
        parts.append(table[["machine_type", "machine_id", "angle", "score", "correct"]].assign(split=split))
    return pd.concat(parts, ignore_index=True)


def run_embeddings(run_dir: str | Path, *, data: str | Path | None = None, checkpoint: str = "best.pt",
                   recompute: bool = False, progress: bool = True) -> RunEmbeddings:
    """:func:`compute_embeddings`, cached in ``run_dir/embeddings.npz`` (recomputed, with a note, when the
    checkpoint or the data changed, or when ``recompute``)."""
    if (Path(run_dir) / SHIPPED_NAME).is_file():
        return shipped_embeddings(run_dir, data=data)
    cache_path = Path(run_dir) / CACHE_NAME
    stamp = _stamp(_checkpoint_path(run_dir, checkpoint), _data_root(run_dir, data))
    if cache_path.is_file() and not recompute:
        cached, cached_stamp = read_embeddings(cache_path)
        if cached_stamp == stamp:
            return cached
        print(f"{cache_path} was computed from another checkpoint or dataset: recomputing it")
    result = compute_embeddings(run_dir, data=data, checkpoint=checkpoint, progress=progress)
    write_embeddings(cache_path, result, stamp=stamp)
    return result


def shipped_embeddings(run_dir: str | Path, *, data: str | Path | None = None) -> RunEmbeddings:
    """The embeddings a reference run ships (``embeddings.npy``, rows of ``scores.csv``; see
    :mod:`asdlib.teaching.pretrained`), with their cos θ to the class centres of the run's ``best.pt``."""
    from asdlib.training.checkpoints import load_model

    run_dir = Path(run_dir)
    table = pd.read_csv(run_dir / "scores.csv")
    table["path"] = [str(Path(data) / f) if data is not None else f for f in table["file"]]
    embedding = np.load(run_dir / SHIPPED_NAME).astype(np.float32)  # (N, D), stored as fp16
    with torch.inference_mode():
        cosine = load_model(_checkpoint_path(run_dir, "best.pt")).head.cosine(torch.from_numpy(embedding)).numpy()
    return RunEmbeddings(embedding, cosine, table[list(INDEX_COLUMNS)].copy())


def write_embeddings(path: str | Path, emb: RunEmbeddings, *, stamp: str = "") -> Path:
    """Save ``emb`` as an ``.npz`` of plain arrays (no pickles), atomically (temporary file + rename)."""
    path = Path(path)
    arrays = {f"table_{c}": emb.table[c].to_numpy(dtype=str if c in ("path", "machine_type", "label") else int)
              for c in INDEX_COLUMNS}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, embedding=emb.embedding, cosine=emb.cosine, stamp=np.array(stamp), **arrays)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def read_embeddings(path: str | Path) -> tuple[RunEmbeddings, str]:
    """Read a file written by :func:`write_embeddings`: ``-> (embeddings, stamp)``."""
    with np.load(path, allow_pickle=False) as f:
        table = pd.DataFrame({c: f[f"table_{c}"] for c in INDEX_COLUMNS})
        return RunEmbeddings(f["embedding"], f["cosine"], table), str(f["stamp"])


def _run_model(run_dir: str | Path, checkpoint: str):
    """``(config, model in eval mode, device)`` of ``run_dir/checkpoint``; refuses a checkpoint without a config."""
    from asdlib.training.checkpoints import load_checkpoint, load_model
    from asdlib.training.config import RunConfig
    from asdlib.training.loop import pick_device

    path = _checkpoint_path(run_dir, checkpoint)
    saved = load_checkpoint(path)
    if "run_config" not in saved:
        raise ValueError(f"{path} holds no run_config (an imported checkpoint?): embed clips with "
                         "model.embed(wave) directly, or train a run with asdlib.teaching.notebook.ensure_run")
    cfg = RunConfig.from_dict(saved["run_config"], source=str(path))
    if not Path(cfg.data.cache_dir).is_absolute():  # shipped runs record data/cache: the repository's, not notebooks/'s
        cfg = cfg.replace(data={"cache_dir": str(repo_root() / cfg.data.cache_dir)})
    device = pick_device(cfg.train.device)
    return cfg, load_model(path, map_location=device), device


def _checkpoint_path(run_dir: str | Path, checkpoint: str) -> Path:
    path = Path(run_dir) / checkpoint
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train the run first (asdlib.teaching.notebook.ensure_run or "
                                "`python -m asdlib train`)")
    return path


def _data_root(run_dir: str | Path, data: str | Path | None) -> str:
    """``data``, else the dataset the run was trained on (``run.json``), as an absolute path."""
    if data is None:
        info = Path(run_dir) / "run.json"
        if not info.is_file():
            raise FileNotFoundError(f"{info} not found: pass data=<dataset root> explicitly")
        data = json.loads(info.read_text())["data"]
    return str(Path(data).resolve())


def _stamp(checkpoint: Path, data: str) -> str:
    st = checkpoint.stat()
    return f"{checkpoint.name}|{st.st_size}|{st.st_mtime_ns}|{data}"


# ------------------------------------------------------------------------------------------ 2-D maps
def projection_method(method: str = "auto") -> str:
    """``"umap"`` or ``"tsne"``; ``"auto"`` picks UMAP when umap-learn imports, else t-SNE (with a note)."""
    if method not in ("auto", "umap", "tsne"):
        raise ValueError(f"method must be 'auto', 'umap' or 'tsne', not {method!r}")
    if method != "auto":
        return method
    try:
        import umap  # noqa: F401  (slow to import the first time: numba compiles it)
    except ImportError:
        print("umap-learn is not installed: using t-SNE (scikit-learn) instead; `pip install umap-learn` for UMAP")
        return "tsne"
    return "umap"


def project_2d(embedding: np.ndarray, *, method: str = "auto", seed: int = 0) -> np.ndarray:
    """2-D map of L2-normalised embeddings with the cosine metric: ``(N, D) -> (N, 2)``."""
    x = np.asarray(embedding, dtype=np.float32)
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    if len(x) < 4:
        raise ValueError(f"need at least 4 embeddings for a 2-D map, got {len(x)}")
    if projection_method(method) == "umap":
        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "n_jobs overridden by random_state": wanted
            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), metric="cosine",
                                random_state=seed)
            return reducer.fit_transform(x)
    from sklearn.manifold import TSNE

    perplexity = float(np.clip((len(x) - 1) / 3, 1.0, 30.0))  # t-SNE needs perplexity < N
    return TSNE(n_components=2, metric="cosine", init="pca", perplexity=perplexity,
                random_state=seed).fit_transform(x)


def procrustes_align(xy: np.ndarray, reference: np.ndarray, *,
                     match: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Turn/flip, scale and shift ``xy`` ``(N, 2)`` onto ``reference`` ``(M, 2)``: ``-> (N, 2)``.

    Fitted on matching rows: ``match = (rows of xy, rows of reference)``; default all rows, in order (N = M).
    """
    from scipy.linalg import orthogonal_procrustes

    rows_a, rows_b = match if match is not None else (np.arange(len(xy)), np.arange(len(reference)))
    a, b = xy[rows_a], reference[rows_b]
    mean_a, mean_b = a.mean(0), b.mean(0)
    rotation, _ = orthogonal_procrustes(a - mean_a, b - mean_b)  # (2, 2), minimises |(a − ā) R − (b − b̄)|
    scale = np.linalg.norm(b - mean_b) / max(np.linalg.norm(a - mean_a), 1e-12)
    return (xy - mean_a) @ rotation * scale + mean_b


def shared_layout(runs: Mapping[str, RunEmbeddings], *, method: str = "auto", seed: int = 0,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """One 2-D map ``(N, 2)`` per run, each aligned to the first run's map on the test clips they share."""
    method = projection_method(method)
    layouts: dict[str, np.ndarray] = {}
    reference = None
    for name, emb in tqdm(runs.items(), desc=f"2-D maps ({method})", total=len(runs), disable=not progress):
        xy = project_2d(emb.embedding, method=method, seed=seed)
        if reference is None:
            reference = (xy, pd.Index(emb.table["path"]))
        else:
            rows_ref = reference[1].get_indexer(emb.table["path"])  # -1 where a clip is not in the first run
            shared = np.flatnonzero(rows_ref >= 0)
            if len(shared) >= 3:
                xy = procrustes_align(xy, reference[0], match=(shared, rows_ref[shared]))
            else:
                print(f"{name}: fewer than 3 test clips in common with the first run; its map is not aligned")
        layouts[name] = xy
    return layouts

"""Decode a dataset once into one on-disk array, then serve clips from it straight from disk.

Decoding the ~38k DCASE2020 wav files takes minutes; later epochs, runs and notebooks should not pay it again.
:func:`build_cache` writes ``<cache_dir>/<key>.npy`` (every clip, ``(N, L)``, int16 by default), ``<key>.csv``
(the index rows, same order) and ``<key>.json`` (sample rate, clip length, skipped files). The key hashes each
file's path, size, modification time and a sample of its bytes (the first 256 and 8 × 256 spread over the
file) with ``sr``, ``L`` and the dtype, so adding, removing or editing a file gives a new key and a fresh
build, even an edit that keeps size and mtime (``cp -p``, ``rsync -t``). Not detected: an edit that keeps
size and mtime *and* touches only bytes outside the sample; delete the cache folder to force a rebuild.
The ``.npy`` is written with plain writes (no memory map, so a full disk is an error, not a SIGBUS), after
checking that the disk has room. Everything is written under temporary names (``<key>.tmp-<host>-<pid>.*``)
and renamed at the end, the ``.json`` last, so an interrupted build never looks valid; temporaries left by
dead processes are removed by the next build. :meth:`WaveCache.waves` copies the clips it is
asked for out of the file with positioned reads, one per run of consecutive rows: nothing is held in RAM or
stays mapped into the process, so memory stays flat however large the dataset (the OS page cache keeps hot
clips fast); :attr:`WaveCache.array` is a read-only mmap view for inspection. :class:`ClipDataset` serves
``(wave, class_index, row)``; :class:`ClipBatchDataset` serves whole batches in one call, driven by an
:class:`EpochBatchSampler` (the fast path of :func:`asdlib.experiment.make_loader`).
"""
from __future__ import annotations

import errno
import re
import hashlib
import io
import json
import os
import shutil
import socket
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.lib.format import write_array_header_1_0
from torch.utils.data import BatchSampler, Dataset
from tqdm.auto import tqdm

from asdlib.data.audio import AudioError, DataError, check_on_error, load_audio

DTYPES = ("int16", "float16", "float32")
_INT16_SCALE = 32768.0  # soundfile's PCM_16 scale: 16-bit sources round-trip exactly
_FORMAT_VERSION = 2
_SAMPLE_BYTES, _SAMPLES = 256, 8  # content sample of the key: the header block + 8 blocks spread evenly


def cache_key(index: pd.DataFrame, *, sr: int, num_samples: int, dtype: str) -> str:
    """Hash of every file's ``(path, size, mtime_ns, sampled bytes)``, in order, and the decoding settings."""
    h = hashlib.sha256(json.dumps([_FORMAT_VERSION, sr, num_samples, dtype]).encode())
    for path in index["path"]:
        try:
            st = os.stat(path)
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            h.update(_content_sample(path, st.st_size))
        except OSError:
            h.update(f"{path}\0missing\n".encode())
    return h.hexdigest()[:24]


def _content_sample(path: str, size: int) -> bytes:
    """The first :data:`_SAMPLE_BYTES` bytes and :data:`_SAMPLES` blocks spread evenly over the file."""
    with open(path, "rb", buffering=0) as f:
        blocks = [os.pread(f.fileno(), _SAMPLE_BYTES, 0)]
        for k in range(1, _SAMPLES + 1):
            blocks.append(os.pread(f.fileno(), _SAMPLE_BYTES, max(0, size * k // (_SAMPLES + 1))))
    return b"".join(blocks)


def build_cache(index: pd.DataFrame, *, sr: int = 16000, seconds: float = 10.0,
                cache_dir: str | Path = "data/cache", dtype: str = "int16", on_error: str = "raise",
                progress: bool = True) -> WaveCache:
    """Decode every clip of ``index`` into ``<cache_dir>/<key>.npy`` ``(N, L)`` once; reuse it afterwards.

    With ``on_error="skip"`` undecodable files are left out of the cache (and its ``index``), listed in
    ``cache.skipped`` and reported in a warning; with ``"raise"`` the first one raises :class:`AudioError`.
    """
    check_on_error(on_error)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if seconds is None or len(index) == 0 or "path" not in index:
        raise ValueError("build_cache needs a fixed clip length (seconds) and a non-empty index with a "
                         "'path' column")
    num_samples = round(seconds * sr)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cache_dir)
    stem = Path(cache_dir) / cache_key(index, sr=sr, num_samples=num_samples, dtype=dtype)
    if not all(stem.with_suffix(ext).is_file() for ext in (".npy", ".csv", ".json")):
        _check_space(Path(cache_dir), len(index) * num_samples * np.dtype(dtype).itemsize)
        _write(stem, index, sr=sr, seconds=seconds, dtype=dtype, on_error=on_error, progress=progress)
    cache = WaveCache(stem.with_suffix(".npy"))
    kept = index[~index["path"].isin({p for p, _ in cache.skipped})].reset_index(drop=True)
    if kept["path"].tolist() == cache.index["path"].tolist():
        cache.index = kept  # the caller's columns (e.g. class_index in another label order)
    if cache.skipped:
        warnings.warn(f"the cache left out {len(cache.skipped)} undecodable file(s), listed in "
                      f"cache.skipped; first: {cache.skipped[0][1]}", stacklevel=2)
    return cache


_TMP = re.compile(r"\.tmp(?:-(?P<host>.+)-)?(?P<pid>\d+)\.(?:npy|csv|json)$")


def _tmp_tag() -> str:
    return f"tmp-{socket.gethostname()}-{os.getpid()}"


def remove_stale_temporaries(cache_dir: str | Path) -> list[Path]:
    """Delete the temporaries of builds whose process (on this host) is gone, e.g. after ``kill -9``."""
    removed = []
    for path in Path(cache_dir).glob("*.tmp*"):
        match = _TMP.search(path.name)
        if match is None or match["host"] not in (None, socket.gethostname()) or _alive(int(match["pid"])):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _gb(n: float) -> str:
    """Bytes in GB (MB below 0.1 GB), for space messages."""
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.2f} MB"


def _check_space(cache_dir: Path, need: int) -> None:
    """Raise :class:`DataError` ("N GB needed, M GB free in DIR") when the cache cannot fit on its disk."""
    free = shutil.disk_usage(cache_dir).free
    if need > free:
        raise DataError(f"the waveform cache needs {_gb(need)}, {_gb(free)} free in {cache_dir}; free some "
                        "space or set data.cache_dir to a folder on a larger disk")


def _write(stem: Path, index: pd.DataFrame, *, sr: int, seconds: float, dtype: str, on_error: str,
           progress: bool) -> None:
    """Decode into temporary files, then rename them into place; the ``.json`` last marks completion."""
    tmp = {ext: stem.with_name(f"{stem.name}.{_tmp_tag()}{ext}") for ext in (".npy", ".csv", ".json")}
    try:
        kept, skipped = _decode_all(tmp[".npy"], index["path"].tolist(), sr=sr, seconds=seconds, dtype=dtype,
                                    on_error=on_error, progress=progress)
        index.iloc[kept].to_csv(tmp[".csv"], index=False)
        meta = {"sample_rate": sr, "num_samples": round(seconds * sr), "dtype": dtype, "skipped": skipped}
        tmp[".json"].write_text(json.dumps(meta, indent=1))
        for ext in (".npy", ".csv", ".json"):
            os.replace(tmp[ext], stem.with_suffix(ext))
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise
        need = len(index) * round(seconds * sr) * np.dtype(dtype).itemsize
        raise DataError(f"could not write the waveform cache {stem}.npy ({e.strerror}): it needs {_gb(need)}, "
                        f"{_gb(shutil.disk_usage(stem.parent).free)} free in {stem.parent} now; free some space "
                        "or set data.cache_dir to a folder on a larger disk") from None
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)


def _decode_all(path: Path, paths: list[str], *, sr: int, seconds: float, dtype: str, on_error: str,
                progress: bool) -> tuple[list[int], list[tuple[str, str]]]:
    """Decode ``paths`` into a new ``.npy`` ``(N, L)`` at ``path`` with plain writes (no memory map):
    ``-> (kept positions, skipped (path, reason))``."""
    kept, skipped = [], []
    with open(path, "wb") as out, warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                     "fortran_order": False, "shape": (len(paths), round(seconds * sr))})
        for i, p in enumerate(tqdm(paths, desc="decoding clips", unit="clip", disable=not progress)):
            try:
                wave = load_audio(p, sr=sr, seconds=seconds)
            except AudioError as e:
                if on_error == "raise":
                    raise
                skipped.append((p, str(e)))
                continue
            out.write(_encode(wave, dtype).tobytes())
            kept.append(i)
    if not kept:
        raise AudioError(f"none of the {len(paths)} files could be decoded; first: {skipped[0][1]}")
    if skipped:
        _shrink_npy(path, len(kept))
    if notes:
        warnings.warn(f"{len(notes)} warning(s) while decoding; first: {notes[0].message}", stacklevel=4)
    return kept, skipped


def _shrink_npy(path: Path, rows: int) -> None:
    """Cut a ``.npy`` to its first ``rows`` rows in place (numpy leaves room in the header for this)."""
    with open(path, "rb") as f:  # the header only: the file may be shorter than it announces
        np.lib.format.read_magic(f)
        old_shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
    shape = (rows, *old_shape[1:])
    header = io.BytesIO()
    write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                                    "shape": shape})
    if header.tell() != offset:
        raise RuntimeError(f"cannot rewrite the header of {path} in place; upgrade numpy")
    with open(path, "r+b") as f:
        f.write(header.getvalue())
        f.truncate(offset + rows * int(np.prod(shape[1:])) * dtype.itemsize)
        # rows never written (skipped files) were never allocated: the file is exactly this long now


def _encode(wave: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "int16":
        return np.clip(np.round(wave * _INT16_SCALE), -32768, 32767).astype(np.int16)
    return wave.astype(dtype)


def _decode(stored: np.ndarray) -> np.ndarray:
    """Stored samples -> float32 in one pass (scaling by 2**-15 is exact, as dividing by 32768 is)."""
    if stored.dtype == np.int16:
        return np.multiply(stored, np.float32(1 / _INT16_SCALE), dtype=np.float32)
    return stored.astype(np.float32)


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: the positions of each run of consecutive values in ``rows`` (e.g. 4, 5, 6)."""
    edges = [0, *(np.flatnonzero(np.diff(rows) != 1) + 1).tolist(), len(rows)]
    return list(zip(edges[:-1], edges[1:]))


def _read_exactly(f, buffer: memoryview, path: Path) -> None:
    while len(buffer):
        n = f.readinto(buffer)
        if not n:
            raise DataError(f"{path} is shorter than its header says; delete it and rebuild the cache")
        buffer = buffer[n:]


class WaveCache:
    """A decoded dataset on disk: row ``i`` of :attr:`index` is clip ``i`` of the ``(N, L)`` array."""

    def __init__(self, path: str | Path):
        self.path = Path(path).with_suffix(".npy")
        parts = [self.path.with_suffix(ext) for ext in (".npy", ".csv", ".json")]
        if not all(p.is_file() for p in parts):
            raise DataError(f"{self.path} is not a complete waveform cache; build one with "
                            "build_cache(index_dataset(root))")
        fix = f"delete {self.path.with_suffix('.*')} and run again to rebuild the cache"
        try:
            meta = json.loads(parts[2].read_text())
            self.sample_rate: int = int(meta["sample_rate"])
            self.num_samples: int = int(meta["num_samples"])
            self.skipped: list[tuple[str, str]] = [tuple(s) for s in meta["skipped"]]
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{parts[2]} is damaged ({type(e).__name__}: {e}); {fix}") from None
        try:
            self.index: pd.DataFrame = pd.read_csv(parts[1], keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as e:
            raise DataError(f"{parts[1]} is damaged ({e}); {fix}") from None
        self._array = None
        try:
            shape = self.array.shape
        except (ValueError, OSError) as e:  # truncated: "mmap length is greater than file size"
            raise DataError(f"{self.path} is damaged or truncated ({e}); {fix}") from None
        if shape != (len(self.index), self.num_samples):
            raise DataError(f"{self.path} does not match its index {parts[1]}; {fix}")

    @property
    def array(self) -> np.ndarray:
        """The raw ``(N, L)`` stored array, opened read-only with mmap on first use in each process."""
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}  # workers re-open the mmap; never pickle the data

    def __len__(self) -> int:
        return len(self.index)

    def wave(self, i: int) -> np.ndarray:
        """Clip ``i`` as float32 in [-1, 1]: ``-> (L,)``."""
        return self.waves([i])[0]

    def waves(self, rows) -> np.ndarray:
        """Clips ``rows`` (in that order, repeats allowed) as float32 in [-1, 1]: ``-> (n, L)``."""
        return _decode(self.read(rows))

    def read(self, rows) -> np.ndarray:
        """The stored rows ``rows`` (cache dtype) ``-> (n, L)``, one positioned read per run of consecutive rows.

        Unlike indexing the mmap :attr:`array`, reading maps no file pages into the process: its resident
        memory stays flat even after a pass over a cache larger than RAM (the OS page cache still helps).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows must lie in [0, {len(self)}) for {self.path}")
        out = np.empty((len(rows), self.num_samples), dtype=self.array.dtype)
        row_bytes = out.itemsize * self.num_samples
        with open(self.path, "rb", buffering=0) as f:  # one handle per call: safe in forked workers
            for start, stop in _runs(rows) if len(rows) else []:
                f.seek(self.array.offset + int(rows[start]) * row_bytes)
                _read_exactly(f, memoryview(out[start:stop]).cast("B"), self.path)
        return out

    def __repr__(self) -> str:
        return f"WaveCache({str(self.path)!r}, clips={len(self)}, sample_rate={self.sample_rate}, " \
               f"num_samples={self.num_samples})"


class ClipDataset(Dataset):
    """``(wave (L,) float32, class_index int, row int)`` for the cache rows ``rows`` (default: all)."""

    def __init__(self, cache: WaveCache, rows=None):
        self.cache = cache
        rows = np.arange(len(cache)) if rows is None else np.asarray(rows)
        self.rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= len(cache)):
            raise IndexError(f"rows must lie in [0, {len(cache)}) for this cache")
        self.labels = cache.index["class_index"].to_numpy(np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        row = int(self.rows[i])
        return torch.from_numpy(self.cache.wave(row)), int(self.labels[row]), row


class ClipBatchDataset(ClipDataset):
    """Whole batches, each in one read: ``dataset[positions] -> (wave (B, L), class_index (B,), row (B,))``.

    ``positions`` index :attr:`rows` as in :class:`ClipDataset`, so with the same sampler the batches equal a
    per-item ``DataLoader(ClipDataset, batch_size=B)``'s, without B item fetches and a ``torch.stack``. Give
    it an :class:`EpochBatchSampler` as the ``sampler`` of a ``DataLoader(..., batch_size=None)``.
    """

    def __getitem__(self, positions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        wave = torch.from_numpy(self.cache.waves(rows))  # (B, L)
        return wave, torch.from_numpy(self.labels[rows]), torch.from_numpy(rows)


class EpochBatchSampler(BatchSampler):
    """``BatchSampler`` that passes ``set_epoch`` on, so a ``DistributedSampler`` inside reshuffles per epoch."""

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

"""asdlib.data.cache: decode once, reuse, invalidate, survive interruptions, keep memory flat, feed DataLoaders."""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

import asdlib.data.cache
from asdlib.data.cache import ClipDataset, WaveCache, build_cache
from asdlib.data.index import AudioError, DataError, index_dataset, load_audio

SECONDS = 0.5


def write_wav(path: Path, *, seconds: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(seed).standard_normal(round(seconds * 16000)), 16000, "PCM_16")


def make_dataset(root: Path, n: int = 12, *, seconds: float = SECONDS) -> Path:
    """``n`` clips spread over fan / valve IDs, train and test."""
    for i in range(n):
        t, ids = ("fan", (0, 1, 2)) if i % 2 == 0 else ("valve", (4, 5, 6))
        split, label = ("train", "normal") if i % 3 else ("test", "anomaly")
        write_wav(root / t / split / f"{label}_id_{ids[i % 3]:02d}_{i:08d}.wav", seconds=seconds, seed=i)
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


def build(index, cache_dir, **kw):
    return build_cache(index, seconds=SECONDS, cache_dir=cache_dir, progress=False, **kw)


def test_build_values_match_load_audio(dataset: Path, tmp_path: Path):
    index = index_dataset(dataset)
    cache = build(index, tmp_path / "cache")
    assert len(cache) == len(index) == 12 and cache.sample_rate == 16000 and cache.num_samples == 8000
    assert cache.index.path.tolist() == index.path.tolist()
    assert {p.suffix for p in (tmp_path / "cache").iterdir()} == {".npy", ".csv", ".json"}
    reference = np.stack([load_audio(p, seconds=SECONDS) for p in index.path])
    assert np.array_equal(cache.waves(range(12)), reference)  # 16-bit sources round-trip exactly
    assert cache.wave(3).dtype == np.float32 and np.array_equal(cache.wave(3), reference[3])
    assert np.array_equal(cache.waves([5, 1]), reference[[5, 1]])


@pytest.mark.parametrize("dtype, atol", [("float16", 1e-3), ("float32", 0.0)])
def test_other_dtypes(dataset: Path, tmp_path: Path, dtype: str, atol: float):
    index = index_dataset(dataset)
    cache = build(index, tmp_path / "cache", dtype=dtype)
    assert cache.array.dtype == np.dtype(dtype)
    reference = np.stack([load_audio(p, seconds=SECONDS) for p in index.path])
    np.testing.assert_allclose(cache.waves(range(len(cache))), reference, atol=atol, rtol=0)


def test_second_build_reuses_without_decoding(dataset: Path, tmp_path: Path, monkeypatch):
    index = index_dataset(dataset)
    first = build(index, tmp_path / "cache")
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache was decoded again")

    monkeypatch.setattr(asdlib.data.cache, "load_audio", no_decoding)
    second = build(index, tmp_path / "cache")
    assert second.path == first.path and np.array_equal(second.waves(range(12)), first.waves(range(12)))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()} == stamps
    # another label order reuses the same audio; the index carries the caller's class_index
    other = build(index_dataset(dataset, label_order="noisy_arcmix"), tmp_path / "cache")
    assert other.path == first.path and other.index.class_index.tolist() != first.index.class_index.tolist()


def test_changed_file_list_gives_new_cache(dataset: Path, tmp_path: Path):
    cache_dir = tmp_path / "cache"
    paths = {build(index_dataset(dataset), cache_dir).path}
    write_wav(dataset / "fan/train/normal_id_00_00000100.wav", seconds=SECONDS, seed=99)  # added
    added = build(index_dataset(dataset), cache_dir)
    assert added.path not in paths and len(added) == 13
    paths.add(added.path)
    victim = dataset / "fan/train/normal_id_00_00000100.wav"  # modified: new content, later mtime
    write_wav(victim, seconds=SECONDS, seed=7)
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
    modified = build(index_dataset(dataset), cache_dir)
    row = modified.index.path.tolist().index(str(victim))
    assert modified.path not in paths
    assert np.array_equal(modified.wave(row), load_audio(victim, seconds=SECONDS))
    paths.add(modified.path)
    victim.unlink()  # removed
    assert build(index_dataset(dataset), cache_dir).path in paths - {added.path, modified.path}
    with pytest.warns(UserWarning, match="resampling from 16000 Hz to 8000 Hz"):
        assert build(index_dataset(dataset), cache_dir, sr=8000).path not in paths  # settings are in the key


def test_interrupted_build_leaves_no_valid_cache(dataset: Path, tmp_path: Path):
    index = index_dataset(dataset)
    bad = Path(index.path[6])
    good_bytes = bad.read_bytes()
    bad.write_bytes(good_bytes[:100])  # truncated: decoding fails half-way through the build
    with pytest.raises(AudioError, match=f"{bad}.*truncated"):
        build(index, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # no .npy/.csv/.json, no temporary files
    bad.write_bytes(good_bytes)
    os.utime(bad, ns=(bad.stat().st_atime_ns, bad.stat().st_mtime_ns + 10**9))
    assert len(build(index, tmp_path / "cache")) == 12


def test_incomplete_cache_is_not_opened(dataset: Path, tmp_path: Path):
    cache = build(index_dataset(dataset), tmp_path / "cache")
    reopened = WaveCache(cache.path)
    assert np.array_equal(reopened.waves(range(12)), cache.waves(range(12)))
    cache.path.with_suffix(".json").unlink()
    with pytest.raises(DataError, match="not a complete waveform cache"):
        WaveCache(cache.path)


def test_skip_drops_bad_files(dataset: Path, tmp_path: Path):
    index = index_dataset(dataset)
    Path(index.path[2]).write_bytes(b"")
    Path(index.path[9]).write_bytes(b"RIFF junk" * 10)
    with pytest.warns(UserWarning, match=r"left out 2 undecodable file\(s\)"):
        cache = build(index, tmp_path / "cache", on_error="skip")
    assert [p for p, _ in cache.skipped] == [index.path[2], index.path[9]]
    assert "empty file" in cache.skipped[0][1]
    kept = index.drop([2, 9]).reset_index(drop=True)
    assert cache.index.path.tolist() == kept.path.tolist() and cache.array.shape == (10, 8000)
    reference = np.stack([load_audio(p, seconds=SECONDS) for p in kept.path])
    assert np.array_equal(cache.waves(range(10)), reference)
    with pytest.warns(UserWarning, match="left out 2"):  # reused, and still reported
        assert build(index, tmp_path / "cache", on_error="skip").path == cache.path


def test_skip_with_nothing_left_raises(dataset: Path, tmp_path: Path):
    index = index_dataset(dataset).iloc[:2]
    for p in index.path:
        Path(p).write_bytes(b"")
    with pytest.raises(AudioError, match="none of the 2 files could be decoded; first: .*empty file"):
        build(index, tmp_path / "cache", on_error="skip")
    assert list((tmp_path / "cache").iterdir()) == []


def test_decoding_warnings_are_summarised(dataset: Path, tmp_path: Path):
    index = index_dataset(dataset)
    with pytest.warns(UserWarning, match=r"12 warning\(s\) while decoding; first: .*zero-padding") as record:
        build_cache(index, seconds=1.0, cache_dir=tmp_path / "cache", progress=False)
    assert len(record) == 1


def test_options_are_validated(dataset: Path, tmp_path: Path):
    index = index_dataset(dataset)
    with pytest.raises(ValueError, match="on_error"):
        build(index, tmp_path, on_error="ignore")
    with pytest.raises(ValueError, match="dtype"):
        build(index, tmp_path, dtype="int8")
    with pytest.raises(ValueError, match="non-empty index"):
        build(index.iloc[:0], tmp_path)


def test_clip_dataset_items_and_rows(dataset: Path, tmp_path: Path):
    cache = build(index_dataset(dataset), tmp_path / "cache")
    wave, label, row = ClipDataset(cache)[4]
    assert wave.dtype == torch.float32 and wave.shape == (8000,) and row == 4
    assert label == cache.index.class_index[4] and torch.equal(wave, torch.from_numpy(cache.wave(4)))
    subset = ClipDataset(cache, rows=[7, 2])
    assert len(subset) == 2 and [subset[i][2] for i in range(2)] == [7, 2]
    mask = (cache.index.split == "test").to_numpy()
    assert [r for _, _, r in ClipDataset(cache, rows=mask)] == np.flatnonzero(mask).tolist()
    with pytest.raises(IndexError):
        ClipDataset(cache, rows=[12])
    assert len(pickle.dumps(ClipDataset(cache))) < cache.array.nbytes  # the array itself is never pickled


def test_dataloader_with_workers(dataset: Path, tmp_path: Path):
    cache = build(index_dataset(dataset), tmp_path / "cache")
    loader = DataLoader(ClipDataset(cache, rows=range(1, 12)), batch_size=4, num_workers=2)
    waves, labels, rows = (torch.cat(x) for x in zip(*loader))
    assert rows.tolist() == list(range(1, 12)) and labels.dtype == torch.int64
    assert labels.tolist() == cache.index.class_index[1:].tolist()
    assert torch.equal(waves, torch.from_numpy(cache.waves(range(1, 12))))


def _rss_anon() -> int:
    """Anonymous resident memory of this process, in bytes (file-backed mmap pages are not counted)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_memory_stays_flat(tmp_path: Path):
    root = make_dataset(tmp_path / "data", n=300, seconds=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache = build_cache(index_dataset(root), seconds=2.0, cache_dir=tmp_path / "cache", progress=False)
    del cache
    cache = WaveCache(next((tmp_path / "cache").glob("*.npy")))
    size = cache.array.nbytes  # 300 × 32000 × 2 bytes ≈ 19 MB
    dataset = ClipDataset(cache)
    before = _rss_anon()
    total = 0.0
    for _epoch in range(2):
        for wave, _, _ in dataset:
            total += float(wave[0])
    grown = _rss_anon() - before
    assert grown < size / 8, f"anonymous memory grew by {grown / 1e6:.1f} MB for a {size / 1e6:.1f} MB cache"


# ------------------------------------------------------------------------------------ issue 11: reliability
def test_in_place_edit_keeping_size_and_mtime_gives_a_new_cache(dataset: Path, tmp_path: Path):
    index = index_dataset(dataset)
    first = build(index, tmp_path / "cache")
    target, other = Path(index.path[4]), Path(index.path[5])
    st = target.stat()
    target.write_bytes(other.read_bytes())  # same length: `cp -p other target`
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    second = build(index, tmp_path / "cache")
    assert second.path != first.path
    assert np.array_equal(second.wave(4), load_audio(other, seconds=SECONDS))


def test_free_space_is_checked_before_writing(dataset: Path, tmp_path: Path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 50_000, 50_000))
    with pytest.raises(DataError, match=r"needs 0\.19 MB, 0\.05 MB free in .*cache; free some space or set "
                                        r"data\.cache_dir"):
        build(index_dataset(dataset), tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


FULL_DISK_SCRIPT = """
import resource, signal, sys
import asdlib.data.cache
from asdlib.data.index import DataError, index_dataset
if sys.argv[3] == "fsize":  # no tmpfs: a real kernel write error from a file-size limit instead of a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
asdlib.data.cache._check_space = lambda *a: None  # reach the write itself, as when the disk fills up during a build
try:
    asdlib.data.cache.build_cache(index_dataset(sys.argv[1]), seconds=0.5, cache_dir=sys.argv[2], progress=False)
except DataError as e:
    print(e)
"""


def _small_tmpfs(path: Path) -> bool:
    import subprocess

    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_full_disk_during_build_is_a_clear_error_not_a_sigbus(dataset: Path, tmp_path: Path):
    import subprocess
    import sys

    full = tmp_path / "full"
    mode = "tmpfs" if _small_tmpfs(full) else "fsize"  # a full 64-kB tmpfs, or a 60-kB file-size limit
    try:
        done = subprocess.run([sys.executable, "-c", FULL_DISK_SCRIPT, str(dataset), str(full), mode],
                              capture_output=True, text=True, timeout=600)
        left = sorted(p.name for p in full.iterdir())
    finally:
        if mode == "tmpfs":
            subprocess.run(["umount", str(full)], check=True)
    assert done.returncode == 0, f"exit {done.returncode} (SIGBUS is -7): {done.stderr[-2000:]}"
    assert "could not write the waveform cache" in done.stdout and "free some space" in done.stdout
    assert left == []  # no orphan temporaries filling the disk


KILLED_BUILD_SCRIPT = """
import sys, time
import asdlib.data.cache
from asdlib.data.index import index_dataset
slow = asdlib.data.cache.load_audio
asdlib.data.cache.load_audio = lambda *a, **k: (time.sleep(0.2), slow(*a, **k))[1]
asdlib.data.cache.build_cache(index_dataset(sys.argv[1]), seconds=0.5, cache_dir=sys.argv[2], progress=False)
"""


def test_temporaries_of_a_killed_build_are_removed_by_the_next(dataset: Path, tmp_path: Path):
    import signal
    import subprocess
    import sys
    import time

    cache_dir = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", KILLED_BUILD_SCRIPT, str(dataset), str(cache_dir)],
                             stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600  # importing torch can take minutes on a loaded machine
    while not any(p.stat().st_size > 3000 for p in cache_dir.glob("*.tmp*.npy")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    orphans = list(cache_dir.glob("*.tmp*"))
    assert orphans and child.returncode == -signal.SIGKILL
    live = cache_dir / f"other.tmp-{__import__('socket').gethostname()}-{os.getpid()}.npy"
    live.write_bytes(b"a build in progress in a live process")
    cache = build(index_dataset(dataset), cache_dir)
    assert sorted(cache_dir.iterdir()) == sorted([live, *(cache.path.with_suffix(e) for e in (".npy", ".csv",
                                                                                              ".json"))])


@pytest.mark.parametrize("damage", ["garbled json", "truncated npy", "empty csv"])
def test_damaged_cache_files_give_one_clear_error(dataset: Path, tmp_path: Path, damage: str):
    cache = build(index_dataset(dataset), tmp_path / "cache")
    target = {"garbled json": ".json", "truncated npy": ".npy", "empty csv": ".csv"}[damage]
    path = cache.path.with_suffix(target)
    data = path.read_bytes()
    path.write_bytes({".json": b'{"sample_rate": 16', ".npy": data[: len(data) // 2], ".csv": b""}[target])
    with pytest.raises(DataError) as err:
        WaveCache(cache.path)
    assert str(path) in str(err.value) and "run again to rebuild the cache" in str(err.value)

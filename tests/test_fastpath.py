"""The fast data path: batched cache reads give exactly the per-item DataLoader's batches, labels and rows."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader, DistributedSampler

from asdlib.data.cache import ClipBatchDataset, ClipDataset, WaveCache, build_cache
from asdlib.data.index import index_dataset
from asdlib.experiment import make_loader

REPO = Path(__file__).resolve().parents[1]
SECONDS = 0.25


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> WaveCache:
    """23 real 16-bit wav clips (fan and valve, train and test) decoded into an int16 cache."""
    root = tmp_path_factory.mktemp("fastpath")
    rng = np.random.default_rng(0)
    for i in range(23):
        mtype, split = ("fan", "valve")[i % 2], ("train", "test")[i % 3 == 0]
        label = "normal" if split == "train" or i % 2 else "anomaly"
        path = root / "data" / mtype / split / f"{label}_id_{i % 4 * 2:02d}_{i:08d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.2 * rng.standard_normal(round(SECONDS * 16000)), 16000, "PCM_16")
    return build_cache(index_dataset(root / "data"), seconds=SECONDS, cache_dir=root / "cache", progress=False)


def per_item_loader(cache, rows, *, batch_size, shuffle=False, seed=0, num_workers=0, drop_last=False):
    """The reference: the plain per-item DataLoader (one ``ClipDataset`` item per clip, then default collate)."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(ClipDataset(cache, rows), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, persistent_workers=num_workers > 0, generator=generator)


def epochs(loader, n: int, *, seed: int) -> list[list]:
    """``n`` epochs of batches, reseeding between epochs as ``asdlib.training.loop`` does (``_seed_epoch``)."""
    out = []
    for epoch in range(n):
        if loader.generator is not None:
            loader.generator.manual_seed(seed * 1000 + epoch)
        out.append(list(loader))
    return out


def assert_same_batches(ours: list, reference: list) -> None:
    assert len(ours) == len(reference) > 0
    for (wave, labels, rows), (ref_wave, ref_labels, ref_rows) in zip(ours, reference):
        assert wave.dtype == ref_wave.dtype == torch.float32 and wave.shape == ref_wave.shape
        assert labels.dtype == ref_labels.dtype and rows.dtype == ref_rows.dtype
        assert torch.equal(rows, ref_rows) and torch.equal(labels, ref_labels) and torch.equal(wave, ref_wave)


def test_read_equals_the_mmap_array(cache: WaveCache):
    for rows in ([5, 6, 7, 8], [9, 2, 2, 22, 0, 1], [22], list(range(23)), [3, 4, 1, 2]):
        assert np.array_equal(cache.read(rows), cache.array[rows])
        assert np.array_equal(cache.waves(rows), cache.array[rows].astype(np.float32) / 32768.0)
    assert cache.read([]).shape == (0, cache.num_samples)
    assert np.array_equal(cache.wave(4), cache.waves([4])[0])
    for bad in ([23], [-1]):
        with pytest.raises(IndexError, match=r"\[0, 23\)"):
            cache.read(bad)


def test_batch_dataset_equals_collated_items(cache: WaveCache):
    rows = np.array([20, 3, 7, 8, 9, 0])
    wave, labels, got_rows = ClipBatchDataset(cache, rows)[[4, 0, 1, 1]]
    items = [ClipDataset(cache, rows)[i] for i in (4, 0, 1, 1)]
    assert torch.equal(wave, torch.stack([w for w, _, _ in items]))
    assert labels.tolist() == [y for _, y, _ in items] and got_rows.tolist() == [9, 20, 3, 3]


@pytest.mark.parametrize("shuffle, drop_last, batch_size", [(True, False, 4), (True, True, 5), (False, False, 6),
                                                            (False, True, 4)])
def test_make_loader_equals_per_item_loader(cache: WaveCache, shuffle: bool, drop_last: bool, batch_size: int):
    rows = np.arange(1, 23)
    kw = dict(batch_size=batch_size, shuffle=shuffle, seed=7, drop_last=drop_last)
    ours, reference = make_loader(cache, rows, **kw), per_item_loader(cache, rows, **kw)
    assert len(ours) == len(reference)
    got, want = epochs(ours, 2, seed=7), epochs(reference, 2, seed=7)
    for a, b in zip(got, want):
        assert_same_batches(a, b)
    if shuffle:
        assert [r.tolist() for _, _, r in got[0]] != [r.tolist() for _, _, r in got[1]]


def test_make_loader_with_workers_equals_per_item_loader(cache: WaveCache):
    rows = np.arange(23)
    kw = dict(batch_size=4, shuffle=True, seed=3, num_workers=2)
    got = epochs(make_loader(cache, rows, **kw), 2, seed=3)
    want = epochs(per_item_loader(cache, rows, **kw), 2, seed=3)
    for a, b in zip(got, want):
        assert_same_batches(a, b)
    assert sorted(torch.cat([r for _, _, r in got[0]]).tolist()) == list(range(23))


RANK_SCRIPT = """
import json, sys, numpy as np, torch.distributed as dist
from asdlib.data.cache import WaveCache
from asdlib.experiment import make_loader

cache_path, out = sys.argv[1], sys.argv[2]
dist.init_process_group("gloo")
loader = make_loader(WaveCache(cache_path), np.arange(1, 23), batch_size=3, shuffle=True, seed=5,
                     distributed=True)
seen = []
for epoch in range(2):
    loader.sampler.set_epoch(epoch)
    seen.append([[rows.tolist(), labels.tolist(), float(wave.sum())] for wave, labels, rows in loader])
with open(out, "w") as f:
    json.dump(seen, f)
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_sharding_equals_per_item_shards(cache: WaveCache, tmp_path: Path):
    """Two gloo ranks on 127.0.0.1: each gets the per-item DistributedSampler's shard, reshuffled per epoch."""
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, str(script), str(cache.path), str(tmp_path / f"rank{r}.json")],
                              env={**env, "RANK": str(r)}, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for p in procs:
        assert p.wait(timeout=240) == 0, p.stderr.read()[-3000:]
    dataset = ClipDataset(cache, np.arange(1, 23))
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=5)
        for epoch in range(2):
            sampler.set_epoch(epoch)
            reference = list(DataLoader(dataset, batch_size=3, sampler=sampler))
            assert [s[0] for s in seen[epoch]] == [r.tolist() for _, _, r in reference]
            assert [s[1] for s in seen[epoch]] == [y.tolist() for _, y, _ in reference]
            assert [s[2] for s in seen[epoch]] == pytest.approx([float(w.sum()) for w, _, _ in reference])
    shards = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for epoch in range(2):
        both = [row for shard in shards for batch in shard[epoch] for row in batch[0]]
        assert sorted(both) == list(range(1, 23))  # 22 rows, 11 per rank: disjoint and complete
    assert shards[0][0] != shards[0][1]


def _rss_file() -> int:
    """File-backed resident memory of this process, in bytes (mapped files, e.g. an mmap'd cache)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_an_epoch_maps_no_cache_pages_into_the_process(tmp_path: Path):
    """Reading clips leaves no file pages mapped (indexing the mmap would map every clip read: 6.4 MB here)."""
    for i in range(40):
        path = tmp_path / "data" / "fan" / "train" / f"normal_id_00_{i:08d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.1 * np.random.default_rng(i).standard_normal(160000), 16000, "PCM_16")
    cache = build_cache(index_dataset(tmp_path / "data"), seconds=10.0, cache_dir=tmp_path / "cache",
                        progress=False)
    for wave, _, _ in make_loader(cache, np.arange(20), batch_size=8, shuffle=True):  # warm-up: code pages
        float(wave.abs().sum())
    before = _rss_file()
    total = sum(float(wave.abs().sum()) for wave, _, _ in make_loader(cache, np.arange(20, 40), batch_size=8,
                                                                      shuffle=True))
    grown = _rss_file() - before
    assert total > 0 and grown < cache.array.nbytes / 2 / 4, f"file-backed memory grew by {grown / 1e6:.1f} MB"

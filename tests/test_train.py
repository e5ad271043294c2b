"""The training engine: schedule, honest split, resume equality, selection, and a 2-process DDP run on CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from asdlib.training.checkpoints import load_checkpoint
from asdlib.training.config import RunConfig
from asdlib.experiment import prepare_data, split_train_val, train_from_config
from asdlib.nn.models import build_model
from asdlib.training.loop import lr_at, precise_batchnorm

REPO = Path(__file__).resolve().parents[1]


def write_tiny_dataset(root: Path, *, seconds: float = 1.0, clips: int = 6, sr: int = 16000) -> Path:
    """Two machine types × two IDs of short tones, each ID its own pitch; test clips detuned (anomalies)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    for mtype, ids in (("fan", (0, 2)), ("valve", (0, 2))):
        for k, mid in enumerate(ids):
            f0 = 200 + 150 * k + (40 if mtype == "valve" else 0)
            for split, label, shift in (("train", "normal", 1.0), ("test", "normal", 1.0), ("test", "anomaly", 1.3)):
                folder = root / mtype / split
                folder.mkdir(parents=True, exist_ok=True)
                n = clips if split == "train" else 2
                for i in range(n):
                    wave = 0.3 * np.sin(2 * np.pi * f0 * shift * t + rng.uniform(0, 6)) + 0.02 * rng.normal(size=t.size)
                    sf.write(folder / f"{label}_id_{mid:02d}_{i:08d}.wav", wave, sr, subtype="PCM_16")
    return root


def tiny_config(tmp_path: Path, **train) -> RunConfig:
    base = {"data": {"seconds": 1.0, "cache_dir": str(tmp_path / "cache")},
            "model": {"name": "stgram_mfn"}, "loss": {"name": "arcface"},
            "train": {"epochs": 2, "batch_size": 4, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
                      "t_max": 2, "eta_min": 1e-4, "seed": 3, "val_fraction": 0.2, **train}}
    return RunConfig.from_dict(base)


def test_lr_at_matches_torch_cosine_annealing_with_hold():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30, eta_min=1e-5)
    for epoch in range(60):  # the STgram-MFN loop: step only from epoch hold_epochs on
        assert lr_at(epoch, lr=1e-4, t_max=30, eta_min=1e-5, hold_epochs=20) == pytest.approx(
            opt.param_groups[0]["lr"], rel=1e-9)
        if epoch >= 20:
            opt.step()
            sched.step()


def test_split_is_stratified_and_uses_normal_training_clips_only():
    index = pd.DataFrame({"class_index": np.repeat(np.arange(5), 20)})
    train, val = split_train_val(index, fraction=0.05, seed=0)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == 100
    assert (index.class_index.iloc[val].value_counts() == 1).all()  # one per ID
    again, _ = split_train_val(index, fraction=0.05, seed=0)
    assert (again == train).all()


def test_prepare_data_holds_out_train_clips_and_keeps_test_apart(tmp_path):
    root = write_tiny_dataset(tmp_path / "data")
    cache, train, val, test = prepare_data(root, tiny_config(tmp_path), progress=False)
    ci = cache.index
    assert set(ci.split.iloc[train]) == {"train"} and set(ci.split.iloc[val]) == {"train"}
    assert set(ci.split.iloc[test]) == {"test"} and len(test) == 16
    assert len(val) == 4  # 20 % of 6 clips per ID, rounded, at least one per ID


def test_train_clips_per_id_keeps_the_first_clips_of_every_id(tmp_path):
    """Data scarcity: only the first N training clips (by file name) of each ID; test clips are untouched."""
    root = write_tiny_dataset(tmp_path / "data")
    cfg = tiny_config(tmp_path)
    cache, train, val, test = prepare_data(root, cfg.replace(data={"train_clips_per_id": 3}), progress=False)
    kept = cache.index.iloc[np.concatenate([train, val])]
    assert kept.groupby("class_index").size().tolist() == [3, 3, 3, 3]
    first = cache.index[cache.index.split == "train"].sort_values("path").groupby("class_index").head(3)
    assert sorted(kept.path) == sorted(first.path) and len(val) == 4 and len(test) == 16
    with pytest.raises(ValueError, match="train_clips_per_id"):
        cfg.replace(data={"train_clips_per_id": -1}).validate()


@pytest.mark.parametrize("precise_bn", [0, 2])
def test_resumed_run_reproduces_uninterrupted_weights_exactly(tmp_path, precise_bn):
    root = write_tiny_dataset(tmp_path / "data")
    cfg = tiny_config(tmp_path, epochs=2, precise_bn=precise_bn)
    train_from_config(cfg, root, tmp_path / "full", progress=False)
    first = train_from_config(cfg.replace(train={"epochs": 1}), root, tmp_path / "part", progress=False)
    assert len(first["history"]) == 1
    # "interrupted" after epoch 1: continue the same folder up to epoch 2
    resumed = train_from_config(cfg, root, tmp_path / "part", progress=False)
    assert [row["epoch"] for row in resumed["history"]] == [1, 2]
    a = load_checkpoint(tmp_path / "full" / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "part" / "last.pt")["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    history = pd.read_csv(tmp_path / "full" / "history.csv")
    assert list(history.columns[:3]) == ["epoch", "lr", "loss"] and len(history) == 2


def test_precise_batchnorm_sets_running_stats_to_the_average_over_the_batches():
    torch.manual_seed(0)
    model = build_model("stgram_mfn", seconds=1.0)
    batches = [(torch.randn(4, 16000) * 0.1, torch.zeros(4, dtype=torch.long), None) for _ in range(3)]
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    hook = bn.register_forward_hook(lambda mod, inputs, out: seen.append(inputs[0].detach().mean((0, 2, 3))))
    before = bn.running_mean.clone()
    precise_batchnorm(model, batches, device=torch.device("cpu"), batches=2)
    hook.remove()
    assert len(seen) == 2  # stops after `batches` batches
    assert torch.allclose(bn.running_mean, torch.stack(seen).mean(0), atol=1e-6)
    assert not torch.allclose(bn.running_mean, before)
    assert bn.momentum == 0.1 and bn.num_batches_tracked == 2  # momentum restored for the next epoch


def test_best_checkpoint_is_selected_on_validation_loss(tmp_path):
    root = write_tiny_dataset(tmp_path / "data")
    result = train_from_config(tiny_config(tmp_path, epochs=3, t_max=3), root, tmp_path / "run", progress=False)
    losses = [row["val_loss"] for row in result["history"]]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["selected"]["metric"] == "val_loss"
    assert best["selected"]["epoch"] == int(np.argmin(losses)) + 1


def test_peeking_selection_is_named_and_warned(tmp_path):
    root = write_tiny_dataset(tmp_path / "data")
    cfg = tiny_config(tmp_path, epochs=1, t_max=1, selection="peek_test_auc")
    with pytest.warns(UserWarning, match="TEST set"):
        train_from_config(cfg, root, tmp_path / "peek", progress=False)
    best = load_checkpoint(tmp_path / "peek" / "best.pt")
    assert best["selected"]["metric"] == "test_auc_pauc"


def test_tracking_test_auc_records_it_without_using_it(tmp_path):
    root = write_tiny_dataset(tmp_path / "data")
    result = train_from_config(tiny_config(tmp_path, epochs=2), root, tmp_path / "run", progress=False,
                               track_test=True)
    assert all(0.0 <= row["test_auc"] <= 1.0 for row in result["history"])
    assert load_checkpoint(tmp_path / "run" / "best.pt")["selected"]["metric"] == "val_loss"


def test_run_folder_with_another_config_is_refused(tmp_path):
    root = write_tiny_dataset(tmp_path / "data")
    cfg = tiny_config(tmp_path, epochs=1, t_max=1)
    train_from_config(cfg, root, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="different config"):
        train_from_config(cfg.replace(train={"lr": 5e-4}), root, tmp_path / "run", progress=False)


DDP_SCRIPT = """
import json, sys, torch, torch.distributed as dist
from pathlib import Path
from asdlib.training.config import RunConfig, to_plain
from asdlib.experiment import make_loader, prepare_data
from asdlib.nn.models import build_model
from asdlib.training.loop import fit

root, out, cfg = Path(sys.argv[1]), Path(sys.argv[2]), RunConfig.from_dict(json.loads(sys.argv[3]))
dist.init_process_group("gloo")
cache, train_rows, val_rows, _ = prepare_data(root, cfg, progress=False)
loader = make_loader(cache, train_rows, batch_size=cfg.train.batch_size, distributed=True)
torch.manual_seed(0)
model = build_model("stgram_mfn", seconds=cfg.data.seconds)
fit(model, loader, make_loader(cache, val_rows, batch_size=4), run_config=to_plain(cfg), out_dir=out,
    progress=False)
dist.destroy_process_group()
"""


def sharded_reference_step(criterion, optimizer, cache, rows) -> None:
    """One step on the global batch ``rows`` as 2 DDP ranks see it: rank r gets rows[r::2] and its own
    BatchNorm statistics (as under the original DataParallel); the gradient is the mean of the two."""
    optimizer.zero_grad()
    for shard in (rows[0::2], rows[1::2]):
        wave = torch.from_numpy(cache.waves(shard))
        labels = torch.as_tensor(cache.index.class_index.to_numpy()[shard])
        loss, _ = criterion(wave, labels)
        (loss / 2).backward()
    optimizer.step()


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_on_the_same_global_batch(tmp_path):
    """torchrun with 2 gloo ranks on CPU == one process taking the same global batches (per-rank BatchNorm)."""
    from asdlib.training.config import to_plain
    from asdlib.training.loop import Criterion, make_optimizer

    root = write_tiny_dataset(tmp_path / "data", clips=4)
    cfg = tiny_config(tmp_path, epochs=1, batch_size=2, optimizer="sgd", lr=1e-3, t_max=1000, val_fraction=0.0)
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", str(script),
           str(root), str(tmp_path / "ddp"), json.dumps(to_plain(cfg))]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    cache, train_rows, _, _ = prepare_data(root, cfg, progress=False)
    torch.manual_seed(0)
    model = build_model("stgram_mfn", seconds=cfg.data.seconds)
    criterion, optimizer = Criterion(model, "arcface"), make_optimizer(model, to_plain(cfg)["train"])
    moved, threads = 0.0, torch.get_num_threads()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    torch.set_num_threads(1)  # as each rank (OMP_NUM_THREADS=1): float sums then add up in the same order
    try:
        for first in range(0, len(train_rows), 4):  # DistributedSampler(shuffle=False): rank r takes rows[r::2]
            sharded_reference_step(criterion, optimizer, cache, train_rows[first:first + 4])
    finally:
        torch.set_num_threads(threads)
    ddp = load_checkpoint(tmp_path / "ddp" / "last.pt")["state_dict"]
    for key, value in model.state_dict().items():
        if value.is_floating_point() and "running" not in key:
            moved = max(moved, (value - start[key]).abs().max().item())
            assert torch.allclose(value, ddp[key], rtol=1e-5, atol=1e-6), (key, (value - ddp[key]).abs().max())
    assert moved > 1e-3  # the weights really trained, so equality is not trivial


@pytest.mark.slow
def test_compiled_channels_last_training_matches_eager_training(tmp_path):
    """The CPU fast path (``train.compile`` + ``train.channels_last``) trains the same model, only faster."""
    root = write_tiny_dataset(tmp_path / "data")
    eager = train_from_config(tiny_config(tmp_path, epochs=1), root, tmp_path / "eager", progress=False)
    fast = train_from_config(tiny_config(tmp_path, epochs=1, compile=True, channels_last=True), root,
                             tmp_path / "fast", progress=False)
    a, b = eager["history"][0], fast["history"][0]
    # the same steps; fused kernels round differently and the difference grows over the epoch's steps
    # (0.19 % seen on an AVX-512 CPU); a wrong graph or layout would differ by far more
    assert b["loss"] == pytest.approx(a["loss"], rel=5e-3)
    assert b["val_loss"] == pytest.approx(a["val_loss"], rel=2e-2)
    state = load_checkpoint(tmp_path / "fast" / "last.pt")["state_dict"]
    assert not any(key.startswith("_orig_mod") for key in state)  # saved as a plain model, loadable anywhere


def test_train_epoch_stops_at_the_first_non_finite_loss():
    from asdlib.training.loop import Criterion, DivergedError, train_epoch

    model = build_model("stgram_mfn", seconds=1.0)
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))  # a diverged model: the first loss is NaN
    batches = [(torch.randn(2, 16000) * 0.1, torch.zeros(2, dtype=torch.long), None) for _ in range(3)]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with pytest.raises(DivergedError, match="the training loss is nan at step 1 of 3"):
        train_epoch(Criterion(model, "arcface"), batches, optimizer, device=torch.device("cpu"), alpha=0.0,
                    rng=np.random.default_rng(0), progress=False)

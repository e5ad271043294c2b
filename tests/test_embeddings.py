"""Embeddings of a run's test clips: cached on disk, recomputed when the checkpoint changes, angles consistent
with the scores; 2-D maps and their Procrustes alignment across runs. A real (untrained) TASTgram-MFN scores
real procedural wav files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from asdlib.training.checkpoints import save_model
from asdlib.training.config import RunConfig, to_plain
from asdlib.teaching.embeddings import (CACHE_NAME, RunEmbeddings, compute_embeddings, procrustes_align, project_2d,
                               run_embeddings, shared_layout, split_angles)
from asdlib.experiment import prepare_data, score_dataset
from asdlib.nn.models import build_model
from asdlib.evaluation.scoring import angle_to_centre
from asdlib.data.synth import generate_dataset

REPO = Path(__file__).resolve().parents[1]


def _save_run(run_dir: Path, data: Path, cfg: RunConfig, seed: int) -> None:
    torch.manual_seed(seed)
    model = build_model(cfg.model.name, seconds=cfg.data.seconds)
    save_model(run_dir / "best.pt", model, extra={"run_config": to_plain(cfg)})
    (run_dir / "run.json").write_text(json.dumps({"data": str(data)}))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, RunConfig]:
    root = tmp_path_factory.mktemp("emb")
    data = root / "data"
    generate_dataset(data, size="smoke", machine_types=["fan"], n_train=2, n_test=(3, 3), progress=False)
    cfg = RunConfig.from_yaml(REPO / "configs" / "smoke.yaml").replace(
        model={"name": "tastgram_mfn"}, data={"cache_dir": str(root / "cache"), "machine_types": ("fan",)})
    run_dir = root / "run"
    run_dir.mkdir()
    _save_run(run_dir, data, cfg, seed=0)
    return run_dir, cfg


def test_embeddings_are_cached_and_match_the_scores(tiny_run):
    run_dir, cfg = tiny_run
    emb = run_embeddings(run_dir, progress=False)
    assert emb.embedding.shape == (24, 128) and emb.cosine.shape == (24, 41)  # 4 fan dev IDs × 6 test clips
    assert set(emb.table.label) == {"normal", "anomaly"}
    cache, _, _, test_rows = prepare_data(json.loads((run_dir / "run.json").read_text())["data"], cfg,
                                          progress=False)
    model = build_model("tastgram_mfn", seconds=cfg.data.seconds)
    model.load_state_dict(torch.load(run_dir / "best.pt", weights_only=True)["state_dict"])
    scores = score_dataset(model, cache, test_rows, progress=False)
    assert list(scores.path) == list(emb.table.path)
    np.testing.assert_allclose(emb.angle, scores.angle, atol=1e-3)
    with torch.inference_mode():  # the angle from the embeddings with the run's own head
        cosine = model.head.cosine(torch.from_numpy(emb.embedding))
    labels = torch.tensor(emb.table.class_index.to_numpy())
    np.testing.assert_allclose(angle_to_centre(cosine, labels).numpy(), emb.angle, atol=1e-3)
    stamp = (run_dir / CACHE_NAME).stat().st_mtime_ns
    again = run_embeddings(run_dir, progress=False)
    assert (run_dir / CACHE_NAME).stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.embedding, emb.embedding)
    assert again.table.equals(emb.table)


def test_split_angles_of_the_trained_on_held_out_and_test_normal_clips(tiny_run):
    """The run's own split rebuilt: every split's normal clips, the test ones at the angles of the embeddings."""
    run_dir, cfg = tiny_run
    angles = split_angles(run_dir, progress=False)
    cache, train_rows, val_rows, test_rows = prepare_data(json.loads((run_dir / "run.json").read_text())["data"],
                                                          cfg, progress=False)
    normal_test = [r for r in test_rows if cache.index.label[r] == "normal"]
    assert angles.groupby("split", sort=False).size().to_dict() == {
        "train": len(train_rows), "val": len(val_rows), "test": len(normal_test)}
    emb = run_embeddings(run_dir, progress=False)
    expected = emb.angle[(emb.table.label == "normal").to_numpy()]
    np.testing.assert_allclose(angles[angles.split == "test"].angle, expected, atol=1e-3)
    assert angles.correct.dtype == bool and angles.angle.between(0, 180).all()
    assert len(split_angles(run_dir, per_id=None, progress=False)) == len(angles)  # the tiny run has < 12 per ID
    few = split_angles(run_dir, per_id=1, progress=False)
    assert (few.groupby(["split", "machine_id"]).size() == 1).all() and set(few.split) == {"train", "val", "test"}


def test_a_new_checkpoint_is_noticed(tiny_run, capsys, tmp_path):
    run_dir, cfg = tiny_run
    copy = tmp_path / "run"
    copy.mkdir()
    data = json.loads((run_dir / "run.json").read_text())["data"]
    _save_run(copy, Path(data), cfg, seed=0)
    first = run_embeddings(copy, progress=False)
    _save_run(copy, Path(data), cfg, seed=1)  # other weights
    second = run_embeddings(copy, progress=False)
    assert "recomputing" in capsys.readouterr().out
    assert not np.allclose(first.embedding, second.embedding)


def test_a_checkpoint_without_run_config_is_refused(tiny_run, tmp_path):
    save_model(tmp_path / "best.pt", build_model("tastgram_mfn", seconds=2.0))
    with pytest.raises(ValueError, match="run_config"):
        compute_embeddings(tmp_path, data=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="ensure_run"):
        run_embeddings(tmp_path / "missing")


def test_procrustes_undoes_a_turn_a_flip_a_scale_and_a_shift():
    xy = np.random.default_rng(0).normal(size=(30, 2))
    a = np.deg2rad(70)
    turn_flip = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.diag([1.0, -1.0])
    moved = 3.5 * xy @ turn_flip + np.array([10.0, -4.0])
    np.testing.assert_allclose(procrustes_align(moved, xy), xy, atol=1e-9)
    rows = np.arange(5, 25)  # fitted on a subset of matching rows, applied to all
    reference = xy[rows]
    np.testing.assert_allclose(procrustes_align(moved, reference, match=(rows, np.arange(20))), xy, atol=1e-9)


def test_shared_layout_puts_the_same_clips_in_the_same_place():
    rng = np.random.default_rng(1)
    centres = 3 * rng.normal(size=(4, 16))
    labels = np.repeat(np.arange(4), 15)
    x = (centres[labels] + rng.normal(size=(60, 16))).astype(np.float32)  # 4 clusters of 15 clips
    table = pd.DataFrame({"path": [f"clip{i}.wav" for i in range(60)], "class_index": labels})
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))  # another network: the same geometry, turned
    order = rng.permutation(60)  # ... and its clips in another order
    runs = {"a": RunEmbeddings(x, np.zeros((60, 4)), table),
            "b": RunEmbeddings(x[order] @ q.astype(np.float32), np.zeros((60, 4)), table.iloc[order])}
    layouts = shared_layout(runs, method="tsne")
    assert layouts["a"].shape == layouts["b"].shape == (60, 2)
    spread = np.linalg.norm(layouts["a"] - layouts["a"].mean(0), axis=1).mean()
    for k in range(4):  # each cluster's centre lands at the same place in both maps
        in_a, in_b = layouts["a"][labels == k].mean(0), layouts["b"][labels[order] == k].mean(0)
        assert np.linalg.norm(in_a - in_b) < 0.25 * spread


def test_project_2d_checks_its_arguments():
    with pytest.raises(ValueError, match="method"):
        project_2d(np.ones((10, 4)), method="pca")
    with pytest.raises(ValueError, match="at least 4"):
        project_2d(np.ones((3, 4)), method="tsne")

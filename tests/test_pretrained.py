"""The reference runs shipped with asdlib: registry, hashes, verify, corruption, generator versions, shipping."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asdlib.teaching import pretrained, reproduce
from asdlib.teaching.pretrained import ReferenceRunError

SHIPPED = pretrained.REFERENCE_DIR
REQUIRED = {  # (model, loss): seeds the series needs at least
    ("tastgram_mfn", "arcface"): 3, ("tastgram_mfn", "noisy_arcmix"): 3, ("tastgram_mfn", "ce"): 1,
    ("tastgram_mfn", "arcmix"): 1, ("stgram_mfn", "arcface"): 1, ("stsasgram_mfn", "noisy_arcmix"): 1,
}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asdlib", "pretrained", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def copy_of_shipped(tmp_path) -> Path:
    """A writable copy of the shipped reference runs (the tests damage it)."""
    return Path(shutil.copytree(SHIPPED, tmp_path / "reference_runs"))


def test_every_required_run_ships_within_the_package_budget_with_a_checkpoint_per_model_and_loss():
    runs = pretrained.registry()
    for (model, loss), seeds in REQUIRED.items():
        found = pretrained.find(model, loss)
        assert len({r.seed for r in found}) >= seeds, f"{model} × {loss}: {len(found)} seed(s), need {seeds}"
        assert any(r.has_checkpoint for r in found), f"{model} × {loss} ships no checkpoint"
    for run in runs.values():
        assert {"config.yaml", "history.csv", "scores.csv", "summary.csv", "results.csv"} <= set(run.files)
        assert run.dataset["generator_version"] == pretrained.registry()[run.name].dataset["generator_version"]
    assert pretrained.total_bytes() <= 40e6  # all shipped runs and baselines: the package data's budget


def test_every_history_shows_the_plateau_it_was_stopped_at():
    """Over the last fifth of each run the validation loss stays, on average, within 15 % of the run's minimum
    (its epoch-to-epoch noise on the 240 held-out clips is of that size), and the test AUC within 2 points;
    the record has the columns the notebooks plot (study runs: the columns and the selection only). The README
    lists each run's numbers."""
    for run in pretrained.registry().values():
        history = pretrained.load_history(run.name)
        assert {"loss", "val_loss", "val_acc", "test_auc", "test_pauc", "angle_normal", "angle_anomaly"} <= set(history)
        assert len(history) == run.epochs and 1 <= run.selected_epoch <= run.epochs
        assert history.val_loss.idxmin() + 1 == run.selected_epoch  # honest selection: lowest validation loss
        if run.study:  # a study run changes the recipe (60 epochs, plain BatchNorm...): its budget is not ours
            continue
        assert pretrained.plateau_gap(history.val_loss) <= 0.15, f"{run.name}: validation loss has not plateaued"
        fifth = history.test_auc.iloc[-max(1, round(0.2 * len(history))):]
        assert fifth.max() - fifth.min() <= 0.02, f"{run.name}: test AUC still moving"


def test_configs_in_the_repository_are_the_shipped_ones():
    from asdlib.training.config import RunConfig

    repo = Path(__file__).resolve().parents[1]
    for run in pretrained.registry().values():
        assert RunConfig.from_yaml(repo / run.info["config"]) == pretrained.load_config(run.name), run.name


def test_list_json_names_each_run_and_its_folder():
    result = _cli("list", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert {r["name"] for r in listed} == set(pretrained.registry())
    for row in listed:
        assert {"name", "model", "loss", "seed", "epochs", "selected_epoch", "auc", "pauc", "study", "path"} <= set(row)
        assert (Path(row["path"]) / "history.csv").is_file()
        assert 0.5 < row["auc"] <= 1.0


def test_verify_reproduces_the_recorded_scores_of_every_shipped_checkpoint():
    result = _cli("verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all good" in result.stdout


def test_scores_and_embeddings_line_up_and_load_with_paths(tmp_path):
    name = pretrained.find("tastgram_mfn", "noisy_arcmix", checkpoint=True)[0].name
    scores = pretrained.load_scores(name, data=tmp_path)
    assert len(pretrained.load_embeddings(name)) == len(scores)
    assert scores.path.iloc[0] == str(tmp_path / scores.file.iloc[0])
    run = pretrained.get(name)
    assert scores.groupby(["machine_type", "machine_id", "label"]).size().min() >= run.dataset["n_test_normal"]


def test_a_corrupted_checkpoint_names_the_run_and_the_fix(copy_of_shipped):
    name = pretrained.find("tastgram_mfn", "arcface", checkpoint=True, root=copy_of_shipped)[0].name
    path = copy_of_shipped / name / "best.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ReferenceRunError, match=f"{name}.*corrupted.*pretrained train {name}"):
        pretrained.load_model(name, root=copy_of_shipped)
    problems = reproduce.verify([name], root=copy_of_shipped, progress=False)
    assert len(problems) == 1 and problems[0].startswith(name) and "corrupted" in problems[0]


def test_a_missing_file_names_the_run(copy_of_shipped):
    name = next(iter(pretrained.registry(copy_of_shipped)))
    (copy_of_shipped / name / "history.csv").unlink()
    with pytest.raises(ReferenceRunError, match=f"reference run {name}: .*history.csv is missing"):
        pretrained.load_history(name, root=copy_of_shipped)


def test_tampered_scores_fail_verify(copy_of_shipped):
    """verify re-scores regenerated clips: a recorded score that does not come from the weights is caught
    (after the hash in the registry is updated to match, so only the re-scoring can notice)."""
    name = pretrained.find("stgram_mfn", "arcface", checkpoint=True, root=copy_of_shipped)[0].name
    path = copy_of_shipped / name / "scores.csv"
    scores = pd.read_csv(path)
    scores.loc[0, "arcface_ce"] += 0.01 + 0.01 * abs(scores.loc[0, "arcface_ce"])  # 1 %: ten times the tolerance
    scores.to_csv(path, index=False, float_format="%.8g")
    registry = json.loads((copy_of_shipped / "registry.json").read_text())
    registry["runs"][name]["files"]["scores.csv"] = {"sha256": pretrained.sha256(path), "bytes": path.stat().st_size}
    (copy_of_shipped / "registry.json").write_text(json.dumps(registry))
    problems = reproduce.verify([name], root=copy_of_shipped, progress=False)
    assert len(problems) == 1 and "differ from scores.csv" in problems[0]


def test_a_generator_version_mismatch_warns_on_load_and_fails_verify(copy_of_shipped):
    registry = json.loads((copy_of_shipped / "registry.json").read_text())
    registry["dataset"]["generator_version"] -= 1
    (copy_of_shipped / "registry.json").write_text(json.dumps(registry))
    name = pretrained.find("tastgram_mfn", "noisy_arcmix", checkpoint=True, root=copy_of_shipped)[0].name
    with pytest.warns(UserWarning, match="version .* never mix"):
        pretrained.load_model(name, root=copy_of_shipped)
    problems = reproduce.verify([name], root=copy_of_shipped, progress=False)
    assert problems and "Retrain and re-ship" in problems[0]


def test_unknown_run_and_runs_without_checkpoint_say_what_exists():
    with pytest.raises(ReferenceRunError, match="unknown reference run 'nope'; known: "):
        pretrained.get("nope")
    without = [r for r in pretrained.registry().values() if not r.has_checkpoint]
    if without:
        with pytest.raises(ReferenceRunError, match="ships no checkpoint .* use "):
            pretrained.load_model(without[0].name)


def train_tiny(folder: Path) -> tuple[Path, Path]:
    """One epoch of TASTgram-MFN on a tiny procedural set (valve): ``(data folder, run folder)`` under ``folder``."""
    from asdlib.training.config import RunConfig
    from asdlib.experiment import train_from_config
    from asdlib.data.synth import generate_dataset

    data = folder / "data"
    generate_dataset(data, size="smoke", machine_types="valve", progress=False)
    cfg = RunConfig.from_yaml(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml").replace(
        data={"machine_types": ("valve",), "cache_dir": str(folder / "cache")},
        model={"name": "tastgram_mfn"}, train={"epochs": 1, "t_max": 1, "precise_bn": 2})
    train_from_config(cfg, data, folder / "run", progress=False, track_test=True)
    return data, folder / "run"


def test_ship_then_verify_round_trip_on_a_tiny_run(tmp_path):
    """Train one epoch on a tiny procedural set, ship it into an empty registry, verify it, reload it."""
    data, _ = train_tiny(tmp_path)
    root = tmp_path / "shipped"
    run = reproduce.ship("tiny", tmp_path / "run", data=data, checkpoint=True, command="(test)", root=root)
    assert run.has_checkpoint and run.epochs == 1 and run.dataset["size"] == "smoke"
    assert reproduce.verify(root=root, progress=False, per_label=2) == []
    assert pretrained.load_model("tiny", root=root).head.weight.dtype.is_floating_point


def test_verify_tolerance_allows_the_cpus_last_bits_and_nothing_more():
    """A re-computed score passes within VERIFY_ATOL + VERIFY_RTOL |score| (e.g. 2e-4 of a score of 8.5, the size
    of another CPU's float math) and fails at 1 % of it or as NaN; the message names the column and the score."""
    from asdlib.teaching.pretrained import VERIFY_ATOL, VERIFY_RTOL
    from asdlib.teaching.reproduce import _worst_score_error

    recorded = pd.DataFrame({c: [8.47, 0.02, 0.0] for c in pretrained.SCORE_COLUMNS})
    close = recorded * (1 + 2e-4) + 2e-5
    assert _worst_score_error(close, recorded)[0] <= 0.25
    edge = recorded.copy()
    edge.loc[0, "margin_free"] += 0.99 * (VERIFY_ATOL + VERIFY_RTOL * 8.47)
    assert 0.98 < _worst_score_error(edge, recorded)[0] <= 1
    off = recorded.copy()
    off.loc[0, "margin_free"] *= 1.01
    worst, at = _worst_score_error(off, recorded)
    assert worst > 5 and at == "0.0847 (margin_free 8.47)"
    broken = recorded.copy()
    broken.loc[2, "cosine_distance"] = np.nan
    assert _worst_score_error(broken, recorded)[0] == np.inf

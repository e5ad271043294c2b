"""``python -m asdlib``: every command answers ``--help``; synth → index → train → evaluate → score end to end."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdlib.cli import main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["synth", "index", "download", "train", "evaluate", "score", "import-checkpoint", "baseline",
            "run-series"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command):
    args = [sys.executable, "-m", "asdlib"] + ([command] if command else []) + ["--help"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0 and "usage: python -m asdlib" in done.stdout


def test_errors_are_one_line_messages_not_tracebacks(tmp_path, capsys):
    assert main(["index", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


@pytest.fixture(scope="module")
def easy_smoke(tmp_path_factory) -> Path:
    """An easy, fixed-seed smoke set: two machine types, more training clips, strong anomalies."""
    from asdlib.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("easy") / "data"
    generate_dataset(root, size="smoke", machine_types=("fan", "valve"), seed=1, n_train=24, n_test=(8, 8),
                     difficulty=0.25, progress=False)
    return root


@pytest.mark.slow
def test_train_then_evaluate_beats_chance_on_an_easy_smoke_set(easy_smoke, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["synth", "--size", "smoke", "--out", str(easy_smoke), "--types", "fan,valve", "--seed", "1"]) in (0, 2)
    capsys.readouterr()
    assert main(["index", str(easy_smoke)]) == 0
    assert "fan" in capsys.readouterr().out
    code = main(["train", "--config", str(REPO / "configs" / "smoke.yaml"), "--data", str(easy_smoke),
                 "--out", str(run), f"data.cache_dir={tmp_path / 'cache'}", "data.seconds=2.0", "train.epochs=6",
                 "train.t_max=6"])
    assert code == 0
    assert main(["evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "| **Average** |" in printed or "Average" in printed
    results, summary = pd.read_csv(run / "results.csv"), pd.read_csv(run / "summary.csv")
    assert list(results.columns) == ["machine_type", "machine_id", "auc", "pauc"] and len(results) == 8
    assert list(summary.columns) == ["machine_type", "auc", "pauc", "mauc"]
    assert summary.machine_type.tolist()[-1] == "Average"
    mean_auc = summary.set_index("machine_type").loc["Average", "auc"]
    assert mean_auc > 0.6, f"mean AUC {mean_auc:.3f}: the smoke recipe no longer learns the easy set"
    assert len(list((run / "scores").glob("anomaly_score_*_id_*.csv"))) == 8

    # score your own files: another sample rate, stereo, a non-DCASE name
    own = tmp_path / "own"
    own.mkdir()
    wave, sr = sf.read(next((easy_smoke / "fan" / "test").glob("anomaly_*.wav")))
    stereo = np.stack([wave, wave], axis=1)
    sf.write(own / "recording.wav", np.interp(np.linspace(0, len(wave), int(len(wave) * 2.75)),
                                              np.arange(len(wave)), wave), 44100)
    sf.write(own / "stereo.wav", stereo, sr)
    out_csv = tmp_path / "scores.csv"
    with pytest.warns(UserWarning, match="resampling from 44100 Hz"):
        assert main(["score", str(run / "best.pt"), str(own), "--machine-type", "fan", "--machine-id", "0",
                     "--out", str(out_csv)]) == 0
    table = pd.read_csv(out_csv)
    assert list(table.columns) == ["path", "machine_type", "machine_id", "score"] and len(table) == 2
    assert np.isfinite(table.score).all()


def test_score_without_type_for_non_dcase_paths_says_what_to_pass(tmp_path, capsys):
    from asdlib.training.checkpoints import save_model
    from asdlib.nn.models import build_model

    save_model(tmp_path / "m.pt", build_model("stgram_mfn", seconds=1.0))
    sf.write(tmp_path / "x.wav", np.zeros(16000), 16000)
    assert main(["score", str(tmp_path / "m.pt"), str(tmp_path / "x.wav")]) == 2
    assert "--machine-type" in capsys.readouterr().err


def test_import_checkpoint_converts_an_original_file(reference_dir, tmp_path, capsys):
    import torch

    from asdlib.training.checkpoints import load_model

    src = tmp_path / "original.pth"
    torch.save({"model": torch.load(reference_dir / "tastgram_mfn_reference.pt", weights_only=True)["state_dict"]},
               src)
    out = tmp_path / "ours.pt"
    assert main(["import-checkpoint", str(src), "--variant", "tastgram_mfn", "--out", str(out)]) == 0
    assert load_model(out).config["name"] == "tastgram_mfn"
    assert main(["import-checkpoint", str(src), "--variant", "tastgram_mfn", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err

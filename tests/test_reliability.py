"""Issue 11: runs, evaluation, scoring and checkpoints on bad input — real files, real processes, one-line errors.

One tiny run (1 epoch, 1-s clips) is trained once per module and copied for each test that changes it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from asdlib.training.checkpoints import CheckpointError, load_checkpoint, load_model, save_model
from asdlib.cli import cli_message, main
from asdlib.data.index import DataError
from asdlib.experiment import evaluate_run, score_files, train_from_config
from asdlib.training.loop import DivergedError
from test_train import tiny_config, write_tiny_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(data root, run folder, config)`` of a 1-epoch run on a tiny dataset, evaluated once."""
    base = tmp_path_factory.mktemp("reliability")
    data = write_tiny_dataset(base / "data", clips=2)
    cfg = tiny_config(base, epochs=1, t_max=1)
    train_from_config(cfg, data, base / "run", progress=False)
    evaluate_run(base / "run", quiet=True)
    return data, base / "run", cfg


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run folder."""
    shutil.copytree(trained[1], tmp_path / "run")
    return tmp_path / "run"


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_run_records_its_data_and_refuses_to_resume_on_other_data(trained, run, tmp_path, capsys):
    data, _, cfg = trained
    info = json.loads((run / "run.json").read_text())
    assert info["data"] == str(data.resolve()) and len(info["fingerprint"]) == 16
    other = shutil.copytree(data, tmp_path / "other")
    (other / "fan/train/normal_id_00_00000000.wav").unlink()  # another file list
    before = snapshot(run)
    more = cfg.replace(train={"epochs": 2})
    with pytest.raises(DataError) as err:
        train_from_config(more, other, run, progress=False)
    msg = str(err.value)
    assert f"trained on {data.resolve()}" in msg and f"--data is {other.resolve()}" in msg and "resume=False" in msg
    assert snapshot(run) == before  # nothing rewritten: run.json, best.pt, results
    moved = shutil.copytree(data, tmp_path / "moved")  # the same files elsewhere: resuming is fine
    assert len(train_from_config(more, moved, run, progress=False)["history"]) == 2

    yaml = tmp_path / "cfg.yaml"  # --no-resume starts over and keeps the old run's files
    cfg.to_yaml(yaml)
    code = main(["train", "--config", str(yaml), "--data", str(other), "--out", str(run), "--no-resume",
                 "train.epochs=1"])
    assert code == 0, capsys.readouterr().err
    (aside,) = run.glob("previous-*")
    assert (aside / "best.pt").is_file() and (aside / "summary.csv").is_file()
    assert json.loads((run / "run.json").read_text())["data"] == str(other.resolve())


def test_evaluate_without_test_clips_keeps_the_results(trained, run, tmp_path, capsys):
    data, _, _ = trained
    train_only = tmp_path / "train_only"
    for t in ("fan", "valve"):
        shutil.copytree(data / t / "train", train_only / t / "train")
    before = snapshot(run)
    assert main(["evaluate", str(run), "--data", str(train_only)]) == 2
    err = capsys.readouterr().err
    assert "no labelled test clips" in err and f"results in {run} are kept" in err and "Traceback" not in err
    assert snapshot(run) == before


def test_diverged_training_stops_with_advice(trained, tmp_path):
    data, _, cfg = trained
    with pytest.raises(DivergedError, match=r"diverged in epoch 1: the (training|validation) loss is (nan|inf).* "
                                            r"\(lr 1e\+30\).*no checkpoint was written.*train\.lr=1e\+29"):
        train_from_config(cfg.replace(train={"lr": 1e30, "eta_min": 1e29}), data, tmp_path / "nan",
                          progress=False)
    assert not (tmp_path / "nan" / "best.pt").exists() and not (tmp_path / "nan" / "last.pt").exists()


def test_nan_checkpoint_never_writes_scores(trained, tmp_path, capsys):
    data, run_dir, _ = trained
    model = load_model(run_dir / "best.pt")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    save_model(tmp_path / "nan.pt", model, extra={"run_config": load_checkpoint(run_dir / "best.pt")["run_config"]})
    out = tmp_path / "scores.csv"
    assert main(["score", str(tmp_path / "nan.pt"), str(data / "fan" / "test"), "--out", str(out)]) == 2
    assert "NaN or infinite weights" in capsys.readouterr().err and not out.exists()


def test_score_a_messy_folder(trained, tmp_path, capsys):
    data, run_dir, _ = trained
    clip = next((data / "fan" / "test").glob("anomaly_*.wav"))
    folder = tmp_path / "mine"
    (folder / "x.wav").mkdir(parents=True)  # a folder named like a wav file
    shutil.copy(clip, folder / "good.wav")
    shutil.copy(clip, folder / "UPPER.WAV")
    (folder / "._good.wav").write_bytes(b"\0\5\26\7 macOS resource fork")  # hidden: ignored, as index does
    (folder / "broken.wav").write_bytes(b"RIFF" + bytes(60))
    wave, sr = sf.read(clip)
    sf.write(folder / "long.wav", np.tile(wave, 3), sr)  # 3 s for a 1-s model
    out = tmp_path / "scores.csv"
    with pytest.warns(UserWarning) as caught:
        code = main(["score", str(run_dir / "best.pt"), str(folder), "--machine-type", "fan", "--machine-id", "0",
                     "--out", str(out)])
    assert code == 0
    shown = [cli_message(str(w.message)) for w in caught]  # what the command line prints, one line each
    assert any(m.startswith("1 recording(s) are longer than the model's 1-s clips") and "first 1 s only" in m
               for m in shown)
    table = pd.read_csv(out)
    assert sorted(Path(p).name for p in table.path) == ["UPPER.WAV", "good.wav", "long.wav"]
    assert np.isfinite(table.score).all() and table.score.nunique() == 1  # same first second, same score
    (skipped,) = [m for m in shown if "skipped" in m]  # one summary line
    assert skipped.startswith("skipped 2 file(s)") and "--on-error raise stops at the first" in skipped
    assert f"{folder / 'broken.wav'} (not readable as audio" in skipped
    assert f"{folder / 'x.wav'} (a folder, not a wav file)" in skipped and "._good" not in " ".join(shown)
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(DataError, match=r"x\.wav: a folder, not a wav file; pass on_error='skip'"):
        score_files(run_dir / "best.pt", [folder], machine_type="fan", machine_id=0, on_error="raise",
                    progress=False)
    assert main(["score", str(run_dir / "best.pt"), str(tmp_path / "tmp")]) == 2
    assert f"{tmp_path / 'tmp'}: no such file or folder" in capsys.readouterr().err


def _one_line_error(args: list[str], capsys, *names: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.strip().endswith("(ASD_DEBUG=1 shows the traceback)")
    assert all(n in err for n in names), err
    return err


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
def test_damaged_checkpoints_give_one_line_errors(trained, run, tmp_path, capsys, monkeypatch, damage):
    data, _, cfg = trained
    for name in ("best.pt", "last.pt"):
        raw = (run / name).read_bytes()
        fake = {"truncated": raw[: len(raw) // 2], "empty": b"", "random": os.urandom(5000)}[damage]
        (run / name).write_bytes(fake)
    _one_line_error(["evaluate", str(run)], capsys, str(run / "best.pt"))
    _one_line_error(["score", str(run / "best.pt"), str(data)], capsys, str(run / "best.pt"))
    yaml = tmp_path / "cfg.yaml"
    cfg.to_yaml(yaml)
    err = _one_line_error(["train", "--config", str(yaml), "--data", str(data), "--out", str(run),
                           "train.epochs=2"], capsys, str(run / "last.pt"))
    assert "--no-resume" in err
    monkeypatch.setenv("ASD_DEBUG", "1")
    with pytest.raises(CheckpointError):
        main(["evaluate", str(run)])


def test_damaged_cache_is_one_line_in_the_cli(trained, run, tmp_path, capsys):
    data, _, cfg = trained
    for meta in Path(cfg.data.cache_dir).glob("*.json"):
        shutil.copy(meta, tmp_path / meta.name)
        meta.write_text("{garbled")
    try:
        _one_line_error(["evaluate", str(run)], capsys, ".json is damaged", "rebuild the cache")
    finally:
        for meta in tmp_path.glob("*.json"):
            shutil.copy(meta, Path(cfg.data.cache_dir) / meta.name)


SAVE_ON_FULL_DISK = """
import resource, signal, sys
from asdlib.training.checkpoints import save_model
from asdlib.nn.models import build_model
if sys.argv[2] == "fsize":  # no tmpfs: a real kernel write error from a file-size limit instead of a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
try:
    save_model(sys.argv[1], build_model("stgram_mfn", seconds=1.0))
except OSError as e:
    print(e)
"""


def test_save_on_a_full_disk_says_so(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(full)],
                             capture_output=True).returncode == 0
    try:
        done = subprocess.run([sys.executable, "-c", SAVE_ON_FULL_DISK, str(full / "m.pt"),
                               "tmpfs" if mounted else "fsize"], capture_output=True, text=True, timeout=600)
        left = list(full.iterdir())
    finally:
        if mounted:
            subprocess.run(["umount", str(full)], check=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"could not write {full / 'm.pt'}: the disk is full" in done.stdout
    assert "inline_container" not in done.stdout and left == []

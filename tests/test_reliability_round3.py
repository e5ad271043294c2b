"""Issue 21, causes 3, 6 and 7, and the command line of issue 17: checkpoints, run folders and scoring on bad
input and faults — real files, real processes, real locks and permissions; one-line errors naming the file.

(Cause 4, configs, is in ``test_config.py``; cause 5, the reference runs' path, in ``test_notebook_paths.py``.)
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from asdlib.cli import cli_message, main
from asdlib.data.index import DataError, find_wav_files
from asdlib.experiment import score_files, train_from_config
from asdlib.nn.models import build_model
from asdlib.training.checkpoints import (CheckpointError, CheckpointWarning, load_checkpoint, load_model,
                                        save_model)
from asdlib.training.rundir import RunFolderError, locked
from test_reliability import _one_line_error, run, trained  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]


def python(code: str, *args: str, unprivileged: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; ``unprivileged``: without root's right to read any file."""
    command = [sys.executable, "-c", code, *args]
    if unprivileged and os.geteuid() == 0:
        caps = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, **kwargs)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    torch.manual_seed(0)
    return save_model(path, build_model("stgram_mfn", seconds=1.0).eval())


# ------------------------------------------------------------------------------------------ cause 3: checkpoints
class Boom:
    """Unpickling this runs ``touch MARKER``: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_pickle_is_refused_by_both_commands(small_checkpoint, tmp_path, capsys):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Boom(marker)}, evil)
    for args in (["import-checkpoint", str(evil), "--variant", "stgram_mfn", "--out", str(tmp_path / "o.pt")],
                 ["score", str(evil), str(tmp_path)]):
        err = _one_line_error(args, capsys, str(evil), "pickled Python object (posix.system", "could run code")
        assert "weights_only" not in err
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", os.urandom(3000), b"PK\x03\x04" + os.urandom(100)],
                         ids=["empty", "random", "zip-like"])
def test_import_checkpoint_of_junk_names_the_file(tmp_path, capsys, content):
    src = tmp_path / "junk.pth"
    src.write_bytes(content)
    err = _one_line_error(["import-checkpoint", str(src), "--variant", "stgram_mfn", "--out",
                           str(tmp_path / "o.pt")], capsys, str(src))
    assert "original STgram-MFN" in err or "empty" in err


def test_a_checkpoint_linked_to_a_text_file(tmp_path, capsys):
    (tmp_path / "best.pt").symlink_to(REPO / "README.md")
    _one_line_error(["score", str(tmp_path / "best.pt"), str(tmp_path)], capsys, str(tmp_path / "best.pt"),
                    "not a PyTorch checkpoint (it starts with b'")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch, on a damaged header
def test_fuzzed_checkpoints_fail_cleanly_or_load_the_same_weights(small_checkpoint, tmp_path):
    raw, rng = small_checkpoint.read_bytes(), np.random.default_rng(0)
    original = load_model(small_checkpoint).state_dict()
    for case in range(60):
        data = bytearray(raw)
        if case % 3 == 0:
            data = data[: rng.integers(1, len(data))]
        elif case % 3 == 1:
            start = int(rng.integers(0, len(data) - 64))
            data[start:start + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        else:
            data[int(rng.integers(0, 4096))] ^= 0xFF  # the zip and pickle headers
        path = tmp_path / f"fuzz{case}.pt"
        path.write_bytes(bytes(data))
        try:
            model = load_model(path)
        except CheckpointError as e:
            assert str(path) in str(e)
            continue
        assert all(torch.equal(model.state_dict()[k], v) for k, v in original.items()), case


def test_single_byte_flips_in_the_weights_are_caught(small_checkpoint, tmp_path):
    raw = small_checkpoint.read_bytes()
    caught = 0
    for k, position in enumerate(np.linspace(2000, len(raw) - 2000, 64).astype(int)):
        data = bytearray(raw)
        data[position] ^= 0x01
        path = tmp_path / f"flip{k}.pt"
        path.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match=f"{path}"):
            load_model(path)
        caught += 1
    assert caught == 64


def test_checkpoints_without_a_hash_load_with_a_note(small_checkpoint, tmp_path):
    old = load_checkpoint(small_checkpoint)
    del old["weights_sha256"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.warns(CheckpointWarning, match="records no weights hash"):
        load_model(tmp_path / "old.pt")
    from asdlib.teaching import pretrained

    shipped = next(r for r in pretrained.registry().values() if r.has_checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # checked against the registry's sha256 instead: no note
        load_model(shipped.path / "best.pt")


def test_import_checkpoint_takes_the_clip_length_its_hint_asks_for(tmp_path, capsys):
    from test_checkpoints import to_original, trained_like

    src = tmp_path / "two_seconds.pth"
    torch.save({"model": to_original(trained_like("stgram_mfn"), "stgram_head")}, src)
    out = tmp_path / "ours.pt"
    assert main(["import-checkpoint", str(src), "--variant", "stgram_mfn", "--out", str(out)]) == 2
    err = capsys.readouterr().err  # the key and shape listing follows on indented lines
    assert err.startswith("error: the checkpoint does not fit 'stgram_mfn' for 10-s clips") and "Traceback" not in err
    assert "--seconds N" in err and "seconds=N" not in err
    assert main(["import-checkpoint", str(src), "--variant", "stgram_mfn", "--out", str(out),
                 "--seconds", "2"]) == 0
    assert load_model(out).config["seconds"] == 2.0


# ---------------------------------------------------------------------------------------- cause 6: run folders
def test_a_second_training_into_a_locked_folder_refuses(trained, run, tmp_path):
    data, _, cfg = trained
    yaml = tmp_path / "cfg.yaml"
    cfg.to_yaml(yaml)
    with locked(run):  # this process trains into it
        done = subprocess.run([sys.executable, "-m", "asdlib", "train", "--config", str(yaml), "--data", str(data),
                               "--out", str(run), "train.epochs=2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert f"{run} is in use by another training (process {os.getpid()})" in done.stderr
    assert len(pd.read_csv(run / "history.csv")) == 1  # untouched
    with pytest.raises(RunFolderError, match="in use"), locked(run), locked(run):
        pass


def test_resuming_on_other_audio_with_the_same_names_and_sizes_refuses(trained, run, tmp_path):
    data, _, cfg = trained
    other = shutil.copytree(data, tmp_path / "other_seed")
    rng = np.random.default_rng(1)
    for wav in other.rglob("*.wav"):
        wave, sr = sf.read(wav)
        sf.write(wav, np.clip(wave + 0.01 * rng.normal(size=wave.shape), -1, 1), sr, subtype="PCM_16")
        assert wav.stat().st_size == (data / wav.relative_to(other)).stat().st_size
    with pytest.raises(DataError, match="the same file names and sizes but other audio"):
        train_from_config(cfg.replace(train={"epochs": 2}), other, run, progress=False)


def test_checkpoints_linked_from_another_run_are_refused(trained, run, tmp_path, capsys):
    data, first, cfg = trained
    for name in ("last.pt", "best.pt"):
        (run / name).unlink()
        (run / name).symlink_to(first / name)
    with pytest.raises(RunFolderError, match=f"{run / 'last.pt'} is a link to .*outside the run folder"):
        train_from_config(cfg.replace(train={"epochs": 2}), data, run, progress=False)
    _one_line_error(["evaluate", str(run)], capsys, f"{run / 'best.pt'} is a link to", "outside the run folder")


# ------------------------------------------------------------------------------------------- cause 7: scoring
def test_dcase_names_in_upper_case_are_scored(trained, tmp_path):
    data, run_dir, _ = trained
    folder = tmp_path / "fan" / "test"
    folder.mkdir(parents=True)
    for clip in sorted((data / "fan" / "test").glob("*.wav"))[:2]:
        shutil.copy(clip, folder / clip.name.replace(".wav", ".WAV"))
    table = score_files(run_dir / "best.pt", [tmp_path], progress=False)
    assert len(table) == 2 and set(table.machine_type) == {"fan"}


def test_unreadable_files_and_folders_name_the_permission(trained, tmp_path):
    data, run_dir, _ = trained
    mine = tmp_path / "mine"
    (mine / "test").mkdir(parents=True)
    clip = next((data / "fan" / "test").glob("*.wav"))
    shutil.copy(clip, mine / "readable.wav")
    shutil.copy(clip, mine / "secret.wav")
    shutil.copy(clip, mine / "test" / "hidden_by_folder.wav")
    os.chmod(mine / "secret.wav", 0)
    os.chmod(mine / "test", 0)
    for p in (tmp_path, mine):
        os.chmod(p, 0o755)
    try:
        done = python("import sys; from asdlib.cli import main; sys.exit(main(sys.argv[1:]))", "score",
                      str(run_dir / "best.pt"), str(mine), "--machine-type", "fan", "--machine-id", "0",
                      unprivileged=True)
    finally:
        os.chmod(mine / "test", 0o755)
    assert done.returncode == 0, done.stderr
    assert f"{mine / 'secret.wav'} (permission denied (this user may not read it)" in done.stderr
    assert f"{mine / 'test'} (cannot list this folder (Permission denied)" in done.stderr
    assert "System error" not in done.stderr and len(pd.read_csv(io.StringIO(done.stdout))) == 1


def test_a_float_wav_beyond_full_scale_warns(trained, tmp_path, capsys):
    data, run_dir, _ = trained
    wave, sr = sf.read(next((data / "fan" / "test").glob("*.wav")))
    sf.write(tmp_path / "loud.wav", 50 * wave / np.abs(wave).max(), sr, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"samples peak at 50, beyond full scale \(±1\); clipped"):
        assert main(["score", str(run_dir / "best.pt"), str(tmp_path / "loud.wav"), "--machine-type", "fan",
                     "--machine-id", "0"]) == 0


def test_many_resampled_files_give_one_summary_line(trained, tmp_path, capsys):
    data, run_dir, _ = trained
    wave, sr = sf.read(next((data / "fan" / "test").glob("*.wav")))
    for i in range(5):
        sf.write(tmp_path / f"take{i}.wav", np.interp(np.linspace(0, len(wave) - 1, 44100), np.arange(len(wave)),
                                                      wave), 44100)
    done = python("import sys; from asdlib.cli import main; sys.exit(main(sys.argv[1:]))", "score",
                  str(run_dir / "best.pt"), str(tmp_path), "--machine-type", "fan", "--machine-id", "0")
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "resampling" in x]  # one line, not one per file
    assert line.startswith("warning: ") and "(and 4 more file(s) alike)" in line


def test_folders_nested_1500_deep(trained, tmp_path):
    data, run_dir, _ = trained
    deep = tmp_path
    for _ in range(1500):  # one by one: Path.mkdir(parents=True) itself recurses
        deep = deep / "d"
        os.mkdir(deep)
    shutil.copy(next((data / "fan" / "test").glob("*.wav")), deep / "bottom.wav")
    try:
        _score_deep(run_dir, tmp_path, deep)
    finally:  # bottom-up, one level at a time: shutil.rmtree (and pytest's clean-up) would recurse too deep
        (deep / "bottom.wav").unlink()
        (tmp_path / "d" / "d" / "top.wav").unlink(missing_ok=True)
        while deep != tmp_path:
            os.rmdir(deep)
            deep = deep.parent


def _score_deep(run_dir: Path, tmp_path: Path, deep: Path) -> None:
    assert find_wav_files([tmp_path]) == ([deep / "bottom.wav"], [])  # no "maximum recursion depth exceeded"
    shallow = tmp_path / "d" / "d"  # libsndfile itself refuses paths of 3000 characters; 1498 levels less is fine
    shutil.copy(deep / "bottom.wav", shallow / "top.wav")
    table = score_files(run_dir / "best.pt", [shallow], machine_type="fan", machine_id=0, progress=False,
                        on_error="skip")
    assert [Path(p).name for p in table.path] == ["top.wav"]
    assert table.attrs["skipped"][0][0] == str(deep / "bottom.wav") and "too long" in table.attrs["skipped"][0][1]


# ------------------------------------------------------------------------------ issue 17: talks like a trainer
def test_train_logs_one_line_per_epoch_and_no_bar_flood(trained, tmp_path):
    data, _, cfg = trained
    yaml, log = tmp_path / "cfg.yaml", tmp_path / "train.log"
    cfg.to_yaml(yaml)
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, "-m", "asdlib", "train", "--config", str(yaml), "--data", str(data),
                               "--out", str(tmp_path / "run"), "train.epochs=3", "train.t_max=3"], stdout=f,
                              stderr=subprocess.STDOUT, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    text = log.read_text()
    assert done.returncode == 0, text
    epochs = [line for line in text.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert all(" loss " in e and "held-out loss" in e and " acc " in e and e.endswith(" s") for e in epochs)
    assert "\r" not in text and "it/s" not in text, "progress bars in the log"  # none for steps under 30 s


def test_cli_hints_name_options_not_python_arguments(trained, tmp_path, capsys):
    data, run_dir, _ = trained
    (tmp_path / "x.wav").mkdir()
    err = _one_line_error(["score", str(run_dir / "best.pt"), str(tmp_path), "--on-error", "raise",
                           "--machine-type", "fan", "--machine-id", "0"], capsys, "--on-error skip")
    assert "on_error" not in err
    assert cli_message("pass --no-resume (resume=False) or on_error='skip'") == "pass --no-resume or --on-error skip"

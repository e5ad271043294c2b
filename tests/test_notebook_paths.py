"""Issue 21, cause 5: the notebooks' path to the reference runs goes through the registry's checks — generator
version, dataset, incomplete run folders, a tampered or malformed registry, a full disk, ``ASD_TRAIN``."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asdlib.teaching import notebook, pretrained, reproduce
from asdlib.teaching.pretrained import ReferenceRunError
from test_train import write_tiny_dataset

REPO = Path(__file__).resolve().parents[1]
NAME = "stgram_mfn-arcface"  # a series run; seed 0 ships a checkpoint


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch) -> Path:
    """A writable copy of the reference runs, used in place of the shipped ones."""
    copy = Path(shutil.copytree(pretrained.REFERENCE_DIR, tmp_path / "reference_runs"))
    monkeypatch.setattr(pretrained, "REFERENCE_DIR", copy)
    return copy


def edit_registry(root: Path, change) -> None:
    path = root / "registry.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("ON", True), ("true", True),
                                             ("0", False), ("no", False), ("off", False), ("False", False),
                                             ("auto", "auto"), ("", "auto")])
def test_asd_train_accepts_the_usual_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("ASD_TRAIN", value)
    assert notebook.train_setting() == expected


@pytest.mark.parametrize("value", ["2", "maybe", "yes please"])
def test_asd_train_refuses_the_rest(monkeypatch, value):
    monkeypatch.setenv("ASD_TRAIN", value)
    with pytest.raises(ValueError, match=f"ASD_TRAIN='{value}' is not understood: use 1/true/yes/on"):
        notebook.train_setting()


def test_series_run_warns_about_another_generator_version(shipped_copy):
    edit_registry(shipped_copy, lambda raw: raw["dataset"].update(generator_version=1))
    with pytest.warns(UserWarning, match="version 1, but this asdlib generates version .* never mix"):
        path = notebook.series_run(NAME, train=False)
    assert path == shipped_copy / f"{NAME}-s0"


def test_reference_runs_on_another_dataset_say_so(tmp_path):
    """Notebook 05 with ASD_DATA at other data: a clear message instead of a numpy tolerance assertion."""
    from asdlib.data.synth import generate_dataset

    real_like = write_tiny_dataset(tmp_path / "real")  # no dataset.json: real recordings, for all we know
    with pytest.raises(ReferenceRunError, match=r"belongs to another dataset: .*\(real recordings\?\)\. Train on "
                                                r"this data instead \(TRAIN = True, or ASD_TRAIN=1\)"):
        notebook.series_run(NAME, train=False, data=real_like)
    other_seed = tmp_path / "seed1"
    generate_dataset(other_seed, size="smoke", machine_types="valve", seed=1, n_train=1, n_test=1, progress=False)
    with pytest.raises(ReferenceRunError, match=r"another procedural dataset \(seed 1 vs 0\)"):
        notebook.series_run(NAME, train=False, data=other_seed)
    same = tmp_path / "seed0"  # a smaller size of the same clips is fine
    generate_dataset(same, size="smoke", machine_types="valve", seed=0, n_train=1, n_test=1, progress=False)
    assert notebook.series_run(NAME, train=False, data=same).name == f"{NAME}-s0"


def test_an_incomplete_run_folder_is_completed_not_read(tmp_path, monkeypatch):
    data = write_tiny_dataset(tmp_path / "data", clips=2)
    monkeypatch.setenv("ASD_SMOKE", "1")
    monkeypatch.setenv("ASD_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(REPO)
    run_dir = notebook.ensure_run(NAME, data=data, progress=False)
    history = (run_dir / "history.csv").read_text()
    (run_dir / "scores.csv").unlink()
    with pytest.raises(FileNotFoundError, match=f"{run_dir / 'scores.csv'} not found: .* was not evaluated"):
        notebook.run_scores(run_dir, data)
    assert notebook.ensure_run(NAME, data=data, progress=False) == run_dir
    assert len(notebook.run_scores(run_dir, data)) > 0 and (run_dir / "history.csv").read_text() == history


def test_a_tampered_auc_in_the_registry_fails_verify(shipped_copy):
    name = next(r.name for r in pretrained.registry(shipped_copy).values() if not r.has_checkpoint)
    assert reproduce.verify([name], root=shipped_copy, progress=False) == []
    edit_registry(shipped_copy, lambda raw: raw["runs"][name].update(auc=0.99))
    (problem,) = reproduce.verify([name], root=shipped_copy, progress=False)
    assert "the registry says auc 0.99 for Average, its summary.csv 0." in problem


@pytest.mark.parametrize("change, message", [
    (lambda e: e.pop("auc"), "lacks the key 'auc'"),
    (lambda e: e.update(auc="high"), "auc is 'high', expected int or float"),
    (lambda e: e.update(epochs=15.5), "epochs is 15.5, expected int"),
    (lambda e: e["files"].update({"best.pt": "abc"}), "file best.pt is str, not an object"),
])
def test_a_malformed_registry_entry_names_the_run_and_the_key(shipped_copy, change, message):
    name = next(iter(pretrained.registry(shipped_copy)))
    edit_registry(shipped_copy, lambda raw: change(raw["runs"][name]))
    with pytest.raises(ReferenceRunError, match=f"registry.json: run {name}.*{message}"):
        pretrained.registry(shipped_copy)


FULL_DISK = """
import os, resource, signal, subprocess, sys
folder, mode, *command = sys.argv[1:]
if mode == "fsize":  # no tmpfs: a real kernel write error from a file-size limit instead of a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
done = subprocess.run([sys.executable, "-m", "asdlib", *command], capture_output=True, text=True,
                      env={**os.environ, "TMPDIR": folder})
print(done.returncode)
print(done.stdout + done.stderr)
"""


@pytest.fixture
def full_disk(tmp_path):
    """A 256-kB tmpfs (or, without the right to mount one, a 20-kB file-size limit) and its mode."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    yield folder, "tmpfs" if mounted else "fsize"
    if mounted:
        subprocess.run(["umount", str(folder)], check=True)


def _on_full_disk(full_disk, *command: str) -> tuple[int, str]:
    folder, mode = full_disk
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(folder), mode, *command], capture_output=True,
                          text=True, timeout=600, cwd=REPO)
    code, _, output = done.stdout.partition("\n")
    return int(code), output


def test_verify_with_a_full_temporary_folder_names_it_and_tmpdir(full_disk):
    code, output = _on_full_disk(full_disk, "pretrained", "verify", f"{NAME}-s0")
    assert code == 1, output
    assert "could not write the regenerated test clips to the temporary folder" in output
    assert f"TMPDIR is {full_disk[0]}" in output and "System error" not in output


def test_pretrained_train_on_a_full_disk_names_the_folder(full_disk):
    data = full_disk[0] / "data"
    code, output = _on_full_disk(full_disk, "pretrained", "train", f"{NAME}-s0", "--data", str(data), "--out",
                                 str(full_disk[0] / "out"))
    assert code == 2, output
    assert f"could not write to {data}: the disk is full or a file-size limit was reached" in output
    assert "pass --data with a folder on a disk with room" in output and "System error" not in output

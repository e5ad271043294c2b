"""Study runs in the registry beside the reference runs: marked, listed, verified and reproduced like them.

One tiny real training (one epoch, valve) is shipped three times into a temporary registry: as a reference run
with its checkpoint, and as two study runs, one with and one without a checkpoint.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from asdlib.teaching import pretrained, reproduce
from asdlib.teaching.pretrained import ReferenceRunError
from test_pretrained import train_tiny

REFERENCE, STUDY, STUDY_NO_CKPT = "tiny-s0", "tiny-long-s0", "tiny-long-s1"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> tuple[Path, Path]:
    """``(registry root, data folder)``: the three runs shipped from one tiny training."""
    folder = tmp_path_factory.mktemp("study")
    data, run_dir = train_tiny(folder)
    root = folder / "shipped"
    for name, study, checkpoint in [(REFERENCE, False, True), (STUDY, True, True), (STUDY_NO_CKPT, True, False)]:
        reproduce.ship(name, run_dir, data=data, checkpoint=checkpoint, command="(test)", root=root, study=study)
    return root, data


@pytest.fixture
def copy_of(shipped, tmp_path) -> Path:
    """A writable copy of the tiny registry (the test damages it)."""
    return Path(shutil.copytree(shipped[0], tmp_path / "shipped"))


def test_study_entries_are_marked_and_read_back(shipped):
    root, _ = shipped
    raw = json.loads((root / "registry.json").read_text())["runs"]
    assert "study" not in raw[REFERENCE] and raw[REFERENCE]["config"] == f"configs/reference/{REFERENCE}.yaml"
    for name in (STUDY, STUDY_NO_CKPT):
        assert raw[name]["study"] is True and raw[name]["config"] == f"configs/study/{name}.yaml"
    assert pretrained.get(STUDY, root).study and not pretrained.get(REFERENCE, root).study
    assert pretrained.get(STUDY, root).has_checkpoint and not pretrained.get(STUDY_NO_CKPT, root).has_checkpoint
    assert list(pretrained.registry(root, study=True)) == [STUDY, STUDY_NO_CKPT]
    assert list(pretrained.registry(root, study=False)) == [REFERENCE]
    assert len(pretrained.registry(root)) == 3
    assert [r.name for r in pretrained.find("tastgram_mfn", "arcface", root=root)] == [REFERENCE]  # series' runs


def test_list_shows_which_runs_are_study_runs(shipped):
    root, _ = shipped
    text = reproduce.list_runs(root)
    rows = {line.split()[0]: line.split() for line in text.splitlines()[1:4]}
    assert text.splitlines()[0].split()[-1] == "study"
    assert rows[STUDY][-1] == rows[STUDY_NO_CKPT][-1] == "yes" and rows[REFERENCE][-1] == "-"
    assert text.splitlines()[-1].startswith(f"1 reference run and 2 study runs in {root}")
    listed = {row["name"]: row["study"] for row in json.loads(reproduce.list_runs(root, as_json=True))}
    assert listed == {REFERENCE: False, STUDY: True, STUDY_NO_CKPT: True}


def test_verify_passes_on_study_runs_with_and_without_a_checkpoint(shipped):
    assert reproduce.verify(root=shipped[0], progress=False) == []


def test_tampered_study_files_fail_verify_naming_the_study_run(copy_of):
    """A damaged history of the run without weights fails its hash; scores that do not come from the shipped
    weights (their hash updated to match) fail the re-scoring."""
    history = copy_of / STUDY_NO_CKPT / "history.csv"
    history.write_text(history.read_text().replace("\n1,", "\n2,", 1))
    scores_path = copy_of / STUDY / "scores.csv"
    scores = pd.read_csv(scores_path)
    scores.loc[0, "arcface_ce"] += 0.01 + 0.01 * abs(scores.loc[0, "arcface_ce"])  # 1 %: ten times the tolerance
    scores.to_csv(scores_path, index=False, float_format="%.8g")
    raw = json.loads((copy_of / "registry.json").read_text())
    raw["runs"][STUDY]["files"]["scores.csv"] = {"sha256": pretrained.sha256(scores_path),
                                                 "bytes": scores_path.stat().st_size}
    (copy_of / "registry.json").write_text(json.dumps(raw))
    problems = reproduce.verify(root=copy_of, progress=False)
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{STUDY}: study run {STUDY}: scores of") and "differ" in problems[0]
    assert problems[1].startswith(f"{STUDY_NO_CKPT}: study run {STUDY_NO_CKPT}: ") and "corrupted" in problems[1]


def test_a_study_run_without_weights_points_to_runs_with_them(shipped):
    with pytest.raises(ReferenceRunError, match=f"study run {STUDY_NO_CKPT} ships no checkpoint .*use {STUDY} "
                                                f"or {REFERENCE}"):
        pretrained.load_model(STUDY_NO_CKPT, root=shipped[0])


def test_a_study_flag_that_is_not_a_boolean_is_refused(copy_of):
    raw = json.loads((copy_of / "registry.json").read_text())
    raw["runs"][STUDY]["study"] = "yes"
    (copy_of / "registry.json").write_text(json.dumps(raw))
    with pytest.raises(ReferenceRunError, match=f"run {STUDY}: study is 'yes', expected true or false"):
        pretrained.registry(copy_of)


def test_pretrained_train_reproduces_a_study_run(shipped, tmp_path, capsys):
    """``pretrained train NAME`` on a study run: its shipped config, its dataset, the recorded result."""
    root, data = shipped
    result = reproduce.reproduce(STUDY_NO_CKPT, data=data, out=tmp_path / "again", root=root)
    run = pretrained.get(STUDY_NO_CKPT, root)
    assert abs(result["auc"] - run.auc) < 1e-6 and abs(result["pauc"] - run.pauc) < 1e-6
    assert f"study run {STUDY_NO_CKPT}: recorded AUC" in capsys.readouterr().out

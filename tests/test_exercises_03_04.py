"""The checkers of notebooks 03 and 04 accept the worked solutions, reject typical wrong answers with a hint,
and never raise (a learner's crashing function is a hint, not a crash of the notebook)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from asdlib.exercises import ex03, ex04
from asdlib.heads import arcface_logits
from solutions_loader import crash, solutions

HISTORY = pd.DataFrame({"epoch": [1, 2, 3, 4], "loss": [9.0, 6.0, 4.0, 3.0], "acc": [0.1, 0.4, 0.7, 0.8],
                        "val_loss": [8.0, 5.0, 5.5, 6.0], "test_auc": [0.6, 0.7, 0.75, 0.72]})


@pytest.fixture(scope="module")
def sol03():
    return solutions("03")


@pytest.fixture(scope="module")
def sol04():
    return solutions("04")


def test_target_logit(sol03, capsys):
    assert ex03.check_target_logit(sol03.target_logit)
    assert not ex03.check_target_logit(lambda c, *, m, s: s * c)
    assert "without the margin" in capsys.readouterr().out
    assert not ex03.check_target_logit(lambda c, *, m, s: s * (c - m))
    assert "CosFace" in capsys.readouterr().out
    assert not ex03.check_target_logit(lambda c, *, m, s: torch.cos(torch.arccos(c) + m))
    assert not ex03.check_target_logit(lambda c, *, m, s: c[:3])
    assert not ex03.check_target_logit(crash)
    assert "raised RuntimeError" in capsys.readouterr().out


def test_selected_epoch(sol03, tmp_path):
    assert sol03.selected_epoch(HISTORY) == 2
    assert ex03.check_selected_epoch(sol03.selected_epoch(HISTORY), HISTORY)
    HISTORY.to_csv(tmp_path / "history.csv", index=False)
    assert ex03.check_selected_epoch(2, tmp_path)  # a run folder works too
    assert not ex03.check_selected_epoch(int(HISTORY.val_loss.idxmin()), HISTORY)  # a row number, not the epoch
    assert not ex03.check_selected_epoch(int(HISTORY.epoch[HISTORY.test_auc.idxmax()]), HISTORY)
    assert not ex03.check_selected_epoch("two", HISTORY)


def test_peek_optimism(sol03, capsys):
    answer = sol03.peek_optimism(HISTORY)
    assert answer == pytest.approx(5.0)  # best test AUC 75 % at epoch 3, kept epoch 2 has 70 %
    assert ex03.check_peek_optimism(answer, HISTORY)
    assert not ex03.check_peek_optimism(answer / 100, HISTORY)
    assert "percentage points" in capsys.readouterr().out
    assert not ex03.check_peek_optimism(0.0, HISTORY)
    assert not ex03.check_peek_optimism(None, HISTORY)
    assert not ex03.check_peek_optimism(answer, HISTORY.drop(columns=["test_auc"]))


def _noisy_arcmix(cosine, y_a, y_b, lam, *, m, s):
    z = arcface_logits(cosine, y_a, m=m, s=s)
    return lam * F.cross_entropy(z, y_a) + (1 - lam) * F.cross_entropy(z, y_b)


def test_arcmix(sol04, capsys):
    assert ex04.check_arcmix(sol04.arcmix)
    assert not ex04.check_arcmix(_noisy_arcmix)
    assert "that is Noisy-ArcMix" in capsys.readouterr().out
    assert not ex04.check_arcmix(lambda cosine, y_a, y_b, lam, *, m, s: F.cross_entropy(s * cosine, y_a))
    assert not ex04.check_arcmix(crash)


def test_angle_auc(sol04):
    rng = np.random.default_rng(0)
    rows = [(t, i, label) for t, ids in (("fan", (0, 2)), ("valve", (0, 2))) for i in ids
            for label in ["normal"] * 10 + ["anomaly"] * 10]
    scores = pd.DataFrame(rows, columns=["machine_type", "machine_id", "label"])
    anomalous = (scores.label == "anomaly").to_numpy()
    scores["angle"] = rng.uniform(10, 40, len(scores)) + 8 * anomalous
    scores["score"] = rng.uniform(0, 1, len(scores))  # another score: its AUC is not the answer
    answer = sol04.angle_auc(scores)
    assert 0.5 < answer < 1.0
    assert ex04.check_angle_auc(answer, scores) and ex04.check_angle_auc(100 * answer, scores)
    assert not ex04.check_angle_auc(sol04.angle_auc(scores.assign(angle=scores.score)), scores)
    assert not ex04.check_angle_auc("high", scores)


def test_mixed_fraction(sol04):
    answer = sol04.mixed_fraction()
    assert ex04.check_mixed_fraction(answer)
    assert not ex04.check_mixed_fraction(0.6)  # what a uniform λ would give
    assert not ex04.check_mixed_fraction([0.4])

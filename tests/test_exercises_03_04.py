"""The checkers of notebooks 03 and 04 accept the worked solutions and valid alternatives, reject typical wrong
answers with a specific hint, print (returning None) and never raise (a learner's crashing function is a hint,
not a crash of the notebook)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from asdlib.teaching.exercises import ex03, ex04
from asdlib.teaching.exercises.selection import constructed_history, rule_epochs
from asdlib.nn.heads import arcface_logits
from solutions_loader import crash, solutions, verdict

HISTORY = constructed_history()  # every selection rule picks a different epoch


@pytest.fixture(scope="module")
def sol03():
    return solutions("03")


@pytest.fixture(scope="module")
def sol04():
    return solutions("04")


def test_target_logit(sol03, capsys):
    ex03.check_target_logit(sol03.target_logit)
    assert verdict(capsys)[0]
    ex03.check_target_logit(lambda c, *, m, s: (s * torch.cos(torch.acos(c) + m)).numpy())  # numpy is fine
    assert verdict(capsys)[0]
    ex03.check_target_logit(lambda c, *, m, s: s * c)
    assert "without the margin" in verdict(capsys)[1]
    ex03.check_target_logit(lambda c, *, m, s: s * (c - m))
    assert "CosFace" in verdict(capsys)[1]
    ex03.check_target_logit(lambda c, *, m, s: torch.cos(torch.arccos(c) + m))
    assert not verdict(capsys)[0]
    ex03.check_target_logit(lambda c, *, m, s: c[:3])
    assert not verdict(capsys)[0]
    ex03.check_target_logit(crash)
    assert "raised RuntimeError" in verdict(capsys)[1]


def test_constructed_history_separates_the_rules():
    epochs = rule_epochs(HISTORY)
    assert epochs == {"honest": 5, "row": 4, "last": 8, "worst": 1, "zero": 0, "peeking": 6, "peeking_auc": 7,
                      "lowest_test": 2}
    assert len(set(epochs.values())) == len(epochs)


def test_selected_epoch(sol03, tmp_path, capsys):
    assert ex03.check_selected_epoch(sol03.selected_epoch(HISTORY), HISTORY) is None
    assert verdict(capsys)[0]
    ex03.check_selected_epoch(sol03.selected_epoch, HISTORY)  # a function: also run on the constructed one
    assert verdict(capsys)[0]
    ex03.check_selected_epoch(5.0, HISTORY)  # valid alternative: a float epoch
    assert verdict(capsys)[0]
    HISTORY.to_csv(tmp_path / "history.csv", index=False)
    ex03.check_selected_epoch(5, tmp_path)  # a run folder works too
    assert verdict(capsys)[0]
    for answer, hint in ((4, "row number"), (6, "test AUC + pAUC"), (7, "highest test AUC"), (8, "last epoch"),
                         (1, "*highest* validation loss"), (0, "no epoch 0")):
        ex03.check_selected_epoch(answer, HISTORY)
        ok, out = verdict(capsys)
        assert not ok and hint in out, (answer, out)
    ex03.check_selected_epoch(lambda h: int(h.epoch.iloc[-1]), HISTORY.iloc[:5])  # last = honest here only
    ok, out = verdict(capsys)
    assert not ok and "constructed" in out and "last epoch" in out
    ex03.check_selected_epoch("two", HISTORY)
    assert not verdict(capsys)[0]
    ex03.check_selected_epoch(crash, HISTORY)
    assert "RuntimeError" in verdict(capsys)[1]


def test_peek_optimism(sol03, capsys):
    answer = sol03.peek_optimism(HISTORY)
    assert answer == pytest.approx(3.0)  # peeking epoch 6 (AUC 75 %), kept epoch 5 (AUC 72 %)
    ex03.check_peek_optimism(answer, HISTORY)
    assert verdict(capsys)[0]
    ex03.check_peek_optimism(sol03.peek_optimism, HISTORY)
    assert verdict(capsys)[0]
    peeking_row = lambda h: h.loc[(h.test_auc + h.test_pauc).idxmax()]  # noqa: E731
    ex03.check_peek_optimism(lambda h: 100 * peeking_row(h).test_auc - 100 * h.set_index("epoch").test_auc[
        h.set_index("epoch").val_loss.idxmin()], HISTORY)  # valid alternative, written differently
    assert verdict(capsys)[0]
    for wrong, hint in ((answer / 100, "percentage points"), (-answer, "wrong sign"), (8.0, "best test AUC of any"),
                        (0.0, "honest rule keeps epoch 5 and peeking picks epoch 6")):
        ex03.check_peek_optimism(wrong, HISTORY)
        ok, out = verdict(capsys)
        assert not ok and hint in out, (wrong, out)
    ex03.check_peek_optimism(None, HISTORY)
    assert not verdict(capsys)[0]
    ex03.check_peek_optimism(answer, HISTORY.drop(columns=["test_auc"]))
    assert not verdict(capsys)[0]


def _noisy_arcmix(cosine, y_a, y_b, lam, *, m, s):
    z = arcface_logits(cosine, y_a, m=m, s=s)
    return lam * F.cross_entropy(z, y_a) + (1 - lam) * F.cross_entropy(z, y_b)


def test_arcmix(sol04, capsys):
    ex04.check_arcmix(sol04.arcmix)
    assert verdict(capsys)[0]
    ex04.check_arcmix(lambda cosine, y_a, y_b, lam, *, m, s: lam * F.cross_entropy(
        arcface_logits(cosine, y_a, m=m, s=s), y_a, reduction="sum") / len(y_a) + (1 - lam) * F.cross_entropy(
        arcface_logits(cosine, y_b, m=m, s=s), y_b))  # valid alternative: sum / B
    assert verdict(capsys)[0]
    ex04.check_arcmix(_noisy_arcmix)
    assert "that is Noisy-ArcMix" in verdict(capsys)[1]
    ex04.check_arcmix(lambda cosine, y_a, y_b, lam, *, m, s: F.cross_entropy(s * cosine, y_a))
    assert not verdict(capsys)[0]
    ex04.check_arcmix(crash)
    assert not verdict(capsys)[0]


@pytest.fixture(scope="module")
def angle_scores() -> pd.DataFrame:
    """Two types, two IDs each; the angle is larger for anomalies, the run's score is unrelated noise."""
    rng = np.random.default_rng(0)
    rows = [(t, i, label) for t, ids in (("fan", (0, 2)), ("valve", (0, 2))) for i in ids
            for label in ["normal"] * 10 + ["anomaly"] * 10]
    scores = pd.DataFrame(rows, columns=["machine_type", "machine_id", "label"])
    anomalous = (scores.label == "anomaly").to_numpy()
    scores["angle"] = rng.uniform(10, 40, len(scores)) + 8 * anomalous + 4 * (scores.machine_id == 2)
    scores["score"] = rng.uniform(0, 1, len(scores))  # another score: its AUC is not the answer
    return scores


def test_angle_auc(sol04, angle_scores, capsys):
    scores = angle_scores
    answer = sol04.angle_auc(scores)
    assert 0.5 < answer < 1.0
    ex04.check_angle_auc(answer, scores)
    assert verdict(capsys)[0]
    ex04.check_angle_auc(100 * answer, scores)  # valid alternative: percent
    assert verdict(capsys)[0]
    ex04.check_angle_auc(sol04.angle_auc(scores.assign(angle=scores.score)), scores)
    ok, out = verdict(capsys)
    assert not ok and "the run's anomaly score" in out
    ex04.check_angle_auc(1 - answer, scores)
    assert "1 − AUC" in verdict(capsys)[1]
    ex04.check_angle_auc("high", scores)
    assert not verdict(capsys)[0]


def test_angle_auc_accepts_its_own_printed_rounding(sol04, angle_scores, capsys):
    answer = sol04.angle_auc(angle_scores)
    ex04.check_angle_auc(answer, angle_scores)
    printed = verdict(capsys)[1].split("average AUC ")[1].split(" %")[0]  # e.g. "84.77"
    ex04.check_angle_auc(float(printed), angle_scores)  # the probe that was rejected
    assert verdict(capsys)[0]
    ex04.check_angle_auc(round(answer, 4), angle_scores)  # the fraction to 4 decimals
    assert verdict(capsys)[0]
    ex04.check_angle_auc(float(printed) + 0.02, angle_scores)  # beyond the rounding: still wrong
    assert not verdict(capsys)[0]


def test_mixed_fraction(sol04, capsys):
    ex04.check_mixed_fraction(sol04.mixed_fraction(), draws=20000)
    assert verdict(capsys)[0]
    ex04.check_mixed_fraction(sol04.mixed_fraction(5000), draws=5000)  # valid alternative: fewer draws
    assert verdict(capsys)[0]
    ex04.check_mixed_fraction(0.6, draws=5000)  # what a uniform λ would give
    ok, out = verdict(capsys)
    assert not ok and "uniform" in out
    ex04.check_mixed_fraction(1 - sol04.mixed_fraction(), draws=20000)
    assert "*outside*" in verdict(capsys)[1]
    ex04.check_mixed_fraction([0.4])
    assert not verdict(capsys)[0]
    ex04.check_mixed_fraction(0.4, draws=100)
    assert "too few" in verdict(capsys)[1]


def test_mixed_fraction_rejects_a_bare_guess(capsys):
    ex04.check_mixed_fraction(0.4)  # the probe that passed: a share with no draws behind it
    ok, out = verdict(capsys)
    assert not ok and "cannot be told from a guess" in out and "draws=" in out
    p = ex04._mixed_fraction()
    ex04.check_mixed_fraction(p)  # the exact value (scipy.stats.beta.cdf) is not a guess
    assert verdict(capsys)[0]


def test_mixed_fraction_accepts_honest_1000_draw_estimates(capsys):
    """The probe that failed 1 time in 5: 200 seeds of 1000 draws, as the share with draws, or the draws."""
    passed = 0
    for seed in range(200):
        lam = np.random.default_rng(seed).beta(0.5, 0.5, 1000)
        ex04.check_mixed_fraction(float(np.mean((lam > 0.2) & (lam < 0.8))), draws=1000)
        passed += verdict(capsys)[0]
    assert passed == 200
    ex04.check_mixed_fraction(lam)  # valid alternative: the sampled λ themselves
    ok, out = verdict(capsys)
    assert ok and "1000 draws" in out
    ex04.check_mixed_fraction(torch.as_tensor((lam > 0.2) & (lam < 0.8)))  # or their boolean mask
    assert verdict(capsys)[0]


def test_mixed_fraction_percent_gets_a_units_note(sol04, capsys):
    share = sol04.mixed_fraction()
    ex04.check_mixed_fraction(100 * share, draws=20000)  # valid alternative: percent, read as such
    ok, out = verdict(capsys)
    assert ok and "%" in out
    ex04.check_mixed_fraction(100 * (1 - share), draws=20000)  # wrong and in percent: the hint says both
    ok, out = verdict(capsys)
    assert not ok and "read as" in out and "*outside*" in out

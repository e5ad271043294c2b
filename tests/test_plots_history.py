"""plot_history says what the training curves were measured on (mixed clips only for a mixup loss, read from the
run's config) and can put two runs' AUC panels on one range."""
from __future__ import annotations

import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from asdlib.teaching import pretrained  # noqa: E402
from asdlib.teaching.plots import training as pt  # noqa: E402

HISTORY = pd.DataFrame({"epoch": [1, 2, 3], "loss": [9.0, 6.0, 4.0], "acc": [0.1, 0.4, 0.7],
                        "val_loss": [8.0, 5.0, 5.5], "val_acc": [0.5, 0.9, 0.95],
                        "test_auc": [0.6, 0.7, 0.75], "test_pauc": [0.55, 0.6, 0.62]})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _run(tmp_path, name):
    run = tmp_path / name
    run.mkdir()
    shutil.copy(pretrained.get(name).path / "config.yaml", run / "config.yaml")
    HISTORY.to_csv(run / "history.csv", index=False)
    return run


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize("name, words", [("stgram_mfn-arcface-s0", "clean"),
                                         ("tastgram_mfn-noisy_arcmix-s0", "mixed")])
def test_training_accuracy_label_follows_the_runs_loss(tmp_path, name, words):
    fig = pt.plot_history(_run(tmp_path, name))
    training = next(t for t in _labels(fig.axes[1]) if t.startswith("training"))
    assert words in training and ("mixed" in training) == (words == "mixed")
    assert ("mixup" in " ".join(_labels(fig.axes[0]))) == (words == "mixed")


def test_label_left_unsaid_without_a_config_and_overridable():
    assert _labels(pt.plot_history(HISTORY).axes[1])[0] == "training"
    assert "mixed" in _labels(pt.plot_history(HISTORY, mixup=True).axes[1])[0]


def test_loss_on_a_log_scale():
    assert pt.plot_history(HISTORY).axes[0].get_yscale() == "log"


def test_auc_panels_share_a_range():
    figs = [pt.plot_history(h, auc_ylim=(50, 90)) for h in (HISTORY, HISTORY.assign(test_auc=[0.8, 0.82, 0.85]))]
    assert [f.axes[2].get_ylim() for f in figs] == [(50, 90), (50, 90)]


def test_accuracy_panels_share_a_lower_end():
    late = HISTORY.assign(acc=[0.85, 0.95, 0.99], val_acc=[0.9, 0.97, 0.99])
    low = pt.accuracy_floor([HISTORY, late])
    assert low == 10.0  # HISTORY's lowest accuracy is 10 %
    assert pt.accuracy_floor([late]) == 80.0
    figs = [pt.plot_history(h, acc_low=low) for h in (HISTORY, late)]
    assert [f.axes[1].get_ylim()[0] for f in figs] == [low, low]
    assert pt.plot_history(late).axes[1].get_ylim()[0] > low  # alone, the late run would get a narrower axis

"""The two regimes of notebook 05: the same trained detectors scored on test sets that differ only in their faults
(real generated clips, a real network, real autoencoders and Gaussian fits)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from asdlib.data.index import index_dataset  # noqa: E402
from asdlib.data.synth import generate_dataset  # noqa: E402
from asdlib.evaluation.autoencoder import load_autoencoders  # noqa: E402
from asdlib.evaluation.baseline import fit_baseline  # noqa: E402
from asdlib.nn.models import build_model  # noqa: E402
from asdlib.teaching import regimes  # noqa: E402
from asdlib.teaching.plots.evaluation import regime_plot  # noqa: E402
from asdlib.training.autoencoder import fit_autoencoders  # noqa: E402

TYPES = ["fan", "valve"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Detectors fitted on a small dataset's normal training clips: (network, autoencoders, Gaussian)."""
    root = tmp_path_factory.mktemp("regimes")
    generate_dataset(root / "train", size="default", machine_types=TYPES, n_train=4, n_test=1, seconds=0.5,
                     progress=False)
    index = index_dataset(root / "train")
    fit_autoencoders(index, root / "ae", epochs=1, progress=False)
    network = build_model("stgram_mfn", seconds=0.5, num_classes=41).eval()
    return root, network, load_autoencoders(root / "ae"), fit_baseline(index, seconds=0.5, progress=False)


def test_the_two_test_sets_differ_only_in_their_anomalous_clips(tmp_path):
    sets = regimes.regime_test_sets(tmp_path, ["fan"], per_label=2, version=3, fault_targets=(0.0, 1.0))
    assert set(sets) == {0.0, 1.0}
    files = {t: {"/".join(p.split("/")[-3:]): open(p, "rb").read() for p in ix.path} for t, ix in sets.items()}
    assert files[0.0].keys() == files[1.0].keys() and len(files[0.0]) == 4 * 2 * 2  # 4 dev IDs, 2 + 2 clips
    same = {name for name in files[0.0] if files[0.0][name] == files[1.0][name]}
    assert same == {name for name in files[0.0] if "/normal_" in name}


def test_regime_table_scores_every_detector_on_every_set(trained):
    root, network, autoencoders, gaussian = trained
    sets = regimes.regime_test_sets(root / "sets", TYPES, per_label=2)
    scorers = {"network": regimes.network_scorer(network, seconds=0.5, cache_dir=root / "cache"),
               "AE": regimes.autoencoder_scorer(autoencoders, seconds=0.5),
               "Gaussian": regimes.gaussian_scorer(gaussian, seconds=0.5)}
    table = regimes.regime_table(sets, scorers)
    assert len(table) == 2 * 3 * (len(TYPES) + 1)
    assert set(table.machine_type) == {*TYPES, "Average"} and table.auc.between(0, 1).all()
    average = table[table.machine_type == "Average"].set_index(["fault_target", "method"]).auc
    best = regimes.winners(table)
    assert all(average[t, best[t]] == average[t].max() for t in (0.0, 1.0))
    fig = regime_plot(table, titles=regimes.ENDS)
    assert len(fig.axes) == 2 and "fault_target = 1" in fig.axes[1].get_title()
    assert len(fig.axes[0].patches) == 3  # one bar per detector


def test_dataset_regime_says_where_a_dataset_sits():
    types = ["fan", "valve", "ToyConveyor"]
    assert "left panel" in regimes.dataset_regime({"fault_target": 0.0, "machine_types": types}, 2)
    assert "ToyConveyor, where a share of 0.3" in regimes.dataset_regime({"fault_target": None,
                                                                           "machine_types": types}, 3)
    assert "except" not in regimes.dataset_regime({"fault_target": None, "machine_types": ["fan"]}, 3)
    assert "0.5" in regimes.dataset_regime({"fault_target": 0.5, "machine_types": types}, 3)


def test_winners_picks_the_best_average():
    table = pd.DataFrame([dict(fault_target=0.0, method="a", machine_type="Average", auc=0.9),
                          dict(fault_target=0.0, method="b", machine_type="Average", auc=0.7),
                          dict(fault_target=1.0, method="a", machine_type="Average", auc=0.6),
                          dict(fault_target=1.0, method="b", machine_type="Average", auc=0.8),
                          dict(fault_target=1.0, method="a", machine_type="fan", auc=0.99)])
    assert regimes.winners(table) == {0.0: "a", 1.0: "b"}

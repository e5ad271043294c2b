"""The recipe comparison of notebook 04: the authors' recipe is the repository's preset, differences are marked."""
from __future__ import annotations

from pathlib import Path

from asdlib.teaching.replication import AUTHORS_DATA, authors_recipe, recipe_table
from asdlib.training.config import RunConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_the_authors_recipe_is_the_preset_of_their_code():
    assert authors_recipe() == RunConfig.from_yaml(CONFIGS / "tastgram_noisy_arcmix.yaml")
    assert authors_recipe(loss="arcface") == RunConfig.from_yaml(CONFIGS / "tastgram_arcface.yaml")


def test_recipe_table_marks_exactly_the_factors_that_differ():
    ours = authors_recipe().replace(train={"batch_size": 32, "precise_bn": 16})
    table = recipe_table(ours, AUTHORS_DATA)  # the same data: only batch and BatchNorm differ
    assert set(table.index[table.differs == "yes"]) == {"batch", "BatchNorm statistics"}
    assert table.at["batch", "authors' code"] == "64" and table.at["batch", "ours"] == "32"
    three = ours.replace(data={"machine_types": ("fan", "valve", "ToyConveyor"), "seconds": 1.0})
    row = recipe_table(three, "procedural").loc["classes"]
    assert row["authors' code"] == "6 machine types, 41 IDs" and row["ours"] == "3 machine types, 20 IDs"


def _row(**kw):
    import types
    base = dict(comparison="A − B", metric="auc", estimate=-0.02, low=-0.03, high=-0.01)
    return types.SimpleNamespace(**(base | kw))


def test_a_verdict_needs_an_interval_over_seeds():
    from asdlib.teaching.replication import verdict
    seeds = _row(seed_aware=True, seed_low=-0.04, seed_high=0.005)
    assert "**not distinguishable**" in verdict(seeds) and "over seeds and clips" in verdict(seeds)
    assert "**lower**" in verdict(_row(seed_aware=True, seed_low=-0.04, seed_high=-0.001))
    one_seed = verdict(_row(seed_aware=False, seed_low=-0.03, seed_high=-0.01))
    assert "no verdict" in one_seed and "lower" not in one_seed and "clearly" not in one_seed
    assert "seed spread not included" in verdict(_row())


def test_forest_plot_marks_one_seed_rows_as_squares():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from asdlib.teaching.plots.comparison import plot_differences
    table = pd.DataFrame([vars(_row(seed_aware=True, seed_low=-0.04, seed_high=-0.005)),
                          vars(_row(comparison="C − B", seed_aware=False, seed_low=-0.03, seed_high=-0.01))])
    ax = plot_differences(table)
    markers = [line.get_marker() for line in ax.lines if line.get_marker() not in ("None", None, "")]
    fills = [line.get_markerfacecolor() for line in ax.lines if line.get_marker() in ("o", "s")]
    assert markers == ["o", "s"] and fills == ["k", "w"]
    assert "square: one seed" in ax.get_title() and "dot filled" in ax.get_title()
    only_squares = plot_differences(table.iloc[1:])  # the key names only the markers drawn
    assert "dot" not in only_squares.get_title() and "square: one seed" in only_squares.get_title()
    only_dots = plot_differences(table.iloc[:1])
    assert "square" not in only_dots.get_title() and "dot filled" in only_dots.get_title()
    plt.close("all")

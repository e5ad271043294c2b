"""The recipe comparison of notebook 04: the authors' recipe is the repository's preset, differences are marked."""
from __future__ import annotations

from pathlib import Path

from asdlib.teaching.replication import authors_recipe, recipe_table
from asdlib.training.config import RunConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_the_authors_recipe_is_the_preset_of_their_code():
    assert authors_recipe() == RunConfig.from_yaml(CONFIGS / "tastgram_noisy_arcmix.yaml")
    assert authors_recipe(loss="arcface") == RunConfig.from_yaml(CONFIGS / "tastgram_arcface.yaml")


def test_recipe_table_marks_exactly_the_factors_that_differ():
    ours = authors_recipe().replace(train={"batch_size": 32, "precise_bn": 16})
    table = recipe_table(ours, "DCASE2020 Task 2 development set (real recordings)")
    assert set(table.index[table.differs == "yes"]) == {"batch", "BatchNorm statistics"}
    assert table.at["batch", "authors' code"] == "64" and table.at["batch", "ours"] == "32"
    three = ours.replace(data={"machine_types": ("fan", "valve", "ToyConveyor"), "seconds": 1.0})
    row = recipe_table(three, "procedural").loc["classes"]
    assert row["authors' code"] == "6 machine types, 41 IDs" and row["ours"] == "3 machine types, 20 IDs"

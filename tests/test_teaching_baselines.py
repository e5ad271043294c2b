"""The notebooks' AE baseline: shipped scores are used only for the clips they were computed on, else it fits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from asdlib.data.index import index_dataset
from asdlib.data.synth import generate_dataset
from asdlib.teaching import baselines


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("ae") / "smoke"
    generate_dataset(root, size="smoke", progress=False)
    return index_dataset(root, machine_types=["fan"])


def _ship(folder: Path, index: pd.DataFrame, *, drop: int = 0) -> pd.DataFrame:
    test = index[(index.split == "test") & index.label.isin(["normal", "anomaly"])]
    files = test.path.map(lambda p: "/".join(Path(p).parts[-3:]))
    shipped = pd.DataFrame({"file": files, "score": np.arange(len(test), dtype=float)}).iloc[drop:]
    folder.mkdir(parents=True, exist_ok=True)
    shipped.to_csv(folder / "scores.csv", index=False)
    return shipped


def test_shipped_scores_match_the_clips_they_describe(index, tmp_path, monkeypatch):
    monkeypatch.setattr(baselines, "SHIPPED", tmp_path / "ae")
    shipped = _ship(tmp_path / "ae", index)
    scores = baselines.shipped_scores(index)
    files = scores.path.map(lambda p: "/".join(Path(p).parts[-3:]))
    assert dict(zip(files, scores.score)) == dict(zip(shipped.file, shipped.score))
    got, note, models = baselines.autoencoder_baseline(index, seconds=1.0, train=False, out=tmp_path / "unused")
    assert "shipped" in note and not (tmp_path / "unused").exists() and got.score.tolist() == scores.score.tolist()
    assert models is None  # scores shipped without weights


def test_shipped_scores_describe_one_generator_version(index, tmp_path, monkeypatch):
    """Every version writes the same file names; the anomalous clips behind them differ."""
    import json

    from asdlib.data.synth import GENERATOR_VERSION

    monkeypatch.setattr(baselines, "SHIPPED", tmp_path / "ae")
    _ship(tmp_path / "ae", index)
    recipe = tmp_path / "ae" / "recipe.json"
    recipe.write_text(json.dumps({"generator_version": GENERATOR_VERSION}))
    assert baselines.shipped_scores(index) is not None
    recipe.write_text(json.dumps({"generator_version": GENERATOR_VERSION - 1}))
    assert baselines.shipped_scores(index) is None


def test_other_clips_get_a_fit_of_their_own(index, tmp_path, monkeypatch):
    monkeypatch.setattr(baselines, "SHIPPED", tmp_path / "ae")
    _ship(tmp_path / "ae", index, drop=1)  # one clip short: another dataset
    assert baselines.shipped_scores(index) is None
    scores, note, models = baselines.autoencoder_baseline(index, seconds=1.0, train=False, out=tmp_path / "fit",
                                                          epochs=1)
    assert note == "fitted here (1 epoch)" and (models / "model_fan.pt").is_file() and models == tmp_path / "fit"
    assert np.isfinite(scores.score).all() and len(scores) == (index.split == "test").sum()


def test_shipped_weights_come_with_the_shipped_scores(index, tmp_path, monkeypatch):
    """With model files beside the shipped scores, the notebook can score other clips with the same fit."""
    from asdlib.evaluation.autoencoder import autoencoder_scores
    from asdlib.training.autoencoder import fit_autoencoders

    monkeypatch.setattr(baselines, "SHIPPED", tmp_path / "ae")
    fit_autoencoders(index, tmp_path / "ae", epochs=1, progress=False)
    real = autoencoder_scores(index, tmp_path / "ae", seconds=1.0, progress=False)
    real.insert(0, "file", real.path.map(lambda p: "/".join(Path(p).parts[-3:])))
    real[["file", "score"]].to_csv(tmp_path / "ae" / "scores.csv", index=False)
    scores, note, models = baselines.autoencoder_baseline(index, seconds=1.0, train=False, out=tmp_path / "unused")
    assert "shipped" in note and models == tmp_path / "ae"
    again = autoencoder_scores(index, models, seconds=1.0, progress=False)
    np.testing.assert_allclose(again.score, scores.score, rtol=1e-6)

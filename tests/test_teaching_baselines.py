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
    got, note = baselines.autoencoder_baseline(index, seconds=1.0, train=False, out=tmp_path / "unused")
    assert "shipped" in note and not (tmp_path / "unused").exists() and got.score.tolist() == scores.score.tolist()


def test_other_clips_get_a_fit_of_their_own(index, tmp_path, monkeypatch):
    monkeypatch.setattr(baselines, "SHIPPED", tmp_path / "ae")
    _ship(tmp_path / "ae", index, drop=1)  # one clip short: another dataset
    assert baselines.shipped_scores(index) is None
    scores, note = baselines.autoencoder_baseline(index, seconds=1.0, train=False, out=tmp_path / "fit", epochs=1)
    assert note == "fitted here (1 epoch)" and (tmp_path / "fit" / "model_fan.pt").is_file()
    assert np.isfinite(scores.score).all() and len(scores) == (index.split == "test").sum()

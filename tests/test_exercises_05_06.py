"""The checkers of notebooks 05 and 06 accept the worked solutions, reject wrong answers, and never raise."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdlib.exercises import ex05, ex06
from asdlib.metrics import per_id_table
from solutions_loader import solutions


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    """Two types, IDs with different score offsets (so pooled and per-ID AUC differ)."""
    rng = np.random.default_rng(0)
    rows = [{"machine_type": t, "machine_id": i, "label": label,
             "score": rng.normal(i + 1.5 * (label == "anomaly"))}
            for t, ids in (("fan", (0, 2, 4)), ("ToyCar", (1, 2))) for i in ids
            for label in ("normal", "anomaly") for _ in range(10)]
    return pd.DataFrame(rows)


HISTORY = pd.DataFrame({"epoch": [1, 2, 3], "val_loss": [2.0, 1.0, 1.5], "test_auc": [0.6, 0.7, 0.8],
                        "test_pauc": [0.5, 0.55, 0.6]})


def test_ex05_accepts_solutions_and_rejects_wrong_answers(scores, capsys):
    sol = solutions("05")
    per_id = per_id_table(scores)
    assert ex05.check_mauc(sol.mauc(per_id), per_id)
    assert ex05.check_pooled_auc(sol.pooled_auc(scores, "fan"), scores, "fan")
    assert ex05.check_selection(sol.selection(HISTORY), HISTORY)
    assert "✓" in capsys.readouterr().out
    mean_auc = per_id.groupby("machine_type")["auc"].mean().to_dict()
    assert not ex05.check_mauc(mean_auc, per_id)
    assert "minimum" in capsys.readouterr().out
    per_id_fan = per_id[per_id.machine_type == "fan"]["auc"].mean()
    assert not ex05.check_pooled_auc(per_id_fan, scores, "fan")
    assert "per-ID average" in capsys.readouterr().out
    assert not ex05.check_selection({"honest": 3, "peeking": 3}, HISTORY)
    assert "smallest val_loss" in capsys.readouterr().out


def test_ex05_checkers_never_raise(scores):
    per_id = per_id_table(scores)
    assert not ex05.check_mauc(None, per_id)
    assert not ex05.check_mauc({"fan": "x", "ToyCar": 1}, per_id)
    assert not ex05.check_pooled_auc(None, scores, "fan")
    assert not ex05.check_pooled_auc(0.5, scores, "no-such-type")
    assert not ex05.check_selection(..., HISTORY)


def test_ex06_accepts_solutions_and_rejects_wrong_answers(tmp_path, capsys):
    sol = solutions("06")
    rng = np.random.default_rng(1)
    path = tmp_path / "my fan, take 1.wav"
    sf.write(path, 0.1 * rng.standard_normal((int(44100 * 1.5), 2)).astype(np.float32), 44100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wave = sol.load_like_the_model(path, 2.0)
    messages = " ".join(str(w.message) for w in caught)
    assert "resampling from 44100 Hz" in messages and "zero-padding" in messages
    assert ex06.check_loaded(wave, path, seconds=2.0)
    assert not ex06.check_loaded(wave[:16000], path, seconds=2.0)
    assert "expected shape (32000,)" in capsys.readouterr().out
    assert not ex06.check_loaded(wave * 2, path, seconds=2.0)
    calibration = rng.gamma(2.0, 1.0, 50)
    assert ex06.check_threshold(sol.calibrated_threshold(calibration, 0.95), calibration, quantile=0.95)
    assert not ex06.check_threshold(np.percentile(calibration, 9.5), calibration, quantile=0.95)
    for machine_type, machine_id in (("fan", 0), ("valve", 5), ("ToyCar", 7), ("ToyConveyor", 4)):
        assert ex06.check_class_index(sol.class_index(machine_type, machine_id), machine_type, machine_id)
    assert not ex06.check_class_index(25, "valve", 5)
    assert "✗ not yet" in capsys.readouterr().out


def test_ex06_checkers_never_raise(tmp_path):
    assert not ex06.check_loaded(None, tmp_path / "missing.wav", seconds=2.0)
    assert not ex06.check_threshold("high", [1.0, 2.0], quantile=0.9)
    assert not ex06.check_class_index(None, "fan", 0)
    assert not ex06.check_class_index(3, "drill", 0)

"""The checkers of notebooks 05 and 06 accept the worked solutions and valid alternatives, reject wrong answers
with a specific hint, print instead of returning (None), and never raise."""
from __future__ import annotations

import warnings

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdlib.teaching.exercises import ex05, ex06
from asdlib.teaching.exercises.selection import constructed_history
from asdlib.evaluation.metrics import per_id_table
from solutions_loader import solutions, verdict

HISTORY = constructed_history()  # honest 5, peeking 6, AUC alone 7, last 8, max val_loss 1


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    """Two types, IDs with different score offsets (so pooled and per-ID AUC differ)."""
    rng = np.random.default_rng(0)
    rows = [{"machine_type": t, "machine_id": i, "label": label,
             "score": rng.normal(i + 1.5 * (label == "anomaly"))}
            for t, ids in (("fan", (0, 2, 4)), ("ToyCar", (1, 2))) for i in ids
            for label in ("normal", "anomaly") for _ in range(10)]
    return pd.DataFrame(rows)


def test_ex05_mauc(scores, capsys):
    per_id = per_id_table(scores)
    assert ex05.check_mauc(solutions("05").mauc(per_id), per_id) is None
    assert verdict(capsys)[0]
    percent = {t: 100 * v for t, v in solutions("05").mauc(per_id).items()}
    ex05.check_mauc(percent, per_id)  # valid alternative: percent
    ok, out = verdict(capsys)
    assert ok and "percent" in out
    ex05.check_mauc({t: 100 * v for t, v in per_id.groupby("machine_type")["auc"].mean().items()}, per_id)
    ok, out = verdict(capsys)
    assert not ok and "minimum" in out  # a specific hint, in percent too
    ex05.check_mauc(None, per_id)
    assert not verdict(capsys)[0]
    ex05.check_mauc({"fan": "x", "ToyCar": 1}, per_id)
    assert not verdict(capsys)[0]


def test_ex05_pooled_auc(scores, capsys):
    answer = solutions("05").pooled_auc(scores, "fan")
    ex05.check_pooled_auc(answer, scores, "fan")
    assert verdict(capsys)[0]
    ex05.check_pooled_auc(100 * answer, scores, "fan")  # valid alternative: percent
    assert verdict(capsys)[0]
    ex05.check_pooled_auc(per_id_table(scores).query("machine_type == 'fan'")["auc"].mean(), scores, "fan")
    assert "per-ID average" in verdict(capsys)[1]
    ex05.check_pooled_auc(1 - answer, scores, "fan")
    assert "1 − AUC" in verdict(capsys)[1]
    ex05.check_pooled_auc(None, scores, "fan")
    assert not verdict(capsys)[0]
    ex05.check_pooled_auc(0.5, scores, "no-such-type")
    assert not verdict(capsys)[0]


def test_ex05_selection(capsys):
    sol = solutions("05")
    ex05.check_selection(sol.selection(HISTORY), HISTORY)
    ok, out = verdict(capsys)
    assert ok and "honest → epoch 5, peeking → epoch 6" in out
    ex05.check_selection(sol.selection, HISTORY)  # valid alternative: the function itself
    assert verdict(capsys)[0]
    ex05.check_selection({"honest": 5.0, "peeking": np.int64(6)}, HISTORY)  # valid alternative: other types
    assert verdict(capsys)[0]
    for answer, hint in (({"honest": 8, "peeking": 8}, "last epoch"), ({"honest": 6, "peeking": 5}, "swapped"),
                         ({"honest": 5, "peeking": 7}, "AUC alone"), ({"honest": 0, "peeking": 0}, "no epoch 0"),
                         ({"honest": 1, "peeking": 6}, "*highest* validation loss"),
                         ({"honest": 6, "peeking": 6}, "uses the test labels")):
        ex05.check_selection(answer, HISTORY)
        ok, out = verdict(capsys)
        assert not ok and hint in out, (answer, out)
    last_is_honest = lambda h: {**sol.selection(h), "honest": int(h.epoch.max())}  # noqa: E731
    ex05.check_selection(last_is_honest, HISTORY.iloc[:5])  # right by coincidence on the first 5 epochs only
    assert "constructed" in verdict(capsys)[1]
    ex05.check_selection(..., HISTORY)
    assert not verdict(capsys)[0]


@pytest.fixture()
def recording(tmp_path):
    """A 1.5-s stereo take at 44.1 kHz with two different channels (what the notebook simulates)."""
    rng = np.random.default_rng(1)
    left = 0.1 * rng.standard_normal(int(44100 * 1.5))
    stereo = np.stack([left, 0.8 * left + 0.02 * rng.standard_normal(len(left))], axis=1)
    path = tmp_path / "my fan, take 1.wav"
    sf.write(path, stereo.astype(np.float32), 44100)
    return path


def test_ex06_loaded(recording, capsys):
    sol = solutions("06")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wave = sol.load_like_the_model(recording, 2.0)
    messages = " ".join(str(w.message) for w in caught)
    assert "resampling from 44100 Hz" in messages and "zero-padding" in messages
    ex06.check_loaded(wave, recording, seconds=2.0)
    assert verdict(capsys)[0]
    y, _ = librosa.load(recording, sr=16000, mono=True)  # valid alternative: librosa's (soxr) resampler
    ex06.check_loaded(np.pad(y, (0, 32000 - len(y))), recording, seconds=2.0)
    assert verdict(capsys)[0]
    ex06.check_loaded(wave[:16000], recording, seconds=2.0)
    assert "expected shape (32000,)" in verdict(capsys)[1]
    data, _ = sf.read(recording, always_2d=True)
    left = librosa.resample(data[:, 0], orig_sr=44100, target_sr=16000)
    ex06.check_loaded(np.pad(left, (0, 32000 - len(left))), recording, seconds=2.0)
    ok, out = verdict(capsys)
    assert not ok and "average the channels" in out
    ex06.check_loaded(wave * 2, recording, seconds=2.0)
    assert "scaled by 2" in verdict(capsys)[1]
    ex06.check_loaded(None, recording.parent / "missing.wav", seconds=2.0)
    assert not verdict(capsys)[0]


def test_ex06_threshold(capsys):
    calibration = np.random.default_rng(1).gamma(2.0, 1.0, 30)
    ex06.check_threshold(solutions("06").calibrated_threshold(calibration, 0.99), calibration, quantile=0.99)
    assert verdict(capsys)[0]
    ex06.check_threshold(np.quantile(calibration, 0.99, method="higher"), calibration, quantile=0.99)
    ok, out = verdict(capsys)
    assert ok and "linear interpolation" in out  # valid alternative: another quantile method
    ex06.check_threshold(np.percentile(calibration, 0.99), calibration, quantile=0.99)
    ok, out = verdict(capsys)
    assert not ok and "np.percentile takes percent" in out
    ex06.check_threshold(np.quantile(calibration, 0.95), calibration, quantile=0.99)
    assert "0.95 quantile" in verdict(capsys)[1]
    ex06.check_threshold("high", [1.0, 2.0], quantile=0.9)
    assert not verdict(capsys)[0]


def test_ex06_class_index(capsys):
    sol = solutions("06")
    for machine_type, machine_id in (("fan", 0), ("valve", 5), ("ToyCar", 7), ("ToyConveyor", 4)):
        ex06.check_class_index(sol.class_index(machine_type, machine_id), machine_type, machine_id)
        assert verdict(capsys)[0]
    ex06.check_class_index(np.int64(26), "valve", 5)  # valid alternative: a numpy integer
    assert verdict(capsys)[0]
    ex06.check_class_index(27, "valve", 5)
    assert "one slot off" in verdict(capsys)[1]
    ex06.check_class_index(None, "fan", 0)
    assert not verdict(capsys)[0]
    ex06.check_class_index(3, "drill", 0)
    assert not verdict(capsys)[0]

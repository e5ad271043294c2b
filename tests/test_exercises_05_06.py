"""The checkers of notebooks 05 and 06 accept the worked solutions and valid alternatives, reject wrong answers
with a specific hint, print instead of returning (None), and never raise."""
from __future__ import annotations

import warnings
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torchaudio
from scipy.signal import resample, resample_poly

from asdlib.data.audio import load_audio
from asdlib.data.synth import synth_clip
from asdlib.teaching.exercises import ex05, ex06
from asdlib.teaching.exercises.selection import constructed_history
from asdlib.evaluation.metrics import per_id_table
from solutions_loader import crash, solutions, verdict

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


def test_ex05_open_exercise_4_model_answer(capsys):
    """Per-ID 0.99 thresholds from 6 held-out clips: far more than 1 % false alarms, near 1 / (n + 1)."""
    rng = np.random.default_rng(5)
    ids = [("fan", i) for i in range(20)] + [("valve", i) for i in range(20)]
    held_out = pd.DataFrame([(t, i, rng.gamma(2.0)) for t, i in ids for _ in range(6)],
                            columns=["machine_type", "machine_id", "score"])
    test = pd.DataFrame([(t, i, "normal", rng.gamma(2.0)) for t, i in ids for _ in range(50)],
                        columns=["machine_type", "machine_id", "label", "score"])
    table = solutions("05").per_id_false_alarms(held_out, test, quantile=0.99)
    assert len(table) == 40 and (table.n_normal == 6).all()
    assert table.fpr.mean() > 0.08  # the target is 1 %; the max of 6 is beaten 1 time in 7
    assert table.fpr.mean() == pytest.approx(table.max_exceeded.mean(), abs=0.05)
    ex05.solution(4)
    out = capsys.readouterr().out
    assert "Model answer" in out and "def per_id_false_alarms" in out


def _field_recording(path: Path, *, seconds: float, seed: int = 2024) -> Path:
    """A take as notebook 06 simulates it: a procedural fan id_00 clip at 16 kHz, resampled to 44.1 kHz,
    two slightly different channels (the second quieter, with its own hiss)."""
    rng = np.random.default_rng(seed)
    wave = resample_poly(synth_clip("fan", 0, seconds=seconds, rng=rng), 441, 160)  # 16 kHz -> 44.1 kHz
    right = 0.8 * wave + 0.001 * rng.standard_normal(len(wave))
    sf.write(path, np.stack([wave, right], axis=1).astype(np.float32), 44100)
    return path


@pytest.fixture()
def recording(tmp_path):
    """A 1.5-s stereo take at 44.1 kHz with two different channels of white noise (energy up to 22 kHz)."""
    rng = np.random.default_rng(1)
    left = 0.1 * rng.standard_normal(int(44100 * 1.5))
    stereo = np.stack([left, 0.8 * left + 0.02 * rng.standard_normal(len(left))], axis=1)
    path = tmp_path / "my fan, take 1.wav"
    sf.write(path, stereo.astype(np.float32), 44100)
    return path


@pytest.fixture()
def notebook_take(tmp_path):
    """The notebook's short take 01: 0.6 s of a 1-s clip, 44.1 kHz stereo."""
    return _field_recording(tmp_path / "Fan line 3 - take 01.wav", seconds=0.6)


def _linear_interpolation(path: Path, length: int) -> np.ndarray:
    """The probe that passed: np.interp of the channel mean at the 16 kHz instants, no anti-aliasing filter."""
    data, rate = sf.read(path, always_2d=True)
    mono = data.mean(axis=1)
    t = np.arange(int(len(mono) * 16000 / rate)) * rate / 16000
    y = np.interp(t, np.arange(len(mono)), mono)
    return np.pad(y, (0, max(0, length - len(y))))[:length].astype(np.float32)


def test_ex06_loaded(recording, capsys):
    sol = solutions("06")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the worked solution does the steps itself: no load_audio warnings
        wave = sol.load_like_the_model(recording, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.allclose(wave, load_audio(recording, seconds=2.0), atol=1e-6)  # the function it rebuilds
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
    ex06.check_loaded(_linear_interpolation(recording, 32000), recording, seconds=2.0)
    assert "linear interpolation" in verdict(capsys)[1]
    ex06.check_loaded(None, recording.parent / "missing.wav", seconds=2.0)
    assert not verdict(capsys)[0]


def test_ex06_loaded_rejects_linear_interpolation_on_the_notebooks_take(notebook_take, capsys):
    ex06.check_loaded(_linear_interpolation(notebook_take, 16000), notebook_take, seconds=1.0)  # passed at 31 dB
    ok, out = verdict(capsys)
    assert not ok and "linear interpolation" in out and "anti-aliasing" in out
    data, rate = sf.read(notebook_take, dtype="float32", always_2d=True)
    mono = torch.from_numpy(data.mean(axis=1))
    good = {"scipy": solutions("06").load_like_the_model(notebook_take, 1.0),
            "librosa": librosa.resample(mono.numpy(), orig_sr=rate, target_sr=16000),
            "torchaudio": torchaudio.functional.resample(mono, rate, 16000).numpy(),
            "scipy FFT": resample(mono.numpy(), round(len(mono) * 16000 / rate))}
    for name, y in good.items():  # valid alternatives: any resampler with an anti-aliasing filter
        ex06.check_loaded(np.pad(y, (0, max(0, 16000 - len(y))))[:16000], notebook_take, seconds=1.0)
        ok, out = verdict(capsys)
        assert ok, (name, out)


def test_ex06_exercise_1_solution_does_not_call_load_audio(capsys):
    ex06.solution(1)
    out = capsys.readouterr().out
    assert "def load_like_the_model" in out and "load_audio" not in out and "resample_poly" in out


def test_ex06_threshold(capsys):
    calibration = np.random.default_rng(1).gamma(2.0, 1.0, 30)
    ex06.check_threshold(solutions("06").calibrated_threshold(calibration, 0.99), calibration, quantile=0.99)
    assert verdict(capsys)[0]
    ex06.check_threshold(np.percentile(calibration, 0.99), calibration, quantile=0.99)
    ok, out = verdict(capsys)
    assert not ok and "np.percentile takes percent" in out
    ex06.check_threshold(np.quantile(calibration, 0.95), calibration, quantile=0.99)
    assert "0.95 quantile" in verdict(capsys)[1]
    ex06.check_threshold(np.quantile(calibration, [0.99]), calibration, quantile=0.99)  # a 1-element array
    assert verdict(capsys)[0]
    ex06.check_threshold(pd.Series(calibration).quantile(0.99), calibration, quantile=0.99)  # pandas
    assert verdict(capsys)[0]
    ex06.check_threshold("high", [1.0, 2.0], quantile=0.9)
    assert not verdict(capsys)[0]


WRONG_RULES = {  # the probes that passed: everything between the two highest of 30 scores
    "0.97 quantile": lambda s: np.quantile(s, 0.97), "0.975 quantile": lambda s: np.quantile(s, 0.975),
    "maximum": lambda s: np.max(s), "mean + 3 sd": lambda s: np.mean(s) + 3 * np.std(s)}


@pytest.mark.parametrize("seed", range(5))
def test_ex06_threshold_rejects_values_between_the_two_highest(seed, capsys):
    calibration = np.random.default_rng(seed).gamma(2.0, 1.0, 30)
    for name, rule in WRONG_RULES.items():
        ex06.check_threshold(rule(calibration), calibration, quantile=0.99)  # as a number
        ok, out = verdict(capsys)
        assert not ok, (name, out)
        ex06.check_threshold(rule, calibration, quantile=0.99)  # as a rule, tried on several score sets
        ok, out = verdict(capsys)
        assert not ok, (name, out)
    ex06.check_threshold(WRONG_RULES["maximum"], calibration, quantile=0.99)
    assert "largest score" in verdict(capsys)[1]


@pytest.mark.parametrize("method", ["linear", "higher", "nearest", "lower", "hazen", "weibull"])
def test_ex06_threshold_accepts_every_numpy_method_as_a_rule(method, capsys):
    calibration = np.random.default_rng(3).gamma(2.0, 1.0, 30)
    ex06.check_threshold(lambda s: np.quantile(s, 0.99, method=method), calibration, quantile=0.99)
    ok, out = verdict(capsys)
    assert ok and "score sets" in out, out
    value = np.quantile(calibration, 0.99, method=method)
    ex06.check_threshold(value, calibration, quantile=0.99)  # as a number: accepted unless it is a score
    ok, out = verdict(capsys)
    assert ok != np.isclose(value, calibration).any(), out
    assert ok or "Pass your rule instead" in out


def test_ex06_threshold_rule_in_torch_and_pandas(capsys):
    calibration = np.random.default_rng(4).gamma(2.0, 1.0, 30)
    ex06.check_threshold(lambda s: torch.quantile(torch.tensor(s.to_numpy()), 0.99), calibration, quantile=0.99)
    assert verdict(capsys)[0]
    ex06.check_threshold(lambda s: s.quantile(0.99), calibration, quantile=0.99)
    assert verdict(capsys)[0]
    ex06.check_threshold(crash, calibration, quantile=0.99)
    assert "raised RuntimeError" in verdict(capsys)[1]


def test_ex06_open_exercise_4_model_answer(tmp_path, capsys):
    """The model answer runs on the shipped reference run: ten more 48 kHz mono takes, padded takes only."""
    checkpoint = Path(__file__).resolve().parents[1] / "asdlib" / "reference_runs" / \
        "tastgram_mfn-noisy_arcmix-s0" / "best.pt"
    calibration = tmp_path / "known_normal"
    calibration.mkdir()
    for k in range(6):
        _field_recording(calibration / f"healthy day {k + 1:02d}.wav", seconds=1.2, seed=k)
    full = pd.DataFrame({"score": [0.01, 0.5, 40.0, 60.0], "recorded as": ["normal", "normal", "anomaly", "anomaly"]})
    study = solutions("06").calibration_study(checkpoint, calibration, full, machine_type="fan", machine_id=0,
                                              clip_seconds=1.0, quantile=0.95, work=tmp_path)
    assert list(study["calibration takes"]) == [6, 16, 10]
    assert len(list((tmp_path / "more_normal").glob("*.wav"))) == 10
    assert sf.info(next((tmp_path / "more_normal").glob("*.wav"))).samplerate == 48000
    for _, row in study.iterrows():  # the shares flagged follow from each threshold
        assert row["healthy flagged"] == np.mean(full.score[:2] > row.threshold)
    assert study.threshold.iloc[0] != study.threshold.iloc[1]  # ten more takes move it
    ex06.solution(4)
    assert "Model answer" in capsys.readouterr().out


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

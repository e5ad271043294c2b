"""The per-ID Gaussian baseline, against librosa / sklearn references, and the difficulty of the procedural data."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

from asdlib.evaluation.baseline import GaussianBaseline, clip_features, log_mel, ltas_db
from asdlib.data.dcase import DEV_IDS, MACHINE_TYPES
from asdlib.data.synth import clip_rng, synth_clip


def test_log_mel_matches_librosa():
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    ref = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=1024, hop_length=512, n_mels=128, power=2.0)
    assert log_mel(x).shape == (128, 32)
    np.testing.assert_allclose(log_mel(x), 10 * np.log10(ref + 1e-10), atol=1e-3)
    np.testing.assert_allclose(ltas_db([x, x]), 10 * np.log10(ref.mean(1) + 1e-12), atol=1e-3)


def test_clip_features_are_mean_and_std_over_time():
    x = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    m, f = log_mel(x), clip_features(x)
    assert f.shape == (256,) and f.dtype == np.float32
    np.testing.assert_allclose(f, np.concatenate([m.mean(1), m.std(1)]), rtol=1e-5)


def test_gaussian_score_is_ledoit_wolf_mahalanobis():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8)) @ rng.standard_normal((8, 8))
    ids = ["a"] * 30 + ["b"] * 30
    model = GaussianBaseline().fit(X, ids)
    assert isinstance(model, GaussianBaseline)
    ref = LedoitWolf().fit(X[30:]).mahalanobis(X[30:])  # squared distances
    np.testing.assert_allclose(model.score(X[30:], ids[30:]) ** 2, ref, rtol=1e-6)
    far = X[:1] + 100.0
    assert model.score(far, ["a"])[0] > model.score(X[:30], ids[:30]).max()


@pytest.mark.parametrize("machine_type", MACHINE_TYPES)
def test_procedural_data_is_neither_trivial_nor_impossible(machine_type):
    """Per-ID Gaussian on mean/std log-mel: per-type AUC (mean over development IDs) in [0.6, 0.97]."""
    def clips(i, label, split, n):
        return [clip_features(synth_clip(machine_type, i, label=label, seconds=2.0,
                                         rng=clip_rng(0, machine_type, i, split, label == "anomaly", k)))
                for k in range(n)]
    aucs = []
    for i in DEV_IDS[machine_type]:
        model = GaussianBaseline().fit(clips(i, "normal", 0, 12), [i] * 12)
        normal, anomaly = clips(i, "normal", 1, 8), clips(i, "anomaly", 1, 8)
        scores = model.score(np.stack(normal + anomaly), [i] * 16)
        aucs.append(roc_auc_score([0] * 8 + [1] * 8, scores))
    assert 0.6 <= np.mean(aucs) <= 0.97, aucs


def test_baseline_scores_a_dataset_folder_with_the_same_crop_as_a_run(tmp_path):
    from asdlib.evaluation.baseline import baseline_scores
    from asdlib.data.index import index_dataset
    from asdlib.evaluation.metrics import per_id_table
    from asdlib.data.synth import generate_dataset

    generate_dataset(tmp_path / "data", size="smoke", machine_types=("fan",), seed=2, n_train=16, n_test=(6, 6),
                     difficulty=0.25, progress=False)
    index = index_dataset(tmp_path / "data")
    scores = baseline_scores(index, seconds=1.0, progress=False)
    test = index[index.split == "test"]
    assert len(scores) == len(test) and set(scores.label) == {"normal", "anomaly"}
    assert np.isfinite(scores.score).all()
    table = per_id_table(scores)
    assert len(table) == len(DEV_IDS["fan"]) and table.auc.mean() > 0.6  # strong anomalies: well above chance
    whole = baseline_scores(index, seconds=None, progress=False)
    assert not np.allclose(whole.score, scores.score)  # the crop matters: 1 s of a 2-s clip

"""The DCASE2020 autoencoder baseline: features against librosa, model shapes, a known-answer score, a real fit
on procedural clips whose loss falls, saved models that score the same, and ``python -m asdlib baseline``."""
from __future__ import annotations

import json
import sys

import librosa
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from asdlib.data.index import index_dataset
from asdlib.evaluation.autoencoder import (autoencoder_scores, clip_score, load_autoencoders, published_autoencoder,
                                           write_results)
from asdlib.evaluation.metrics import per_id_table, summary_table
from asdlib.nn.autoencoder import (DenseAutoencoder, frame_vectors, load_autoencoder, log_mel_energy,
                                   reconstruction_error, save_autoencoder, stack_frames)
from asdlib.training.autoencoder import cpu_threads, fit_autoencoder, fit_autoencoders, split_tail


@pytest.fixture(autouse=True)
def one_thread():
    """A model this small runs fastest on one thread, and much slower on an oversubscribed shared machine."""
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A smoke-size procedural dataset of two machine types (fan, valve), 2-s clips."""
    from asdlib.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("ae") / "smoke"
    generate_dataset(root, size="smoke", machine_types=("fan", "valve"), progress=False)
    return root


@pytest.fixture(scope="module")
def fitted(smoke, tmp_path_factory):
    out = tmp_path_factory.mktemp("ae_models")
    histories = fit_autoencoders(smoke, out, epochs=12, threads=1, progress=False)
    return out, histories


def test_log_mel_energy_is_the_baselines_formula_on_librosa():
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    spec = np.abs(librosa.stft(x, n_fft=1024, hop_length=512, pad_mode="reflect")) ** 2  # (513, T)
    mel = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128) @ spec
    ref = 20.0 / 2.0 * np.log10(mel + sys.float_info.epsilon)
    assert log_mel_energy(x).shape == (128, 32)
    np.testing.assert_allclose(log_mel_energy(x), ref, atol=1e-3)


def test_stack_frames_puts_five_consecutive_frames_side_by_side():
    m = np.arange(3 * 7, dtype=np.float32).reshape(3, 7)  # (F, T) = (3, 7)
    v = stack_frames(m, frames=5)
    assert v.shape == (3, 15)
    for t in range(3):
        np.testing.assert_array_equal(v[t], np.concatenate([m[:, t + j] for j in range(5)]))
    assert stack_frames(m[:, :4], frames=5).shape == (0, 15)


def test_a_two_second_clip_gives_59_vectors_of_640():
    wave = np.random.default_rng(1).standard_normal(32000).astype(np.float32) * 0.05
    v = frame_vectors(wave)
    assert v.shape == (1 + 32000 // 512 - 4, 640) and v.dtype == np.float32
    np.testing.assert_array_equal(v[0, :128], log_mel_energy(wave)[:, 0])


def test_model_shapes_and_layers():
    model = DenseAutoencoder()
    x = torch.randn(7, 640)
    assert model(x).shape == (7, 640) and model.encode(x).shape == (7, 8)
    widths = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert widths == [(640, 128), (128, 128), (128, 128), (128, 128), (128, 8),
                      (8, 128), (128, 128), (128, 128), (128, 128), (128, 640)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == 9
    assert all(float(m.bias.detach().abs().max()) == 0 for m in model.modules() if isinstance(m, nn.Linear))


def constant_model(value: float, dim: int = 640) -> DenseAutoencoder:
    """An autoencoder whose output is ``value`` in every dimension, whatever the input."""
    model = DenseAutoencoder(dim)
    last = model.decoder[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(value)
    return model


def test_score_known_answer():
    vectors = np.stack([np.full(640, 1.0), np.full(640, 3.0), np.full(640, 2.0)]).astype(np.float32)
    model = constant_model(2.0)  # errors: (1 - 2)², (3 - 2)², 0 in every dimension
    np.testing.assert_allclose(reconstruction_error(model, vectors), [1.0, 1.0, 0.0], atol=1e-6)
    assert clip_score(model, vectors) == pytest.approx(2 / 3, abs=1e-6)
    x = np.random.default_rng(2).standard_normal((11, 640)).astype(np.float32)
    assert clip_score(constant_model(0.0), x) == pytest.approx(float(np.mean(x**2)), rel=1e-5)
    with pytest.raises(ValueError, match="no vectors"):
        clip_score(model, np.empty((0, 640), np.float32))


def test_validation_is_the_tail_as_in_keras():
    X = np.arange(20)[:, None]
    train, val = split_tail(X, 0.1)
    assert train[:, 0].tolist() == list(range(18)) and val[:, 0].tolist() == [18, 19]


def test_fit_is_reproducible_from_its_seed():
    X = np.random.default_rng(3).standard_normal((300, 640)).astype(np.float32)
    runs = [fit_autoencoder(X, epochs=2, batch_size=64, seed=5, progress=False)[1] for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 2


def test_training_loss_falls_on_procedural_clips(fitted):
    out, histories = fitted
    assert set(histories) == {"fan", "valve"}
    for history in histories.values():
        losses = [row["loss"] for row in history]
        assert len(losses) == 12 and losses[-1] < 0.9 * losses[0], losses
        assert np.isfinite(history[-1]["val_loss"])
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["recipe"]["epochs"] == 12 and recipe["features"]["n_mels"] == 128
    assert recipe["machine_types"]["fan"]["clips"] == 4 * 6  # development IDs × smoke training clips


def test_saved_model_scores_the_same(tmp_path):
    model = DenseAutoencoder()
    fit_x = torch.randn(64, 640)
    model.train()
    model(fit_x)  # move the BatchNorm running statistics away from their initial values
    path = save_autoencoder(tmp_path / "model_fan.pt", model)
    x = np.random.default_rng(4).standard_normal((9, 640)).astype(np.float32)
    np.testing.assert_allclose(reconstruction_error(load_autoencoder(path), x), reconstruction_error(model, x),
                               rtol=1e-6)
    assert load_autoencoder(path).features == model.features


def test_scores_have_the_gaussian_baselines_shape(smoke, fitted):
    out, _ = fitted
    index = index_dataset(smoke)
    scores = autoencoder_scores(index, out, progress=False)
    test = index[index.split == "test"]
    assert list(scores.columns) == [*index.columns, "score"] and len(scores) == len(test)
    assert np.isfinite(scores.score).all() and (scores.score > 0).all()
    table = summary_table(per_id_table(scores))
    assert set(table.machine_type) == {"fan", "valve", "Average"}
    summary = write_results(scores, out / "results")
    assert (out / "results" / "result.csv").is_file() and len(list((out / "results" / "scores").glob("*.csv"))) == 8
    pd.testing.assert_frame_equal(summary, table)
    with pytest.raises(KeyError, match="no autoencoder"):
        autoencoder_scores(index, load_autoencoders(out, ["fan"]), progress=False)


def test_published_table_matches_the_baselines_readme():
    table = summary_table(published_autoencoder()).set_index("machine_type")
    readme = {"ToyCar": 80.09, "ToyConveyor": 72.68, "fan": 65.16, "pump": 72.59, "slider": 84.99,
              "valve": 66.46, "Average": 73.66}
    for machine_type, auc in readme.items():
        assert round(100 * table.at[machine_type, "auc"], 2) == auc


def test_cli_baseline_end_to_end(smoke, tmp_path, capsys):
    from asdlib.cli import main

    out = tmp_path / "ae"
    assert main(["baseline", "--data", str(smoke), "--out", str(out), "--epochs", "2", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "| Fan |" in printed and "| Valve |" in printed and "| AUC |" in printed
    assert {p.name for p in out.glob("model_*.pt")} == {"model_fan.pt", "model_valve.pt"}
    assert json.loads((out / "recipe.json").read_text())["recipe"]["epochs"] == 2
    assert (out / "summary.md").is_file() and (out / "result.csv").is_file()

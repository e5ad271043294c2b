"""The checkers of notebooks 00–02 accept the worked solutions and valid alternatives, reject wrong answers
with a specific hint, print instead of returning (None: no ``Out[…]`` in the notebook), and never raise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from asdlib.evaluation.baseline import rms_dbfs
from asdlib.data.index import index_dataset, load_audio
from asdlib.data.dcase import class_permutation
from asdlib.teaching.exercises import ex00, ex01, ex02
from asdlib.data.synth import generate_dataset
from solutions_loader import crash, solutions, verdict


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("exercises") / "data"
    generate_dataset(root, size="smoke", machine_types="valve,ToyConveyor", progress=False)
    return index_dataset(root)


@pytest.fixture(scope="module")
def levels(index) -> pd.DataFrame:
    """Per-clip RMS levels of a few real clips per machine type, as notebook 01 builds them."""
    rows = index.groupby("machine_type").head(4)
    return rows.assign(rms_dbfs=[rms_dbfs(load_audio(p, seconds=None)) for p in rows.path])


def test_checkers_return_none(index, capsys):
    assert ex00.check_anomaly_count(0, index, machine_type="valve") is None
    assert ex01.check_crest_factor(crash) is None
    assert ex02.check_num_frames(crash) is None
    capsys.readouterr()


def test_ex00_anomaly_count(index, capsys):
    n = solutions("00").anomaly_count(index, "valve")
    assert n == 16  # 4 development IDs x 4 anomalous clips at the smoke size
    ex00.check_anomaly_count(n, index, machine_type="valve")
    assert verdict(capsys)[0]
    ex00.check_anomaly_count(float(n), index, machine_type="valve")  # valid alternative: 16.0
    ok, out = verdict(capsys)
    assert ok and "whole number" in out
    ex00.check_anomaly_count(int((index.label == "anomaly").sum()), index, machine_type="valve")  # all types
    ok, out = verdict(capsys)
    assert not ok and "every machine type" in out
    ex00.check_anomaly_count(16.5, index, machine_type="valve")
    ok, out = verdict(capsys)
    assert not ok and "expected a count" in out
    ex00.check_anomaly_count(None, index, machine_type="valve")
    assert not verdict(capsys)[0]


def test_ex00_anomaly_count_accepts_0d_tensors_and_arrays(index, capsys):
    mask = (index.machine_type == "valve") & (index.label == "anomaly")
    for answer in (torch.tensor(mask.to_numpy()).sum(), np.array(mask.sum()), np.sum(mask.to_numpy())):
        ex00.check_anomaly_count(answer, index, machine_type="valve")  # the probes that were rejected
        ok, out = verdict(capsys)
        assert ok and "16 anomalous" in out and "int(...)" not in out, (type(answer), out)
    ex00.check_anomaly_count(mask, index, machine_type="valve")  # the mask itself: a hint about *this* answer
    ok, out = verdict(capsys)
    assert not ok and "boolean mask itself" in out and "Series" in out
    ex00.check_anomaly_count(index[mask], index, machine_type="valve")
    ok, out = verdict(capsys)
    assert not ok and "len(...)" in out


def test_ex00_class_of(capsys):
    ex00.check_class_of(solutions("00").class_of)
    assert verdict(capsys)[0]
    from asdlib.data.dcase import label_map, parse_clip_name

    ex00.check_class_of(lambda name, machine_type, order: int(
        label_map(order)[(machine_type, parse_clip_name(name).machine_id)]))  # valid alternative: numpy-free
    assert verdict(capsys)[0]
    ex00.check_class_of(lambda name, machine_type, order: label_map()[(machine_type,
                                                                       parse_clip_name(name).machine_id)])
    ok, out = verdict(capsys)
    assert not ok and "another label order" in out
    ex00.check_class_of(lambda name, machine_type, order: 0)
    ok, out = verdict(capsys)
    assert not ok and "returned 0" in out
    ex00.check_class_of(crash)
    assert "RuntimeError" in verdict(capsys)[1]


def test_ex00_reorder(capsys):
    ex00.check_reorder(solutions("00").to_ours)
    assert verdict(capsys)[0]
    perm = class_permutation("noisy_arcmix", "stgram_paper")
    ex00.check_reorder(lambda logits: torch.as_tensor(logits)[:, perm])  # valid alternative: a tensor
    assert verdict(capsys)[0]
    ex00.check_reorder(lambda logits: logits[:, class_permutation("stgram_paper", "noisy_arcmix")])
    ok, out = verdict(capsys)
    assert not ok and "reverse direction" in out and "(3, 41)" not in out  # no shape riddle
    ex00.check_reorder(lambda logits: logits)
    assert "unchanged" in verdict(capsys)[1]
    ex00.check_reorder(lambda logits: logits[:, :40])
    assert "shape" in verdict(capsys)[1]
    ex00.check_reorder(crash)
    assert not verdict(capsys)[0]


def test_ex00_reorder_accepts_torch_and_numpy_idioms(capsys):
    perm = class_permutation("noisy_arcmix", "stgram_paper")
    ex00.check_reorder(lambda logits: logits.index_select(1, torch.as_tensor(perm)))  # the probe: torch only
    assert verdict(capsys)[0]
    ex00.check_reorder(lambda logits: np.take(np.asarray(logits), perm, axis=1))  # numpy only
    assert verdict(capsys)[0]
    ex00.check_reorder(lambda logits: logits.index_select(0, torch.as_tensor([2, 0, 1])))  # rows, torch
    ok, out = verdict(capsys)
    assert not ok and "rows (clips) moved" in out
    ex00.check_reorder(lambda logits: None)  # a missing return: said so, not "raised on a numpy array too"
    ok, out = verdict(capsys)
    assert not ok and "returned None" in out and "numpy" not in out


def test_ex01_crest_factor(capsys):
    ex01.check_crest_factor(solutions("01").crest_factor_db)
    assert verdict(capsys)[0]
    ex01.check_crest_factor(lambda w: 20 * np.log10(np.abs(w).max() / np.sqrt(np.mean(w.astype(float) ** 2))))
    assert verdict(capsys)[0]  # valid alternative: the ratio in dB
    ex01.check_crest_factor(lambda wave: 20 * np.log10(np.max(np.abs(wave))))  # the peak alone
    ok, out = verdict(capsys)
    assert not ok and "peak level alone" in out
    ex01.check_crest_factor(lambda wave: 0.0)  # the notebook's stub: a generic hint, not "peak level alone"
    ok, out = verdict(capsys)
    assert not ok and "peak level alone" not in out
    ex01.check_crest_factor(crash)
    assert not verdict(capsys)[0]


def test_ex01_loudest_type(levels, capsys):
    loudest_type = solutions("01").loudest_type
    assert loudest_type(levels) == "ToyConveyor"  # generated about 17 dB louder than valve
    ex01.check_loudest_type(loudest_type, levels)
    assert verdict(capsys)[0]
    ex01.check_loudest_type(lambda t: t.groupby("machine_type").rms_dbfs.median().idxmax().lower(), levels)
    assert verdict(capsys)[0]  # valid alternative: any spelling of the type
    ex01.check_loudest_type(lambda t: "ToyConveyor", levels)  # hard-coded: fails on the changed tables
    ok, out = verdict(capsys)
    assert not ok and "40 dB louder" in out
    ex01.check_loudest_type(lambda t: t.groupby("machine_type").rms_dbfs.mean().idxmax(), levels)
    ok, out = verdict(capsys)
    assert not ok and "*mean*" in out
    ex01.check_loudest_type("ToyConveyor", levels)  # a name, not a function
    ok, out = verdict(capsys)
    assert not ok and "write a function" in out
    ex01.check_loudest_type(crash, levels)
    assert not verdict(capsys)[0]


def test_ex02_num_frames(capsys):
    ex02.check_num_frames(solutions("02").num_frames)
    assert verdict(capsys)[0]
    ex02.check_num_frames(lambda n, hop_length=512: len(range(0, n + 1, hop_length)))  # valid alternative
    assert verdict(capsys)[0]
    ex02.check_num_frames(lambda n, hop_length=512: n // hop_length)
    assert not verdict(capsys)[0]
    ex02.check_num_frames(lambda n: 1 + n // 512)  # no hop_length argument: a TypeError
    assert not verdict(capsys)[0]
    ex02.check_num_frames(lambda n, hop_length=512: float(1 + n // hop_length))  # valid alternative: 313.0
    assert verdict(capsys)[0]


def test_ex02_num_frames_varies_the_hop(capsys):
    ex02.check_num_frames(lambda n, hop_length=512: 1 + n // 512)  # the probe that passed: the hop ignored
    ok, out = verdict(capsys)
    assert not ok and "ignores its hop_length" in out


def _stft_frames(n: int, hop_length: int = 512) -> int:
    """Frames counted by running torch.stft (n_fft 1024, centred, reflect padding) on n samples."""
    x = torch.zeros(n)
    return torch.stft(x, n_fft=1024, hop_length=hop_length, window=torch.hann_window(1024),
                      return_complex=True).shape[-1]


def test_ex02_num_frames_accepts_a_torch_stft_count(capsys):
    with pytest.raises(RuntimeError):
        _stft_frames(511)  # reflect padding needs more than n_fft // 2 samples: why the checker explains it
    ex02.check_num_frames(_stft_frames)
    ok, out = verdict(capsys)
    assert ok and "511 samples" in out and "reflect padding" in out
    ex02.check_num_frames(lambda n, hop_length=512: _stft_frames(n, 512))  # the hop ignored, measured
    assert "ignores its hop_length" in verdict(capsys)[1]


def test_ex02_hz_to_mel_htk(capsys):
    ex02.check_hz_to_mel_htk(solutions("02").hz_to_mel_htk)
    assert verdict(capsys)[0]
    ex02.check_hz_to_mel_htk(lambda hz: 1127 * np.log(1 + hz / 700))  # the HTK book's form: 2840.1 at 8 kHz
    assert verdict(capsys)[0]
    ex02.check_hz_to_mel_htk(lambda hz: 2595 * np.log(1 + hz / 700))
    ok, out = verdict(capsys)
    assert not ok and "log10" in out
    ex02.check_hz_to_mel_htk(lambda hz: 1127 * np.log(1 + hz / 700) + 1)
    assert not verdict(capsys)[0]
    ex02.check_hz_to_mel_htk(crash)
    assert not verdict(capsys)[0]


def test_ex02_temporal_attention(capsys):
    ex02.check_temporal_attention(solutions("02").temporal_attention)
    assert verdict(capsys)[0]
    ex02.check_temporal_attention(lambda mel: mel * torch.sigmoid(mel.max(dim=1, keepdim=True).values
                                                                  + mel.mean(dim=1, keepdim=True)))
    assert verdict(capsys)[0]  # valid alternative: dim=1 of (B, F, T)
    over_time = lambda mel: torch.sigmoid(mel.amax(-1, keepdim=True) + mel.mean(-1, keepdim=True)) * mel  # noqa: E731
    ex02.check_temporal_attention(over_time)
    ok, out = verdict(capsys)
    assert not ok and "time axis" in out
    no_sigmoid = lambda mel: (mel.amax(dim=-2, keepdim=True) + mel.mean(dim=-2, keepdim=True)) * mel  # noqa: E731
    ex02.check_temporal_attention(no_sigmoid)
    assert "sigmoid" in verdict(capsys)[1]
    ex02.check_temporal_attention(lambda mel: mel.numpy())
    assert not verdict(capsys)[0]
    ex02.check_temporal_attention(crash)
    assert not verdict(capsys)[0]


def _numpy_tagram(mel: np.ndarray) -> np.ndarray:
    """A numpy TAgram: works on arrays only (np.max(tensor, axis=..., keepdims=...) does not)."""
    mel = np.asarray(mel)
    gate = 1 / (1 + np.exp(-(mel.max(axis=-2, keepdims=True) + mel.mean(axis=-2, keepdims=True))))
    return gate * mel


def test_ex02_temporal_attention_accepts_numpy(capsys):
    ex02.check_temporal_attention(_numpy_tagram)  # the probe that was rejected
    assert verdict(capsys)[0]
    ex02.check_temporal_attention(lambda mel: _numpy_tagram(mel)[:, :, :10])  # a wrong shape: one clear message
    ok, out = verdict(capsys)
    assert not ok and "(2, 128, 10)" in out and "(2, 128, 20)" in out and "torch tensor of shape" not in out
    ex02.check_temporal_attention(lambda mel: np.asarray(mel) * 1 / (1 + np.exp(-np.asarray(mel).max(
        axis=-1, keepdims=True) - np.asarray(mel).mean(axis=-1, keepdims=True))))  # numpy, over time
    assert "time axis" in verdict(capsys)[1]

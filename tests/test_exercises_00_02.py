"""The checkers of notebooks 00–02 accept the worked solutions, reject wrong answers, and never raise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from asdlib.baseline import rms_dbfs
from asdlib.data import index_dataset, load_audio
from asdlib.exercises import ex00, ex01, ex02
from asdlib.synth import generate_dataset
from solutions_loader import crash, solutions


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


def test_ex00_anomaly_count(index, capsys):
    n = solutions("00").anomaly_count(index, "valve")
    assert n == 16  # 4 development IDs x 4 anomalous clips at the smoke size
    assert ex00.check_anomaly_count(n, index, machine_type="valve")
    assert "✓" in capsys.readouterr().out
    assert not ex00.check_anomaly_count(n + 1, index, machine_type="valve")
    assert not ex00.check_anomaly_count(None, index, machine_type="valve")
    assert "✗ not yet" in capsys.readouterr().out


def test_ex00_class_of(capsys):
    assert ex00.check_class_of(solutions("00").class_of)
    assert not ex00.check_class_of(lambda name, machine_type, order: 0)
    assert not ex00.check_class_of(crash)
    out = capsys.readouterr().out
    assert "returned 0" in out and "RuntimeError" in out


def test_ex00_reorder():
    assert ex00.check_reorder(solutions("00").to_ours)
    assert not ex00.check_reorder(lambda logits: logits)
    assert not ex00.check_reorder(lambda logits: logits[:, :40])
    assert not ex00.check_reorder(crash)


def test_ex01_crest_factor(capsys):
    assert ex01.check_crest_factor(solutions("01").crest_factor_db)
    assert not ex01.check_crest_factor(lambda wave: 20 * np.log10(np.max(np.abs(wave))))  # the peak alone
    assert not ex01.check_crest_factor(crash)
    assert "✗ not yet" in capsys.readouterr().out


def test_ex01_loudest_type(levels):
    answer = solutions("01").loudest_type(levels)
    assert answer == "ToyConveyor"  # generated about 17 dB louder than valve
    assert ex01.check_loudest_type(answer, levels)
    assert ex01.check_loudest_type("toyconveyor", levels)  # any spelling of the type
    assert not ex01.check_loudest_type("valve", levels)
    assert not ex01.check_loudest_type("a jet engine", levels)
    assert not ex01.check_loudest_type(None, levels)


def test_ex02_num_frames():
    assert ex02.check_num_frames(solutions("02").num_frames)
    assert not ex02.check_num_frames(lambda n, hop_length=512: n // hop_length)
    assert not ex02.check_num_frames(lambda n: 1 + n // 512)  # no hop_length argument: a TypeError
    assert not ex02.check_num_frames(crash)


def test_ex02_hz_to_mel_htk():
    assert ex02.check_hz_to_mel_htk(solutions("02").hz_to_mel_htk)
    assert not ex02.check_hz_to_mel_htk(lambda hz: 1127 * np.log(1 + hz / 700) + 1)
    assert not ex02.check_hz_to_mel_htk(lambda hz: hz)
    assert not ex02.check_hz_to_mel_htk(crash)


def test_ex02_temporal_attention():
    assert ex02.check_temporal_attention(solutions("02").temporal_attention)
    assert not ex02.check_temporal_attention(lambda mel: mel)
    no_sigmoid = lambda mel: (mel.amax(dim=-2, keepdim=True) + mel.mean(dim=-2, keepdim=True)) * mel  # noqa: E731
    assert not ex02.check_temporal_attention(no_sigmoid)
    over_time = lambda mel: torch.sigmoid(mel.amax(-1, keepdim=True) + mel.mean(-1, keepdim=True)) * mel  # noqa: E731
    assert not ex02.check_temporal_attention(over_time)
    assert not ex02.check_temporal_attention(lambda mel: mel.numpy())
    assert not ex02.check_temporal_attention(crash)

"""A simple non-deep baseline: one Gaussian per machine ID on clip-level log-mel statistics.

Each clip becomes the mean and standard deviation over time of its log-mel spectrogram (``2F`` numbers); each
machine ID gets a Gaussian fitted on its normal training clips, with a shrunk covariance (Ledoit-Wolf) so that
256 dimensions and a few dozen clips still give an invertible matrix. The anomaly score of a clip is its
Mahalanobis distance to its own ID's Gaussian (higher = more anomalous). The same log-mel helpers give the
long-term average spectrum used to compare procedural clips with real recordings.
"""
from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np
import pandas as pd
import scipy.linalg
from sklearn.covariance import LedoitWolf
from tqdm.auto import tqdm

from asdlib.data.audio import load_audio


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels).astype(np.float32)  # (F, n_fft // 2 + 1)


def mel_power(wave: np.ndarray, *, sr: int = 16000, n_fft: int = 1024, hop_length: int = 512,
              n_mels: int = 128) -> np.ndarray:
    """Mel power spectrogram (librosa conventions, centred frames): ``(L,) -> (F, T)``."""
    spec = np.abs(librosa.stft(np.asarray(wave, np.float32), n_fft=n_fft, hop_length=hop_length)) ** 2
    return _mel_basis(sr, n_fft, n_mels) @ spec


def log_mel(wave: np.ndarray, *, sr: int = 16000, n_fft: int = 1024, hop_length: int = 512,
            n_mels: int = 128) -> np.ndarray:
    """Log-mel spectrogram in dB: ``(L,) -> (F, T)``."""
    return 10 * np.log10(mel_power(wave, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels) + 1e-10)


def clip_features(wave: np.ndarray, *, sr: int = 16000) -> np.ndarray:
    """Mean and std over time of the log-mel spectrogram: ``(L,) -> (2F,)`` = ``(256,)``."""
    m = log_mel(wave, sr=sr)  # (F, T)
    return np.concatenate([m.mean(axis=1), m.std(axis=1)]).astype(np.float32)


def ltas_db(waves, *, sr: int = 16000) -> np.ndarray:
    """Long-term average spectrum of several clips: mean mel power over all frames, in dB: ``[(L,)] -> (F,)``."""
    return 10 * np.log10(np.mean([mel_power(w, sr=sr).mean(axis=1) for w in waves], axis=0) + 1e-12)


def rms_dbfs(wave: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(wave, dtype=np.float64))) + 1e-12))


class GaussianBaseline:
    """Per-ID Gaussian on clip features; ``score`` is the Mahalanobis distance (higher = more anomalous)."""

    def fit(self, X: np.ndarray, ids) -> GaussianBaseline:
        """``X (N, D)``, ``ids (N,)`` (any hashable per clip, e.g. ``(type, id)``) -> self."""
        X, ids = np.asarray(X, np.float64), _keys(ids)
        self.means_, self.cholesky_ = {}, {}
        for key in dict.fromkeys(ids):
            lw = LedoitWolf(store_precision=False).fit(X[[i == key for i in ids]])
            self.means_[key] = lw.location_
            self.cholesky_[key] = np.linalg.cholesky(lw.covariance_)  # (D, D) lower: Σ = L Lᵀ
        return self

    def score(self, X: np.ndarray, ids) -> np.ndarray:
        """Anomaly scores ``(N,)`` for ``X (N, D)`` against each clip's own ID: sqrt(dᵀ Σ⁻¹ d) = |L⁻¹ d|."""
        X, ids = np.asarray(X, np.float64), _keys(ids)
        out = np.empty(len(X))
        for key in dict.fromkeys(ids):
            rows = np.array([i == key for i in ids])
            z = scipy.linalg.solve_triangular(self.cholesky_[key], (X[rows] - self.means_[key]).T, lower=True)
            out[rows] = np.sqrt((z**2).sum(axis=0))
        return out


def fit_baseline(index: pd.DataFrame, *, seconds: float | None = None, sr: int = 16000,
                 progress: bool = True) -> GaussianBaseline:
    """:class:`GaussianBaseline` fitted on the normal training clips of an index (cropped to ``seconds``)."""
    train = index[(index.split == "train") & (index.label == "normal")]
    feats = _features(train, seconds=seconds, sr=sr, progress=progress)
    return GaussianBaseline().fit(feats, list(zip(train.machine_type, train.machine_id)))


def baseline_scores(index: pd.DataFrame, *, seconds: float | None = None, sr: int = 16000,
                    progress: bool = True, model: GaussianBaseline | None = None) -> pd.DataFrame:
    """Fit :class:`GaussianBaseline` on an index's normal training clips (or take a fitted ``model``), score its
    labelled test clips.

    ``index`` comes from :func:`asdlib.data.index.index_dataset`; the result is its labelled test rows plus a
    ``score`` column, ready for :func:`asdlib.evaluation.metrics.per_id_table`. ``seconds`` crops every clip as a run's
    config does (``None``: whole clips), so the baseline sees the same audio as the network.
    """
    model = model or fit_baseline(index, seconds=seconds, sr=sr, progress=progress)
    test = index[(index.split == "test") & index.label.isin(["normal", "anomaly"])].reset_index(drop=True)
    feats = _features(test, seconds=seconds, sr=sr, progress=progress)
    return test.assign(score=model.score(feats, list(zip(test.machine_type, test.machine_id))))


def _features(rows: pd.DataFrame, *, seconds: float | None, sr: int, progress: bool) -> np.ndarray:
    """Clip features of every row: ``-> (N, 2F)``."""
    return np.stack([clip_features(load_audio(path, sr=sr, seconds=seconds), sr=sr)
                     for path in tqdm(rows.path, desc="baseline features", disable=not progress, leave=False)])


def _keys(ids) -> list:
    return [tuple(i) if isinstance(i, (list, np.ndarray)) else i for i in ids]

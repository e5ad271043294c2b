"""The official DCASE2020 Task 2 baseline: a dense autoencoder on stacks of 5 log-mel frames.

Koizumi et al., "Description and discussion on DCASE2020 challenge task2" (DCASE 2020 workshop); the organisers'
``dcase2020_task2_baseline`` repository (``common.py``: features, ``keras_model.py``: model, ``01_test.py``: score).
A clip becomes the log-mel energies 20/power·log10(mel + eps) (128 mels, n_fft 1024, hop 512, power 2) and every
run of 5 consecutive frames one 640-dim vector; the autoencoder 640→128→128→128→128→8→128→128→128→128→640 (Dense +
BatchNorm + ReLU on every hidden layer, a linear output) learns to reconstruct normal vectors, and the anomaly
score of a clip is the mean over its vectors of their mean squared reconstruction error. One model per machine
type. Training lives in :mod:`asdlib.training.autoencoder`, clip scores in :mod:`asdlib.evaluation.autoencoder`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from torch import nn

# The baseline's feature settings (``baseline.yaml``); every checkpoint stores the ones it was trained with.
FEATURES = {"n_mels": 128, "frames": 5, "n_fft": 1024, "hop_length": 512, "power": 2.0}


def log_mel_energy(wave: np.ndarray, *, sr: int = 16000, n_mels: int = 128, n_fft: int = 1024,
                   hop_length: int = 512, power: float = 2.0) -> np.ndarray:
    """The baseline's log-mel energies 20/power·log10(mel + float eps): ``(L,) -> (F, T)``, T = 1 + L // hop.

    ``pad_mode="reflect"`` is the centred-STFT padding of librosa 0.6, the version the baseline pinned.
    """
    mel = librosa.feature.melspectrogram(y=np.asarray(wave, np.float32), sr=sr, n_fft=n_fft, hop_length=hop_length,
                                         n_mels=n_mels, power=power, pad_mode="reflect")
    return (20.0 / power * np.log10(mel + sys.float_info.epsilon)).astype(np.float32)


def stack_frames(log_mel: np.ndarray, *, frames: int = 5) -> np.ndarray:
    """Every run of ``frames`` consecutive frames as one vector: ``(F, T) -> (T - frames + 1, frames * F)``.

    Vector t is ``[m[:, t], m[:, t + 1], ..., m[:, t + frames - 1]]`` (frame-major, as ``common.py`` builds it);
    a clip shorter than ``frames`` frames gives ``(0, frames * F)``.
    """
    n_mels, n_frames = log_mel.shape
    if n_frames < frames:
        return np.empty((0, frames * n_mels), np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(log_mel.T, frames, axis=0)  # (N, F, frames)
    return np.ascontiguousarray(windows.transpose(0, 2, 1)).reshape(-1, frames * n_mels)  # (N, frames * F)


def frame_vectors(wave: np.ndarray, *, sr: int = 16000, n_mels: int = 128, frames: int = 5, n_fft: int = 1024,
                  hop_length: int = 512, power: float = 2.0) -> np.ndarray:
    """A clip as the baseline's input vectors: ``(L,) -> (N, frames * F)`` = ``(T - 4, 640)``."""
    m = log_mel_energy(wave, sr=sr, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, power=power)
    return stack_frames(m, frames=frames)


def _block(n_in: int, n_out: int) -> nn.Sequential:
    # Keras defaults, which the baseline kept: BatchNormalization(momentum=0.99, epsilon=1e-3)
    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, eps=1e-3, momentum=0.01), nn.ReLU())


class DenseAutoencoder(nn.Module):
    """The baseline's autoencoder: ``(B, 640) -> (B, 640)``; ``encode``: ``(B, 640) -> (B, 8)``."""

    def __init__(self, input_dim: int = 640, *, hidden: int = 128, bottleneck: int = 8, depth: int = 4):
        super().__init__()
        self.config = {"input_dim": input_dim, "hidden": hidden, "bottleneck": bottleneck, "depth": depth}
        self.features = dict(FEATURES)  # the input's settings, for :func:`frame_vectors`; saved with the weights
        down = [input_dim] + [hidden] * depth + [bottleneck]
        up = [bottleneck] + [hidden] * depth
        self.encoder = nn.Sequential(*[_block(a, b) for a, b in zip(down[:-1], down[1:])])
        self.decoder = nn.Sequential(*[_block(a, b) for a, b in zip(up[:-1], up[1:])], nn.Linear(hidden, input_dim))
        for layer in self.modules():
            if isinstance(layer, nn.Linear):  # Keras Dense: Glorot-uniform weights, zero bias
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, input_dim) -> (B, bottleneck)``"""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, input_dim) -> (B, input_dim)``"""
        return self.decoder(self.encoder(x))


def reconstruction_error(model: nn.Module, vectors, *, batch_size: int = 4096) -> np.ndarray:
    """Mean squared reconstruction error of each vector, in inference mode: ``(N, D) -> (N,)``."""
    x = torch.as_tensor(np.asarray(vectors, np.float32))
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = [((model(b.to(device)) - b.to(device)) ** 2).mean(dim=1).cpu() for b in x.split(batch_size)]
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.empty(0, np.float32)


def save_autoencoder(path: str | os.PathLike, model: DenseAutoencoder) -> Path:
    """Write the weights, the architecture and the feature settings (``model.features``) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"config": model.config, "features": dict(model.features),
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, tmp)
    os.replace(tmp, path)
    return path


def load_autoencoder(path: str | os.PathLike, *, map_location="cpu") -> DenseAutoencoder:
    """A model written by :func:`save_autoencoder`, in inference mode, with its ``features`` dict attached."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; train the autoencoder baseline first "
                                "(`python -m asdlib baseline --data DIR --out DIR`)")
    saved = torch.load(path, map_location=map_location, weights_only=True)
    config = dict(saved["config"])
    model = DenseAutoencoder(config.pop("input_dim"), **config)
    model.load_state_dict(saved["state_dict"])
    model.features = dict(saved["features"])
    return model.eval()

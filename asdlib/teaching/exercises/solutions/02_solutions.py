"""Worked solutions to the exercises of notebook 02 (features), checked by the tests."""
from __future__ import annotations

import numpy as np
import torch


def num_frames(num_samples: int, hop_length: int = 512) -> int:
    """Exercise 1: a centred STFT pads n_fft // 2 on each side, so it has 1 + L // hop frames."""
    return 1 + num_samples // hop_length


def hz_to_mel_htk(hz: np.ndarray) -> np.ndarray:
    """Exercise 2: the HTK mel scale, 2595·log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def temporal_attention(mel: torch.Tensor) -> torch.Tensor:
    """Exercise 3: TAgram = σ(max_f X + mean_f X) · X, ``(B, F, T) -> (B, F, T)``."""
    gate = torch.sigmoid(mel.amax(dim=-2, keepdim=True) + mel.mean(dim=-2, keepdim=True))  # (B, 1, T)
    return gate * mel

"""Attention branches computed from the log-mel: the temporal-attention "TAgram" and the spectral "SASgram".

Both are third input channels of the Noisy-ArcMix models (Choi & Choi, ICASSP 2024; Noisy-ArcMix repository,
``model/net.py`` ``Temporal_Attention``; first version: ``model/transformer.py`` ``SpecTransformer``).
TAgram (TASTgram-MFN) has no parameters: each frame t of the log-mel X is gated by
σ(max_f X[f, t] + mean_f X[f, t]). SASgram (the earlier STSASgram-MFN) runs a small post-norm Transformer
encoder whose tokens are the F = 128 mel *rows* (each a T-frame vector), so attention mixes frequency bands.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def temporal_gate(mel: torch.Tensor) -> torch.Tensor:
    """The TAgram's frame weights ``σ(max_f X + mean_f X)``: ``(B, F, T) -> (B, 1, T)``, each in (0, 1)."""
    return torch.sigmoid(mel.amax(dim=-2, keepdim=True) + mel.mean(dim=-2, keepdim=True))


def temporal_attention(mel: torch.Tensor) -> torch.Tensor:
    """TAgram: ``σ(max_f X + mean_f X)_t · X[f, t]``. ``(B, F, T) -> (B, F, T)``."""
    return temporal_gate(mel) * mel


class TemporalAttention(nn.Module):
    """Parameter-free :func:`temporal_attention` as a module: ``(B, F, T) -> (B, F, T)``."""

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return temporal_attention(mel)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product self-attention, ``n_heads`` heads: ``(B, N, E) -> (B, N, E), (B, heads, N, N)``."""

    def __init__(self, hidden_dim: int, n_heads: int):
        super().__init__()
        if hidden_dim % n_heads:
            raise ValueError(f"hidden_dim {hidden_dim} is not divisible by n_heads {n_heads}")
        self.n_heads, self.head_dim = n_heads, hidden_dim // n_heads
        self.fc_q = nn.Linear(hidden_dim, hidden_dim)
        self.fc_k = nn.Linear(hidden_dim, hidden_dim)
        self.fc_v = nn.Linear(hidden_dim, hidden_dim)
        self.fc_o = nn.Linear(hidden_dim, hidden_dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)  # (B, heads, N, hd)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self._split(self.fc_q(x)), self._split(self.fc_k(x)), self._split(self.fc_v(x))
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim), dim=-1)  # (B, h, N, N)
        out = (attention @ v).transpose(1, 2).reshape(x.shape)  # (B, N, E)
        return self.fc_o(out), attention


class FeedForward(nn.Module):
    """Position-wise FFN ``E -> pf_dim -> E`` with ReLU."""

    def __init__(self, hidden_dim: int, pf_dim: int):
        super().__init__()
        self.fc_1 = nn.Linear(hidden_dim, pf_dim)
        self.fc_2 = nn.Linear(pf_dim, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_2(torch.relu(self.fc_1(x)))


class EncoderLayer(nn.Module):
    """Post-norm Transformer layer: ``x = LN(x + MHA(x)); x = LN(x + FFN(x))`` (dropout 0 in the original)."""

    def __init__(self, hidden_dim: int, n_heads: int, pf_dim: int):
        super().__init__()
        self.self_attention = MultiHeadAttention(hidden_dim, n_heads)
        self.self_attn_layer_norm = nn.LayerNorm(hidden_dim)
        self.positionwise_feedforward = FeedForward(hidden_dim, pf_dim)
        self.ff_layer_norm = nn.LayerNorm(hidden_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, attention = self.self_attention(x)
        x = self.self_attn_layer_norm(x + attended)
        x = self.ff_layer_norm(x + self.positionwise_feedforward(x))
        return x, attention


class SpectralTransformer(nn.Module):
    """SASgram branch: a Transformer over the mel rows. ``(B, F, T) -> (B, F, T), (B, heads, F, F)``.

    Tokens are the F rows (T values each), scaled by sqrt(T) plus a learned embedding of the mel-bin index,
    projected T -> ``hidden_dim``, passed through ``n_layers`` post-norm layers, and projected back to T.
    The second output is the last layer's attention map.
    """

    def __init__(self, num_frames: int, *, hidden_dim: int = 256, n_layers: int = 6, n_heads: int = 16,
                 pf_dim: int = 64, max_bins: int = 500):
        super().__init__()
        self.num_frames, self.max_bins = num_frames, max_bins
        self.pos_embedding = nn.Embedding(max_bins, num_frames)
        self.hidden_embedding = nn.Linear(num_frames, hidden_dim)
        self.layers = nn.ModuleList(EncoderLayer(hidden_dim, n_heads, pf_dim) for _ in range(n_layers))
        self.reconstruction = nn.Linear(hidden_dim, num_frames)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bins = torch.arange(mel.shape[-2], device=mel.device)  # (F,)
        x = mel * math.sqrt(self.num_frames) + self.pos_embedding(bins)  # (B, F, T)
        x = self.hidden_embedding(x)  # (B, F, E)
        for layer in self.layers:
            x, attention = layer(x)
        return self.reconstruction(x), attention  # (B, F, T), (B, heads, F, F)

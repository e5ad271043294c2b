"""Front ends: the log-mel "Sgram" (two published variants) and the learnable waveform "Tgram" (TgramNet).

Both turn a batch of 16-kHz clips ``(B, L)`` into ``(B, F, T)`` maps with F = 128 bins and T = 1 + L // 512
frames (313 at 10 s). The Sgram variants differ only in STFT and mel options (STgram-MFN repository,
``utils.Wave2Mel``; Noisy-ArcMix repository, ``dataloader.file_to_log_mel_spectrogram``):
``"stgram"`` is STgram-MFN's (n_fft 1024, reflect pad, HTK mels, 10·log10(max(P, 1e-10))), ``"noisy_arcmix"``
Noisy-ArcMix's (n_fft 2048, zero pad, Slaney mels + Slaney norm, 10·log10(P + float64 eps)). TgramNet
(Liu et al., ICASSP 2022) is a strided Conv1d "learned STFT" followed by three LayerNorm-over-time blocks.
The attention maps computed from the Sgram (TAgram, SASgram) live in :mod:`asdlib.nn.attention`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional as AF
from torch import nn

SAMPLE_RATE = 16000
HOP_LENGTH = 512
N_MELS = 128


@dataclass(frozen=True)
class MelVariant:
    """STFT / mel / log options of one published log-mel front end (hop 512 and 128 mels in both)."""

    n_fft: int
    win_length: int
    pad_mode: str  # padding of the centred STFT
    norm: str | None  # mel filter area normalisation
    mel_scale: str
    amin: float  # log floor: 10·log10(max(P + eps, amin))
    eps: float


MEL_VARIANTS: dict[str, MelVariant] = {
    # STgram-MFN: torchaudio MelSpectrogram defaults, then AmplitudeToDB("power", top_db=None)
    "stgram": MelVariant(1024, 1024, "reflect", None, "htk", amin=1e-10, eps=0.0),
    # Noisy-ArcMix: 20/power·log10(P + sys.float_info.epsilon)
    "noisy_arcmix": MelVariant(2048, 2048, "constant", "slaney", "slaney", amin=0.0,
                               eps=2.220446049250313e-16),
}


def num_frames(num_samples: int, *, hop_length: int = HOP_LENGTH) -> int:
    """Frames T of a centred STFT (and of TgramNet) for a clip of ``num_samples``: ``1 + L // hop``."""
    return 1 + int(num_samples) // hop_length


def clip_samples(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples L in a clip of ``seconds`` at ``sample_rate`` (10 s at 16 kHz -> 160000)."""
    return round(seconds * sample_rate)


def _variant(variant: str) -> MelVariant:
    if variant not in MEL_VARIANTS:
        raise ValueError(f"unknown log-mel variant {variant!r}; expected one of {', '.join(MEL_VARIANTS)}")
    return MEL_VARIANTS[variant]


def mel_filterbank(variant: str = "stgram", *, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Triangular mel filters of a variant: ``(n_fft // 2 + 1, n_mels)``, as torchaudio's ``MelScale.fb``."""
    cfg = _variant(variant)
    fb = AF.melscale_fbanks(cfg.n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate,
                            norm=cfg.norm, mel_scale=cfg.mel_scale)
    return fb.to(device)


# On the CPU the STFT of a whole batch of 10-s clips does not fit the caches: 4 clips at a time is ~3x faster
# than 64 at once (bench/feature_throughput.py). GPUs want the whole batch.
CPU_CHUNK = 4


def log_mel(wave: torch.Tensor, *, variant: str = "stgram", sample_rate: int = SAMPLE_RATE,
            window: torch.Tensor | None = None, fb: torch.Tensor | None = None) -> torch.Tensor:
    """Log-mel spectrogram (Sgram) in dB: ``(B, L) -> (B, F, T)`` (any leading dims), on ``wave``'s device.

    ``window`` / ``fb`` may pass a precomputed Hann window and :func:`mel_filterbank` (:class:`LogMel` does).
    Always computed in at least float32, outside autocast: in float16 the 1e-10 / 2.2e-16 log floors underflow
    to 0 (-inf dB). The originals computed it in float32 in their data loaders.
    """
    if wave.device.type == "cpu" and wave.dim() == 2 and len(wave) > CPU_CHUNK:  # same values, cache-sized parts
        return torch.cat([log_mel(part, variant=variant, sample_rate=sample_rate, window=window, fb=fb)
                          for part in wave.split(CPU_CHUNK)])
    cfg = _variant(variant)
    dtype = torch.promote_types(wave.dtype, torch.float32)
    window = torch.hann_window(cfg.win_length, device=wave.device) if window is None else window
    fb = mel_filterbank(variant, sample_rate=sample_rate, device=wave.device) if fb is None else fb
    with torch.autocast(wave.device.type, enabled=False):
        power = AF.spectrogram(wave.to(dtype), pad=0, window=window.to(dtype), n_fft=cfg.n_fft,
                               hop_length=HOP_LENGTH, win_length=cfg.win_length, power=2.0, normalized=False,
                               center=True, pad_mode=cfg.pad_mode, onesided=True)  # (B, n_fft // 2 + 1, T)
        mel = torch.matmul(power.transpose(-1, -2), fb.to(dtype)).transpose(-1, -2)  # (B, F, T)
        return 10.0 * torch.log10(torch.clamp(mel + cfg.eps, min=cfg.amin))


class LogMel(nn.Module):
    """:func:`log_mel` with window and filterbank cached as non-persistent buffers (no state-dict keys)."""

    def __init__(self, variant: str = "stgram", *, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        cfg = _variant(variant)
        self.variant, self.sample_rate = variant, sample_rate
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)
        self.register_buffer("fb", mel_filterbank(variant, sample_rate=sample_rate), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, L) -> (B, F, T)`` log-mel in dB."""
        return log_mel(wave, variant=self.variant, sample_rate=self.sample_rate, window=self.window,
                       fb=self.fb)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, sample_rate={self.sample_rate}"


class TgramNet(nn.Module):
    """Learnable front end on the raw wave: ``(B, L) -> (B, F, T)`` with T = ``num_frames``.

    A Conv1d(1 → 128, kernel 1024, stride 512, padding 512) imitates a centred STFT frame by frame; then three
    blocks of LayerNorm over the *time* axis (hence the fixed ``num_frames``), LeakyReLU(0.2), 3-tap Conv1d.
    """

    def __init__(self, num_frames: int, *, channels: int = N_MELS, win_length: int = 1024,
                 hop_length: int = HOP_LENGTH, num_layers: int = 3):
        super().__init__()
        self.num_frames = num_frames
        self.conv_extractor = nn.Conv1d(1, channels, win_length, hop_length, win_length // 2, bias=False)
        self.conv_encoder = nn.Sequential(*[
            nn.Sequential(nn.LayerNorm(num_frames), nn.LeakyReLU(0.2),
                          nn.Conv1d(channels, channels, 3, 1, 1, bias=False))
            for _ in range(num_layers)])

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.conv_extractor(wave.unsqueeze(1))  # (B, 1, L) -> (B, F, T)
        return self.conv_encoder(x)


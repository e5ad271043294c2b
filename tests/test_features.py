"""Front ends and attention branches: librosa/torchaudio references, batched = per item, any clip length."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio

from asdlib.nn.attention import SpectralTransformer, TemporalAttention, temporal_attention, temporal_gate
from asdlib.nn.frontends import MEL_VARIANTS, LogMel, TgramNet, clip_samples, log_mel, mel_filterbank, num_frames

SR = 16000


def tone(seconds: float = 2.0, batch: int = 3, seed: int = 0) -> torch.Tensor:
    """``(B, L)`` harmonic tones plus noise, a different pitch per item."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(clip_samples(seconds)) / SR
    f0 = torch.tensor([110.0, 440.0, 1234.0, 57.0])[:batch, None]
    wave = 0.3 * torch.sin(2 * math.pi * f0 * t) + 0.1 * torch.sin(2 * math.pi * 3 * f0 * t)
    return wave + 0.02 * torch.randn(batch, t.numel(), generator=g)


@pytest.mark.parametrize("seconds,frames", [(10.0, 313), (4.0, 126), (2.0, 63)])
def test_num_frames(seconds, frames):
    assert num_frames(clip_samples(seconds)) == frames


@pytest.mark.parametrize("variant", list(MEL_VARIANTS))
def test_log_mel_shape_and_module(variant):
    wave = tone(2.0)
    mel = log_mel(wave, variant=variant)
    assert mel.shape == (3, 128, 63) and mel.dtype == torch.float32
    assert torch.equal(LogMel(variant)(wave), mel)
    assert LogMel(variant).state_dict() == {}  # non-persistent buffers: checkpoints stay weight-compatible


def test_log_mel_matches_torchaudio_transforms():
    """The two variants are exactly the originals' torchaudio pipelines."""
    wave = tone(2.0)
    stgram = torchaudio.transforms.MelSpectrogram(SR, n_fft=1024, win_length=1024, hop_length=512, n_mels=128)
    ref = torchaudio.transforms.AmplitudeToDB("power")(stgram(wave))
    torch.testing.assert_close(log_mel(wave, variant="stgram"), ref, rtol=0, atol=1e-4)
    na = torchaudio.transforms.MelSpectrogram(SR, n_fft=2048, hop_length=512, n_mels=128, pad_mode="constant",
                                              norm="slaney", mel_scale="slaney")
    ref = 10 * torch.log10(na(wave) + 2.220446049250313e-16)
    torch.testing.assert_close(log_mel(wave, variant="noisy_arcmix"), ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("variant,kwargs", [
    ("stgram", {"n_fft": 1024, "htk": True, "norm": None, "pad_mode": "reflect"}),
    ("noisy_arcmix", {"n_fft": 2048, "htk": False, "norm": "slaney", "pad_mode": "constant"}),
])
def test_log_mel_matches_librosa(variant, kwargs):
    librosa = pytest.importorskip("librosa")
    wave = tone(1.0, batch=1)
    power = librosa.feature.melspectrogram(y=wave[0].double().numpy(), sr=SR, hop_length=512, n_mels=128,
                                           power=2.0, **kwargs)
    cfg = MEL_VARIANTS[variant]
    ref = 10 * np.log10(np.maximum(power + cfg.eps, cfg.amin))
    np.testing.assert_allclose(log_mel(wave, variant=variant)[0].numpy(), ref, atol=2e-3)


def test_log_mel_batched_equals_per_item_and_float64():
    wave = tone(2.0)
    batched = log_mel(wave)
    for i in range(wave.shape[0]):
        torch.testing.assert_close(log_mel(wave[i:i + 1])[0], batched[i], rtol=0, atol=1e-4)
    assert log_mel(wave.double()).dtype == torch.float64


def test_log_mel_is_float32_under_autocast_and_for_half_input():
    """A float16/bfloat16 log-mel would underflow its log floor to -inf: it is always computed in float32."""
    wave = tone(1.0, batch=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mel = LogMel("noisy_arcmix")(wave)
    assert mel.dtype == torch.float32 and torch.isfinite(mel).all()
    torch.testing.assert_close(mel, log_mel(wave, variant="noisy_arcmix"))
    assert log_mel(wave.half()).dtype == torch.float32


def test_log_mel_unknown_variant():
    with pytest.raises(ValueError, match="stgram"):
        log_mel(tone(), variant="htk")


def test_filterbank_shapes():
    assert mel_filterbank("stgram").shape == (513, 128)
    assert mel_filterbank("noisy_arcmix").shape == (1025, 128)


def test_tgramnet_shapes_and_keys():
    wave = tone(2.0)
    net = TgramNet(63)
    assert net(wave).shape == (3, 128, 63)
    keys = set(net.state_dict())
    assert {"conv_extractor.weight", "conv_encoder.0.0.weight", "conv_encoder.2.2.weight"} <= keys
    assert net.conv_encoder[0][0].normalized_shape == (63,)  # LayerNorm over time, as in the original
    assert sum(p.numel() for p in TgramNet(313).parameters()) == 280_406  # from the layer shapes of STgram-MFN's model.py


def test_tgramnet_batched_equals_per_item():
    torch.manual_seed(0)
    net, wave = TgramNet(63).eval(), tone(2.0)
    with torch.no_grad():
        batched = net(wave)
        torch.testing.assert_close(net(wave[1:2])[0], batched[1], rtol=1e-5, atol=1e-5)


def test_temporal_attention_formula():
    mel = log_mel(tone(2.0))
    expected = torch.empty_like(mel)
    for t in range(mel.shape[-1]):
        column = mel[:, :, t]  # (B, F)
        gate = torch.sigmoid(column.max(dim=1).values + column.mean(dim=1))  # (B,)
        expected[:, :, t] = gate[:, None] * column
    torch.testing.assert_close(temporal_attention(mel), expected)
    assert torch.equal(TemporalAttention()(mel), temporal_attention(mel))
    gate = temporal_gate(mel)  # the per-frame weights alone, as notebooks 02 and 04 read them
    assert gate.shape == (mel.shape[0], 1, mel.shape[-1])
    torch.testing.assert_close(gate * mel, expected)
    assert list(TemporalAttention().parameters()) == []


def test_spectral_transformer_shapes_and_size():
    torch.manual_seed(0)
    mel = log_mel(tone(2.0))
    net = SpectralTransformer(63).eval()
    with torch.no_grad():
        sasgram, attention = net(mel)
        single, _ = net(mel[2:3])
    assert sasgram.shape == (3, 128, 63) and attention.shape == (3, 16, 128, 128)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 16, 128))
    torch.testing.assert_close(single[0], sasgram[2], rtol=1e-4, atol=1e-4)  # no mixing across the batch
    assert sum(p.numel() for p in SpectralTransformer(313).parameters()) == 3_262_860 - 1_161_855


@pytest.mark.parametrize("variant", ["stgram", "noisy_arcmix"])
def test_cpu_log_mel_in_chunks_equals_clip_by_clip(variant):
    from asdlib.nn.frontends import CPU_CHUNK, log_mel

    wave = torch.randn(2 * CPU_CHUNK + 1, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    whole = log_mel(wave, variant=variant)  # split into parts of CPU_CHUNK clips internally
    one_by_one = torch.cat([log_mel(clip[None], variant=variant) for clip in wave])
    assert whole.shape == (len(wave), 128, 32)
    torch.testing.assert_close(whole, one_by_one, atol=1e-4, rtol=0)

"""The four ASD models: maps from a raw clip stacked as channels, a MobileFaceNet embedding, and a head.

Each follows its original code (STgram-MFN repository, ``model.py`` / ``net.py``; Noisy-ArcMix repository,
``model/net.py``): STgram-MFN (Liu et al., ICASSP 2022) as published (``stgram_mfn_paper``, 15-block table)
and as in its current repository (``stgram_mfn``, 6-block table), and STSASgram-MFN / TASTgram-MFN (Choi &
Choi, ICASSP 2024) with a third, attention channel; see :data:`ARCHITECTURES`. Unlike the originals (hard-coded
313 frames) every model is built for a clip length ``seconds``: the Tgram LayerNorm, the SASgram sizes and the
GDC kernel follow it, and 10 s gives the original shapes, so the authors' weights load
(:mod:`asdlib.training.checkpoints`).
"""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from asdlib.nn.attention import SpectralTransformer, TemporalAttention
from asdlib.nn.frontends import N_MELS, SAMPLE_RATE, LogMel, TgramNet, clip_samples, num_frames
from asdlib.nn.heads import ArcFaceHead, SoftmaxHead
from asdlib.nn.mobilefacenet import MobileFaceNet

MODEL_NAMES: tuple[str, ...] = ("stgram_mfn_paper", "stgram_mfn", "stsasgram_mfn", "tastgram_mfn")
HEADS: tuple[str, ...] = ("arcface", "softmax")
# name -> (Sgram variant, MobileFaceNet bottleneck table, channel order of the stacked input). Parameters at
# 10 s and 41 classes, counting the unused ``mobilefacenet.fc_out`` (5,289) as the originals do:
# stgram_mfn_paper 1,350,335; stgram_mfn 1,161,279; stsasgram_mfn 3,262,860; tastgram_mfn 1,161,855.
ARCHITECTURES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "stgram_mfn_paper": ("stgram", "paper", ("sgram", "tgram")),
    "stgram_mfn": ("stgram", "dcase2022", ("sgram", "tgram")),
    "stsasgram_mfn": ("noisy_arcmix", "dcase2022", ("tgram", "sgram", "sasgram")),
    "tastgram_mfn": ("noisy_arcmix", "dcase2022", ("tgram", "sgram", "tagram")),
}
MIN_SAMPLES = 1024  # one Tgram kernel / STgram STFT window: shorter clips cannot be framed
EMBEDDING_DIM = 128


class ASDModel(nn.Module):
    """A clip classifier over machine IDs whose embedding is the anomaly detector's representation.

    ``forward(wave, labels=None, mel=None)``: ``(B, L) -> logits (B, K), embedding (B, D)``. Use
    :func:`build_model` to make one; ``build_model(**model.config)`` rebuilds it.
    """

    def __init__(self, name: str, *, num_classes: int = 41, seconds: float = 10.0,
                 sample_rate: int = SAMPLE_RATE, head: str = "arcface", m: float = 0.7, s: float = 30.0,
                 sub: int = 1):
        super().__init__()
        variant, table, self.channels = _architecture(name)
        self.num_samples = clip_samples(seconds, sample_rate)
        _check_build_args(self.num_samples, seconds, sample_rate, head, sub)
        self.config = {"name": name, "num_classes": int(num_classes), "seconds": float(seconds),
                       "sample_rate": int(sample_rate), "head": head, "m": float(m), "s": float(s),
                       "sub": int(sub)}
        self.num_frames = num_frames(self.num_samples)
        self.sgram = LogMel(variant, sample_rate=sample_rate)  # no parameters, no state-dict keys
        self.tgram = TgramNet(self.num_frames)
        if "tagram" in self.channels:
            self.tagram = TemporalAttention()
        if "sasgram" in self.channels:
            self.sasgram = SpectralTransformer(self.num_frames)
        self.mobilefacenet = MobileFaceNet(len(self.channels), (N_MELS, self.num_frames), table=table,
                                           embedding_dim=EMBEDDING_DIM, num_classes=num_classes)
        self.head = (ArcFaceHead(EMBEDDING_DIM, num_classes, m=m, s=s, sub=sub) if head == "arcface"
                     else SoftmaxHead(EMBEDDING_DIM, num_classes))

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """This model's Sgram: ``(B, L) -> (B, F, T)`` in dB."""
        return self.sgram(self._check_wave(wave))

    def feature_maps(self, wave: torch.Tensor, mel: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Input maps ``(B, F, T)`` by name, plus ``"input"`` ``(B, C, F, T)`` stacked in channel order.

        ``mel`` replaces ``log_mel(wave)`` (mixup mixes the wave and the log-mel separately); TAgram and
        SASgram are computed from it, Tgram from ``wave``. SASgram models add ``"attention"``
        ``(B, heads, F, F)``.
        """
        wave = self._check_wave(wave)
        mel = self.sgram(wave) if mel is None else self._check_mel(mel, wave.shape[0])
        maps = {"sgram": mel, "tgram": self.tgram(wave)}
        if "tagram" in self.channels:
            maps["tagram"] = self.tagram(mel)
        if "sasgram" in self.channels:
            maps["sasgram"], maps["attention"] = self.sasgram(mel)
        maps["input"] = torch.stack([maps[c] for c in self.channels], dim=1)  # (B, C, F, T)
        return maps

    def embed(self, wave: torch.Tensor, mel: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L) -> (B, D)`` MobileFaceNet embedding."""
        maps = self.feature_maps(wave, mel)
        if self.training and maps["input"].shape[0] < 2:
            raise ValueError("a batch of 1 cannot be trained (BatchNorm after the GDC needs B >= 2); "
                             "call model.eval() to embed or score single clips")
        return self.mobilefacenet(maps["input"])

    def forward(self, wave: torch.Tensor, labels: torch.Tensor | None = None,
                mel: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, L)[, (B,)] -> logits (B, K), embedding (B, D)``; ArcFace puts its margin on ``labels``."""
        embedding = self.embed(wave, mel)
        return self.head(embedding, labels), embedding

    def _check_wave(self, wave: torch.Tensor) -> torch.Tensor:
        if not isinstance(wave, torch.Tensor) or not wave.is_floating_point():
            raise ValueError(f"wave must be a floating-point torch.Tensor (B, L), got {_describe(wave)}")
        if wave.dim() == 3 and wave.shape[1] == 2:
            raise ValueError(f"got a stereo batch {tuple(wave.shape)}; mix to mono first, e.g. "
                             "asdlib.data.index.load_audio does it (or wave.mean(dim=1))")
        if wave.dim() == 3 and wave.shape[1] == 1:
            wave = wave.squeeze(1)
        if wave.dim() != 2:
            hint = "; for one clip use wave[None]" if wave.dim() == 1 else ""
            raise ValueError(f"wave must be (B, L) or (B, 1, L), got shape {tuple(wave.shape)}{hint}")
        if num_frames(wave.shape[-1]) != self.num_frames:
            raise ValueError(self._length_message(wave.shape[-1]))
        if not torch.isfinite(wave).all():
            raise ValueError("wave contains NaN or Inf values; check the audio loading / mixing upstream")
        return wave

    def _check_mel(self, mel: torch.Tensor, batch: int) -> torch.Tensor:
        if mel.dim() == 4 and mel.shape[1] == 1:
            mel = mel.squeeze(1)
        if tuple(mel.shape) != (batch, N_MELS, self.num_frames):
            raise ValueError(f"mel must be (B, F, T) = {(batch, N_MELS, self.num_frames)} to match the wave, "
                             f"got {tuple(mel.shape)}; compute it with model.log_mel(wave)")
        if not torch.isfinite(mel).all():
            raise ValueError("mel contains NaN or Inf values; compute it with model.log_mel(wave)")
        return mel

    def _length_message(self, length: int) -> str:
        sr, expected = self.config["sample_rate"], self.num_samples
        return (f"clip of {length} samples ({length / sr:.3f} s) does not fit this model, built for "
                f"seconds={self.config['seconds']:g}: expected {expected} samples ({self.num_frames} frames "
                f"at {sr} Hz); crop/pad the clip with wave[..., :{expected}], or build the model for "
                f"another length with build_model(..., seconds={length / sr:g})")


def _architecture(name: str) -> tuple[str, str, tuple[str, ...]]:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    return ARCHITECTURES[name]


def _check_build_args(num_samples: int, seconds: float, sample_rate: int, head: str, sub: int) -> None:
    if num_samples < MIN_SAMPLES:
        raise ValueError(f"seconds={seconds:g} gives {num_samples} samples at {sample_rate} Hz; "
                         f"clips need at least {MIN_SAMPLES} samples ({MIN_SAMPLES / sample_rate:.3f} s)")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {', '.join(HEADS)}")
    if head == "softmax" and sub != 1:
        raise ValueError("sub-centres (sub > 1) need head='arcface'")


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def build_model(name: str, *, num_classes: int = 41, seconds: float = 10.0, sample_rate: int = SAMPLE_RATE,
                head: str = "arcface", m: float = 0.7, s: float = 30.0, sub: int = 1) -> ASDModel:
    """Build one of :data:`MODEL_NAMES` for clips of ``seconds``, with an ``"arcface"``/``"softmax"`` head."""
    return ASDModel(name, num_classes=num_classes, seconds=seconds, sample_rate=sample_rate, head=head,
                    m=m, s=s, sub=sub)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (all of them, including the unused ``fc_out``)."""
    return sum(p.numel() for p in model.parameters())


def summary(model: ASDModel, *, seconds: float | None = None, depth: int | None = None) -> pd.DataFrame:
    """Layer table (``module``, ``type``, ``output_shape``, ``params``) from one dummy clip through ``model``.

    Rows are the leaf modules, or the modules ``depth`` levels down (params summed); ``params`` sums to
    :func:`count_parameters`. ``seconds`` other than the model's summarises a rebuilt copy for that length.
    Modules that forward never calls (``mobilefacenet.fc_out``) show output shape ``"unused"``.
    """
    if seconds is not None and float(seconds) != model.config["seconds"]:
        model = build_model(**{**model.config, "seconds": seconds})
    rows = _summary_modules(model, depth)
    shapes: dict[str, str] = {}
    hooks = [module.register_forward_hook(_shape_hook(shapes, name)) for name, module in rows]
    was_training, device = model.training, next(model.parameters()).device
    wave = 0.1 * torch.randn(1, model.num_samples, generator=torch.Generator().manual_seed(0))
    try:
        model.eval()
        with torch.no_grad():
            model(wave.to(device), torch.zeros(1, dtype=torch.long, device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return pd.DataFrame([{"module": name, "type": type(module).__name__,
                          "output_shape": shapes.get(name, "unused"),
                          "params": sum(p.numel() for p in module.parameters())} for name, module in rows])


def summary_text(model: ASDModel, *, seconds: float | None = None, depth: int | None = None) -> str:
    """:func:`summary` as a printable table with a total line."""
    table = summary(model, seconds=seconds, depth=depth)
    total = int(table["params"].sum())
    return f"{table.to_string(index=False)}\n{model.config['name']}: {total:,} parameters"


def _summary_modules(model: nn.Module, depth: int | None) -> list[tuple[str, nn.Module]]:
    rows = []
    for name, module in model.named_modules():
        level = name.count(".") + 1 if name else 0
        is_leaf = next(module.children(), None) is None
        if name and (is_leaf and (depth is None or level <= depth) or level == depth):
            rows.append((name, module))
    return rows


def _shape_hook(shapes: dict[str, str], name: str):
    def hook(module, inputs, output):
        outs = output if isinstance(output, tuple) else (output,)
        shapes[name] = ", ".join(str(tuple(o.shape)) for o in outs if isinstance(o, torch.Tensor))
    return hook

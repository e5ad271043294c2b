"""The naive per-item pipeline that the benchmarks compare against (bench-only, never used by asdlib).

As the original STgram-MFN data set does (its repository's ``dataset.py``): every item decodes its wav file with
``librosa.load(sr=16000)``, keeps the first ``L`` samples and computes its log-mel on the CPU with torchaudio's
``MelSpectrogram`` (+ ``AmplitudeToDB``, or Noisy-ArcMix's ``10·log10(P + eps)`` of its ``dataloader.py``); the
DataLoader stacks the items; the model then consumes the wave *and* the precomputed mel. The training step is
``asdlib.training.loop``'s (the same ``Criterion``), except that the mel comes from the loader, not ``model.log_mel``.
"""
from __future__ import annotations

import contextlib
import sys

import librosa
import numpy as np
import torch
import torchaudio
from torch.utils.data import DataLoader, Dataset

from asdlib.training.losses import sample_mixup
from asdlib.training.loop import Criterion

# model's Sgram variant -> the torchaudio front end of the original code
MEL_OPTIONS = {
    "stgram": dict(n_fft=1024, win_length=1024, hop_length=512, n_mels=128, power=2.0),
    "noisy_arcmix": dict(n_fft=2048, hop_length=512, n_mels=128, power=2.0, pad_mode="constant", norm="slaney",
                         mel_scale="slaney"),
}


class NaiveDataset(Dataset):
    """``(wave (L,), mel (F, T), class_index)`` per item, decoded and transformed when the item is asked for."""

    def __init__(self, paths: list[str], labels: np.ndarray, *, variant: str, seconds: float, sr: int = 16000):
        self.paths, self.labels, self.sr = list(paths), np.asarray(labels), sr
        self.num_samples, self.variant = round(seconds * sr), variant
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=sr, **MEL_OPTIONS[variant])
        self.to_db = torchaudio.transforms.AmplitudeToDB("power")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        y, _ = librosa.load(self.paths[i], sr=self.sr, mono=True)
        wave = torch.from_numpy(y[:self.num_samples])  # (L,): truncated, never padded, as in the original
        return wave, self.log_mel(wave), int(self.labels[i])

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """The original data set's log-mel of one clip: ``(L,) -> (F, T)``."""
        power = self.mel(wave)
        return self.to_db(power) if self.variant == "stgram" else 10 * torch.log10(power + sys.float_info.epsilon)


def naive_loader(paths, labels, *, variant: str, seconds: float, batch_size: int, rows: np.ndarray,
                 num_workers: int = 0, seed: int = 0) -> DataLoader:
    """A shuffling per-item DataLoader over ``paths[rows]`` (repeats allowed), ``drop_last`` as STgram-MFN."""
    dataset = NaiveDataset([paths[r] for r in rows], np.asarray(labels)[rows], variant=variant, seconds=seconds)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=num_workers,
                      generator=torch.Generator().manual_seed(seed))


def naive_train(criterion: Criterion, batches, optimizer, *, device: torch.device, alpha: float,
                rng: np.random.Generator, dtype: torch.dtype | None = None) -> int:
    """The steps of ``asdlib.training.loop.train_epoch`` on ``(wave, mel, label)`` batches; returns clips seen."""
    criterion.train()
    seen = 0
    for wave, mel, labels in batches:
        wave, mel, labels = (x.to(device, non_blocking=True) for x in (wave, mel, labels))
        lam, perm = sample_mixup(len(labels), alpha=alpha, rng=rng)
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            loss, logits = criterion(wave, labels, lam, perm.to(device), mel=mel)  # the loader's mel
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item(), (logits.argmax(1) == labels).sum().item()  # as train_epoch: waits for the device
        seen += len(labels)
    return seen

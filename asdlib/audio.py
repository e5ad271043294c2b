"""Read one DCASE2020 clip: a wav file -> a mono float32 waveform of a fixed length at a fixed sample rate.

The originals read 16-kHz mono clips and keep their first 10 s (160000 samples), unpadded (seed_spec §2.1).
:func:`load_audio` does the same with soundfile (``torchaudio.load`` now needs FFmpeg) and copes with what
real folders contain: other sample rates (resampled, with a warning), several channels (averaged), short clips
(zero-padded, with a warning). A file that cannot be decoded — missing, empty, corrupt, truncated (libsndfile
would silently return fewer frames, so the wav header is checked), or not a wav file — raises
:class:`AudioError` naming the file and the fix.
"""
from __future__ import annotations

import math
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

WAV_FORMATS = ("WAV", "WAVEX", "RF64")
_FIX = "re-download or delete it, or pass on_error='skip' to build_cache"


class DataError(ValueError):
    """A dataset folder or file that cannot be used; the message names it and says what to do."""


class AudioError(DataError):
    """An audio file that cannot be decoded (missing, empty, corrupt, truncated or not a wav file)."""


def check_on_error(on_error: str) -> str:
    """Validate the ``on_error`` option shared by the data functions: ``"raise"`` or ``"skip"``."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    return on_error


def load_audio(path: str | Path, *, sr: int = 16000, seconds: float | None = 10.0) -> np.ndarray:
    """A wav file as mono float32 in [-1, 1] at ``sr`` Hz: ``-> (L,)``, ``L = round(seconds * sr)``.

    Longer clips keep their first ``seconds``; shorter ones are zero-padded (with a warning); ``seconds=None``
    keeps the whole clip.
    """
    wave, file_sr = _read_wav(Path(path))
    if file_sr != sr:
        warnings.warn(f"{path}: resampling from {file_sr} Hz to {sr} Hz", stacklevel=2)
        g = math.gcd(file_sr, sr)
        wave = np.clip(resample_poly(wave, sr // g, file_sr // g), -1.0, 1.0).astype(np.float32)
    return wave if seconds is None else _fit_length(wave, round(seconds * sr), path)


def _fit_length(wave: np.ndarray, length: int, path: str | Path) -> np.ndarray:
    """Keep the first ``length`` samples; zero-pad a shorter clip, with a warning. ``(L',) -> (length,)``"""
    if len(wave) < length:
        warnings.warn(f"{path}: {len(wave)} samples, shorter than {length}; zero-padding it", stacklevel=3)
        return np.pad(wave, (0, length - len(wave)))
    return wave[:length]


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Decode a wav file: ``-> (mono float32 (L,), sample rate)``; every failure is an :class:`AudioError`."""
    if not path.is_file():
        raise AudioError(f"{path}: no such file; re-index the dataset (index_dataset) or re-download it")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes); {_FIX}")
    try:
        with sf.SoundFile(path) as f:
            if f.format not in WAV_FORMATS:
                raise AudioError(f"{path}: a {f.format} file, not a wav file; convert or delete it")
            data, frames, file_sr = f.read(dtype="float32", always_2d=True), f.frames, f.samplerate  # (L, ch)
    except (RuntimeError, OSError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise AudioError(f"{path}: not readable as audio ({e}); {_FIX}") from None
    if _missing_bytes(path) > 0 or len(data) != frames:
        raise AudioError(f"{path}: truncated (the file is shorter than its wav header says); {_FIX}")
    if len(data) == 0 or not np.isfinite(data).all():
        raise AudioError(f"{path}: {'no samples' if len(data) == 0 else 'NaN or infinite samples'}; {_FIX}")
    return np.clip(data.mean(axis=1), -1.0, 1.0), file_sr


def _missing_bytes(path: Path) -> int:
    """How many bytes of the RIFF ``data`` chunk its header announces but the file lacks (0 if complete)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if f.read(4) != b"RIFF" or f.seek(8) != 8 or f.read(4) != b"WAVE":
            return 0  # RF64 / RIFX / W64: trust libsndfile
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, n = struct.unpack("<4sI", f.read(8))
            if chunk == b"data":
                return 0 if n == 0xFFFFFFFF else max(0, pos + 8 + n - size)
            pos += 8 + n + (n & 1)  # chunks are word-aligned
    return 0

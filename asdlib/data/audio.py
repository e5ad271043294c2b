"""Read one DCASE2020 clip: a wav file -> a mono float32 waveform of a fixed length at a fixed sample rate.

The originals read 16-kHz mono clips and keep their first 10 s (160000 samples), unpadded (STgram-MFN repository,
``dataset.py``; Noisy-ArcMix repository, ``dataloader.py`` ``_file_load``).
:func:`load_audio` does the same with soundfile (``torchaudio.load`` now needs FFmpeg) and copes with what
real folders contain: other sample rates (resampled, with a warning), several channels (averaged), short clips
(zero-padded, with a warning). Only the frames needed are read, before any resampling, and a header claiming a
sample rate outside 1–384 kHz is refused. A file that cannot be decoded — missing, empty, corrupt, truncated
(libsndfile would silently return fewer frames, so the wav header is checked), or not a wav file — raises
:class:`AudioError` naming the file and the fix. :func:`check_header` does the cheap checks without decoding.
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
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000  # outside: a broken header, not a recording
_FIX = "re-download or delete it (or skip bad files: on_error='skip')"
_MARGIN = 256  # extra source frames read past the clip so resampling sees the same neighbourhood


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
    wave, file_sr = _read_wav(Path(path), seconds=seconds)
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


def check_header(path: str | Path) -> str | None:
    """Why ``path`` is not a usable wav file, from its header alone (``soundfile.info``), or ``None`` if it is."""
    try:
        _open_checked(Path(path)).close()
    except AudioError as e:
        return str(e).removeprefix(f"{path}: ").split("; ")[0]
    return None


def _open_checked(path: Path) -> sf.SoundFile:
    """An open SoundFile for a wav file with a sane header; every failure is an :class:`AudioError`."""
    if path.is_dir():
        raise AudioError(f"{path}: a folder, not a wav file; rename or move it")
    if not path.is_file():
        raise AudioError(f"{path}: no such file; re-index the dataset (index_dataset) or re-download it")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes); {_FIX}")
    try:
        open(path, "rb").close()  # libsndfile reports a permission problem only as "System error"
    except PermissionError:
        raise AudioError(f"{path}: permission denied (this user may not read it); change its permissions "
                         f"(chmod a+r), or skip it: on_error='skip'") from None
    except OSError as e:
        raise AudioError(f"{path}: cannot open it ({e.strerror or e}); {_FIX}") from None
    try:
        f = sf.SoundFile(path)
    except (RuntimeError, OSError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise AudioError(f"{path}: not readable as audio ({e}); {_FIX}") from None
    if f.format not in WAV_FORMATS:
        f.close()
        raise AudioError(f"{path}: a {f.format} file, not a wav file; convert or delete it")
    if not MIN_SAMPLE_RATE <= f.samplerate <= MAX_SAMPLE_RATE:
        f.close()
        raise AudioError(f"{path}: its header claims {f.samplerate} Hz, outside {MIN_SAMPLE_RATE}-"
                         f"{MAX_SAMPLE_RATE} Hz (a damaged header); {_FIX}")
    if f.frames == 0 or _missing_bytes(path) > 0:
        f.close()
        what = "no samples" if f.frames == 0 else "truncated (the file is shorter than its wav header says)"
        raise AudioError(f"{path}: {what}; {_FIX}")
    return f


def _read_wav(path: Path, seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a wav file (only its first ``seconds`` plus a small margin, when given):
    ``-> (mono float32 (L,), sample rate)``; every failure is an :class:`AudioError`."""
    try:
        with _open_checked(path) as f:
            file_sr = f.samplerate
            want = f.frames if seconds is None else min(f.frames, math.ceil(seconds * file_sr) + _MARGIN)
            data, frames = f.read(want, dtype="float32", always_2d=True), want  # (L, ch)
    except (RuntimeError, OSError) as e:
        raise AudioError(f"{path}: not readable as audio ({e}); {_FIX}") from None
    if len(data) != frames:
        raise AudioError(f"{path}: truncated (the file is shorter than its wav header says); {_FIX}")
    if len(data) == 0 or not np.isfinite(data).all():
        raise AudioError(f"{path}: {'no samples' if len(data) == 0 else 'NaN or infinite samples'}; {_FIX}")
    peak = float(np.abs(data).max())
    if peak > 1.0 + 1e-6:  # only float wav files can hold samples beyond full scale
        warnings.warn(f"{path}: samples peak at {peak:.3g}, beyond full scale (±1); clipped to ±1, which distorts "
                      "the recording: normalise it (divide by its peak) before scoring", stacklevel=3)
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

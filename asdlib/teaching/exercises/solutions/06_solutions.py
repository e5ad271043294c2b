"""Worked answers to the exercises of 06_score_your_own_machine.ipynb (checked by asdlib.teaching.exercises.ex06)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import resample_poly

from asdlib.data.dcase import MACHINE_TYPES, MIMII_TYPES
from asdlib.data.synth import synth_clip
from asdlib.experiment import score_files


def load_like_the_model(path: str | Path, seconds: float, sr: int = 16000) -> np.ndarray:
    """Exercise 1: a recording as the model sees it: mono, ``sr`` Hz, the first ``seconds`` (zero-padded).
    ``-> (L,)`` float32, ``L = round(seconds * sr)``."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)  # (L', C) at the recorder's rate
    mono = data.mean(axis=1)  # (L',): the channels averaged
    g = math.gcd(sr, rate)
    mono = resample_poly(mono, sr // g, rate // g)  # polyphase resampling, its low-pass filter stops aliasing
    length = round(seconds * sr)
    return np.pad(mono, (0, max(0, length - len(mono))))[:length].astype(np.float32)  # crop or zero-pad


def calibrated_threshold(calibration_scores, quantile: float) -> float:
    """Exercise 2: the empirical ``quantile`` of the known-normal scores (about 1 - quantile false alarms).
    The rule itself, ``lambda scores: np.quantile(scores, 0.99)``, can be checked as well as its value."""
    return float(np.quantile(np.asarray(calibration_scores, dtype=float), quantile))


def class_index(machine_type: str, machine_id: int) -> int:
    """Exercise 3: the 41-class label of STgram-MFN's paper-era code: 7 slots per machine type."""
    slot = machine_id if machine_type in MIMII_TYPES else machine_id - 1  # Toy types' IDs start at 1
    return 7 * MACHINE_TYPES.index(machine_type) + slot


def record_takes(folder: Path, n: int, *, machine_type: str, machine_id: int, seconds: float, rate: int,
                 rng: np.random.Generator, seed: int, name: str) -> Path:
    """Simulate ``n`` healthy mono takes of ``seconds`` at ``rate`` Hz in ``folder`` (emptied first)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.wav"):
        old.unlink()
    g = math.gcd(rate, 16000)
    for k in range(n):
        wave = synth_clip(machine_type, machine_id, label="normal", seconds=seconds, rng=rng, seed=seed)  # 16 kHz
        sf.write(folder / f"{name} {k + 1:02d}.wav", resample_poly(wave, rate // g, 16000 // g), rate)
    return folder


def healthy_scores(checkpoint: Path, folders: list[Path], *, machine_type: str, machine_id: int) -> np.ndarray:
    """The anomaly scores of every recording in ``folders`` (load_audio's warnings silenced). ``-> (N,)``"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = score_files(checkpoint, folders, machine_type=machine_type, machine_id=machine_id, progress=False)
    return table["score"].to_numpy()


def calibration_study(checkpoint: Path, calibration_folder: Path, full: pd.DataFrame, *, machine_type: str,
                      machine_id: int, clip_seconds: float, quantile: float, work: Path,
                      seed: int = 0) -> pd.DataFrame:
    """Exercise 4 (open): the threshold from the healthy recordings, from ten more 48 kHz mono takes added to
    them, and from padded (short) takes only, and the share of the full-length new takes each flags.
    ``full``: the new takes' ``score`` and ``recorded as`` columns (the notebook's ``full``).

    Model answer. Ten more healthy takes move the threshold a little, up or down: a high quantile of a few
    dozen scores rests on the few highest of them, so each added score can shift it, and with more scores it
    steadies (its spread shrinks roughly like 1/√n). That the new takes are mono at 48 kHz changes nothing:
    ``load_audio`` mixes down and resamples, so the model hears the same kind of 16 kHz mono clip. Padded
    takes are another matter: their last 40 % is digital silence, which the model never heard in training,
    so their scores are not those of full-length healthy takes. With the shipped run they score far higher,
    so a threshold calibrated on them alone sits far above every full-length take: no false alarms, and
    most faults pass unflagged (the table shows it for your run). The false-alarm rate follows ``quantile``
    only when the calibration takes are recorded exactly like the ones you score: same length, recorder,
    placement and room.
    """
    rng = np.random.default_rng(seed + 4)
    takes = dict(machine_type=machine_type, machine_id=machine_id, rate=48000, rng=rng, seed=seed)
    more = record_takes(work / "more_normal", 10, seconds=1.2 * clip_seconds, name="extra take", **takes)
    short = record_takes(work / "short_normal", 10, seconds=0.6 * clip_seconds, name="short take", **takes)
    machine = dict(machine_type=machine_type, machine_id=machine_id)
    calibrations = {"as recorded": healthy_scores(checkpoint, [calibration_folder], **machine),
                    "plus ten 48 kHz mono takes": healthy_scores(checkpoint, [calibration_folder, more], **machine),
                    "padded takes only": healthy_scores(checkpoint, [short], **machine)}
    rows = {}
    for how, scores in calibrations.items():
        threshold = float(np.quantile(scores, quantile))
        flagged = full["score"] > threshold
        rows[how] = {"calibration takes": len(scores), "threshold": threshold,
                     "healthy flagged": flagged[full["recorded as"] == "normal"].mean(),
                     "faulty flagged": flagged[full["recorded as"] == "anomaly"].mean()}
    return pd.DataFrame(rows).T

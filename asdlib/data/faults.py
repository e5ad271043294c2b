"""Faults that leave a machine's identity alone: the same added sounds and spectral changes for every machine ID.

The faults of :mod:`asdlib.data.machines` displace the characteristics that tell the IDs of a type apart (speed,
harmonic ratios, resonances, modulation, rhythm, noise colour), so a detector that classifies machine IDs notices
them. The faults here do not touch those characteristics: a steady broadband hiss (a leak, a worn bearing's
roar), knocks at random times (loose parts, debris) and a smooth change of the spectral envelope (a cover, a
filter, a different mounting) with the same shapes and levels whatever the ID. An ID classifier has no reason to
look at them; a density model on plain log-mel statistics sees them as far from the normal clips. The factory
parameter ``fault_target`` of :func:`asdlib.data.synth.generate_dataset` chooses between the two families.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal

from asdlib.data.machines import impulses, shaped_noise

COMMON_FAULTS = ("hiss", "knocks", "envelope")


def hiss(n: int, sr: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Steady broadband noise above a random edge (0.5-2 kHz), RMS ``-12 + 16 * strength`` dB re the machine:
    ``-> (L,)`` float32 (relative to a unit-RMS machine)."""
    lo = float(np.exp(rng.uniform(np.log(500), np.log(2000))))
    x = shaped_noise(n, sr, lambda f: (f > lo).astype(np.float32) + 1e-3, rng)
    return x * np.float32(10 ** ((-12 + 16 * strength) / 20))


def knocks(n: int, sr: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Short broadband knocks at random times (1.5-4 per second), peaks ``6 + 14 * strength`` dB re the machine's
    RMS: ``-> (L,)`` float32 (relative to a unit-RMS machine)."""
    times = rng.uniform(0, n / sr, rng.poisson(rng.uniform(1.5, 4.0) * n / sr))
    t = np.arange(int(0.04 * sr), dtype=np.float32) / sr
    ir = rng.standard_normal(len(t)).astype(np.float32) * np.exp(-t / 0.006)  # (N,) a dull knock, 6-ms decay
    ir = scipy.signal.lfilter([1.0, -0.9], [1.0], ir).astype(np.float32)  # brighter than the factory's clanks
    ir /= np.abs(ir).max()
    amps = np.exp(rng.normal(0, 0.3, len(times))) * 10 ** ((6 + 14 * strength) / 20)
    return impulses(times, amps, ir, n, sr)


def envelope_gain(f: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth bump or dip of ``6 + 12 * strength`` dB, 0.8 octave wide, centred at 250-5000 Hz: amplitude gain
    at frequencies ``f`` (Hz), ``(N,) -> (N,)``."""
    centre = np.exp(rng.uniform(np.log(250), np.log(5000)))
    db = rng.choice([-1.0, 1.0]) * (6 + 12 * strength)
    octaves = np.log2(np.maximum(np.asarray(f, np.float32), 1.0) / centre)
    return (10 ** (db * np.exp(-0.5 * (octaves / 0.8) ** 2) / 20)).astype(np.float32)


def add_common_fault(kind: str, machine: np.ndarray, fault: np.ndarray, strength: float, sr: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply fault ``kind`` (one of :data:`COMMON_FAULTS`) to a rendered machine: ``(L,), (L,) -> (L,), (L,)``.

    Returns ``(machine, fault)``: the envelope change reshapes the machine's sound, the added sounds join the
    additive fault part at a level relative to the machine's RMS."""
    n = len(machine)
    if kind == "envelope":
        gain = envelope_gain(scipy.fft.rfftfreq(n, 1 / sr), strength, rng)
        return scipy.fft.irfft(scipy.fft.rfft(machine) * gain, n).astype(np.float32), fault
    if kind not in ("hiss", "knocks"):
        raise ValueError(f"unknown ID-independent fault {kind!r}; expected one of {', '.join(COMMON_FAULTS)}")
    added = (hiss if kind == "hiss" else knocks)(n, sr, strength, rng)
    rms = np.float32(np.sqrt(np.mean(machine**2)) + 1e-12)
    return machine, (fault + added * rms).astype(np.float32)


__all__ = ["COMMON_FAULTS", "add_common_fault", "envelope_gain", "hiss", "knocks"]

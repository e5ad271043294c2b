"""The procedural DCASE2020-style dataset: the series' default data, generated offline in seconds to minutes.

:func:`generate_dataset` writes the exact DCASE2020 Task 2 layout (``<out>/<type>/train/normal_id_XX_….wav``,
``<out>/<type>/test/{normal,anomaly}_id_XX_….wav``; 16 kHz mono 16-bit PCM) plus ``dataset.json`` (the manifest)
and ``clips.csv`` (each clip's anomaly kind, strength and SNR). Training clips exist for all 41 IDs, test clips
for the 23 development IDs, as in the merged train folders of the seed code. A clip is one machine
(:mod:`asdlib.data.machines`: its ID's signature, perturbed for an anomaly) mixed with factory noise at a random SNR
(MIMII mixes at -6/0/6 dB) and set to the level of the real recordings. Every clip's randomness comes from
``(seed, type, id, split, label, index)``, so a clip's bytes never depend on what else is generated.

Normal clips are the same in every generator version; how anomalies are drawn is the version's
:class:`~asdlib.data.calibration.Calibration` (``version=``): per type the fault strength, the kinds, and the
factory parameter ``fault_target``, which moves faults from what tells machine IDs apart (0:
:mod:`asdlib.data.machines`'s faults) to what every ID shares (1: :mod:`asdlib.data.faults`); ``anomaly_levels``
lets anomalous clips' levels spread as on the real recordings. Version 2 draws every fault ID-coupled at equal
levels; version 3 is calibrated against the published per-type results (``bench/results/synth_calibration.md``).
"""
from __future__ import annotations

import csv
import json
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft
import soundfile as sf
from tqdm.auto import tqdm

from asdlib.data.calibration import calibration
from asdlib.data.dcase import ALL_IDS, DEV_IDS, MACHINE_TYPES, clip_name, parse_types
from asdlib.data.faults import COMMON_FAULTS, add_common_fault
from asdlib.data.machines import (TWO_PI, IdSignature, impulses, make_anomalous, make_signature, render,
                                  shaped_noise)

GENERATOR_VERSION = 3  # asdlib.data.calibration: version 3 is calibrated against the published DCASE2020 results
SR = 16000


@dataclass(frozen=True)
class SynthSize:
    """A named dataset size: clip length and clips per ID (train) / per development ID and label (test)."""

    name: str
    seconds: float
    n_train: int
    n_test_normal: int
    n_test_anomaly: int


SIZES: dict[str, SynthSize] = {
    "smoke": SynthSize("smoke", 2.0, 6, 4, 4),          # CI: seconds to generate
    "default": SynthSize("default", 2.0, 120, 50, 50),  # make run, notebooks and the reference runs
    "full": SynthSize("full", 10.0, 900, 100, 150),     # DCASE-like, for GPU users
}

# Level of the real recordings (median RMS, dBFS) and its clip-to-clip spread; SNR range of the machine over
# the factory noise (dB); factory-noise spectrum (dB at the knots, Hz; only its shape matters) and recording band
# (high-/low-pass, Hz). The knots were fitted so that the long-term spectrum of normal clips follows the real
# recordings of each type (bench/realism.py compares them).
LEVEL_DBFS = {"fan": (-39.1, 0.2), "pump": (-39.2, 0.3), "slider": (-39.2, 0.3), "valve": (-39.0, 0.2),
              "ToyCar": (-34.0, 1.5), "ToyConveyor": (-22.2, 2.5)}
SNR_DB = {"fan": (-6, 6), "pump": (-6, 6), "slider": (-6, 6), "valve": (-6, 6), "ToyCar": (-3, 9),
          "ToyConveyor": (-3, 9)}
KNOTS_HZ = (20, 60, 120, 250, 500, 1000, 2000, 4000, 6000, 8000)
BACKGROUND_DB = {
    "fan": (-9.4, 0.0, -10.2, -11.8, -13.6, -16.5, -24.7, -30.7, -32.0, -32.8),
    "pump": (-6.0, 0.0, -5.4, -11.8, -17.1, -21.1, -20.5, -29.9, -35.1, -38.6),
    "slider": (2.8, 6.2, 0.0, -1.5, -12.2, -9.6, -19.5, -26.8, -24.9, -23.0),
    "valve": (0.8, 4.2, -6.0, 0.0, -3.4, -15.6, -19.4, -18.5, -13.1, -13.0),
    "ToyCar": (-40.3, 1.4, 0.0, -3.8, -19.9, -15.4, -26.2, -34.2, -37.6, -38.2),
    "ToyConveyor": (0.0, 0.0, 0.0, -21.6, -28.9, -20.1, -30.6, -42.0, -51.4, -53.8),
}
BAND_HZ = {"ToyCar": (90, 7400), "ToyConveyor": (90, 7400)}  # others: (12, 7800)
# With anomaly_levels=True: an anomalous clip's level is a normal clip's plus N(mean, sd) dB, fitted on the real
# clips of ../shared/real_samples (anomalous clip minus the median normal clip of the same machine ID; the sd with
# the normal clips' own spread removed). bench/synth_factory.py --levels measures it. The toys' real anomalous
# clips spread no more than their normal ones (ToyCar 1.9 vs 2.1 dB, ToyConveyor 1.2 vs 2.9 over all clips), so
# their offsets get no spread of their own: the normal levels' spread (LEVEL_DBFS) is already the real one.
ANOMALY_LEVEL_DB = {"fan": (0.3, 0.9), "pump": (1.5, 1.9), "slider": (0.8, 1.3), "valve": (-0.3, 0.6),
                    "ToyCar": (0.8, 0.0), "ToyConveyor": (0.2, 0.0)}
FACTORY_DEFAULTS = dict(fault_target=0.0, anomaly_levels=False)  # dataset.json of older datasets lacks them


def clip_rng(seed: int, machine_type: str, machine_id: int, *keys: int) -> np.random.Generator:
    """An independent generator for ``(seed, type, id, *keys)`` (numpy SeedSequence)."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(machine_type.encode()), machine_id,
                                                         *keys]))


def id_signature(machine_type: str, machine_id: int, seed: int = 0) -> IdSignature:
    """The healthy sound of machine ``(machine_type, machine_id)`` in the dataset drawn with ``seed``."""
    return make_signature(machine_type, machine_id, clip_rng(seed, machine_type, machine_id, 7919))


def factory_noise(machine_type: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Factory background, different in every clip: coloured noise, hum lines and clanks of other machines.

    Unit-RMS noise part; ``-> (L,)`` float32. This is the nuisance an ID classifier learns to ignore."""
    knots = np.log(KNOTS_HZ)
    db = np.asarray(BACKGROUND_DB[machine_type]) + rng.normal(0, 1.0, len(knots))
    db += rng.normal(0, 0.6) * (knots - np.log(1000)) / np.log(2)  # colour: +-0.6 dB/octave

    def power(f):
        return 10 ** (np.interp(np.log(np.maximum(f, 1.0)), knots, db) / 10)
    level = 1 + 0.15 * np.sin(np.linspace(0, rng.uniform(1, 6), n) + rng.uniform(0, 7))
    times = rng.uniform(0, n / sr, rng.poisson(0.3 * n / sr))  # clanks: short loud stretches of the same noise
    decay = np.exp(-np.arange(int(0.03 * sr), dtype=np.float32) / (0.006 * sr))
    level += impulses(times, 10 ** (rng.uniform(0, 9, len(times)) / 20), decay, n, sr)
    x = shaped_noise(n, sr, power, rng) * level.astype(np.float32)
    t, grid = np.arange(n) / sr, np.linspace(0, sr / 2, 1025)
    total = power(grid).sum() * grid[1]
    for _ in range(rng.integers(0, 4)):  # hum lines of other machines, 3-15 dB above the noise around them
        f = np.exp(rng.uniform(np.log(100), np.log(6000)))
        a = np.sqrt(2 * power(f) * max(25.0, f / 8) / total * 10 ** (rng.uniform(3, 15) / 10))
        x += np.float32(a) * np.sin((TWO_PI * np.mod(f * t + rng.random(), 1.0)).astype(np.float32))
    return x


def band_limit(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """The recording chain's band: smooth high-pass at ``lo`` and low-pass at ``hi`` (Hz): ``(L,) -> (L,)``."""
    f = scipy.fft.rfftfreq(len(x), 1 / sr).astype(np.float32)
    gain = 1 / np.sqrt((1 + (lo / np.maximum(f, 1.0)) ** 10) * (1 + (f / hi) ** 64))  # amplitude
    return scipy.fft.irfft(scipy.fft.rfft(x) * gain.astype(np.float32), len(x))


def render_clip(machine_type: str, machine_id: int, *, label: str = "normal", seconds: float = 10.0,
                sr: int = SR, rng: np.random.Generator, seed: int = 0, kind: str | None = None,
                strength: float | None = None, difficulty: float = 1.0, fault_target: float | None = None,
                anomaly_levels: bool | None = None, version: int = GENERATOR_VERSION) -> tuple[np.ndarray, dict]:
    """One clip and what it is: ``(wave (L,) float32, info)``; see :func:`synth_clip`."""
    n = int(round(seconds * sr))
    sig = id_signature(machine_type, machine_id, seed)
    cal = calibration(version)
    fault_target = cal.fault_target[machine_type] if fault_target is None else fault_target
    anomaly_levels = cal.anomaly_levels if anomaly_levels is None else anomaly_levels
    info, common = dict(kind="", strength=0.0), False
    if label == "anomaly":
        common = kind in COMMON_FAULTS if kind else _common_fault(fault_target, rng)
        kind = kind or str(rng.choice(list(cal.common_kinds if common else cal.kinds[machine_type])))
        if strength is None:
            scale = (cal.common_scale if common else cal.scale)[machine_type]
            strength = rng.uniform(0.25, 1.0) * scale / difficulty
        if not common:
            sig = make_anomalous(sig, kind, strength, rng)
        info = dict(kind=kind, strength=round(float(strength), 4))
    machine, fault = render(sig, n, sr, rng)
    if common:
        machine, fault = add_common_fault(kind, machine, fault, strength, sr, rng)
    scale = 1 / (np.sqrt(np.mean(machine**2)) + 1e-12)
    snr = rng.uniform(*SNR_DB[machine_type])
    band = BAND_HZ.get(machine_type, (12, 7800))
    base = band_limit(machine * np.float32(scale * 10 ** (snr / 20)) + factory_noise(machine_type, n, sr, rng),
                      sr, *band)
    if fault.any():
        fault = band_limit(fault * np.float32(scale * 10 ** (snr / 20)), sr, *band)
    mean_db, std_db = LEVEL_DBFS[machine_type]
    level_db = rng.normal(mean_db, std_db)
    if anomaly_levels and label == "anomaly":  # the whole anomalous clip at a normal level plus a real offset
        level_db += rng.normal(*ANOMALY_LEVEL_DB[machine_type])
        gain = 10 ** (level_db / 20) / np.sqrt(np.mean((base + fault) ** 2))
    else:
        gain = 10 ** (level_db / 20) / np.sqrt(np.mean(base**2))
    wave = (base + fault) * np.float32(gain)  # fault sounds add to the level, as in the real anomalies
    wave *= np.float32(min(1.0, 0.98 / (np.abs(wave).max() + 1e-12)))  # never clip
    return wave.astype(np.float32), dict(info, snr_db=round(float(snr), 2))


def _common_fault(fault_target: float, rng: np.random.Generator) -> bool:
    """Whether an anomalous clip's fault leaves the ID signature alone (probability ``fault_target``).

    Draws from ``rng`` only for 0 < fault_target < 1, so that fault_target 0 gives the version-2 clips."""
    if not 0.0 <= fault_target <= 1.0:
        raise ValueError(f"fault_target must lie in [0, 1], got {fault_target!r} (0: faults move what tells IDs "
                         "apart, 1: faults leave it alone)")
    return fault_target == 1.0 or (fault_target > 0.0 and bool(rng.random() < fault_target))


def synth_clip(machine_type: str, machine_id: int, *, label: str = "normal", seconds: float = 10.0,
               sr: int = SR, rng: np.random.Generator | int | None = None, seed: int = 0,
               kind: str | None = None, strength: float | None = None, difficulty: float = 1.0,
               fault_target: float | None = None, anomaly_levels: bool | None = None,
               version: int = GENERATOR_VERSION) -> np.ndarray:
    """One procedural clip of machine ``(machine_type, machine_id)``: ``-> (L,)`` float32 in [-1, 1].

    ``seed`` picks the dataset (the ID signatures), ``rng`` the clip. For ``label="anomaly"``, ``kind`` (one of
    ``ANOMALIES[machine_type]`` or of the ID-independent ``asdlib.data.faults.COMMON_FAULTS``) and ``strength``
    (0 = healthy, ~1 = severe) are drawn when not given; ``fault_target``, ``anomaly_levels`` and ``version`` as
    in :func:`generate_dataset`."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return render_clip(machine_type, machine_id, label=label, seconds=seconds, sr=sr, rng=rng, seed=seed,
                       kind=kind, strength=strength, difficulty=difficulty, fault_target=fault_target,
                       anomaly_levels=anomaly_levels, version=version)[0]


# ---------------------------------------------------------------------------------------------------- the files
def plan(machine_types: tuple[str, ...], n_train: int, n_normal: int, n_anomaly: int) -> list[tuple]:
    """All clips of a dataset as ``(machine_type, machine_id, split, label, number)``, in file order."""
    jobs = []
    for t in machine_types:
        jobs += [(t, i, "train", "normal", k) for i in ALL_IDS[t] for k in range(n_train)]
        jobs += [(t, i, "test", "normal", k) for i in DEV_IDS[t] for k in range(n_normal)]
        jobs += [(t, i, "test", "anomaly", k) for i in DEV_IDS[t] for k in range(n_anomaly)]
    return jobs


def _write_job(job: tuple, out: str, params: dict) -> dict:
    """Render one planned clip and write it atomically (temporary name, then rename); return its row."""
    machine_type, machine_id, split, label, number = job
    rel = f"{machine_type}/{split}/{clip_name(label, machine_id, number)}"
    rng = clip_rng(params["seed"], machine_type, machine_id, int(split == "test"), int(label == "anomaly"), number)
    wave, info = render_clip(machine_type, machine_id, label=label, seconds=params["seconds"], sr=params["sr"],
                             rng=rng, seed=params["seed"], difficulty=params["difficulty"],
                             fault_target=params["fault_target"], anomaly_levels=params["anomaly_levels"],
                             version=params.get("version", GENERATOR_VERSION))
    path = Path(out) / rel
    tmp = path.with_suffix(".tmp")
    sf.write(tmp, wave, params["sr"], subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
    return dict(file=rel, machine_type=machine_type, machine_id=machine_id, split=split, label=label, **info)


def _write_star(args):
    return _write_job(*args)


def _counts(jobs: list[tuple]) -> dict:
    counts: dict = {}
    for t, _, split, label, _ in jobs:
        c = counts.setdefault(t, {}).setdefault(split, {})
        c[label] = c.get(label, 0) + 1
    return counts


def _clear(out: Path) -> None:
    """Remove what a previous generation wrote (only the DCASE layout's wav files and our two files)."""
    for t in MACHINE_TYPES:
        for split in ("train", "test"):
            for p in (out / t / split).glob("*.wav"):
                p.unlink()
    for name in ("dataset.json", "clips.csv"):
        (out / name).unlink(missing_ok=True)


def _check_existing(out: Path, manifest: dict, overwrite: bool) -> str:
    """``"done"`` (same dataset already there), ``"resume"``, or ``"new"``; refuses a different dataset."""
    path = out / "dataset.json"
    old = json.loads(path.read_text()) if path.is_file() else None
    if old is not None and isinstance(old.get("params"), dict):
        old = dict(old, params={**FACTORY_DEFAULTS, **old["params"]})  # written before the factory options
    same = old is not None and {k: old.get(k) for k in ("generator", "version", "params")} == \
        {k: manifest[k] for k in ("generator", "version", "params")}
    if same:
        return "done" if old.get("complete") else "resume"
    if overwrite:
        _clear(out)
        return "new"
    if old is not None or any(out.glob("*/*/*.wav")):
        what = f"a different dataset ({path})" if old is not None else "wav files but no dataset.json"
        raise FileExistsError(f"{out} already holds {what}; pick another folder or pass overwrite=True "
                              "(CLI: --overwrite) to replace it")
    return "new"


def _params(size, machine_types, seed, seconds, n_train, n_test, difficulty, fault_target=None,
            anomaly_levels=None, version=GENERATOR_VERSION) -> dict:
    """Every parameter of a dataset, the size's defaults filled in (what ``dataset.json`` records).

    ``fault_target`` None is the version's calibration: recorded as null from version 3 on (the per-type table of
    :mod:`asdlib.data.calibration`), as the single value 0.0 in version 2, whose datasets recorded that."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    base = SIZES[size]
    n_test = (base.n_test_normal, base.n_test_anomaly) if n_test is None else n_test
    n_normal, n_anomaly = (n_test, n_test) if isinstance(n_test, int) else n_test
    return dict(size=size, machine_types=list(parse_types(machine_types)), seed=int(seed),
                seconds=float(seconds or base.seconds), n_train=int(base.n_train if n_train is None else n_train),
                n_test_normal=int(n_normal), n_test_anomaly=int(n_anomaly), difficulty=float(difficulty), sr=SR,
                fault_target=_fault_target(fault_target, version),
                anomaly_levels=bool(calibration(version).anomaly_levels if anomaly_levels is None else anomaly_levels))


def _fault_target(value: float | None, version: int) -> float | None:
    """What ``dataset.json`` records: the value given, else the version's default (version 2: 0.0 for every
    type; later versions: null, i.e. the per-type table of :mod:`asdlib.data.calibration`)."""
    if value is not None:
        return float(value)
    return 0.0 if version == 2 else None


def generate_dataset(out: str | os.PathLike, *, size: str = "default", machine_types=None, seed: int = 0,
                     seconds: float | None = None, n_train: int | None = None,
                     n_test: int | tuple[int, int] | None = None, difficulty: float = 1.0,
                     fault_target: float | None = None, anomaly_levels: bool | None = None,
                     version: int = GENERATOR_VERSION, overwrite: bool = False, progress: bool = True,
                     workers: int = 1) -> dict:
    """Write a procedural DCASE2020-style dataset to ``out``; return a summary (path, counts per type/split/label).

    ``size`` is a key of :data:`SIZES`; ``seconds``, ``n_train`` (clips per ID) and ``n_test`` (per development
    ID: one number for both labels or ``(n_normal, n_anomaly)``) override it. ``difficulty`` > 1 makes the
    anomalies subtler (fault strength / difficulty).

    ``fault_target`` in [0, 1] is the share of anomalous clips whose fault leaves alone what tells the machine
    IDs apart, for every type: at 0 every fault displaces the ID signature (speed, harmonic ratios, resonances,
    modulation, rhythm, noise colour), so detecting anomalies by classifying IDs works; at 1 every fault is an
    ID-independent change (knocks, a spectral-envelope change; version 2 also a hiss; :mod:`asdlib.data.faults`),
    which an ID classifier has no reason to notice and a density model on log-mel statistics does. None (the
    default) is ``version``'s calibrated per-type value (:mod:`asdlib.data.calibration`). ``anomaly_levels=True``
    draws anomalous clips' levels around the normal level with the real clips' offsets (:data:`ANOMALY_LEVEL_DB`);
    None is the version's setting; normal clips are unchanged. Both are recorded in ``dataset.json``'s params,
    ``version`` (the calibration of the anomalies) in its ``version``.

    Regenerating the same dataset does nothing; a different one in the same folder is refused unless
    ``overwrite=True``. ``workers`` > 1 uses that many processes."""
    params = _params(size, machine_types, seed, seconds, n_train, n_test, difficulty, fault_target, anomaly_levels,
                     version)
    if params["fault_target"] is not None:  # a bad value fails before any file is written
        _common_fault(params["fault_target"], np.random.default_rng(0))
    jobs = plan(tuple(params["machine_types"]), params["n_train"], params["n_test_normal"], params["n_test_anomaly"])
    out = Path(out)
    manifest = dict(generator="asdlib.data.synth", version=version, params=params, counts=_counts(jobs),
                    total=len(jobs), complete=False)
    out.mkdir(parents=True, exist_ok=True)
    state = _check_existing(out, manifest, overwrite)
    summary = dict(path=str(out), counts=manifest["counts"], total=len(jobs), generated=state != "done")
    if state == "done":
        if progress:
            print(f"{out}: this dataset is already there (same dataset.json); nothing to do")
        return summary
    (out / "dataset.json").write_text(json.dumps(manifest, indent=1))
    rows = _run_jobs(jobs, out, dict(params, version=version), progress=progress, workers=workers)
    _write_csv(out / "clips.csv", rows)
    (out / "dataset.json").write_text(json.dumps(dict(manifest, complete=True), indent=1))
    return summary


def _run_jobs(jobs, out: Path, params: dict, *, progress: bool, workers: int) -> list[dict]:
    for t in params["machine_types"]:
        for split in ("train", "test"):
            (out / t / split).mkdir(parents=True, exist_ok=True)
    args = [(job, str(out), params) for job in jobs]
    bar = dict(total=len(jobs), desc=f"synth {out.name}", unit="clip", disable=not progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(tqdm(pool.map(_write_star, args, chunksize=16), **bar))
    return [_write_job(*a) for a in tqdm(args, **bar)]


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["file"])
        w.writeheader()
        w.writerows(rows)


__all__ = ["SIZES", "SynthSize", "generate_dataset", "synth_clip", "render_clip", "id_signature"]

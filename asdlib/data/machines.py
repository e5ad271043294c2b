"""Per-machine-type sound recipes of the procedural dataset: ID signatures, rendering and anomaly kinds.

Each machine type is one *design*: a tonal part (components at multiples ``k`` of a fundamental ``f0``), the
machine's own noise (airflow, flow, friction) with a colour and structural resonances, an amplitude modulation,
and for some types a rhythm (slider strokes, valve clicks, conveyor thumps). Every machine ID draws small
deviations from its type's design in *all* of these characteristics at once, so IDs are close but
distinguishable and no single coarse cue separates them. A faulty machine is the same recipe rendered with a
perturbed signature: anomalies shift exactly the characteristics that tell IDs apart (speed, harmonic ratios,
resonances, modulation, rhythm, noise colour; non-harmonic fault impulses through the machine's own
resonances); purely additive bursts are one kind in four or five. Rendering is vectorised numpy in float32;
:mod:`asdlib.data.synth` adds factory noise, sets the level and writes files.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal

TWO_PI = 2 * np.pi


@dataclass(frozen=True)
class IdSignature:
    """The sound of one machine (one ID, healthy or faulty). Tuples have one entry per component."""

    machine_type: str
    machine_id: int
    f0: float                    # Hz: rotation / motor rate; tonal components sit at k * f0
    harm_k: tuple[int, ...]      # (H,) which multiples of f0 sound
    harm_db: tuple[float, ...]   # (H,) their levels (dB)
    res_hz: tuple[float, ...]    # (R,) structural resonances: centre (Hz)
    res_bw: tuple[float, ...]    # (R,) bandwidth (Hz)
    res_db: tuple[float, ...]    # (R,) gain (dB)
    tilt: float                  # dB/octave colour of the machine's own noise
    noise_db: float              # its level relative to the tonal part
    am_ratio: float              # modulation rate of that noise / f0 (blade pass, pulsation, wheel)
    am_depth: float              # 0..1
    period: float = 0.0          # s: rhythm (stroke, valve cycle, belt joint); 0 = steady machine
    duty: float = 0.5            # fraction of the period moving / open / to the second thump
    event_db: float = -120.0     # level of the rhythmic events (clicks, thumps)
    irregularity: float = 0.005  # speed wobble and rhythm timing jitter (fraction)
    fault_rate: float = 0.0      # Hz: fault impulses at a non-harmonic rate (0 = none)
    fault_db: float = -120.0
    burst_db: float = -120.0     # additive rubbing / rattling noise bursts


# Type designs. gate: "stroke" (slider: speed and loudness follow the motion), "valve" (hum and hiss while open),
# None (steady). Numbers were tuned against the long-term spectra of real clips (bench/realism.py).
DESIGNS: dict[str, dict] = {
    "fan": dict(f0=23.5, harm_k=(1, 2, 3, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60, 66),
                harm_db=(-14, -18, -22, 0, -4, -8, -11, -13, -15, -17, -18, -16, -19, -21),
                res_hz=(450, 1250, 2900, 5200), res_bw=(120, 90, 350, 800), res_db=(6, 14, 8, 5),
                tilt=-4.5, noise_db=3.0, am_ratio=6.0, am_depth=0.3, gate=None),
    "pump": dict(f0=24.5, harm_k=(1, 2, 3, 4, 5, 7, 10, 12, 14, 18, 21, 24, 28, 35, 42),
                 harm_db=(-10, -12, -15, -16, -18, -2, -16, -20, -6, -18, -9, -20, -12, -14, -16),
                 res_hz=(350, 900, 2100, 4300), res_bw=(100, 150, 300, 600), res_db=(8, 10, 7, 5),
                 tilt=-4.0, noise_db=4.0, am_ratio=7.0, am_depth=0.35, gate=None),
    "slider": dict(f0=95.0, harm_k=(1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24),
                   harm_db=(0, -3, -6, -8, -10, -9, -14, -12, -16, -15, -18, -20),
                   res_hz=(700, 1800, 3500, 6000), res_bw=(150, 250, 450, 900), res_db=(8, 10, 7, 5),
                   tilt=-2.0, noise_db=2.0, am_ratio=0.0, am_depth=0.0, period=1.6, duty=0.7,
                   event_db=8.0, gate="stroke"),
    "valve": dict(f0=50.0, harm_k=(1, 2, 3, 4, 5, 6), harm_db=(-12, -6, -14, -16, -20, -22),
                  res_hz=(1100, 2600, 4800, 7000), res_bw=(150, 250, 400, 600), res_db=(10, 8, 9, 8),
                  tilt=-1.0, noise_db=-12.0, am_ratio=0.0, am_depth=0.0, period=0.95, duty=0.35,
                  event_db=20.0, gate="valve"),
    "ToyCar": dict(f0=160.0, harm_k=(1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 24),
                   harm_db=(0, -4, -7, -9, -12, -14, -16, -18, -20, -12, -20, -20),
                   res_hz=(600, 1700, 3800, 6000), res_bw=(150, 250, 500, 900), res_db=(8, 8, 6, 4),
                   tilt=-7.0, noise_db=2.0, am_ratio=1 / 16, am_depth=0.25, gate=None),
    "ToyConveyor": dict(f0=62.0, harm_k=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 20),
                        harm_db=(0, -3, -6, -7, -9, -10, -12, -13, -15, -14, -17, -16, -20, -22),
                        res_hz=(250, 700, 1600, 3200), res_bw=(80, 150, 300, 600), res_db=(8, 8, 5, 3),
                        tilt=-9.0, noise_db=4.0, am_ratio=0.0, am_depth=0.0, period=0.42, duty=0.5,
                        event_db=10.0, click=0.02, gate=None),
}

# Spread of the ID deviations around a design (std; "log" fields multiply by exp(N(0, s))), times ID_SPREAD and
# the type's CLOSENESS. Faults move the same fields by FAULT_SIGMAS of these spreads at strength 1, so a faulty
# clip lands off its own ID's cluster, often between the IDs (what ID-classification detectors need).
SPREAD = dict(f0=0.015, harm_db=2.5, res_hz=0.04, res_bw=0.15, res_db=2.0, tilt=0.5, noise_db=1.5,
              am_depth=0.2, period=0.06, duty=0.05, event_db=1.5)
ID_SPREAD = 1.5
FAULT_SIGMAS = 8.0 / 3
CLOSENESS = {"ToyConveyor": 0.4}  # < 1: IDs of this type are closer (harder to tell apart)


def spread(machine_type: str, key: str) -> float:
    """Std of the ID-to-ID deviations of one signature field for one machine type."""
    return SPREAD[key] * ID_SPREAD * CLOSENESS.get(machine_type, 1.0)


def make_signature(machine_type: str, machine_id: int, rng: np.random.Generator) -> IdSignature:
    """Draw one ID's signature: the type's design plus small deviations in every characteristic."""
    design = DESIGNS[machine_type]
    defaults = dict(period=0.0, duty=0.5, event_db=-120.0)

    def draw(key: str, log: bool):
        v = np.asarray(design.get(key, defaults.get(key)), float)
        e = rng.normal(0, spread(machine_type, key), v.shape)
        out = np.round(v * np.exp(e) if log else v + e, 4)
        return float(out) if out.ndim == 0 else tuple(out.tolist())

    logs = {"f0", "res_hz", "res_bw", "am_depth", "period"}
    fields = {key: draw(key, key in logs) for key in SPREAD}
    return IdSignature(machine_type, machine_id, harm_k=tuple(design["harm_k"]),
                       am_ratio=float(design["am_ratio"]), **fields)


# ---------------------------------------------------------------------------------------------------- rendering
def resonance_gain(f: np.ndarray, sig: IdSignature) -> np.ndarray:
    """Power gain of the structural resonances at frequencies ``f`` (Hz): ``(N,) -> (N,)``, 1 away from them."""
    f = np.asarray(f, np.float32)[..., None]
    hz, bw, g = (np.asarray(v, np.float32) for v in (sig.res_hz, sig.res_bw, sig.res_db))
    peaks = 1.0 + (10 ** (g / 10) - 1) / (1 + ((f - hz) / (bw / 2)) ** 2)  # > 0 also for a notch (g < 0)
    return peaks.prod(-1)


def shaped_noise(n: int, sr: int, power, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ``power(f)`` (f in Hz), unit RMS: ``-> (L,)`` float32."""
    f = scipy.fft.rfftfreq(n, 1 / sr).astype(np.float32)
    grid = np.linspace(0, sr / 2, 2049, dtype=np.float32)  # the spectrum is smooth: evaluate on 4-Hz steps
    spec = np.empty(len(f), np.complex64)
    spec.real, spec.imag = rng.standard_normal((2, len(f)), dtype=np.float32)
    spec *= np.interp(f, grid, np.sqrt(power(grid))).astype(np.float32)
    x = scipy.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def smooth_noise(n: int, sr: int, corr_s: float, rng: np.random.Generator) -> np.ndarray:
    """Slowly varying random curve, unit std, about one new value per ``corr_s`` seconds: ``-> (L,)``."""
    m = int(n / sr / corr_s) + 3
    return np.interp(np.arange(n) / sr / corr_s, np.arange(m) - 1.0, rng.standard_normal(m)).astype(np.float32)


def tonal(sig: IdSignature, turns: np.ndarray, speed: np.ndarray, sr: int,
          rng: np.random.Generator) -> np.ndarray:
    """Sum of sinusoids at ``k * f0 * speed(t)``, levels ``harm_db`` times the resonances: ``(L,) -> (L,)``.

    ``turns``: the fundamental's phase in cycles, ``cumsum(f0 * speed) / sr`` (float64)."""
    phase = (TWO_PI * np.mod(turns, 1.0)).astype(np.float32)
    k = np.asarray(sig.harm_k)
    fk = k * sig.f0 * float(speed.max())
    amp = 10 ** (np.asarray(sig.harm_db) / 20) * np.sqrt(resonance_gain(k * sig.f0, sig)) * (fk < 0.45 * sr)
    amp *= np.exp(rng.normal(0, 0.06, len(k)))  # per-clip level jitter (~0.5 dB)
    out, tmp = np.zeros(len(speed), np.float32), np.empty(len(speed), np.float32)
    phases = rng.uniform(0, TWO_PI, len(k)).astype(np.float32)
    for kk, a, p in zip(k.astype(np.float32), amp.astype(np.float32), phases):
        if a > 0:  # float32 throughout: numpy's vectorised float32 sin is ~10x faster than float64
            np.multiply(phase, kk, out=tmp)
            tmp += p
            np.sin(tmp, out=tmp)
            tmp *= a
            out += tmp
    return out


def machine_noise(sig: IdSignature, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The machine's own noise: colour ``tilt`` dB/octave through the resonances, level ``noise_db``: ``(L,)``."""
    def power(f):
        lowcut = f**2 / (f**2 + 60.0**2)  # little energy below ~60 Hz
        return (np.maximum(f, 150.0) / 1000) ** (sig.tilt / 3.0103) * lowcut * resonance_gain(f, sig)
    return shaped_noise(n, sr, power, rng) * np.float32(10 ** (sig.noise_db / 20))


def impulse_response(sig: IdSignature, sr: int, rng: np.random.Generator, *, ms: float = 60.0,
                     high: float = 0.0, click: float = 1.0) -> np.ndarray:
    """A knock through the machine's resonances (damped modes + a short broadband click), peak 1: ``(N,)``.

    ``high`` > 0 favours the upper resonances (bearing and rail faults ring high); ``click`` weighs the
    broadband part (1 for a valve's metallic click, ~0 for a dull thump)."""
    t = np.arange(int(sr * ms / 1000), dtype=np.float32) / sr
    ir = click * rng.standard_normal(len(t)).astype(np.float32) * np.exp(-t / 0.0015)
    for r, (hz, bw, g) in enumerate(zip(sig.res_hz, sig.res_bw, sig.res_db)):
        if hz < 0.48 * sr:
            colour = sig.tilt * np.log2(hz / 1000)  # the structure rings with the machine's colour
            w = 10 ** ((g + colour + high * 6 * r) / 20) * (1 + 0.1 * rng.standard_normal())
            ir += w * np.exp(-np.pi * bw * t) * np.sin(TWO_PI * hz * t + rng.uniform(0, TWO_PI))
    return ir / np.abs(ir).max()


def impulses(times: np.ndarray, amps: np.ndarray, ir: np.ndarray, n: int, sr: int) -> np.ndarray:
    """Place ``ir`` at ``times`` (s) with amplitudes ``amps``: ``(E,), (E,), (N,) -> (L,)``."""
    x = np.zeros(n, np.float32)
    idx = np.round(np.asarray(times) * sr).astype(int)
    keep = (idx >= 0) & (idx < n)
    np.add.at(x, idx[keep], np.asarray(amps, np.float32)[keep])
    return scipy.signal.oaconvolve(x, ir)[:n].astype(np.float32)


def event_times(sig: IdSignature, seconds: float, rng: np.random.Generator, offsets: tuple[float, ...]):
    """Times (s) of the rhythmic events at ``offsets`` (fractions of the period), jittered by irregularity.

    Returns ``(times (E,), which (E,), start)``: ``which`` indexes ``offsets``, ``start`` is the random phase (s)
    the clip begins at."""
    start = rng.uniform(0, sig.period)
    cycles = np.arange(int(seconds / sig.period) + 2)[:, None]
    t = ((cycles + np.asarray(offsets)[None]) * sig.period - start).ravel()  # (cycles * offsets,)
    which = np.tile(np.arange(len(offsets)), len(cycles))
    t = t + rng.normal(0, 0.25 * sig.irregularity * sig.period, t.shape)
    keep = rng.random(t.shape) >= 1.5 * max(sig.irregularity - 0.02, 0)  # faulty rhythms drop events
    return t[keep], which[keep], start


def stroke_gate(sig: IdSignature, n: int, sr: int, start: float, rng: np.random.Generator) -> np.ndarray:
    """Slider speed profile in [0, 1]: a smooth move forward, a pause, a move back, a pause: ``(L,)``."""
    t = np.arange(n, dtype=np.float32) / sr
    warp = sig.irregularity * sig.period * smooth_noise(n, sr, sig.period, rng)
    u = np.mod((t + start + warp) / sig.period, 1.0)  # position within the stroke cycle
    half = sig.duty / 2
    move = np.where(u < 0.5, u, u - 0.5) / half  # 0..1 during a move
    return np.where(move < 1, np.sin(np.pi * np.clip(move, 0, 1)), 0).astype(np.float32)


def valve_gate(times_open: np.ndarray, sig: IdSignature, n: int, sr: int) -> np.ndarray:
    """1 while the valve is open (from each opening click for ``duty * period``), else 0: ``(L,)``."""
    t = np.arange(n, dtype=np.float32) / sr
    if len(times_open) == 0:  # a faulty valve can miss every opening of a short clip
        return np.zeros(n, np.float32)
    idx = np.searchsorted(times_open, t, side="right") - 1
    since = t - np.where(idx >= 0, times_open[np.maximum(idx, 0)], -1e9)
    return (since < sig.duty * sig.period).astype(np.float32)


def render(sig: IdSignature, n: int, sr: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n`` samples of one machine: ``(machine (L,), additive fault events (L,))``, float32."""
    seconds, gate_kind = n / sr, DESIGNS[sig.machine_type]["gate"]
    speed = 1 + rng.normal(0, 0.004) + (0.002 + 0.5 * sig.irregularity) * smooth_noise(n, sr, 0.7, rng)
    gate = np.ones(n, np.float32)
    events = np.zeros(n, np.float32)
    if sig.period > 0:
        offsets = {"stroke": (0.0, sig.duty / 2, 0.5, 0.5 + sig.duty / 2)}.get(gate_kind, (0.0, sig.duty))
        times, which, start = event_times(sig, seconds, rng, offsets)
        if gate_kind == "stroke":
            gate = stroke_gate(sig, n, sr, start, rng)
        elif gate_kind == "valve":
            gate = valve_gate(np.sort(times[which == 0]), sig, n, sr)
        amps = np.exp(rng.normal(0, 0.15, len(times))) * 10 ** (sig.event_db / 20)
        ir = impulse_response(sig, sr, rng, click=DESIGNS[sig.machine_type].get("click", 1.0))
        events = impulses(times, amps, ir, n, sr)
    if gate_kind == "stroke":
        speed = speed * np.maximum(gate, 0.05)  # the motor whine follows the slide's speed
    turns = np.cumsum(sig.f0 / sr * speed, dtype=np.float64)  # (L,) revolutions of the fundamental
    am_phase = (TWO_PI * np.mod(sig.am_ratio * turns, 1.0)).astype(np.float32)
    am = 1 + sig.am_depth * np.sin(am_phase + np.float32(rng.uniform(0, TWO_PI)))
    body = tonal(sig, turns, speed, sr, rng) + machine_noise(sig, n, sr, rng) * am
    return body * gate + events, faults(sig, n, sr, gate, rng)


def faults(sig: IdSignature, n: int, sr: int, gate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Additive fault sounds: impulses at ``fault_rate`` through the resonances, and noise bursts: ``(L,)``."""
    out = np.zeros(n, np.float32)
    if sig.fault_rate > 0:
        times = np.arange(rng.uniform(0, 1 / sig.fault_rate), n / sr, 1 / sig.fault_rate)
        times = times + rng.normal(0, 0.02 / sig.fault_rate, len(times))
        amps = np.exp(rng.normal(0, 0.3, len(times))) * 10 ** (sig.fault_db / 20)
        out += impulses(times, amps, impulse_response(sig, sr, rng, ms=25, high=1.0), n, sr) * gate
    if sig.burst_db > -100:
        env = np.clip(smooth_noise(n, sr, 0.15, rng) - 1.0, 0, None)  # a few random bursts
        lo = rng.uniform(800, 3000)
        burst = shaped_noise(n, sr, lambda f: ((f > lo) & (f < 2.5 * lo)).astype(np.float32) + 1e-3, rng)
        out += burst * env * np.float32(10 ** (sig.burst_db / 20))
    return out


# ------------------------------------------------------------------------------------------------------ anomalies
def _sign(rng):
    return rng.choice([-1.0, 1.0])


def _shift(sig, key, a):  # a fault's typical displacement of a field: FAULT_SIGMAS ID-spreads at strength 1
    return FAULT_SIGMAS * SPREAD[key] * ID_SPREAD * a  # the same physical size for every type


def _speed(sig, a, rng):  # voltage change, load, clogging: everything rotates faster or slower
    s = np.exp(_sign(rng) * _shift(sig, "f0", a))
    return dataclasses.replace(sig, f0=sig.f0 * s, period=sig.period / s)


def _harmonics(sig, a, rng):  # missing / extra harmonics: the harmonic ratios change
    h = len(sig.harm_db)
    d = rng.normal(0, _shift(sig, "harm_db", a), h) * (rng.random(h) < 0.5)
    return dataclasses.replace(sig, harm_db=tuple(np.add(sig.harm_db, d)))


def _resonance(sig, a, rng):  # a loose or cracked part: resonances move and change gain
    r = len(sig.res_hz)
    move = np.where(rng.random(r) < 0.5, np.exp(_sign(rng) * _shift(sig, "res_hz", a)), 1.0)
    return dataclasses.replace(sig, res_hz=tuple(np.multiply(sig.res_hz, move)),
                               res_db=tuple(np.add(sig.res_db, rng.normal(0, _shift(sig, "res_db", a), r))))


def _modulation(sig, a, rng):  # imbalance, pulsation: stronger, slightly shifted modulation
    depth = sig.am_depth * np.exp(_shift(sig, "am_depth", a)) + 0.15 * a
    return dataclasses.replace(sig, am_ratio=sig.am_ratio * (1 + _sign(rng) * 0.1 * a),
                               am_depth=float(min(depth, 0.95)))


def _colour(sig, a, rng):  # leakage, clogging, dry friction: the noise's colour and level change
    return dataclasses.replace(sig, tilt=sig.tilt + _sign(rng) * _shift(sig, "tilt", a),
                               noise_db=sig.noise_db + _sign(rng) * _shift(sig, "noise_db", a))


def _rhythm(sig, a, rng):  # sticking valve, loose belt: irregular timing, changed period and duty
    duty = float(np.clip(sig.duty + _sign(rng) * _shift(sig, "duty", a), 0.1, 0.9))
    return dataclasses.replace(sig, irregularity=sig.irregularity + 0.2 * a, duty=duty,
                               period=sig.period * float(np.exp(_sign(rng) * _shift(sig, "period", a))))


def _impulses(sig, a, rng):  # bearing / rail / gear-tooth damage, extra clicks: impulses at a non-harmonic rate
    rhythmic = sig.period > 0
    rate = rng.uniform(1.3, 2.7) / sig.period if rhythmic else min(sig.f0 * rng.uniform(2.6, 5.4), 60.0)
    level = (sig.event_db + 4 if rhythmic else 0.0) - 14 + 12 * a
    return dataclasses.replace(sig, fault_rate=float(rate), fault_db=float(level))


def _bursts(sig, a, rng):  # rubbing, rattling: additive noise bursts, the same for every ID
    return dataclasses.replace(sig, burst_db=-10 + 14 * a)


def _drift(sig, a, rng):  # every fault also nudges the fine detail a little (speed, harmonic levels)
    f0 = sig.f0 * np.exp(rng.normal(0, _shift(sig, "f0", a) / 4))
    harm = np.add(sig.harm_db, rng.normal(0, _shift(sig, "harm_db", a) / 4, len(sig.harm_db)))
    return dataclasses.replace(sig, f0=float(f0), harm_db=tuple(harm))


PERTURB = {"speed": _speed, "harmonics": _harmonics, "resonance": _resonance, "modulation": _modulation,
           "colour": _colour, "rhythm": _rhythm, "impulses": _impulses, "bursts": _bursts}

# Anomaly kinds per type: name -> the signature perturbations it applies (each with the clip's strength).
ANOMALIES: dict[str, dict[str, tuple[str, ...]]] = {
    "fan": {"imbalance": ("modulation", "harmonics"), "voltage": ("speed", "harmonics"),
            "clogging": ("resonance", "colour"), "bearing": ("impulses", "resonance"), "rubbing": ("bursts",)},
    "pump": {"leakage": ("colour", "resonance"), "clogging": ("speed", "modulation"),
             "contamination": ("harmonics", "impulses"), "cavitation": ("bursts", "colour")},
    "slider": {"rail_damage": ("impulses", "resonance"), "loose_belt": ("rhythm", "speed"),
               "no_grease": ("colour", "harmonics"), "rattle": ("bursts",)},
    "valve": {"irregular": ("rhythm", "harmonics"), "sticking": ("rhythm", "resonance"),
              "worn_seat": ("resonance", "colour"), "extra_clicks": ("impulses", "colour")},
    "ToyCar": {"shaft": ("modulation", "speed"), "gear": ("harmonics", "resonance"),
               "tire": ("impulses", "modulation"), "voltage": ("speed", "colour"), "rattle": ("bursts",)},
    "ToyConveyor": {"belt_slip": ("rhythm", "speed"), "roller": ("impulses", "resonance"),
                    "motor": ("harmonics", "colour"), "rattle": ("bursts",)},
}
STRENGTH = {"slider": 1.6, "valve": 1.6, "ToyConveyor": 1.4}  # how far faults go, per type


def make_anomalous(sig: IdSignature, kind: str, strength: float, rng: np.random.Generator) -> IdSignature:
    """The signature of ``sig``'s machine with fault ``kind`` at ``strength`` (0 = healthy, ~1 = severe)."""
    sig = _drift(sig, strength, rng)
    for name in ANOMALIES[sig.machine_type][kind]:
        sig = PERTURB[name](sig, strength, rng)
    return sig

"""The procedural dataset: layout and format, determinism, idempotency, realism against real clips."""
from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdlib.data import faults, machines, synth
from asdlib.evaluation.baseline import ltas_db, rms_dbfs
from asdlib.data.dcase import ALL_IDS, DEV_IDS, MACHINE_TYPES, parse_clip_name
from asdlib.data.faults import COMMON_FAULTS, add_common_fault
from asdlib.data.machines import ANOMALIES, make_anomalous

SMALL = dict(size="smoke", seconds=0.5, n_train=2, n_test=(1, 2), progress=False)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "all"
    synth.generate_dataset(out, **SMALL)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob("*/*/*.wav"))}


def test_sizes_are_frozen_dataclasses():
    assert {"smoke", "default", "full"} <= set(synth.SIZES)
    for name, size in synth.SIZES.items():
        assert size.name == name and size.seconds > 0 and size.n_train > 0
        with pytest.raises(dataclasses.FrozenInstanceError):
            size.seconds = 1.0
    assert synth.SIZES["full"].seconds == 10.0


def test_layout_names_and_format(small_dataset):
    for t in MACHINE_TYPES:
        train = sorted((small_dataset / t / "train").glob("*.wav"))
        test = sorted((small_dataset / t / "test").glob("*.wav"))
        names = [parse_clip_name(p.name) for p in train]
        assert {c.label for c in names} == {"normal"} and {c.machine_id for c in names} == set(ALL_IDS[t])
        assert len(train) == 2 * len(ALL_IDS[t])
        names = [parse_clip_name(p.name) for p in test]
        assert {c.machine_id for c in names} == set(DEV_IDS[t])
        assert sum(c.label == "normal" for c in names) == len(DEV_IDS[t])
        assert sum(c.label == "anomaly" for c in names) == 2 * len(DEV_IDS[t])
        for p in train[:2] + test[-2:]:
            info = sf.info(p)
            assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 8000)
    assert "anomaly_id_00_00000001.wav" in {p.name for p in (small_dataset / "fan" / "test").iterdir()}


def test_manifest_and_clip_table(small_dataset):
    manifest = json.loads((small_dataset / "dataset.json").read_text())
    assert manifest["complete"] and manifest["version"] == synth.GENERATOR_VERSION
    assert manifest["params"]["seed"] == 0 and manifest["params"]["n_test_anomaly"] == 2
    assert manifest["counts"]["valve"] == {"train": {"normal": 14}, "test": {"normal": 4, "anomaly": 8}}
    rows = (small_dataset / "clips.csv").read_text().splitlines()
    assert len(rows) - 1 == manifest["total"] == len(_files(small_dataset))
    kinds = {r.split(",")[5] for r in rows[1:] if ",anomaly," in r}
    assert kinds and kinds <= {k for t in ANOMALIES for k in ANOMALIES[t]} | set(COMMON_FAULTS)


def test_same_seed_same_bytes_other_seed_differs(small_dataset, tmp_path):
    synth.generate_dataset(tmp_path / "again", **SMALL)
    assert _files(tmp_path / "again") == _files(small_dataset)
    synth.generate_dataset(tmp_path / "seed1", **SMALL, seed=1, machine_types="fan")
    other = _files(tmp_path / "seed1")
    assert all(other[k] != _files(small_dataset)[k] for k in other)


def test_subset_of_types_gives_the_same_clips(small_dataset, tmp_path):
    synth.generate_dataset(tmp_path / "sub", **SMALL, machine_types=["valve", "toycar"])
    sub = _files(tmp_path / "sub")
    assert {k.split("/")[0] for k in sub} == {"valve", "ToyCar"}
    full = _files(small_dataset)
    assert all(full[k] == v for k, v in sub.items())


def test_idempotent_and_refuses_a_different_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    first = synth.generate_dataset(out, **SMALL, machine_types="pump")
    assert first["generated"] and first["total"] == 7 * 2 + 4 * 3
    stamp = {p: p.stat().st_mtime_ns for p in out.glob("*/*/*.wav")}
    again = synth.generate_dataset(out, **dict(SMALL, progress=True), machine_types="pump")
    assert not again["generated"] and "nothing to do" in capsys.readouterr().out
    assert stamp == {p: p.stat().st_mtime_ns for p in out.glob("*/*/*.wav")}
    with pytest.raises(FileExistsError, match="overwrite"):
        synth.generate_dataset(out, **SMALL, machine_types="pump", seed=3)
    synth.generate_dataset(out, **SMALL, machine_types="slider", overwrite=True)
    assert not (out / "pump" / "train").exists() or not any((out / "pump" / "train").iterdir())
    assert json.loads((out / "dataset.json").read_text())["params"]["machine_types"] == ["slider"]


def test_refuses_a_folder_of_unknown_wavs(tmp_path):
    (tmp_path / "fan" / "train").mkdir(parents=True)
    sf.write(tmp_path / "fan" / "train" / "normal_id_00_00000000.wav", np.zeros(16), 16000)
    with pytest.raises(FileExistsError, match="no dataset.json"):
        synth.generate_dataset(tmp_path, **SMALL)


def test_process_pool_gives_the_same_bytes(small_dataset, tmp_path):
    synth.generate_dataset(tmp_path / "pool", **SMALL, machine_types="slider", workers=2)
    assert all(_files(small_dataset)[k] == v for k, v in _files(tmp_path / "pool").items())


@pytest.mark.parametrize("machine_type", MACHINE_TYPES)
def test_synth_clip_every_kind_in_range(machine_type):
    i = DEV_IDS[machine_type][0]
    x = synth.synth_clip(machine_type, i, seconds=1.5, rng=1)
    assert x.dtype == np.float32 and x.shape == (24000,)
    assert np.array_equal(x, synth.synth_clip(machine_type, i, seconds=1.5, rng=1))
    for kind in ANOMALIES[machine_type]:
        y = synth.synth_clip(machine_type, i, label="anomaly", kind=kind, strength=1.0, seconds=1.5, rng=2)
        assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
        assert abs(rms_dbfs(y) - synth.LEVEL_DBFS[machine_type][0]) < 12


def test_no_clipping_and_no_failure_for_strong_short_anomalies():
    rng = np.random.default_rng(0)
    for t in MACHINE_TYPES:
        for _ in range(20):
            x = synth.synth_clip(t, int(rng.choice(ALL_IDS[t])), label="anomaly", strength=2.0, seconds=0.5, rng=rng)
            assert np.isfinite(x).all() and np.abs(x).max() <= 0.99


@pytest.mark.parametrize("machine_type", MACHINE_TYPES)
def test_ids_are_close_but_distinct(machine_type):
    sigs = [synth.id_signature(machine_type, i) for i in ALL_IDS[machine_type]]
    f0 = np.array([s.f0 for s in sigs])
    assert len(set(f0)) == len(sigs) and f0.max() / f0.min() < 1.15  # no coarse speed cue
    harm = np.array([s.harm_db for s in sigs])
    assert 0.2 < np.abs(harm - harm.mean(0)).mean() < 5  # dB: several fine differences at once
    assert synth.id_signature(machine_type, ALL_IDS[machine_type][0], seed=1) != sigs[0]


@pytest.mark.parametrize("machine_type", MACHINE_TYPES)
def test_anomalies_move_the_id_signature(machine_type):
    """All kinds but at most one (additive bursts) change the characteristics that tell IDs apart."""
    sig = synth.id_signature(machine_type, DEV_IDS[machine_type][0])
    fields = ("f0", "harm_db", "res_hz", "res_db", "tilt", "noise_db", "am_ratio", "am_depth", "period", "duty")
    drift_only = machines._drift(sig, 1.0, np.random.default_rng(0))  # the small nudge every fault has
    kinds = ANOMALIES[machine_type]
    moved = [k for k in kinds if any(getattr(make_anomalous(sig, k, 1.0, np.random.default_rng(0)), f)
                                     != getattr(drift_only, f) for f in fields)]
    assert len(moved) >= len(kinds) - 1, moved


@pytest.mark.parametrize("machine_type", MACHINE_TYPES)
def test_realism_against_real_clips(machine_type, real_samples_dir):
    """Spectral shape (LTAS, level offset removed) within 3 dB and median level within 6 dB of real clips."""
    real = [sf.read(p, dtype="float32")[0]
            for p in sorted((real_samples_dir / machine_type / "test").glob("normal_*.wav"))]
    ours = [synth.synth_clip(machine_type, i, seconds=2.0, rng=k) for i in DEV_IDS[machine_type] for k in range(3)]
    diff = ltas_db(ours) - ltas_db(real)
    assert np.mean(np.abs(diff - diff.mean())) <= 3.0
    level = np.median([rms_dbfs(x) for x in ours]) - np.median([rms_dbfs(x) for x in real])
    assert abs(level) <= 6.0


# Pinned clips of the `default` dataset: the first training clip of every ID and the first normal and anomalous
# test clips of every development ID, for generator versions 2 and 3 (the reference runs learn from and are scored on
# these clips). Pinned as every 125th int16 sample of each clip plus its energy, in fixtures/synth_fingerprints.npz
# (recorded by fixtures/record_synth_fingerprints.py), not as file hashes: numpy's sin, exp and log take other
# vector code paths on other CPUs (AVX2 against AVX-512) and differ in the last bit, which flips about one int16
# sample in 4000 by one step (test_an_ulp_of_float_math_moves_samples_by_at_most_one_step). A change to the
# generator moves nearly every sample by far more.
FINGERPRINTS = Path(__file__).parent / "fixtures" / "synth_fingerprints.npz"
PINNED = {2: dict(n_train=1, n_test=(1, 1)), 3: dict(n_train=1, n_test=(1, 3))}
STRIDE = 125


def fingerprint(root: Path) -> dict[str, np.ndarray]:
    """The clips under ``root`` in path order: ``names`` (C,), ``samples`` (C, 256) every ``STRIDE``-th int16
    sample of each 2-s clip, ``energy`` (C,) the sum of squares of all its samples, in steps."""
    paths = sorted(root.glob("*/*/*.wav"))
    clips = [sf.read(p, dtype="int16")[0] for p in paths]
    return {"names": np.array([p.relative_to(root).as_posix() for p in paths]),
            "samples": np.stack([x[::STRIDE] for x in clips]),
            "energy": np.array([np.sum(x.astype(np.float64) ** 2) for x in clips])}


def assert_same_clips(root: Path, version: int) -> None:
    """The clips under ``root`` are the pinned clips of ``version``, up to a one-step flip of a few samples."""
    pinned = np.load(FINGERPRINTS)
    fresh = fingerprint(root)
    assert list(fresh["names"]) == list(pinned[f"v{version}/names"])
    steps = np.abs(fresh["samples"].astype(int) - pinned[f"v{version}/samples"])
    assert steps.max() <= 1, f"a sample moved by {steps.max()} steps"
    assert np.mean(steps > 0) < 0.005, f"{np.mean(steps > 0):.2%} of the pinned samples moved"
    energy = np.abs(fresh["energy"] / pinned[f"v{version}/energy"] - 1)
    assert energy.max() < 1e-4, f"a clip's energy moved by {energy.max():.2g} of itself"


def test_version_2_is_still_reproducible(tmp_path):
    synth.generate_dataset(tmp_path / "v2", size="default", version=2, progress=False, **PINNED[2])
    assert_same_clips(tmp_path / "v2", 2)


def test_default_version_3_is_stable_and_changes_only_anomalous_clips(tmp_path):
    assert synth.GENERATOR_VERSION == 3
    synth.generate_dataset(tmp_path / "v3", size="default", progress=False, **PINNED[3])
    assert_same_clips(tmp_path / "v3", 3)
    synth.generate_dataset(tmp_path / "v2", size="default", version=2, progress=False, **PINNED[3])
    v2, v3 = _files(tmp_path / "v2"), _files(tmp_path / "v3")
    assert v2.keys() == v3.keys()
    assert all((v2[k] == v3[k]) == ("/anomaly_" not in k) for k in v2)  # every anomalous clip differs
    manifest = json.loads((tmp_path / "v3" / "dataset.json").read_text())
    assert manifest["version"] == 3 and manifest["params"]["fault_target"] is None
    assert manifest["params"]["anomaly_levels"] is True


def _ulp_noise(function, rng: np.random.Generator, ulps: int):
    """``function`` with each float result moved by a random whole number of ulps in [-ulps, ulps]."""
    def noisy(*args, **kwargs):
        out = function(*args, **kwargs)
        values = np.asarray(out)
        if values.dtype.kind != "f":
            return out
        steps = rng.integers(-ulps, ulps + 1, values.shape)
        moved = values.copy()
        for step in range(ulps):
            moved = np.where(np.abs(steps) > step, np.nextafter(moved, np.where(steps > 0, np.inf, -np.inf)), moved)
        moved = moved.astype(values.dtype)
        if isinstance(out, np.ndarray):
            out[...] = moved  # also what `out=` received
            return out
        return moved[()]
    return noisy


def test_an_ulp_of_float_math_moves_samples_by_at_most_one_step(tmp_path, monkeypatch):
    """What makes the pinned clips (and `pretrained verify`) hold on every CPU: when every result of numpy's
    transcendental functions is up to 4 ulp off, as on another CPU's code path, no int16 sample of the pinned
    clips moves by more than one step, and fewer than 1 in 500 move at all."""
    synth.generate_dataset(tmp_path / "exact", size="default", progress=False, **PINNED[2])
    rng = np.random.default_rng(0)
    noisy_np = types.SimpleNamespace(**{name: getattr(np, name) for name in dir(np) if not name.startswith("__")})
    for name in ("sin", "cos", "exp", "log", "log2", "power", "interp"):
        setattr(noisy_np, name, _ulp_noise(getattr(np, name), rng, ulps=4))
    for module in (synth, machines, faults):
        monkeypatch.setattr(module, "np", noisy_np)
    synth.generate_dataset(tmp_path / "noisy", size="default", progress=False, **PINNED[2])
    monkeypatch.undo()
    exact, noisy = fingerprint_all(tmp_path / "exact"), fingerprint_all(tmp_path / "noisy")
    assert exact.keys() == noisy.keys()
    steps = np.concatenate([np.abs(exact[k] - noisy[k]) for k in exact])
    assert steps.max() == 1  # the noise does reach the clips, and by one step at most
    assert np.mean(steps > 0) < 0.002


def fingerprint_all(root: Path) -> dict[str, np.ndarray]:
    """Every int16 sample of each clip under ``root``, by relative path."""
    return {p.relative_to(root).as_posix(): sf.read(p, dtype="int16")[0].astype(np.int64)
            for p in sorted(root.glob("*/*/*.wav"))}


def test_version_3_draws_the_calibrated_kinds():
    """Kinds come from the version's tables; ToyConveyor mixes in ID-independent faults at its fault_target."""
    from asdlib.data.calibration import calibration

    cal = calibration(3)
    for t in ("valve", "ToyConveyor"):
        kinds = [synth.render_clip(t, 0, label="anomaly", seconds=0.25, rng=np.random.default_rng(k), version=3)[1]
                 ["kind"] for k in range(60)]
        assert set(kinds) <= set(cal.kinds[t]) | set(cal.common_kinds)
        share = np.mean([k in cal.common_kinds for k in kinds])
        assert (share == 0) if cal.fault_target[t] == 0 else 0.1 < share < 0.5
    with pytest.raises(ValueError, match="generator versions"):
        synth.render_clip("fan", 0, label="anomaly", seconds=0.25, rng=np.random.default_rng(0), version=7)


def test_factory_options_at_their_defaults_change_nothing(tmp_path):
    """Version 2's anomalies are version 2's factory options at 0 and off."""
    synth.generate_dataset(tmp_path / "d", **SMALL, machine_types="valve", fault_target=0.0, anomaly_levels=False,
                           version=2)
    synth.generate_dataset(tmp_path / "v2", **SMALL, machine_types="valve", version=2)
    assert _files(tmp_path / "d") == _files(tmp_path / "v2")
    params = json.loads((tmp_path / "d" / "dataset.json").read_text())["params"]
    assert params["fault_target"] == 0.0 and params["anomaly_levels"] is False


def test_a_manifest_from_before_the_factory_options_is_the_same_dataset(tmp_path, capsys):
    out = tmp_path / "old"  # written by version 2, before the factory options existed
    synth.generate_dataset(out, **SMALL, machine_types="fan", version=2)
    manifest = json.loads((out / "dataset.json").read_text())
    for key in ("fault_target", "anomaly_levels"):
        del manifest["params"][key]
    (out / "dataset.json").write_text(json.dumps(manifest))
    assert not synth.generate_dataset(out, **SMALL, machine_types="fan", version=2)["generated"]
    with pytest.raises(FileExistsError, match="overwrite"):
        synth.generate_dataset(out, **SMALL, machine_types="fan", version=2, fault_target=1.0)
    with pytest.raises(FileExistsError, match="overwrite"):
        synth.generate_dataset(out, **SMALL, machine_types="fan")  # today's default: version 3


def test_fault_target_1_leaves_the_id_signature_alone(small_dataset, tmp_path):
    """Every fault is ID-independent; normal clips are the same bytes as at fault_target 0."""
    out = tmp_path / "common"
    synth.generate_dataset(out, **dict(SMALL, n_test=(1, 6)), machine_types="pump", fault_target=1.0)
    assert json.loads((out / "dataset.json").read_text())["params"]["fault_target"] == 1.0
    rows = [r.split(",") for r in (out / "clips.csv").read_text().splitlines()[1:]]
    assert {r[5] for r in rows if r[4] == "anomaly"} <= set(COMMON_FAULTS) and len(rows) == 14 + 4 * 7
    ours, default = _files(out), _files(small_dataset)
    normal = [k for k in ours if "normal_" in k]
    assert normal and all(ours[k] == default[k] for k in normal)
    assert all(ours[k] != default.get(k) for k in ours if "/anomaly_id_" in k)


def test_fault_target_mixes_the_two_kinds_of_fault_and_checks_its_range(tmp_path):
    kinds = {synth.render_clip("fan", 0, label="anomaly", seconds=0.25, rng=np.random.default_rng(k),
                               fault_target=0.5)[1]["kind"] for k in range(40)}
    assert kinds & set(COMMON_FAULTS) and kinds - set(COMMON_FAULTS)
    with pytest.raises(ValueError, match=r"fault_target must lie in \[0, 1\]"):
        synth.generate_dataset(tmp_path / "bad", **SMALL, fault_target=1.5)
    assert not list(tmp_path.glob("bad/*/*/*.wav"))


@pytest.mark.parametrize("kind", COMMON_FAULTS)
def test_common_faults_are_the_same_for_every_machine(kind):
    """The added sound (relative to the machine's level) and the envelope change do not depend on the machine."""
    sr, n = 16000, 8000
    machines_ = [synth.render(synth.id_signature("valve", i), n, sr, np.random.default_rng(0))[0] for i in (0, 2)]
    outs = [add_common_fault(kind, m, np.zeros(n, np.float32), 1.0, sr, np.random.default_rng(1)) for m in machines_]
    for m, (machine, fault) in zip(machines_, outs):
        assert machine.shape == fault.shape == (n,) and np.isfinite(fault).all()
        assert (kind == "envelope") == (not np.array_equal(machine, m)) == (not fault.any())
    if kind == "envelope":
        spectra = [np.abs(np.fft.rfft(m)) for m in machines_]
        keep = np.minimum(*spectra) > 1e-3 * np.max(spectra)  # the gain, where both machines have energy
        gains = [np.abs(np.fft.rfft(out[0]))[keep] / s[keep] for s, out in zip(spectra, outs)]
        np.testing.assert_allclose(gains[0], gains[1], rtol=1e-2)
        assert gains[0].max() / gains[0].min() > 2  # a real change of the envelope
    else:
        added = [out[1] / np.sqrt(np.mean(m**2)) for m, out in zip(machines_, outs)]
        np.testing.assert_allclose(added[0], added[1], rtol=1e-4, atol=1e-6)


def test_anomaly_levels_spread_anomalous_clips_only():
    """Normal clips keep their level; anomalous ones spread around it by the real clips' offsets."""
    def level(label, k, on):
        return rms_dbfs(synth.synth_clip("pump", 0, label=label, seconds=0.5, rng=k, anomaly_levels=on))
    assert all(level("normal", k, True) == level("normal", k, False) for k in range(3))
    off, on = (np.array([level("anomaly", k, flag) for k in range(60)]) for flag in (False, True))
    mean, sd = synth.ANOMALY_LEVEL_DB["pump"]
    assert np.std(on) > 2 * np.std(off) and abs(np.std(on) - np.hypot(sd, 0.3)) < 0.6
    assert abs(np.median(on) - np.median(off) - mean) < 1.0

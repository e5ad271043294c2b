"""asdlib.data.index (index) and asdlib.data.audio (load_audio) on small trees of real wav files written by soundfile."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdlib.data import dcase
from asdlib.data.index import COLUMNS, AudioError, DataError, index_dataset, load_audio, read_ground_truth

SR = 16000


def write_wav(path: Path, *, seconds: float = 0.5, sr: int = SR, channels: int = 1, seed: int = 0,
              subtype: str = "PCM_16", amplitude: float = 0.1) -> np.ndarray:
    """Write ``seconds`` of noise to ``path``; returns what was written, ``(L, channels)``."""
    x = amplitude * np.random.default_rng(seed).standard_normal((round(seconds * sr), channels))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype=subtype)
    return x


def make_tree(base: Path, files: dict[str, list[str]]) -> Path:
    """``{"fan/train": ["normal_id_00_00000000.wav", ...]}`` -> wav files under ``base``."""
    for i, (folder, names) in enumerate(files.items()):
        for j, name in enumerate(names):
            write_wav(base / folder / name, seed=100 * i + j)
    return base


MERGED = {
    "fan/train": ["normal_id_00_00000001.wav", "normal_id_00_00000000.wav", "normal_id_01_00000000.wav"],
    "fan/test": ["anomaly_id_02_00000000.wav", "normal_id_02_00000000.wav", "id_03_00000000.wav"],
    "ToyCar/train": ["normal_id_05_00000000.wav"],
    "valve/test": ["anomaly_id_06_00000003.wav"],
}


@pytest.fixture
def merged(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "merged", MERGED)


def official_tree(root: Path) -> Path:
    return make_tree(root, {
        "dev_data/fan/train": ["normal_id_00_00000000.wav"],
        "dev_data/fan/test": ["anomaly_id_02_00000000.wav", "normal_id_02_00000000.wav"],
        "eval_data/fan/train": ["normal_id_01_00000000.wav"],
        "eval_data/fan/test": ["id_01_00000000.wav", "id_01_00000001.wav", "id_05_00000002.wav"],
        "eval_data/ToyCar/test": ["id_05_00000000.wav"],
    })


# ---------------------------------------------------------------- index: layouts


def test_index_merged_layout(merged: Path):
    df = index_dataset(merged)
    assert tuple(df.columns) == COLUMNS and len(df) == 8
    assert df.machine_id.dtype == np.int64 and df.class_index.dtype == np.int64
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in df.path)
    # fan before valve before ToyCar; train before test; then machine ID and file name
    assert [Path(p).name for p in df.path] == [
        "normal_id_00_00000000.wav", "normal_id_00_00000001.wav", "normal_id_01_00000000.wav",
        "anomaly_id_02_00000000.wav", "normal_id_02_00000000.wav", "id_03_00000000.wav",
        "anomaly_id_06_00000003.wav", "normal_id_05_00000000.wav"]
    assert df.machine_type.tolist() == ["fan"] * 6 + ["valve", "ToyCar"]
    assert df.split.tolist() == ["train"] * 3 + ["test"] * 4 + ["train"]
    assert df.source.tolist() == ["development", "development", "additional", "development", "development",
                                  "evaluation", "development", "additional"]
    assert df.label.tolist() == ["normal"] * 3 + ["anomaly", "normal", "unknown", "anomaly", "normal"]
    assert df.attrs["skipped"] == [] and "manifest" not in df.attrs


def test_index_official_layout_with_ground_truth(tmp_path: Path, reference_dir: Path):
    root = official_tree(tmp_path / "dcase2020")
    gt = reference_dir / "dcase2020_eval_ground_truth.csv"
    df = index_dataset(root, ground_truth=gt)
    by_name = {(r.machine_type, Path(r.path).parents[2].name, Path(r.path).name): r for r in df.itertuples()}
    assert by_name[("fan", "dev_data", "normal_id_00_00000000.wav")].source == "development"
    assert by_name[("fan", "eval_data", "normal_id_01_00000000.wav")].source == "additional"
    ev = df[df.source == "evaluation"]
    assert (ev.split == "test").all() and len(ev) == 4
    truth = read_ground_truth(gt).set_index(["machine_type", "file"]).label
    for r in ev.itertuples():
        assert r.label == truth[(r.machine_type, Path(r.path).name)]
    assert set(ev.label) == {"normal", "anomaly"}  # shared CSV: id_01_00000000 normal, id_01_00000001 anomaly
    assert (df[df.source != "evaluation"].label != "unknown").all()
    # without a ground truth the evaluation clips stay unlabelled
    assert (index_dataset(root)[lambda d: d.source == "evaluation"].label == "unknown").all()


def test_ground_truth_found_in_root(tmp_path: Path, reference_dir: Path):
    root = official_tree(tmp_path / "dcase2020")
    shutil.copy(reference_dir / "dcase2020_eval_ground_truth.csv", root / "eval_data_list.csv")
    assert (index_dataset(root).label != "unknown").all()


def test_ground_truth_labels_merged_layout_too(merged: Path, reference_dir: Path):
    gt = reference_dir / "dcase2020_eval_ground_truth.csv"
    df = index_dataset(merged, ground_truth=gt)
    truth = read_ground_truth(gt).set_index(["machine_type", "file"])
    assert df.label[df.source == "evaluation"].tolist() == [truth.label[("fan", "id_03_00000000.wav")]]


def test_index_procedural_layout_exposes_manifest(merged: Path):
    (merged / "dataset.json").write_text(json.dumps({"generator": "asdlib.data.synth", "size": "smoke"}))
    df = index_dataset(merged)
    assert len(df) == 8 and df.attrs["manifest"]["size"] == "smoke"
    (merged / "dataset.json").write_text(json.dumps({"generator": "asdlib.data.synth", "complete": False}))
    with pytest.warns(UserWarning, match="did not finish"):
        assert len(index_dataset(merged)) == 8
    (merged / "dataset.json").write_text("{ half-written")
    assert "manifest" not in index_dataset(merged).attrs


def test_index_single_machine_type_folder(merged: Path):
    df = index_dataset(merged / "fan")
    assert len(df) == 6 and set(df.machine_type) == {"fan"}
    assert df.path.tolist() == index_dataset(merged, machine_types="fan").path.tolist()


@pytest.mark.parametrize("order", dcase.LABEL_ORDERS)
def test_class_index_follows_label_order(merged: Path, order: str):
    df = index_dataset(merged, label_order=order)
    classes = dcase.label_map(order)
    assert df.class_index.tolist() == [classes[(t, i)] for t, i in zip(df.machine_type, df.machine_id)]


def test_machine_types_filter(merged: Path):
    df = index_dataset(merged, machine_types=["valve", "toycar"])
    assert df.machine_type.tolist() == ["valve", "ToyCar"]
    with pytest.raises(DataError, match="pump.*python -m asdlib synth"):
        index_dataset(merged, machine_types="fan,pump")
    with pytest.raises(ValueError, match="unknown machine type 'drill'"):
        index_dataset(merged, machine_types="drill")


def test_real_samples(real_samples_dir: Path):
    df = index_dataset(real_samples_dir)
    assert len(df) == 93 and tuple(df.machine_type.unique()) == dcase.MACHINE_TYPES
    assert (df.split == "test").all() and (df.source == "development").all()
    assert set(df.label) == {"normal", "anomaly"}
    toycar = df.path[df.machine_type == "ToyCar"].iloc[0]
    assert sf.info(toycar).duration == pytest.approx(11.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an 11-s clip is trimmed to 10 s silently, like the originals do
        waves = np.stack([load_audio(p) for p in df.path])
    assert waves.shape == (93, 160000) and waves.dtype == np.float32
    assert np.abs(waves).max() <= 1.0 and (waves.std(axis=1) > 0).all()


# ---------------------------------------------------------------- ground truth file


def test_read_ground_truth_shared_file(reference_dir: Path):
    gt = read_ground_truth(reference_dir / "dcase2020_eval_ground_truth.csv")
    assert list(gt.columns) == ["machine_type", "file", "original_file", "label"] and len(gt) == 7103
    assert tuple(gt.machine_type.unique()) == ("fan", "pump", "slider", "valve", "ToyCar", "ToyConveyor")
    fan1 = gt[(gt.machine_type == "fan") & gt.file.str.startswith("id_01")]
    assert (fan1.label == "normal").sum() == 100 and (fan1.label == "anomaly").sum() == 326


@pytest.mark.parametrize("text, match", [
    ("fan\nid_01_00000000.wav,normal_id_01_00000098.wav\n", "line 2"),
    ("fan\nid_01_00000000.wav,normal_id_01_00000098.wav,2\n", "line 2"),
    ("id_01_00000000.wav,normal_id_01_00000098.wav,0\n", "line 1"),
    ("drill\nid_01_00000000.wav,x.wav,0\n", "line 1.*unknown machine type"),
    ("fan\n\n", "no labelled rows"),
])
def test_read_ground_truth_malformed(tmp_path: Path, text: str, match: str):
    path = tmp_path / "gt.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_ground_truth(path)
    with pytest.raises(DataError, match="not found"):
        read_ground_truth(tmp_path / "missing.csv")


# ---------------------------------------------------------------- index: bad input


def test_missing_root_says_what_to_run(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist.*python -m asdlib synth --size smoke.*download"):
        index_dataset(tmp_path / "nowhere")


def test_folder_without_data(tmp_path: Path):
    with pytest.raises(DataError, match="no folder of DCASE2020 data.*python -m asdlib synth"):
        index_dataset(tmp_path)
    (tmp_path / "fan").mkdir()
    with pytest.raises(DataError, match="neither a train/ nor a test/ folder"):
        index_dataset(tmp_path)
    (tmp_path / "fan" / "train").mkdir()
    with pytest.raises(DataError, match="no .wav clips"):
        index_dataset(tmp_path)


def test_unknown_machine_type_folder(merged: Path):
    (merged / "drill" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="drill.*not a machine type.*fan, pump, slider, valve, ToyCar, Toy"):
        index_dataset(merged)


BAD_FILES = {
    "fan/train/notes.txt": "not a .wav file",
    "fan/train/normal_id_00_x.wav": "file name is not",
    "fan/test/abnormal_id_00_00000000.wav": "file name is not",
    "fan/train/normal_id_07_00000000.wav": "machine ID 07 is not a fan ID",
    "ToyCar/test/normal_id_00_00000000.wav": "machine ID 00 is not a ToyCar ID",
}


def write_bad(path: Path) -> None:
    if path.suffix == ".wav":
        write_wav(path)
    else:
        path.write_text("a note")


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_raises_naming_it(merged: Path, name: str):
    write_bad(merged / name)
    with pytest.raises(DataError, match=BAD_FILES[name]) as err:
        index_dataset(merged)
    assert str(merged / name) in str(err.value) and "on_error='skip'" in str(err.value)


def test_id_in_wrong_official_part(tmp_path: Path):
    root = official_tree(tmp_path / "dcase2020")
    write_wav(root / "dev_data/fan/train/normal_id_03_00000000.wav")
    with pytest.raises(DataError, match="machine ID 03 is not a fan ID of dev_data"):
        index_dataset(root)


def test_hidden_files_are_ignored(merged: Path):
    (merged / "fan/train/.DS_Store").write_bytes(b"\0\1")
    (merged / "fan/train/._normal_id_00_00000000.wav").write_bytes(b"\0\1")
    (merged / ".cache").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(index_dataset(merged)) == 8


def test_skip_lists_bad_files_in_one_warning(merged: Path):
    for name in BAD_FILES:
        write_bad(merged / name)
    (merged / "drill" / "train").mkdir(parents=True)
    (merged / "fan" / "test" / "extra").mkdir()
    with pytest.warns(UserWarning, match=r"skipped 7 bad file\(s\) or folder\(s\)") as record:
        df = index_dataset(merged, on_error="skip")
    assert len(record) == 1 and len(df) == 8
    skipped = dict(df.attrs["skipped"])
    folders = {str(merged / "drill"), str(merged / "fan/test/extra")}
    assert set(skipped) == {str(merged / n) for n in BAD_FILES} | folders
    assert "unexpected folder" in skipped[str(merged / "fan/test/extra")]
    assert all(BAD_FILES[n] in skipped[str(merged / n)] for n in BAD_FILES)


def test_on_error_is_validated(merged: Path):
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        index_dataset(merged, on_error="ignore")


# ---------------------------------------------------------------- load_audio


def test_load_audio_int16_exact_and_float32(tmp_path: Path):
    x = write_wav(tmp_path / "a.wav", seconds=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = load_audio(tmp_path / "a.wav", seconds=0.5)
    assert y.dtype == np.float32 and y.shape == (8000,)
    assert np.abs(y - x[:, 0]).max() <= 1 / 32768  # 16-bit quantisation only


def test_load_audio_clips_float_wav_to_unit_range(tmp_path: Path):
    write_wav(tmp_path / "loud.wav", subtype="FLOAT", amplitude=3.0)
    y = load_audio(tmp_path / "loud.wav", seconds=None)
    assert y.dtype == np.float32 and np.abs(y).max() == 1.0


def test_load_audio_trims_and_keeps_full_length(tmp_path: Path):
    x = write_wav(tmp_path / "a.wav", seconds=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = load_audio(tmp_path / "a.wav", seconds=None)
        assert np.array_equal(load_audio(tmp_path / "a.wav", seconds=0.25), full[:4000])
    assert len(full) == len(x) == 16000


def test_load_audio_pads_short_clip_with_warning(tmp_path: Path):
    write_wav(tmp_path / "short.wav", seconds=0.25)
    with pytest.warns(UserWarning, match=r"short\.wav: 4000 samples, shorter than 8000; zero-padding"):
        y = load_audio(tmp_path / "short.wav", seconds=0.5)
    assert y.shape == (8000,) and not y[4000:].any() and y[:4000].any()


def test_load_audio_resamples_with_warning(tmp_path: Path):
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "cd.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), 44100, subtype="PCM_16")
    with pytest.warns(UserWarning, match=r"cd\.wav: resampling from 44100 Hz to 16000 Hz"):
        y = load_audio(tmp_path / "cd.wav", seconds=1.0)
    assert y.shape == (16000,) and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins: the tone stays at 1 kHz
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_load_audio_stereo_to_mono(tmp_path: Path):
    x = write_wav(tmp_path / "st.wav", channels=2)
    y = load_audio(tmp_path / "st.wav", seconds=None)
    assert y.shape == (len(x),)
    np.testing.assert_allclose(y, x.mean(axis=1), atol=1 / 32768)


def _truncated(path: Path) -> None:
    write_wav(path, seconds=0.5)
    path.write_bytes(path.read_bytes()[:9000])


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b"\x13\x37 not audio " * 200), "not readable as audio"),
    (lambda p: p.write_bytes(b""), r"empty file \(0 bytes\)"),
    (_truncated, "truncated"),
    (lambda p: sf.write(p, np.zeros(800), SR, format="FLAC"), "a FLAC file, not a wav file"),
    (lambda p: p.write_text("id,label\n1,normal\n"), "not readable as audio"),
    (lambda p: sf.write(p, np.zeros((0, 1)), SR), "no samples"),
    (lambda p: None, "no such file"),
])
def test_load_audio_bad_files(tmp_path: Path, make, match: str):
    path = tmp_path / "normal_id_00_00000000.wav"
    make(path)
    with pytest.raises(AudioError, match=match) as err:
        load_audio(path)
    assert str(path) in str(err.value)
    if match != "no such file":
        assert "on_error='skip'" in str(err.value) or "delete it" in str(err.value)


# ------------------------------------------------------------------------------------ issue 11: reliability
def _set_header_rate(path: Path, rate: int) -> None:
    """Overwrite the sample rate (and byte rate) of a 16-bit mono PCM wav header in place."""
    data = bytearray(path.read_bytes())
    data[24:28], data[28:32] = rate.to_bytes(4, "little"), (2 * rate).to_bytes(4, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("rate", [1, 999, 400_000])
def test_absurd_sample_rate_in_the_header_is_refused(tmp_path: Path, rate: int):
    path = tmp_path / "normal_id_00_00000000.wav"
    write_wav(path, seconds=1.0)
    _set_header_rate(path, rate)
    assert sf.info(path).samplerate == rate  # the header really says so
    with pytest.raises(AudioError, match=f"{path}: its header claims {rate} Hz, outside 1000-384000 Hz"):
        load_audio(path)


def test_long_file_is_trimmed_before_resampling(tmp_path: Path, monkeypatch):
    import asdlib.data.audio

    path = tmp_path / "long.wav"
    write_wav(path, seconds=30.0, sr=44100)
    short = tmp_path / "short.wav"
    write_wav(short, seconds=30.0, sr=44100)
    sf.write(short, sf.read(path, frames=44100 * 2)[0], 44100, subtype="PCM_16")  # its first 2 s
    seen = []
    real = asdlib.data.audio.resample_poly
    monkeypatch.setattr(asdlib.data.audio, "resample_poly", lambda x, up, down: seen.append(len(x)) or real(x, up, down))
    with pytest.warns(UserWarning, match="resampling from 44100 Hz"):
        wave = load_audio(path, seconds=1.0)
    assert seen == [44100 + 256]  # 1 s and a small margin, not 30 s
    with pytest.warns(UserWarning):
        assert np.array_equal(wave, load_audio(short, seconds=1.0))


def test_skip_survives_symlink_loops(merged: Path):
    loop = merged / "fan/train/normal_id_00_00000009.wav"
    loop.symlink_to(loop.name)  # points at itself
    (merged / "fan/test/a.wav").symlink_to("b.wav")
    (merged / "fan/test/b.wav").symlink_to("a.wav")
    with pytest.raises(DataError, match=f"{loop}: cannot read it"):
        index_dataset(merged)
    with pytest.warns(UserWarning, match="skipped 3"):
        df = index_dataset(merged, on_error="skip")
    assert len(df) == 8 and "Too many levels of symbolic links" in dict(df.attrs["skipped"])[str(loop)]


def test_skip_survives_an_unreadable_folder(merged: Path):
    import os
    import subprocess
    import sys

    (merged / "valve/test").chmod(0)
    script = ("import json, sys, warnings; from asdlib.data.index import index_dataset; warnings.simplefilter('ignore');"
              "df = index_dataset(sys.argv[1], on_error='skip'); print(json.dumps([len(df), df.attrs['skipped']]))")
    cmd = [sys.executable, "-c", script, str(merged)]
    if os.geteuid() == 0:  # root reads everything: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a folder unreadable")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    finally:
        (merged / "valve/test").chmod(0o755)
    assert done.returncode == 0, done.stderr
    n, skipped = json.loads(done.stdout)
    assert n == 7 and skipped == [[str(merged / "valve/test"), "cannot list this folder (Permission denied)"]]


def test_index_cli_checks_headers_and_lists_bad_files(merged: Path, capsys):
    from asdlib.cli import main

    (merged / "fan/train/normal_id_00_00000005.wav").write_bytes(b"")
    (merged / "fan/train/normal_id_00_00000006.wav").write_text("not audio at all")
    good = merged / "fan/train/normal_id_00_00000007.wav"
    write_wav(good)
    good.write_bytes(good.read_bytes()[:-400])  # truncated
    assert main(["index", str(merged)]) == 2
    assert "normal_id_00_00000005.wav: empty file" in capsys.readouterr().err
    assert main(["index", str(merged), "--on-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert f"{merged}: 8 clips" in out and "3 file(s) or folder(s) skipped" in out
    assert "normal_id_00_00000005.wav: empty file (0 bytes)" in out
    assert "normal_id_00_00000006.wav: not readable as audio" in out
    assert "normal_id_00_00000007.wav: truncated" in out

"""Find the DCASE2020 Task 2 clips on disk: one index row per wav file.

:func:`index_dataset` auto-detects three layouts and returns a table with one row per clip (``path``,
``machine_type``, ``machine_id``, ``class_index``, ``split``, ``source``, ``label``):

* official: ``root/dev_data/<type>/{train,test}`` (development set), ``root/eval_data/<type>/train``
  (additional training set) and ``root/eval_data/<type>/test`` (evaluation test set; its file names carry no
  label, the organisers' ground truth does, see :func:`read_ground_truth`);
* merged (the original code's layout): ``root/<type>/{train,test}``, the source following from the machine ID;
* procedural: the merged layout plus the generator's ``root/dataset.json`` (as ``df.attrs["manifest"]``).

``root`` may also be a single machine-type folder (``.../fan``). Every problem raises :class:`DataError`
naming the file and the fix; ``on_error="skip"`` skips bad files and folders (unreadable folders and symlink
loops included) and lists them in ``df.attrs["skipped"]``. ``check_audio=True`` also reads each file's wav
header (cheap, no decoding) and reports empty, unreadable, truncated and non-wav files the same way.
:func:`fingerprint` identifies the file list (names and sizes) and :func:`content_fingerprint` a sample of the audio
bytes, so a run can tell which data it was trained on.
:func:`find_wav_files` lists the wav files under any folders (for scoring one's own recordings).
Decoding the audio is :mod:`asdlib.data.audio` (``load_audio`` is re-exported here).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pandas as pd

from asdlib.data import dcase
from asdlib.data.audio import AudioError, DataError, check_header, check_on_error, load_audio

__all__ = ["COLUMNS", "AudioError", "DataError", "content_fingerprint", "find_wav_files", "fingerprint",
           "index_dataset", "load_audio", "read_ground_truth"]

COLUMNS = ("path", "machine_type", "machine_id", "class_index", "split", "source", "label")
SPLITS = ("train", "test")
_MAKE_DATA = ("create one with `python -m asdlib synth --size smoke --out {root}`, or download the real data "
              "with `python -m asdlib download --machines fan --parts dev --out {root}`")


class _Problems:
    """Bad files and folders: raise on the first (``on_error="raise"``) or collect ``(path, reason)``."""

    def __init__(self, on_error: str):
        self.on_error = check_on_error(on_error)
        self.skipped: list[tuple[str, str]] = []

    def __call__(self, path: str | Path, reason: str) -> None:
        if self.on_error == "raise":
            raise DataError(f"{path}: {reason}; fix or delete it, or pass on_error='skip'")
        self.skipped.append((str(path), reason))

    def warn(self) -> None:
        if self.skipped:
            first = "; ".join(f"{p} ({r})" for p, r in self.skipped[:3])
            warnings.warn(f"index_dataset skipped {len(self.skipped)} bad file(s) or folder(s), listed in "
                          f"df.attrs['skipped']; first: {first}", stacklevel=3)


def read_ground_truth(path: str | Path) -> pd.DataFrame:
    """The organisers' evaluation labels: rows ``machine_type, file, original_file, label`` (normal/anomaly).

    The CSV (``eval_data_list.csv``) has a machine-type line, then ``eval_name,original_name,0|1`` rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ground-truth file {path} not found; fetch it with `python -m asdlib download "
                        "--parts ground_truth --out DIR` (it lands in DIR/eval_data_list.csv), or pass "
                        "ground_truth=None")
    rows, machine_type = [], None
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = [f.strip() for f in line.split(",")]
        while fields and not fields[-1]:
            fields.pop()
        if len(fields) == 1:
            try:
                machine_type = dcase.canonical_type(fields[0])
            except ValueError as e:
                raise DataError(f"{path}, line {n}: {e}; is this the DCASE2020 ground-truth file?") from None
        elif len(fields) == 3 and fields[2] in ("0", "1") and machine_type is not None:
            rows.append((machine_type, fields[0], fields[1], "anomaly" if fields[2] == "1" else "normal"))
        elif fields:
            raise DataError(f"{path}, line {n}: expected a machine type or 'eval_file,original_file,0|1' "
                            f"after one, got {line!r}; re-download the file")
    if not rows:
        raise DataError(f"{path} holds no labelled rows; re-download the file")
    return pd.DataFrame(rows, columns=["machine_type", "file", "original_file", "label"])


def index_dataset(root: str | Path, *, machine_types: str | list[str] | None = None,
                  label_order: str = "stgram_paper", ground_truth: str | Path | None = None,
                  on_error: str = "raise", check_audio: bool = False) -> pd.DataFrame:
    """One row per clip under ``root`` (layout auto-detected), sorted by type, split, machine ID, file name.

    ``ground_truth`` labels the evaluation test clips (default: ``root/eval_data_list.csv`` when present);
    without it they are labelled ``"unknown"``. ``class_index`` follows ``dcase.label_map(label_order)``.
    ``check_audio`` reads every wav header (:func:`asdlib.data.audio.check_header`) and treats bad files as problems.
    """
    problems, classes = _Problems(on_error), dcase.label_map(label_order)
    wanted = dcase.parse_types(machine_types)
    root = Path(root).absolute()
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist; " + _MAKE_DATA.format(root=root))
    truth = _truth_lookup(root, ground_truth)
    folders = [(t, f, part) for t, f, part in _type_folders(root, problems) if t in wanted]
    _check_folders(root, folders, wanted if machine_types is not None else ())
    rows = [row for t, f, part in folders for row in _scan_type(f, t, part, problems, check_audio)]
    if not rows and not problems.skipped:
        raise DataError(f"no .wav clips in the train/ and test/ folders under {root}; "
                        + _MAKE_DATA.format(root=root))
    for row in rows:
        row["class_index"] = classes[(row["machine_type"], row["machine_id"])]
        if row["label"] == "unknown" and row["source"] == "evaluation":
            row["label"] = truth.get((row["machine_type"], os.path.basename(row["path"])), "unknown")
    rows.sort(key=lambda r: (dcase.MACHINE_TYPES.index(r["machine_type"]), SPLITS.index(r["split"]),
                             r["machine_id"], os.path.basename(r["path"])))
    df = pd.DataFrame(rows, columns=list(COLUMNS)).astype({"machine_id": "int64", "class_index": "int64"})
    df.attrs.update(root=str(root), label_order=label_order, skipped=problems.skipped)
    _attach_manifest(df, root)
    problems.warn()
    return df


def _truth_lookup(root: Path, ground_truth: str | Path | None) -> dict[tuple[str, str], str]:
    """``(machine_type, eval file name) -> label`` from the ground-truth CSV, or ``{}`` when there is none."""
    if ground_truth is None:
        ground_truth = root / "eval_data_list.csv"
        if not ground_truth.is_file():
            return {}
    gt = read_ground_truth(ground_truth)
    return dict(zip(zip(gt["machine_type"], gt["file"]), gt["label"]))


def fingerprint(index: pd.DataFrame) -> str:
    """A short hash of the clips of ``index``: ``machine_type/split/file name`` and size of each, sorted.

    Cheap (one ``stat`` per file, no reading) and independent of where the dataset lives; a file added, removed,
    renamed or resized changes it (an edit that keeps the size does not).
    """
    entries = []
    for mtype, split, path in zip(index["machine_type"], index["split"], index["path"]):
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        entries.append(f"{mtype}/{split}/{os.path.basename(path)}\0{size}\n")
    return hashlib.sha256("".join(sorted(entries)).encode()).hexdigest()[:16]


def content_fingerprint(index: pd.DataFrame, *, samples: int = 32, block: int = 4096) -> str:
    """A short hash of sampled audio bytes: ``block`` bytes from the middle of ``samples`` clips evenly spread
    over ``index`` (in its order). Tells apart datasets whose names and sizes agree (two seeds of the procedural
    generator) at the cost of ``samples`` small reads; an unreadable clip counts as empty."""
    digest = hashlib.sha256()
    paths = list(index["path"])
    for k in sorted({round(i * (len(paths) - 1) / max(samples - 1, 1)) for i in range(min(samples, len(paths)))}):
        try:
            with open(paths[k], "rb") as f:
                f.seek(max(0, (os.fstat(f.fileno()).st_size - block) // 2))
                digest.update(f.read(block))
        except OSError:
            digest.update(b"\0unreadable")
    return digest.hexdigest()[:16]


def find_wav_files(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """The wav files under ``paths`` (files or folders, walked without recursion limits): ``.wav`` in any case,
    hidden files and folders (``.x``, ``._x.wav``, ``__MACOSX``) ignored as :func:`index_dataset` does;
    ``-> (files, problems)`` where problems lists ``(path, reason)`` for paths that do not exist, folders that
    cannot be listed, and folders named like wav files."""
    files, problems = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found, trouble = _walk_wav(p)
            files += found
            problems += trouble
        elif p.exists() or p.is_symlink():
            files.append(p)
        else:
            problems.append((str(p), "no such file or folder"))
    return files, problems


def _walk_wav(root: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Depth-first walk with an explicit stack (no recursion: any nesting depth), each real folder once."""
    files, problems, stack, seen = [], [], [root], set()
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
            key = os.stat(folder).st_ino, os.stat(folder).st_dev
        except OSError as e:
            problems.append((str(folder), f"cannot list this folder ({e.strerror or e}); check its permissions"))
            continue
        if key in seen:  # a symlink loop
            continue
        seen.add(key)
        subfolders = []
        for entry in entries:
            if entry.name.startswith(".") or entry.name == "__MACOSX":
                continue
            is_wav = entry.name.lower().endswith(".wav")
            if _is_dir(entry):
                subfolders.append(Path(entry.path))
                if is_wav:
                    problems.append((entry.path, "a folder, not a wav file"))
            elif is_wav:
                files.append(Path(entry.path))
        stack += [f for f in reversed(subfolders) if not f.name.lower().endswith(".wav")]
    return sorted(files), problems


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name))


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _type_folders(root: Path, problems: _Problems) -> list[tuple[str, Path, str | None]]:
    """``(machine_type, folder, part)`` for every machine-type folder; part is dev_data / eval_data / None."""
    official = [root / p for p in ("dev_data", "eval_data") if (root / p).is_dir()]
    if official:
        return [(t, f, part.name) for part in official for t, f in _typed(_visible_dirs(part), problems)]
    if any((root / s).is_dir() for s in SPLITS):  # root is one machine-type folder
        return [(t, f, None) for t, f in _typed([root], problems)]
    return [(t, f, None) for t, f in _typed(_visible_dirs(root), problems)]


def _typed(folders: list[Path], problems: _Problems) -> list[tuple[str, Path]]:
    out = []
    for folder in folders:
        try:
            out.append((dcase.canonical_type(folder.name), folder))
        except ValueError:
            known = ", ".join(dcase.MACHINE_TYPES)
            problems(folder, f"{folder.name!r} is not a machine type (known: {known})")
    return out


def _scan_type(folder: Path, machine_type: str, part: str | None, problems: _Problems,
               check_audio: bool = False) -> list[dict]:
    """Rows for the clips in ``folder/train`` and ``folder/test``; unreadable folders go to ``problems``."""
    splits = [s for s in SPLITS if (folder / s).is_dir()]
    if not splits:
        raise DataError(f"{folder} has neither a train/ nor a test/ folder; "
                        + _MAKE_DATA.format(root=folder.parent))
    rows = []
    for split in splits:
        try:
            entries = sorted(os.scandir(folder / split), key=lambda e: e.name)
        except OSError as e:
            problems(folder / split, f"cannot list this folder ({e.strerror or e})")
            continue
        for entry in entries:
            row = _clip_row(entry, machine_type, split, part, problems, check_audio)
            if row is not None:
                rows.append(row)
    return rows


def _clip_row(entry: os.DirEntry, machine_type: str, split: str, part: str | None,
              problems: _Problems, check_audio: bool = False) -> dict | None:
    """The index row for one directory entry, or None (hidden, or bad and reported to ``problems``)."""
    if _hidden(entry.name):
        return None
    try:
        row, reason = _parse_entry(entry, machine_type, split, part)
    except OSError as e:  # a symlink loop, a dangling link on some systems, a permission problem
        row, reason = None, f"cannot read it ({e.strerror or e})"
    if row is not None and check_audio:
        reason = check_header(entry.path)
        row = row if reason is None else None
    if reason is not None:
        problems(entry.path, reason)
    return row


def _parse_entry(entry: os.DirEntry, machine_type: str, split: str,
                 part: str | None) -> tuple[dict | None, str | None]:
    """``(row, None)`` for a DCASE2020 clip, ``(None, reason)`` for anything else."""
    if entry.is_dir():
        return None, "unexpected folder (expected only .wav files here)"
    if not entry.name.endswith(".wav"):
        return None, "not a .wav file"
    try:
        clip = dcase.parse_clip_name(entry.name)
    except ValueError:
        return None, ("file name is not 'normal_id_XX_NNNNNNNN.wav', 'anomaly_id_XX_NNNNNNNN.wav' or "
                      "'id_XX_NNNNNNNN.wav'")
    source = _source(machine_type, clip.machine_id, split, part)
    if source is None:
        ids = {"dev_data": dcase.DEV_IDS, "eval_data": dcase.EVAL_IDS}.get(part, dcase.ALL_IDS)[machine_type]
        where = f" of {part}" if part else ""
        return None, (f"machine ID {clip.machine_id:02d} is not a {machine_type} ID{where} "
                      f"(valid: {', '.join(f'{i:02d}' for i in ids)})")
    return {"path": os.path.abspath(entry.path), "machine_type": machine_type, "machine_id": clip.machine_id,
            "split": split, "source": source, "label": clip.label}, None


def _source(machine_type: str, machine_id: int, split: str, part: str | None) -> str | None:
    """development / additional / evaluation for a clip, or None when its ID does not belong to ``part``."""
    dev, ev = machine_id in dcase.DEV_IDS[machine_type], machine_id in dcase.EVAL_IDS[machine_type]
    if not {"dev_data": dev, "eval_data": ev}.get(part, dev or ev):
        return None
    if dev:
        return "development"
    return "additional" if split == "train" else "evaluation"


def _check_folders(root: Path, folders: list[tuple[str, Path, str | None]],
                   required: tuple[str, ...]) -> None:
    """Raise when no machine-type folder was found, or none for a type the caller asked for."""
    found = {t for t, _, _ in folders}
    missing = [t for t in required if t not in found]
    if missing or not folders:
        what = f"machine type(s) {', '.join(missing)}" if missing else "DCASE2020 data (<type>/{train,test})"
        raise DataError(f"no folder of {what} under {root}; " + _MAKE_DATA.format(root=root))


def _attach_manifest(df: pd.DataFrame, root: Path) -> None:
    """The procedural generator's ``dataset.json``, when present and readable, as ``df.attrs["manifest"]``."""
    try:
        manifest = json.loads((root / "dataset.json").read_text())
    except (OSError, ValueError):
        return
    df.attrs["manifest"] = manifest
    if isinstance(manifest, dict) and manifest.get("complete") is False:
        warnings.warn(f"{root / 'dataset.json'} says the generation did not finish; run the same "
                      "`python -m asdlib synth` command again to complete it", stacklevel=3)

"""Safe extraction of a DCASE2020 Task 2 zip into the official ``<type>/{train,test}/*.wav`` layout.

Only wav members under ``[top/]<type>/{train,test}/`` are unpacked. Before anything is written the zip is refused
when a member would land outside the target folder (zip-slip), when a member declares more bytes than a DCASE2020
clip can have (:data:`MAX_MEMBER_BYTES`; ``zipfile`` never returns more than a member declares), when the disk
lacks the space for the members still missing, or when an existing wav file has other content. Each member goes
to a temporary name first, so no half-written wav ever carries a real name.
"""
from __future__ import annotations

import os
import shutil
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from asdlib.data.transfer import CHUNK_BYTES, DownloadError, human_size

MAX_MEMBER_BYTES = 2_000_000  # a DCASE2020 clip is 10-11 s of 16-kHz 16-bit mono, ~350 kB; larger = not ours


def _member_targets(zf: zipfile.ZipFile, root: Path, machine_type: str) -> list[tuple[zipfile.ZipInfo, Path]]:
    """``(member, target)`` for every ``[top/]<type>/{train,test}/*.wav`` member; raise on zip-slip members."""
    pairs = []
    for info in zf.infolist():
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise DownloadError(f"{zf.filename}: member {info.filename!r} would be written outside {root} "
                                "(zip-slip); refusing to extract this zip. Delete it and download it again.")
        if info.is_dir() or "__MACOSX" in parts or not parts[-1].endswith(".wav"):
            continue
        for i in range(len(parts) - 2):  # tolerate an extra top folder such as dev_data/
            if parts[i].lower() == machine_type.lower() and parts[i + 1] in ("train", "test"):
                pairs.append((info, root.joinpath(machine_type, *parts[i + 1:])))
                break
    if not pairs:
        raise DownloadError(f"{zf.filename} holds no {machine_type}/train/*.wav or {machine_type}/test/*.wav "
                            "member; is it the right zip?")
    return pairs


def _same(target: Path, info: zipfile.ZipInfo) -> bool:
    """Whether the existing file ``target`` has the size and CRC-32 the zip declares for ``info``."""
    if target.stat().st_size != info.file_size:
        return False
    with open(target, "rb") as f:
        return zlib.crc32(f.read()) == info.CRC


def _check_sizes(zip_path: str | Path, pairs: list, root: Path, max_member_bytes: int) -> None:
    """Refuse members larger than a DCASE clip can be, and a zip that does not fit on the disk (declared sizes;
    ``zipfile`` never returns more bytes than a member declares)."""
    big = [info for info, _ in pairs if info.file_size > max_member_bytes]
    if big:
        raise DownloadError(f"{Path(zip_path).name}: member {big[0].filename!r} declares "
                            f"{human_size(big[0].file_size)}, more than a DCASE2020 clip can be "
                            f"({human_size(max_member_bytes)}); {len(big)} such member(s). Refusing to extract "
                            "(a zip bomb or the wrong zip); delete it.")
    need = sum(info.file_size for info, target in pairs if not target.exists())
    existing = root
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if need > free:
        raise DownloadError(f"{Path(zip_path).name} needs {human_size(need)} to extract, {human_size(free)} free "
                            f"in {existing}; free some space and re-run.")


def extracted_files(zip_path: str | Path, root: str | Path, *, machine_type: str) -> dict[str, int]:
    """``{target path relative to root: size}`` of the wav members :func:`extract_zip` unpacks."""
    with zipfile.ZipFile(zip_path) as zf:
        return {t.relative_to(root).as_posix(): i.file_size for i, t in _member_targets(zf, Path(root), machine_type)}


def extract_zip(zip_path: str | Path, root: str | Path, *, machine_type: str, progress: bool = True,
                max_member_bytes: int = MAX_MEMBER_BYTES) -> dict[str, int]:
    """Unpack ``<type>/{train,test}/*.wav`` of ``zip_path`` under ``root``; ``{"<type>/train": n, ...}``.

    Identical existing files are skipped; existing files with other content, a member declaring more than
    ``max_member_bytes`` or too little free disk space stop it before anything is written.
    """
    root = Path(root)
    try:
        with zipfile.ZipFile(zip_path) as zf:
            pairs = _member_targets(zf, root, machine_type)
            _check_sizes(zip_path, pairs, root, max_member_bytes)
            clash = [t for info, t in pairs if t.exists() and not _same(t, info)]
            if clash:
                raise DownloadError(f"{len(clash)} file(s) from {Path(zip_path).name} already exist with other "
                                    f"content, e.g. {clash[0]}; refusing to overwrite them. Move them away and "
                                    "re-run.")
            for info, target in tqdm(pairs, desc=f"extract {Path(zip_path).name}", unit="file",
                                     disable=not progress):
                if target.exists():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                with zf.open(info) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK_BYTES)
                os.replace(tmp, target)  # never a half-written wav under the real name
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{zip_path} is not a valid zip ({e}); delete it and re-run.") from e
    dirs = [t.parent.relative_to(root).as_posix() for _, t in pairs]
    return {d: dirs.count(d) for d in sorted(set(dirs))}

"""Download the real DCASE2020 Task 2 data from Zenodo, verify it and unpack it into the official layout.

:func:`plan_download` lists what a call would fetch (the records and md5s of :mod:`asdlib.data.zenodo`, minus
what ``out`` already holds); :func:`download` then fetches each zip into ``<out>/zips/*.part`` with the
resumable, retrying transfer of :mod:`asdlib.data.transfer`, checks its md5 and unpacks it with
:mod:`asdlib.data.extract`. Finished zips leave ``<out>/.done/<zip>.json`` listing every extracted file and its
size, so calling again does nothing while those files are there (and re-extracts what is missing). Nothing the
user has is deleted or overwritten: a bad download is kept as ``<zip>.corrupt`` and existing wav files with other
content stop the extraction.
Offline? Put the zips from ``https://zenodo.org/record/<id>`` into ``<out>/zips/`` and run it: they are verified
and extracted.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from asdlib.data.dcase import MACHINE_TYPES, parse_types
from asdlib.data.extract import extract_zip, extracted_files
from asdlib.data.transfer import DownloadError, human_size, md5sum, stream_to, with_retries
from asdlib.data.zenodo import (
    GROUND_TRUTH_NAME,
    PARTS,
    ZENODO_URL,
    PlannedFile,
    format_plan,
    ground_truth_source,
    load_checksums,
    parse_parts,
    planned_file,
    record_files,
    zip_name,
)


def _manual_hint(record: str, out: Path | None) -> str:
    """How to get the zips of ``record`` without this downloader."""
    zips = out / "zips" if out is not None else "<out>/zips"
    return (f"No internet? Download the zips by hand from https://zenodo.org/record/{record} into {zips}/ "
            "and re-run: they will be verified and extracted.")


def _marker(out: Path, name: str) -> Path:
    """Where the completion marker of the zip ``name`` lives."""
    return out / ".done" / f"{name}.json"


def _done_info(out: Path | None, name: str, md5: str | None = None) -> dict | None:
    """The completion marker of ``name`` if it exists, matches ``md5`` and every extracted file is still there
    with its size (older markers without a file list: its folders)."""
    try:
        info = json.loads(_marker(out, name).read_text()) if out is not None else None
    except (OSError, ValueError):
        return None
    if not info or (md5 and info.get("md5") != md5):
        return None
    if "files" in info:
        missing = [f for f, size in info["files"].items() if not _has_size(out / f, size)]
        if missing:
            print(f"{name}: {len(missing)} of {len(info['files'])} extracted file(s) are missing or changed in "
                  f"size, e.g. {missing[0]}; extracting them again")
        return None if missing else info
    return info if all((out / d).is_dir() for d in info.get("dirs", {})) else None


def _has_size(path: Path, size: int) -> bool:
    """Whether ``path`` exists with exactly ``size`` bytes."""
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _write_marker(path: Path, info: dict) -> None:
    """Write a completion marker atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, path)


def plan_download(out: str | Path | None = None, *, machines: str | Sequence[str] | None = None,
                  parts: str | Sequence[str] = ("dev",), base_url: str = ZENODO_URL,
                  ground_truth_url: str | None = None, timeout: float = 30.0, retries: int = 3,
                  backoff: float = 1.0, checksums: str | os.PathLike | dict | None = None) -> list[PlannedFile]:
    """The files a :func:`download` with these options would fetch, with sizes, md5s and ``already_done``.

    Contacts the Zenodo API once per record, unless ``out`` already holds every requested file of that record.
    """
    md5s = load_checksums(checksums)
    types, wanted = parse_types(machines), parse_parts(parts)
    if not types:
        raise ValueError(f"no machine type selected by {machines!r}; expected some of {', '.join(MACHINE_TYPES)}")
    out = Path(out) if out is not None else None
    plan = []
    for part in (p for p in wanted if p in PARTS):
        names = {zip_name(part, t): t for t in types}
        done = {n: _done_info(out, n, md5s.get(n)) for n in names}
        if all(done.values()):  # no network needed
            plan += [PlannedFile(n, part, t, PARTS[part][0], done[n].get("size"), done[n]["md5"],
                                 done[n].get("url", ""), True) for n, t in names.items()]
            continue
        entries = record_files(base_url, PARTS[part][0], timeout=timeout, retries=retries, backoff=backoff)
        for n, t in names.items():
            p = planned_file(n, part, t, entries, base_url, md5s)
            plan.append(replace(p, already_done=done[n] is not None))
    if "ground_truth" in wanted or "eval" in wanted:
        have = out is not None and (out / GROUND_TRUTH_NAME).is_file()
        plan.append(PlannedFile(GROUND_TRUTH_NAME, "ground_truth", "", "", None, "",
                                ground_truth_source(base_url, ground_truth_url), have))
    return plan


def _verify(path: Path, p: PlannedFile) -> None:
    """Check ``path`` against ``p.md5``; on a mismatch move it aside to ``<zip>.corrupt`` and raise."""
    got = md5sum(path)
    if got == p.md5:
        return
    aside, k = path.with_name(f"{p.name}.corrupt"), 1
    while aside.exists():
        aside, k = path.with_name(f"{p.name}.corrupt{k}"), k + 1
    os.replace(path, aside)
    raise DownloadError(
        f"checksum mismatch for {p.name}: expected md5 {p.md5}, got {got}. The file is kept as {aside}; delete "
        f"it and re-run to download it again. If this repeats, check your network or proxy, or download {p.url} "
        f"by hand into {path.parent}/.")


def _obtain_zip(p: PlannedFile, zips: Path, *, timeout: float, retries: int, backoff: float,
                progress: bool) -> tuple[Path, bool]:
    """The verified zip in ``zips`` (downloaded unless already there) and whether it was downloaded now."""
    zip_path, part = zips / p.name, zips / f"{p.name}.part"
    if zip_path.exists():
        print(f"{p.name}: found in {zips}, checking md5")
        _verify(zip_path, p)
        return zip_path, False
    zips.mkdir(parents=True, exist_ok=True)
    print(f"{p.name}: downloading {human_size(p.size)} from {p.url}")
    hint = f"Partial data (if any) stays in {part}; re-run to resume. {_manual_hint(p.record, zips.parent)}"
    with_retries(lambda: stream_to(p.url, part, size=p.size, timeout=timeout, progress=progress),
                 url=p.url, retries=retries, backoff=backoff, hint=hint)
    _verify(part, p)
    os.replace(part, zip_path)
    return zip_path, True


def _fetch_ground_truth(p: PlannedFile, out: Path, *, timeout: float, retries: int, backoff: float) -> None:
    """Fetch the evaluator's ground-truth csv into ``out``; refuse a file whose first line is no machine type."""
    dest, part = out / p.name, out / f"{p.name}.part"
    out.mkdir(parents=True, exist_ok=True)
    part.unlink(missing_ok=True)  # small file: always fetched from the start
    hint = f"Download it by hand from {p.url} into {dest}."
    with_retries(lambda: stream_to(p.url, part, size=None, timeout=timeout, progress=False),
                 url=p.url, retries=retries, backoff=backoff, hint=hint)
    first = part.read_text(errors="replace").lstrip("\ufeff \r\n").split("\n", 1)[0].strip()
    if first not in MACHINE_TYPES:
        raise DownloadError(f"{p.url} does not look like the evaluator's {p.name} (first line {first[:60]!r}, "
                            f"expected a machine type); kept as {part}. Check the URL or your proxy. {hint}")
    os.replace(part, dest)


def download(out: str | Path, *, machines: str | Sequence[str] | None = None,
             parts: str | Sequence[str] = ("dev",), base_url: str = ZENODO_URL,
             ground_truth_url: str | None = None, retries: int = 3, timeout: float = 30.0,
             backoff: float = 1.0, progress: bool = True, dry_run: bool = False,
             keep_zips: bool = True, checksums: str | os.PathLike | dict | None = None) -> dict[str, list]:
    """Download, verify and extract DCASE2020 Task 2 parts into ``out``; idempotent.

    ``machines``: ``"fan,valve"``, a list, or ``None`` for all six; ``parts``: subset of ``dev,additional,eval,
    ground_truth`` (``eval`` brings the ground truth too). Returns ``{"planned": [PlannedFile], "downloaded":
    [names], "extracted": [names], "skipped": [names]}``; ``dry_run`` only prints the plan. Each request is
    retried ``retries`` more times after ``backoff`` · 1, 2, 4 … s; ``keep_zips=False`` deletes each zip once
    it is verified and unpacked. ``timeout``: seconds to wait for an answer, and to receive at least 1 kB, before
    a retry. ``checksums`` (JSON file or dict, zip name -> md5) replaces the pinned :data:`KNOWN_MD5`.
    """
    out = Path(out)
    plan = plan_download(out, machines=machines, parts=parts, base_url=base_url,
                         ground_truth_url=ground_truth_url, timeout=timeout, retries=retries, backoff=backoff,
                         checksums=checksums)
    report = {"planned": plan, "downloaded": [], "extracted": [], "skipped": [p.name for p in plan if p.already_done]}
    if dry_run or all(p.already_done for p in plan):
        print(format_plan(plan) if dry_run else f"everything is already there in {out}; nothing to do")
        return report
    kw = {"timeout": timeout, "retries": retries, "backoff": backoff}
    for p in (p for p in plan if not p.already_done):
        if p.part == "ground_truth":
            _fetch_ground_truth(p, out, **kw)
            report["downloaded"].append(p.name)
            continue
        zip_path, fetched = _obtain_zip(p, out / "zips", progress=progress, **kw)
        report["downloaded"] += [p.name] if fetched else []
        layout = PARTS[p.part][2]
        dirs = extract_zip(zip_path, out / layout, machine_type=p.machine_type, progress=progress)
        files = extracted_files(zip_path, out / layout, machine_type=p.machine_type)
        info = {**asdict(p), "already_done": True, "dirs": {f"{layout}/{d}": n for d, n in dirs.items()},
                "files": {f"{layout}/{f}": size for f, size in files.items()}}
        _write_marker(_marker(out, p.name), info)
        report["extracted"].append(p.name)
        if not keep_zips:
            zip_path.unlink()
    print(f"done: {len(report['downloaded'])} downloaded, {len(report['extracted'])} extracted, "
          f"{len(report['skipped'])} already there, in {out}")
    return report

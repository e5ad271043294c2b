"""Download the real DCASE2020 Task 2 data from Zenodo, verify it and unpack it into the official layout.

Parts: ``dev`` (record 3678171, ``dev_data_<type>.zip`` -> ``dev_data/<type>/{train,test}``), ``additional``
(record 3727685, ``eval_data_train_<type>.zip`` -> ``eval_data/<type>/train``), ``eval`` (record 3841772,
``eval_data_test_<type>.zip`` -> ``eval_data/<type>/test``) and ``ground_truth`` (the organisers' evaluator's
``eval_data_list.csv``; fetched with ``eval`` too, or alone with ``parts="ground_truth"``; from GitHub with the
default ``base_url``, from ``<base_url>/eval_data_list.csv`` otherwise). File lists and sizes come from the
Zenodo REST API (``GET <base>/api/records/<id>``); the md5s are pinned here (:data:`KNOWN_MD5`, replaced only
explicitly by ``checksums``): a server listing another md5 is refused. Links from the API are followed only
over http(s) to the host of ``base_url`` or a Zenodo host. Transfers stream into ``<out>/zips/*.part``, resume
with an HTTP ``Range`` header, give up on a stalled connection (less than 1 kB in ``timeout`` seconds), retry
with backoff and are md5-checked before extraction; extraction checks each member's declared size and the free
disk space first. Finished zips leave ``<out>/.done/<zip>.json`` listing every extracted file and its size, so
calling again does nothing while those files are there (and re-extracts what is missing). Nothing the user has
is deleted or overwritten: a bad download is kept as ``<zip>.corrupt`` and existing wav files with other content
stop the extraction.
Offline? Put the zips from ``https://zenodo.org/record/<id>`` into ``<out>/zips/`` and run it: they are verified
and extracted. Only the standard library speaks HTTP here (``urllib.request``).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

from tqdm.auto import tqdm

from asdlib.data.dcase import MACHINE_TYPES, parse_types

ZENODO_URL = "https://zenodo.org"
GROUND_TRUTH_URL = ("https://raw.githubusercontent.com/y-kawagu/dcase2020_task2_evaluator/master/"
                    "eval_data_list.csv")
GROUND_TRUTH_NAME = "eval_data_list.csv"
ZENODO_HOSTS = ("zenodo.org", "www.zenodo.org")  # hosts a record's file links may point to
MAX_MEMBER_BYTES = 2_000_000  # a DCASE2020 clip is 10-11 s of 16-kHz 16-bit mono, ~350 kB; larger = not ours
STALL_BYTES = 1024  # fewer bytes than this in `timeout` seconds = a stalled transfer
PARTS: dict[str, tuple[str, str, str]] = {  # part -> (Zenodo record, zip-name pattern, layout folder)
    "dev": ("3678171", "dev_data_{}.zip", "dev_data"),
    "additional": ("3727685", "eval_data_train_{}.zip", "eval_data"),
    "eval": ("3841772", "eval_data_test_{}.zip", "eval_data"),
}
PART_NAMES: tuple[str, ...] = (*PARTS, "ground_truth")
KNOWN_MD5: dict[str, str] = {  # as published with the Zenodo records
    "dev_data_fan.zip": "649bdfc06263ae7a838963f43b6641e6",
    "dev_data_pump.zip": "90e7091ef722b7238a7f1009365779cd",
    "dev_data_slider.zip": "da24a757719f0d94d5aa2d646bbfdc86",
    "dev_data_ToyCar.zip": "4dec75ca8d9f666aa9e4c1894a740501",
    "dev_data_ToyConveyor.zip": "03b6aa1bfd09a39d53af0ba39f71fa91",
    "dev_data_valve.zip": "34d2672f55bb041589ef79c10dc89934",
    "eval_data_train_fan.zip": "567798854130c8019df8b664c095ed1e",
    "eval_data_train_pump.zip": "4e33ae9c0db5cc88437675f5e317caee",
    "eval_data_train_slider.zip": "f84f186f4295fc23754abcdd1b0580a7",
    "eval_data_train_ToyCar.zip": "a5d4ccd498af70b04dd74b644b820006",
    "eval_data_train_ToyConveyor.zip": "0e808ac0b761e9fb13d5e0c65caff00d",
    "eval_data_train_valve.zip": "057cdd560caffb8305449541afd28c6d",
    "eval_data_test_fan.zip": "1eb9356a768cadfd0f2e59a5c57e578b",
    "eval_data_test_pump.zip": "23a8f8f924be218c69df67fe07360348",
    "eval_data_test_slider.zip": "0193c769073840332ce3aad84b1ccaa2",
    "eval_data_test_ToyCar.zip": "bea2bdd612f616be8f2b8eb087b32c7c",
    "eval_data_test_ToyConveyor.zip": "ccfcc9847c7d3404d7ee9d6d9e0b2ba2",
    "eval_data_test_valve.zip": "f69c551d2088691050d20cccca9d631c",
}
_RETRY_CODES = {408, 425, 429, 500, 502, 503, 504}
_CHUNK = 1 << 20
_HEADERS = {"User-Agent": "asdlib-download/0.1 (python urllib)"}


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) URLs only (urllib's default also allows ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"refusing a redirect to {newurl!r}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


class DownloadError(RuntimeError):
    """A download, checksum or extraction failed; the message names the file and the fix."""


@dataclass(frozen=True)
class PlannedFile:
    """One file of a download plan; ``size`` in bytes (``None``: unknown), ``md5`` empty for the ground truth."""

    name: str
    part: str
    machine_type: str
    record: str
    size: int | None
    md5: str
    url: str
    already_done: bool = False


def parse_parts(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"dev,eval"`` / ``["dev"]`` / ``"all"`` -> parts in the order of :data:`PART_NAMES`; raise on others."""
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    names = [p for n in names for p in ((*PARTS,) if n == "all" else (n,))]
    unknown = sorted(set(names) - set(PART_NAMES))
    if unknown or not names:
        raise ValueError(f"unknown or empty parts {unknown or spec!r}; expected a comma-separated subset of "
                         f"{', '.join(PART_NAMES)} (or 'all' for dev,additional,eval)")
    return tuple(p for p in PART_NAMES if p in names)


def zip_name(part: str, machine_type: str) -> str:
    """``("dev", "fan")`` -> ``"dev_data_fan.zip"``."""
    return PARTS[part][1].format(machine_type)


def _manual_hint(record: str, out: Path | None) -> str:
    zips = out / "zips" if out is not None else "<out>/zips"
    return (f"No internet? Download the zips by hand from https://zenodo.org/record/{record} into {zips}/ "
            "and re-run: they will be verified and extracted.")


def _with_retries(fn: Callable, *, url: str, retries: int, backoff: float, hint: str):
    """Call ``fn()``; retry network errors ``retries`` times with exponential backoff, then raise DownloadError."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except urllib.error.HTTPError as e:
            if e.code not in _RETRY_CODES or attempt == retries:
                raise DownloadError(f"GET {url} failed: HTTP {e.code} {e.reason}. {hint}") from e
        except (OSError, http.client.HTTPException) as e:  # refused/reset, timeout, truncated body
            if attempt == retries:
                raise DownloadError(f"GET {url} failed after {retries + 1} attempt(s): {e!r}. {hint}") from e
        time.sleep(backoff * 2 ** attempt)


def _resume_offset(resp, have: int, part: Path) -> int:
    """Bytes already in ``part`` that this response continues (0 when the server ignored our Range)."""
    if not have or resp.status != 206:
        return 0  # a 200 to a Range request carries the whole file: start over
    start = resp.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
    if start != str(have):
        part.unlink()
        raise ConnectionError(f"server resumed at byte {start!r} instead of {have}; restarting from zero")
    return have


def _stream(url: str, part: Path, *, size: int | None, timeout: float, progress: bool) -> None:
    """GET ``url`` into ``part``, continuing an earlier partial file with ``Range: bytes=N-``."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # longer than the file: not ours to continue
        part.unlink()
        have = 0
    if size is not None and have == size:
        return  # complete already; the md5 check decides
    headers = {**_HEADERS, **({"Range": f"bytes={have}-"} if have else {})}
    try:
        resp = _OPENER.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # "range not satisfiable": our partial file is stale
            part.unlink()
            raise ConnectionError(f"server refused to resume {part.name} (HTTP 416); restarting") from e
        raise
    with resp:
        have = _resume_offset(resp, have, part)
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length else size
        with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                          unit_divisor=1024, desc=part.name[:-5],
                                                          disable=not progress) as bar:
            for chunk in _chunks(resp, timeout, url):  # whatever has arrived, so a timeout loses nothing
                f.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got != total:  # the connection closed early
        raise http.client.IncompleteRead(b"", total - got)


def _chunks(resp, timeout: float, url: str):
    """The body of ``resp`` as it arrives; raise ``TimeoutError`` when less than :data:`STALL_BYTES` bytes came
    in ``timeout`` seconds (a server trickling a byte a second never trips the socket timeout)."""
    window_start, window_bytes = time.monotonic(), 0
    while chunk := resp.read1(_CHUNK):
        yield chunk
        window_bytes += len(chunk)
        if window_bytes >= STALL_BYTES:
            window_start, window_bytes = time.monotonic(), 0
        elif time.monotonic() - window_start > timeout:
            raise TimeoutError(f"{url} stalled: {window_bytes} byte(s) in {timeout:g} s (less than "
                               f"{STALL_BYTES} bytes); use --timeout to allow slower links")


def _get_json(url: str, timeout: float) -> dict:
    with _OPENER.open(urllib.request.Request(url, headers=_HEADERS), timeout=timeout) as resp:
        return json.loads(b"".join(_chunks(resp, timeout, url)).decode("utf-8"))


def _record_files(base_url: str, record: str, *, timeout: float, retries: int, backoff: float) -> dict:
    """``{file name: Zenodo file entry}`` for one record; ``{}`` (with a warning) when the API is unreachable."""
    url = f"{base_url.rstrip('/')}/api/records/{record}"
    try:
        data = _with_retries(lambda: _get_json(url, timeout), url=url, retries=retries, backoff=backoff, hint="")
    except (DownloadError, ValueError) as e:
        warnings.warn(f"could not read the Zenodo record {url} ({e}); using the published md5s and direct "
                      "file URLs instead", stacklevel=3)
        return {}
    files = data.get("files", [])
    files = files.get("entries", files) if isinstance(files, dict) else files
    files = list(files.values()) if isinstance(files, dict) else files
    return {f.get("key") or f.get("filename"): f for f in files}


def load_checksums(checksums: str | os.PathLike | dict | None) -> dict[str, str]:
    """The md5 table to trust: :data:`KNOWN_MD5`, or ``checksums`` (a dict or a JSON file name -> md5) instead."""
    if checksums is None:
        return dict(KNOWN_MD5)
    if isinstance(checksums, dict):
        table = checksums
    else:
        try:
            table = json.loads(Path(checksums).read_text())
        except (OSError, ValueError) as e:
            raise DownloadError(f"cannot read the checksum file {checksums} ({e}); it must be JSON: "
                                '{"dev_data_fan.zip": "<md5>", ...}') from None
    if not isinstance(table, dict) or not all(isinstance(v, str) and len(v) == 32 for v in table.values()):
        raise DownloadError(f"{checksums}: expected a JSON object mapping zip names to 32-digit md5 strings")
    return {str(k): v.lower() for k, v in table.items()}


def _allowed_link(url: str, base_url: str) -> bool:
    """Only http(s), and only to the host of ``base_url`` or a known Zenodo host."""
    parts, base = urlsplit(url), urlsplit(base_url)
    return parts.scheme in ("http", "https") and parts.hostname is not None and (
        parts.hostname == base.hostname or parts.hostname in ZENODO_HOSTS)


def _planned(name: str, part: str, machine_type: str, entries: dict, base_url: str,
             md5s: dict[str, str]) -> PlannedFile:
    """A PlannedFile from a Zenodo file entry; the pinned md5 (``md5s``) must match the one the server lists."""
    record = PARTS[part][0]
    if name not in md5s:
        raise DownloadError(f"no md5 pinned for {name}; add it to the --checksums file")
    known = md5s[name]
    direct = f"{base_url.rstrip('/')}/record/{record}/files/{name}?download=1"
    entry = entries.get(name)
    if entry is None:
        if entries:
            warnings.warn(f"Zenodo record {record} does not list {name}; trying {direct}", stacklevel=3)
        return PlannedFile(name, part, machine_type, record, None, known, direct)
    checksum = str(entry.get("checksum", ""))
    if checksum.startswith("md5:") and checksum[4:].lower() != known:
        raise DownloadError(f"{base_url} lists md5 {checksum[4:]} for {name}, but the pinned value is {known}; "
                            "nothing was downloaded and your files are untouched. Is --base-url a mirror of "
                            "other data? Then pass --checksums FILE (JSON: zip name -> md5) to trust it.")
    links = entry.get("links") or {}
    url = urljoin(f"{base_url.rstrip('/')}/api/records/{record}", links.get("content") or links.get("self") or direct)
    if not _allowed_link(url, base_url):
        raise DownloadError(f"the record lists {url!r} as the link of {name}: only http(s) links to "
                            f"{urlsplit(base_url).hostname} or {', '.join(ZENODO_HOSTS)} are followed; refusing")
    size = entry.get("size", entry.get("filesize"))
    return PlannedFile(name, part, machine_type, record, int(size) if size is not None else None, known, url)


def _marker(out: Path, name: str) -> Path:
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
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def ground_truth_source(base_url: str = ZENODO_URL, ground_truth_url: str | None = None) -> str:
    """Where the ground truth comes from: ``ground_truth_url``, else GitHub for Zenodo, else the mirror's
    ``<base_url>/eval_data_list.csv``."""
    if ground_truth_url:
        return ground_truth_url
    if base_url.rstrip("/") == ZENODO_URL:
        return GROUND_TRUTH_URL
    return f"{base_url.rstrip('/')}/{GROUND_TRUTH_NAME}"


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
        entries = _record_files(base_url, PARTS[part][0], timeout=timeout, retries=retries, backoff=backoff)
        for n, t in names.items():
            p = _planned(n, part, t, entries, base_url, md5s)
            plan.append(replace(p, already_done=done[n] is not None))
    if "ground_truth" in wanted or "eval" in wanted:
        have = out is not None and (out / GROUND_TRUTH_NAME).is_file()
        plan.append(PlannedFile(GROUND_TRUTH_NAME, "ground_truth", "", "", None, "",
                                ground_truth_source(base_url, ground_truth_url), have))
    return plan


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def format_plan(plan: Sequence[PlannedFile]) -> str:
    """A table of the plan (name, part, record, size, status) and the total still to download."""
    rows = [f"{p.name:34s} {p.part:12s} {p.record or '-':8s} {_human(p.size):>10s}  "
            f"{'already there' if p.already_done else 'to download'}" for p in plan]
    todo = [p for p in plan if not p.already_done]
    total = sum(p.size or 0 for p in todo)
    unknown = " (+ files of unknown size)" if any(p.size is None for p in todo) else ""
    return "\n".join(rows + [f"total: {len(todo)} of {len(plan)} file(s) to download, {_human(total)}{unknown}"])


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, p: PlannedFile) -> None:
    """Check ``path`` against ``p.md5``; on a mismatch move it aside to ``<zip>.corrupt`` and raise."""
    got = _md5(path)
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
    print(f"{p.name}: downloading {_human(p.size)} from {p.url}")
    hint = f"Partial data (if any) stays in {part}; re-run to resume. {_manual_hint(p.record, zips.parent)}"
    _with_retries(lambda: _stream(p.url, part, size=p.size, timeout=timeout, progress=progress),
                  url=p.url, retries=retries, backoff=backoff, hint=hint)
    _verify(part, p)
    os.replace(part, zip_path)
    return zip_path, True


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
    if target.stat().st_size != info.file_size:
        return False
    with open(target, "rb") as f:
        return zlib.crc32(f.read()) == info.CRC


def _check_sizes(zip_path: str | Path, pairs: list, root: Path, max_member_bytes: int) -> None:
    """Refuse members larger than a DCASE clip can be, and a zip that does not fit on the disk (declared sizes;
    ``zipfile`` never returns more bytes than a member declares)."""
    big = [info for info, _ in pairs if info.file_size > max_member_bytes]
    if big:
        raise DownloadError(f"{Path(zip_path).name}: member {big[0].filename!r} declares {_human(big[0].file_size)}"
                            f", more than a DCASE2020 clip can be ({_human(max_member_bytes)}); {len(big)} such "
                            "member(s). Refusing to extract (a zip bomb or the wrong zip); delete it.")
    need = sum(info.file_size for info, target in pairs if not target.exists())
    existing = root
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if need > free:
        raise DownloadError(f"{Path(zip_path).name} needs {_human(need)} to extract, {_human(free)} free in "
                            f"{existing}; free some space and re-run.")


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
                    shutil.copyfileobj(src, dst, _CHUNK)
                os.replace(tmp, target)  # never a half-written wav under the real name
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{zip_path} is not a valid zip ({e}); delete it and re-run.") from e
    dirs = [t.parent.relative_to(root).as_posix() for _, t in pairs]
    return {d: dirs.count(d) for d in sorted(set(dirs))}


def _fetch_ground_truth(p: PlannedFile, out: Path, *, timeout: float, retries: int, backoff: float) -> None:
    dest, part = out / p.name, out / f"{p.name}.part"
    out.mkdir(parents=True, exist_ok=True)
    part.unlink(missing_ok=True)  # small file: always fetched from the start
    hint = f"Download it by hand from {p.url} into {dest}."
    _with_retries(lambda: _stream(p.url, part, size=None, timeout=timeout, progress=False),
                  url=p.url, retries=retries, backoff=backoff, hint=hint)
    first = part.read_text(errors="replace").lstrip("\ufeff \r\n").split("\n", 1)[0].strip()
    if first not in MACHINE_TYPES:
        raise DownloadError(f"{p.url} does not look like the evaluator's {p.name} (first line {first[:60]!r}, "
                            f"expected a machine type); kept as {part}. Check the URL or your proxy. {hint}")
    os.replace(part, dest)


def _write_marker(path: Path, info: dict) -> None:
    """Write a completion marker atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(info, indent=1))
    os.replace(tmp, path)


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

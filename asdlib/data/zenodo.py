"""Where DCASE2020 Task 2 lives on Zenodo: the records, their zips, the pinned md5s and the REST API's file lists.

Parts: ``dev`` (record 3678171, ``dev_data_<type>.zip`` -> ``dev_data/<type>/{train,test}``), ``additional``
(record 3727685, ``eval_data_train_<type>.zip`` -> ``eval_data/<type>/train``), ``eval`` (record 3841772,
``eval_data_test_<type>.zip`` -> ``eval_data/<type>/test``) and ``ground_truth`` (the organisers' evaluator's
``eval_data_list.csv``, y-kawagu/dcase2020_task2_evaluator on GitHub with the default ``base_url``,
``<base_url>/eval_data_list.csv`` otherwise). File lists and sizes come from the Zenodo REST API
(``GET <base>/api/records/<id>``); the md5s are pinned here (:data:`KNOWN_MD5`, replaced only explicitly by
``checksums``): a server listing another md5 is refused. Links from the API are followed only over http(s) to
the host of ``base_url`` or a Zenodo host. Each file to fetch becomes a :class:`PlannedFile`.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from asdlib.data.transfer import DownloadError, get_json, human_size, with_retries

ZENODO_URL = "https://zenodo.org"
GROUND_TRUTH_URL = ("https://raw.githubusercontent.com/y-kawagu/dcase2020_task2_evaluator/master/"
                    "eval_data_list.csv")
GROUND_TRUTH_NAME = "eval_data_list.csv"
ZENODO_HOSTS = ("zenodo.org", "www.zenodo.org")  # hosts a record's file links may point to
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


def record_files(base_url: str, record: str, *, timeout: float, retries: int, backoff: float) -> dict:
    """``{file name: Zenodo file entry}`` for one record; ``{}`` (with a warning) when the API is unreachable."""
    url = f"{base_url.rstrip('/')}/api/records/{record}"
    try:
        data = with_retries(lambda: get_json(url, timeout), url=url, retries=retries, backoff=backoff, hint="")
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


def planned_file(name: str, part: str, machine_type: str, entries: dict, base_url: str,
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


def ground_truth_source(base_url: str = ZENODO_URL, ground_truth_url: str | None = None) -> str:
    """Where the ground truth comes from: ``ground_truth_url``, else GitHub for Zenodo, else the mirror's
    ``<base_url>/eval_data_list.csv``."""
    if ground_truth_url:
        return ground_truth_url
    if base_url.rstrip("/") == ZENODO_URL:
        return GROUND_TRUTH_URL
    return f"{base_url.rstrip('/')}/{GROUND_TRUTH_NAME}"


def format_plan(plan: Sequence[PlannedFile]) -> str:
    """A table of the plan (name, part, record, size, status) and the total still to download."""
    rows = [f"{p.name:34s} {p.part:12s} {p.record or '-':8s} {human_size(p.size):>10s}  "
            f"{'already there' if p.already_done else 'to download'}" for p in plan]
    todo = [p for p in plan if not p.already_done]
    total = sum(p.size or 0 for p in todo)
    unknown = " (+ files of unknown size)" if any(p.size is None for p in todo) else ""
    return "\n".join(rows + [f"total: {len(todo)} of {len(plan)} file(s) to download, {human_size(total)}{unknown}"])

"""One HTTP file transfer that survives bad networks: resumable, retried, stall-aware and md5-checked.

:func:`stream_to` GETs a URL into a ``.part`` file and continues an earlier partial file with an HTTP ``Range``
header (starting over when the server ignores or refuses it); it gives up on a stalled connection (less than
:data:`STALL_BYTES` in ``timeout`` seconds), which a server trickling a byte a second would otherwise hide from
the socket timeout. :func:`with_retries` repeats such a call with exponential backoff on network errors and
retryable HTTP codes, then raises :class:`DownloadError` naming the URL and the fix. Redirects are followed
over http(s) only. Only the standard library speaks HTTP here (``urllib.request``).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from tqdm.auto import tqdm

STALL_BYTES = 1024  # fewer bytes than this in `timeout` seconds = a stalled transfer
CHUNK_BYTES = 1 << 20  # read, write and hash in 1-MiB pieces
_RETRY_CODES = {408, 425, 429, 500, 502, 503, 504}
_HEADERS = {"User-Agent": "asdlib-download/0.1 (python urllib)"}


class DownloadError(RuntimeError):
    """A download, checksum or extraction failed; the message names the file and the fix."""


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) URLs only (urllib's default also allows ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"refusing a redirect to {newurl!r}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def human_size(n: int | None) -> str:
    """``1_234_567`` -> ``"1.2 MB"``; ``None`` (unknown) -> ``"?"``."""
    if n is None:
        return "?"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def with_retries(fn: Callable, *, url: str, retries: int, backoff: float, hint: str):
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


def stream_to(url: str, part: Path, *, size: int | None, timeout: float, progress: bool) -> None:
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
    while chunk := resp.read1(CHUNK_BYTES):
        yield chunk
        window_bytes += len(chunk)
        if window_bytes >= STALL_BYTES:
            window_start, window_bytes = time.monotonic(), 0
        elif time.monotonic() - window_start > timeout:
            raise TimeoutError(f"{url} stalled: {window_bytes} byte(s) in {timeout:g} s (less than "
                               f"{STALL_BYTES} bytes); use --timeout to allow slower links")


def get_json(url: str, timeout: float) -> dict:
    """GET ``url`` and parse the body as JSON (one attempt; wrap it in :func:`with_retries`)."""
    with _OPENER.open(urllib.request.Request(url, headers=_HEADERS), timeout=timeout) as resp:
        return json.loads(b"".join(_chunks(resp, timeout, url)).decode("utf-8"))


def md5sum(path: Path) -> str:
    """The md5 hex digest of the file at ``path``, read in :data:`CHUNK_BYTES` pieces."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()

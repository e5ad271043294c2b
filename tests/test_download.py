"""The downloader (``asdlib.data.download``, ``zenodo``, ``transfer``, ``extract``) against a real HTTP server
on 127.0.0.1 that mimics the Zenodo REST API.

The server serves ``/api/records/<id>`` JSON whose links point back at ``/files/<name>``, answers Range requests
with 206, and can drop a transfer half-way, ignore Range (answer 200) or serve corrupted bytes. The zips are
built here from real small wav files written by soundfile.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import threading
import time
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asdlib.data.download import download, plan_download
from asdlib.data.extract import extract_zip
from asdlib.data.transfer import DownloadError
from asdlib.data.zenodo import GROUND_TRUTH_NAME, KNOWN_MD5, parse_parts

FAST = {"timeout": 5.0, "backoff": 0.01, "progress": False}
GT_CSV = b"fan\nid_01_00000000.wav,normal_id_01_00000098.wav,0\nid_01_00000001.wav,anomaly_id_01_00000064.wav,1\n"


def wav_bytes(seed: int, seconds: float = 0.1) -> bytes:
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, int(16000 * seconds))
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def dev_members(t: str) -> dict[str, bytes]:
    names = [f"{t}/train/normal_id_00_0000000{i}.wav" for i in range(2)]
    names += [f"{t}/test/normal_id_00_00000000.wav", f"{t}/test/anomaly_id_00_00000000.wav"]
    return {n: wav_bytes(zlib.crc32(n.encode())) for n in names}


MEMBERS = {
    "dev_data_fan.zip": dev_members("fan"),
    "dev_data_valve.zip": dev_members("valve"),
    "eval_data_train_fan.zip": {"fan/train/normal_id_01_00000000.wav": wav_bytes(7)},
    "eval_data_test_fan.zip": {"fan/test/id_01_00000000.wav": wav_bytes(8)},
}
RECORDS = {"3678171": ["dev_data_fan.zip", "dev_data_valve.zip"], "3727685": ["eval_data_train_fan.zip"],
           "3841772": ["eval_data_test_fan.zip"]}


class FakeZenodo:
    """State of the test server: served files, failure switches, and every request seen."""

    def __init__(self):
        self.files = {name: make_zip(m) for name, m in MEMBERS.items()}
        self.records = {k: list(v) for k, v in RECORDS.items()}
        self.corrupt: set[str] = set()
        self.drop_first: set[str] = set()
        self.stall_first: set[str] = set()
        self.ignore_range = False
        self.gt = GT_CSV
        self.requests: list[tuple[str, str | None]] = []
        self.url = ""
        self.links: dict[str, str] = {}  # name -> content link the API lists instead of ours
        self.listed_md5: dict[str, str] = {}  # name -> md5 the API lists instead of the true one
        self.trickle: set[str] = set()  # names sent one byte every 50 ms
        self.md5s = {n: hashlib.md5(data).hexdigest() for n, data in self.files.items()}  # our zips, not Zenodo's

    def file_gets(self) -> list[tuple[str, str | None]]:
        return [r for r in self.requests if r[0].startswith("/files/")]

    def record_json(self, record: str) -> bytes:
        files = [{"key": n, "size": len(self.files[n]),
                  "checksum": "md5:" + self.listed_md5.get(n, hashlib.md5(self.files[n]).hexdigest()),
                  "links": {"self": f"{self.url}/api/records/{record}/files/{n}",
                            "content": self.links.get(n, f"{self.url}/files/{n}")}}
                 for n in self.records[record]]
        return json.dumps({"id": int(record), "files": files}).encode()


class Handler(BaseHTTPRequestHandler):
    state: FakeZenodo

    def log_message(self, *args):  # keep the test output quiet
        pass

    def send(self, code: int, body: bytes, headers: dict | None = None, *, write: bytes | None = None):
        self.send_response(code)
        for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body if write is None else write)

    def do_GET(self):
        s, rng = self.state, self.headers.get("Range")
        s.requests.append((self.path, rng))
        if self.path.startswith("/api/records/") and self.path.rsplit("/", 1)[1] in s.records:
            return self.send(200, s.record_json(self.path.rsplit("/", 1)[1]), {"Content-Type": "application/json"})
        if self.path in ("/gt.csv", "/eval_data_list.csv"):
            return self.send(200, s.gt)
        name = self.path.removeprefix("/files/")
        if name not in s.files:
            return self.send_error(404)
        data = s.files[name]
        if name in s.corrupt:
            data = data[:40] + bytes(b ^ 0xFF for b in data[40:60]) + data[60:]
        if name in s.drop_first:  # full Content-Length, half the bytes, then close the socket
            s.drop_first.discard(name)
            self.send(200, data, write=data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if name in s.stall_first:  # a quarter of the bytes, then silence longer than the client's timeout
            s.stall_first.discard(name)
            self.send(200, data, write=data[: len(data) // 4])
            self.wfile.flush()
            time.sleep(1.0)
            return
        if name in s.trickle:  # a byte every 50 ms: never silent long enough for a socket timeout
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for b in data:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:  # the client gave up
                pass
            return
        if rng and not s.ignore_range:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            return self.send(206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
        self.send(200, data)


@pytest.fixture
def zenodo():
    state = FakeZenodo()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("BoundHandler", (Handler,), {"state": state}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


def wavs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.wav"))}


def expected(zip_name: str, split: str) -> dict[str, bytes]:
    return {k.rsplit("/", 1)[1]: v for k, v in MEMBERS[zip_name].items() if f"/{split}/" in k}


def test_parse_parts_and_validation(zenodo, tmp_path):
    assert parse_parts("eval, dev") == ("dev", "eval")
    assert parse_parts(["all"]) == ("dev", "additional", "eval")
    for bad in ({"parts": "dev,bogus"}, {"parts": ""}, {"machines": "toaster"}, {"machines": []}):
        with pytest.raises(ValueError):
            download(tmp_path, **{"machines": "fan", **bad}, base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert zenodo.requests == []


def test_fresh_dev_download_extracts_official_layout(zenodo, tmp_path):
    report = download(tmp_path, machines="fan", parts="dev", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    for split in ("train", "test"):
        assert wavs(tmp_path / "dev_data" / "fan" / split) == expected("dev_data_fan.zip", split)
    assert (tmp_path / "zips" / "dev_data_fan.zip").read_bytes() == zenodo.files["dev_data_fan.zip"]
    assert not list((tmp_path / "zips").glob("*.part"))
    assert report["downloaded"] == report["extracted"] == ["dev_data_fan.zip"]
    assert zenodo.file_gets() == [("/files/dev_data_fan.zip", None)]
    marker = json.loads((tmp_path / ".done" / "dev_data_fan.zip.json").read_text())
    assert marker["md5"] == hashlib.md5(zenodo.files["dev_data_fan.zip"]).hexdigest()


def test_second_call_does_nothing(zenodo, tmp_path, capsys):
    download(tmp_path, machines=["fan", "valve"], parts="dev", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert len(zenodo.file_gets()) == 2
    zenodo.requests.clear()
    capsys.readouterr()
    report = download(tmp_path, machines="fan,valve", parts="dev", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert zenodo.requests == []  # not even the API
    assert "already there" in capsys.readouterr().out
    assert report["skipped"] == ["dev_data_fan.zip", "dev_data_valve.zip"] and report["downloaded"] == []
    shutil.rmtree(tmp_path / "dev_data" / "fan")  # the user deleted a folder: unpacked again from the kept zip
    report = download(tmp_path, machines="fan,valve", parts="dev", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert zenodo.file_gets() == [] and report["extracted"] == ["dev_data_fan.zip"]
    assert wavs(tmp_path / "dev_data" / "fan" / "test") == expected("dev_data_fan.zip", "test")


def test_interrupted_transfer_is_resumed_by_a_retry(zenodo, tmp_path):
    zenodo.drop_first.add("dev_data_fan.zip")
    download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, retries=2, **FAST)
    half = len(zenodo.files["dev_data_fan.zip"]) // 2
    assert zenodo.file_gets() == [("/files/dev_data_fan.zip", None), ("/files/dev_data_fan.zip", f"bytes={half}-")]
    assert wavs(tmp_path / "dev_data" / "fan" / "test") == expected("dev_data_fan.zip", "test")


def test_stalled_transfer_times_out_and_resumes(zenodo, tmp_path):
    zenodo.stall_first.add("dev_data_fan.zip")
    download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, retries=1, timeout=0.3, backoff=0.01, progress=False)
    quarter = len(zenodo.files["dev_data_fan.zip"]) // 4
    assert zenodo.file_gets()[-1] == ("/files/dev_data_fan.zip", f"bytes={quarter}-")
    assert wavs(tmp_path / "dev_data" / "fan" / "train") == expected("dev_data_fan.zip", "train")


def test_interrupted_transfer_is_resumed_by_the_next_call(zenodo, tmp_path):
    zenodo.drop_first.add("dev_data_fan.zip")
    with pytest.raises(DownloadError, match=r"stays in \S+dev_data_fan\.zip\.part; re-run to resume"):
        download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, retries=0, **FAST)
    part = tmp_path / "zips" / "dev_data_fan.zip.part"
    half = len(zenodo.files["dev_data_fan.zip"]) // 2
    assert part.stat().st_size == half
    download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, retries=0, **FAST)
    assert zenodo.file_gets()[-1] == ("/files/dev_data_fan.zip", f"bytes={half}-")
    assert not part.exists()
    assert wavs(tmp_path / "dev_data" / "fan" / "train") == expected("dev_data_fan.zip", "train")


def test_server_answering_200_to_range_restarts_from_zero(zenodo, tmp_path):
    zenodo.ignore_range = True
    (tmp_path / "zips").mkdir()
    (tmp_path / "zips" / "dev_data_fan.zip.part").write_bytes(b"x" * 100)  # stale bytes that must not survive
    download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, retries=0, **FAST)
    assert zenodo.file_gets() == [("/files/dev_data_fan.zip", "bytes=100-")]
    assert (tmp_path / "zips" / "dev_data_fan.zip").read_bytes() == zenodo.files["dev_data_fan.zip"]


def test_corrupted_download_is_kept_aside_and_nothing_is_deleted(zenodo, tmp_path):
    download(tmp_path, machines="fan", parts="dev", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    before = wavs(tmp_path / "dev_data" / "fan" / "train")
    zenodo.corrupt.add("eval_data_train_fan.zip")
    good = hashlib.md5(zenodo.files["eval_data_train_fan.zip"]).hexdigest()
    with pytest.raises(DownloadError) as err:
        download(tmp_path, machines="fan", parts="dev,additional", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    corrupt = tmp_path / "zips" / "eval_data_train_fan.zip.corrupt"
    bad = hashlib.md5(corrupt.read_bytes()).hexdigest()
    assert f"expected md5 {good}, got {bad}" in str(err.value) and "delete it and re-run" in str(err.value)
    assert wavs(tmp_path / "dev_data" / "fan" / "train") == before
    assert not (tmp_path / "zips" / "eval_data_train_fan.zip").exists()
    assert not (tmp_path / "eval_data").exists()
    zenodo.corrupt.clear()  # the network is fine again: a re-run succeeds and the .corrupt stays for the user
    download(tmp_path, machines="fan", parts="dev,additional", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert wavs(tmp_path / "eval_data" / "fan" / "train") == expected("eval_data_train_fan.zip", "train")
    assert corrupt.exists()


def test_zip_on_disk_is_extracted_without_downloading(zenodo, tmp_path):
    (tmp_path / "zips").mkdir()
    (tmp_path / "zips" / "dev_data_fan.zip").write_bytes(zenodo.files["dev_data_fan.zip"])
    report = download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert zenodo.file_gets() == [] and report["downloaded"] == [] and report["extracted"] == ["dev_data_fan.zip"]
    assert wavs(tmp_path / "dev_data" / "fan" / "train") == expected("dev_data_fan.zip", "train")


def test_wrong_zip_on_disk_is_moved_aside(zenodo, tmp_path):
    (tmp_path / "zips").mkdir()
    (tmp_path / "zips" / "dev_data_fan.zip").write_bytes(zenodo.files["dev_data_valve.zip"])
    with pytest.raises(DownloadError, match="checksum mismatch for dev_data_fan.zip"):
        download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert (tmp_path / "zips" / "dev_data_fan.zip.corrupt").read_bytes() == zenodo.files["dev_data_valve.zip"]


def test_existing_wav_with_other_content_is_never_overwritten(zenodo, tmp_path):
    train = tmp_path / "dev_data" / "fan" / "train"
    train.mkdir(parents=True)
    mine = wav_bytes(999)
    (train / "normal_id_00_00000000.wav").write_bytes(mine)
    with pytest.raises(DownloadError, match="refusing to overwrite"):
        download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert wavs(train) == {"normal_id_00_00000000.wav": mine}  # nothing else written either
    (train / "normal_id_00_00000000.wav").write_bytes(expected("dev_data_fan.zip", "train")["normal_id_00_00000000.wav"])
    download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)  # identical files are simply kept
    assert wavs(train) == expected("dev_data_fan.zip", "train")


@pytest.mark.parametrize("bad", ["../evil.wav", "fan/train/../../../evil.wav", "/tmp/fan/train/evil.wav"])
def test_zip_slip_member_is_rejected(tmp_path, bad):
    path = tmp_path / "slip.zip"
    path.write_bytes(make_zip({"fan/train/normal_id_00_00000000.wav": wav_bytes(1), bad: wav_bytes(2)}))
    root = tmp_path / "out" / "dev_data"
    with pytest.raises(DownloadError, match="zip-slip"):
        extract_zip(path, root, machine_type="fan", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.wav").exists()


def test_extra_top_folder_is_tolerated(tmp_path):
    path = tmp_path / "nested.zip"
    path.write_bytes(make_zip({"dev_data/fan/train/normal_id_00_00000000.wav": wav_bytes(1), "README.txt": b"hi"}))
    counts = extract_zip(path, tmp_path / "dev_data", machine_type="fan", progress=False)
    assert counts == {"fan/train": 1}
    assert (tmp_path / "dev_data" / "fan" / "train" / "normal_id_00_00000000.wav").read_bytes() == wav_bytes(1)


def test_eval_parts_and_ground_truth(zenodo, tmp_path):
    report = download(tmp_path, machines="fan", parts="additional,eval", base_url=zenodo.url, checksums=zenodo.md5s,
                      ground_truth_url=f"{zenodo.url}/gt.csv", progress=True, timeout=5.0, backoff=0.01)
    assert wavs(tmp_path / "eval_data" / "fan" / "train") == expected("eval_data_train_fan.zip", "train")
    assert wavs(tmp_path / "eval_data" / "fan" / "test") == expected("eval_data_test_fan.zip", "test")
    assert (tmp_path / GROUND_TRUTH_NAME).read_bytes() == GT_CSV
    assert GROUND_TRUTH_NAME in report["downloaded"]


def test_ground_truth_alone_and_a_wrong_page(zenodo, tmp_path):
    download(tmp_path, parts="ground_truth", ground_truth_url=f"{zenodo.url}/gt.csv", **FAST)
    assert zenodo.requests == [("/gt.csv", None)]
    assert (tmp_path / GROUND_TRUTH_NAME).read_bytes() == GT_CSV
    zenodo.gt = b"<html>captive portal</html>"
    with pytest.raises(DownloadError, match="does not look like"):
        download(tmp_path / "other", parts="ground_truth", ground_truth_url=f"{zenodo.url}/gt.csv", **FAST)
    assert not (tmp_path / "other" / GROUND_TRUTH_NAME).exists()


def test_dry_run_and_plan_report_sizes_without_downloading(zenodo, tmp_path, capsys):
    report = download(tmp_path, machines="fan,valve", parts="dev", base_url=zenodo.url, checksums=zenodo.md5s, dry_run=True, **FAST)
    assert zenodo.file_gets() == [] and not (tmp_path / "zips").exists()
    out = capsys.readouterr().out
    assert "dev_data_valve.zip" in out and "kB" in out and "total: 2 of 2 file(s)" in out
    plan = plan_download(tmp_path, machines="fan", parts="dev", base_url=zenodo.url, checksums=zenodo.md5s)
    (p,) = plan
    assert (p.name, p.record, p.size) == ("dev_data_fan.zip", "3678171", len(zenodo.files["dev_data_fan.zip"]))
    assert p.md5 == hashlib.md5(zenodo.files["dev_data_fan.zip"]).hexdigest()
    assert p.url == f"{zenodo.url}/files/dev_data_fan.zip" and not p.already_done
    assert [q.size for q in report["planned"]] == [len(zenodo.files[n]) for n in RECORDS["3678171"]]
    download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, keep_zips=False, **FAST)
    assert not (tmp_path / "zips" / "dev_data_fan.zip").exists()
    assert plan_download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s)[0].already_done


def test_unreachable_zenodo_explains_the_manual_route(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.warns(UserWarning, match="could not read the Zenodo record"), pytest.raises(DownloadError) as err:
        download(tmp_path, machines="fan", base_url=dead, retries=1, **FAST)
    msg = str(err.value)
    assert f"{dead}/record/3678171/files/dev_data_fan.zip" in msg
    assert "by hand from https://zenodo.org/record/3678171" in msg and str(tmp_path / "zips") in msg


# ---------------------------------------------------------------------------------------- issue 11: trust
def test_extracted_files_deleted_later_are_extracted_again(zenodo, tmp_path, capsys):
    download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    gone = tmp_path / "dev_data" / "fan" / "train" / "normal_id_00_00000001.wav"
    gone.unlink()  # the folders are still there, one file is not
    capsys.readouterr()
    report = download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    out = capsys.readouterr().out
    assert "everything is already there" not in out and "1 of 4 extracted file(s) are missing" in out
    assert report["extracted"] == ["dev_data_fan.zip"] and zenodo.file_gets() == [("/files/dev_data_fan.zip", None)]
    assert wavs(gone.parent) == expected("dev_data_fan.zip", "train")


def test_pinned_md5_wins_over_the_listed_one(zenodo, tmp_path):
    zenodo.listed_md5["dev_data_fan.zip"] = KNOWN_MD5["dev_data_fan.zip"]  # a server that lists the real md5 ...
    mine = tmp_path / "dev_data" / "fan" / "train" / "mine.wav"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"user data")
    with pytest.raises(DownloadError, match="checksum mismatch for dev_data_fan.zip"):  # ... but serves other bytes
        download(tmp_path, machines="fan", base_url=zenodo.url, **FAST)
    assert mine.read_bytes() == b"user data" and not (tmp_path / "dev_data" / "fan" / "test").exists()
    zenodo.listed_md5["dev_data_fan.zip"] = "0" * 32  # a listed md5 that contradicts the pinned one: refused first
    with pytest.raises(DownloadError, match="pinned value is " + KNOWN_MD5["dev_data_fan.zip"]):
        download(tmp_path / "b", machines="fan", base_url=zenodo.url, **FAST)
    assert zenodo.file_gets() == [("/files/dev_data_fan.zip", None)]  # only the first attempt downloaded


def test_checksums_file_replaces_the_pinned_table(zenodo, tmp_path):
    from asdlib.cli import main

    table = tmp_path / "sums.json"
    table.write_text(json.dumps(zenodo.md5s))
    assert main(["download", "--machines", "fan", "--out", str(tmp_path / "d"), "--base-url", zenodo.url,
                 "--checksums", str(table), "--quiet"]) == 0
    assert wavs(tmp_path / "d" / "dev_data" / "fan" / "test") == expected("dev_data_fan.zip", "test")
    table.write_text("{not json")
    with pytest.raises(DownloadError, match=r"sums\.json"):
        download(tmp_path / "e", machines="fan", base_url=zenodo.url, checksums=table, **FAST)


@pytest.mark.parametrize("link", ["file:///etc/hostname", "ftp://127.0.0.1/x.zip", "http://example.invalid/x.zip"])
def test_links_to_other_schemes_or_hosts_are_refused(zenodo, tmp_path, link):
    zenodo.links["dev_data_fan.zip"] = link
    with pytest.raises(DownloadError, match="only http"):
        download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert not (tmp_path / "zips").exists()


def test_trickling_server_times_out_and_keeps_the_partial_file(zenodo, tmp_path):
    zenodo.trickle.add("dev_data_fan.zip")
    tic = time.monotonic()
    with pytest.raises(DownloadError, match="stalled"):
        download(tmp_path, machines="fan", base_url=zenodo.url, checksums=zenodo.md5s, retries=1, timeout=0.4,
                 backoff=0.01, progress=False)
    assert time.monotonic() - tic < 4
    assert 0 < (tmp_path / "zips" / "dev_data_fan.zip.part").stat().st_size < len(zenodo.files["dev_data_fan.zip"])
    assert len(zenodo.file_gets()) == 2  # one retry, then the error


def test_silent_server_fails_within_the_timeout_option(tmp_path, capsys):
    from asdlib.cli import main

    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        tic = time.monotonic()
        with pytest.warns(UserWarning, match="could not read the Zenodo record"):
            code = main(["download", "--machines", "fan", "--out", str(tmp_path), "--base-url", url,
                         "--timeout", "0.3", "--retries", "0", "--quiet"])
    assert code == 2 and time.monotonic() - tic < 3
    assert "timed out" in capsys.readouterr().err


def test_zip_bomb_and_full_disk_are_refused_before_writing(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fan/train/normal_id_00_00000000.wav", bytes(20_000_000))  # 20 MB of zeros in ~20 kB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DownloadError, match="more than a DCASE2020 clip can be"):
        extract_zip(bomb, tmp_path / "out", machine_type="fan", progress=False)
    assert not (tmp_path / "out").exists()
    ok = tmp_path / "ok.zip"
    ok.write_bytes(make_zip(dev_members("fan")))
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DownloadError, match=r"needs 1\d\.\d kB to extract, 1\.0 kB free"):
        extract_zip(ok, tmp_path / "out", machine_type="fan", progress=False)
    assert not (tmp_path / "out").exists()


def test_ground_truth_follows_the_base_url(zenodo, tmp_path):
    download(tmp_path, machines="fan", parts="eval", base_url=zenodo.url, checksums=zenodo.md5s, **FAST)
    assert ("/eval_data_list.csv", None) in zenodo.requests
    assert (tmp_path / GROUND_TRUTH_NAME).read_bytes() == GT_CSV

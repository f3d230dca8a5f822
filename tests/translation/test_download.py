"""Multi30k download: fetch, verify, convert, and leave nothing behind on failure.

Everything runs against a loopback HTTP server that serves small gzip files the tests write
themselves (made-up sentences); the network is never touched. The real sha256 tables cannot
match these files, so the tests pass tables computed from them.
"""
import argparse
import functools
import gzip
import hashlib
import http.server
import os
import re
import socket
import threading
import time

import pytest

from minitransformer.translation import download
from minitransformer.translation.download import (DownloadError, add_arguments,
                                                  download_multi30k, run)

# Made-up parallel lines, raw as in the published files: one line a sentence. Train has a
# TAB inside a German sentence and trailing spaces on both sides; val a non-breaking space
# inside a sentence (kept) and a line separator character U+2028 (must not split a line).
RAW_TEXT = {
    "train.en.gz": "A dog runs on the grass.\nTwo men talk.   \nA girl with a red kite.\n",
    "train.de.gz": "Ein Hund läuft über das Gras.\nZwei Männer\tsprechen. \nEin Mädchen mit "
                   "einem roten Drachen.\n",
    "val.en.gz": "A cat\u00a0sleeps.\nA boy \u2028jumps.\n",
    "val.de.gz": "Eine Katze schläft.\nEin Junge springt.  \n",
    "test_2016_flickr.en.gz": "People on a bus.\n",
    "test_2016_flickr.de.gz": "Leute in einem Bus.\n",
}
EXPECTED_TSV = {
    "train.tsv": "A dog runs on the grass.\tEin Hund läuft über das Gras.\n"
                 "Two men talk.\tZwei Männer sprechen.\n"
                 "A girl with a red kite.\tEin Mädchen mit einem roten Drachen.\n",
    "val.tsv": "A cat\u00a0sleeps.\tEine Katze schläft.\n"
               "A boy \u2028jumps.\tEin Junge springt.\n",
    "test2016.tsv": "People on a bus.\tLeute in einem Bus.\n",
}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def write_raw(folder, texts=RAW_TEXT):
    """The gzip files of ``texts`` in ``folder``; returns their sha256 table."""
    folder.mkdir(parents=True, exist_ok=True)
    table = {}
    for name, text in texts.items():
        # mtime=0: the same bytes every time, like a published file.
        data = gzip.compress(text.encode("utf-8"), mtime=0)
        (folder / name).write_bytes(data)
        table[name] = sha256(data)
    return table


TSV_SUMS = {name: sha256(text.encode("utf-8")) for name, text in EXPECTED_TSV.items()}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    delay = 0.0  # seconds to wait before answering (to provoke a timeout)

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.delay:
            time.sleep(self.delay)
        super().do_GET()

    def log_message(self, *args):  # keep the test output clean
        pass


def _serve(folder, delay=0.0):
    handler = type("Handler", (_QuietHandler,), {"delay": delay})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def server(tmp_path, request):
    """A loopback HTTP server of ``tmp_path/"site"`` (filled with the raw files): the server
    object, with ``.url`` and ``.sums`` (the sha256 table of what it serves)."""
    site = tmp_path / "site"
    sums = write_raw(site)
    srv, thread = _serve(site)

    def stop():
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)

    request.addfinalizer(stop)
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.site = site
    srv.sums = sums
    return srv


def fetch(server, directory, **kwargs):
    kwargs.setdefault("raw_sha256", server.sums)
    kwargs.setdefault("tsv_sha256", TSV_SUMS)
    kwargs.setdefault("log", lambda line: None)
    kwargs.setdefault("timeout", 5)
    return download_multi30k(directory, base_url=server.url, **kwargs)


def assert_nothing_left(directory, before=()):
    """``directory`` is gone (it did not exist before) or holds just ``before``."""
    if not before:
        assert not os.path.exists(directory), os.listdir(directory)
    else:
        assert sorted(os.listdir(directory)) == sorted(before)


# --- the tables --------------------------------------------------------------------------

def test_default_tables_hold_six_raw_files_and_three_tsvs_with_sha256_sums():
    assert len(download.RAW_SHA256) == 6
    sixty_four_hex = re.compile(r"[0-9a-f]{64}")
    for table in (download.RAW_SHA256, download.TSV_SHA256):
        for name, digest in table.items():
            assert sixty_four_hex.fullmatch(digest), (name, digest)
    # every raw file is used by exactly one split, English first, German second
    used = [name for pair in download.SPLITS.values() for name in pair]
    assert sorted(used) == sorted(download.RAW_SHA256)
    assert all(en.endswith(".en.gz") and de.endswith(".de.gz")
               for en, de in download.SPLITS.values())
    assert set(download.TSV_SHA256) == set(download.SPLITS) == {"train.tsv", "val.tsv",
                                                                 "test2016.tsv"}
    assert download.DEFAULT_BASE_URL.startswith("https://github.com/multi30k/dataset/")


# --- success -----------------------------------------------------------------------------

def test_download_writes_the_three_tsvs_exactly(server, tmp_path):
    out = tmp_path / "out" / "multi30k"
    lines = []
    paths = fetch(server, out, log=lines.append)
    assert paths == {"train": str(out / "train.tsv"), "val": str(out / "val.tsv"),
                     "test2016": str(out / "test2016.tsv")}
    for name, text in EXPECTED_TSV.items():
        assert (out / name).read_bytes() == text.encode("utf-8")
    assert sorted(os.listdir(out)) == ["test2016.tsv", "train.tsv", "val.tsv"]  # no temp dir
    assert sorted(server.requests) == sorted("/" + name for name in RAW_TEXT)
    assert any("train.tsv: 3 pairs, sha256 verified" in line for line in lines)


def test_present_and_verified_files_are_not_downloaded_again_unless_forced(server, tmp_path):
    out = tmp_path / "data"
    fetch(server, out)
    server.requests.clear()
    lines = []
    paths = fetch(server, out, log=lines.append)
    assert server.requests == []
    assert "already present and verified" in lines[-1]
    assert set(paths) == {"train", "val", "test2016"}
    fetch(server, out, force=True)
    assert len(server.requests) == 6
    assert (out / "val.tsv").read_bytes() == EXPECTED_TSV["val.tsv"].encode("utf-8")


def test_a_present_file_that_differs_is_not_overwritten_without_force(server, tmp_path):
    out = tmp_path / "data"
    fetch(server, out)
    (out / "val.tsv").write_text("my own edits\tmeine Änderungen\n", encoding="utf-8")
    with pytest.raises(DownloadError, match=r"val\.tsv exists.*--force") as info:
        fetch(server, out)
    assert TSV_SUMS["val.tsv"] in str(info.value)
    assert (out / "val.tsv").read_text(encoding="utf-8").startswith("my own edits")
    fetch(server, out, force=True)
    assert (out / "val.tsv").read_bytes() == EXPECTED_TSV["val.tsv"].encode("utf-8")


def test_a_missing_file_is_fetched_again(server, tmp_path):
    out = tmp_path / "data"
    fetch(server, out)
    (out / "test2016.tsv").unlink()
    fetch(server, out)
    assert (out / "test2016.tsv").read_bytes() == EXPECTED_TSV["test2016.tsv"].encode("utf-8")


def test_offline_a_local_folder_or_file_url_works_as_base_url(server, tmp_path):
    for base in (str(server.site), server.site.as_uri()):
        out = tmp_path / f"out-{len(base)}"
        download_multi30k(out, base_url=base, raw_sha256=server.sums, tsv_sha256=TSV_SUMS,
                          log=lambda line: None)
        assert (out / "train.tsv").read_bytes() == EXPECTED_TSV["train.tsv"].encode("utf-8")


# --- failures: an error that says what, and nothing left behind -------------------------

def test_checksum_mismatch_names_file_expected_and_got(server, tmp_path):
    out = tmp_path / "out"
    wrong = dict(server.sums, **{"val.de.gz": "0" * 64})
    with pytest.raises(DownloadError) as info:
        fetch(server, out, raw_sha256=wrong)
    message = str(info.value)
    assert "val.de.gz" in message and "0" * 64 in message and server.sums["val.de.gz"] in message
    assert "--base-url" in message  # says what to do
    assert_nothing_left(out)


def test_the_real_table_rejects_other_files(server, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="train.en.gz.*wrong sha256.*"
                                            + download.RAW_SHA256["train.en.gz"]):
        download_multi30k(out, base_url=server.url, log=lambda line: None, timeout=5)
    assert_nothing_left(out, before=["notes.txt"])  # an existing folder stays, with its files


def test_tsv_checksum_mismatch_names_the_tsv_and_writes_none(server, tmp_path):
    out = tmp_path / "out"
    wrong = dict(TSV_SUMS, **{"test2016.tsv": "f" * 64})
    with pytest.raises(DownloadError) as info:
        fetch(server, out, tsv_sha256=wrong)
    assert "test2016.tsv" in str(info.value) and "f" * 64 in str(info.value)
    assert TSV_SUMS["test2016.tsv"] in str(info.value)
    assert_nothing_left(out)  # train.tsv and val.tsv were right, but are not kept alone


def test_http_404_names_the_url(server, tmp_path):
    (server.site / "test_2016_flickr.de.gz").unlink()
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match=r"cannot download http://127\.0\.0\.1:\d+/"
                                            r"test_2016_flickr\.de\.gz: .*HTTP 404"):
        fetch(server, out)
    assert_nothing_left(out)


def test_server_down_says_check_the_network(tmp_path):
    # A port that was just free: nothing listens there, so the connection is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match=r"cannot download http://127\.0\.0\.1:\d+/train\.en"
                                            r"\.gz: .*check the network"):
        download_multi30k(out, base_url=f"http://127.0.0.1:{port}", log=lambda line: None,
                          timeout=2)
    assert_nothing_left(out)


def test_a_server_that_does_not_answer_times_out(tmp_path):
    site = tmp_path / "site"
    sums = write_raw(site)
    slow, thread = _serve(site, delay=0.6)
    try:
        out = tmp_path / "out"
        with pytest.raises(DownloadError, match=r"train\.en\.gz: no answer within 0\.1 s"):
            download_multi30k(out, base_url=f"http://127.0.0.1:{slow.server_address[1]}/",
                              raw_sha256=sums, tsv_sha256=TSV_SUMS, log=lambda line: None,
                              timeout=0.1)
        assert_nothing_left(out)
    finally:
        slow.shutdown()
        slow.server_close()
        thread.join(timeout=5)


def test_different_line_counts_name_both_files_and_counts(server, tmp_path):
    texts = dict(RAW_TEXT, **{"val.de.gz": RAW_TEXT["val.de.gz"] + "Noch ein Satz.\n"})
    sums = write_raw(server.site, texts)
    out = tmp_path / "out"
    with pytest.raises(DownloadError,
                       match=r"val\.en\.gz has 2 lines but val\.de\.gz has 3"):
        fetch(server, out, raw_sha256=sums)
    assert_nothing_left(out)


def test_a_file_that_is_not_gzip_is_an_error(server, tmp_path):
    (server.site / "val.en.gz").write_bytes(b"<html>not found</html>")
    sums = dict(server.sums, **{"val.en.gz": sha256(b"<html>not found</html>")})
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match=r"val\.en\.gz is not a readable gzip file"):
        fetch(server, out, raw_sha256=sums)
    assert_nothing_left(out)


def test_a_failed_download_removes_every_folder_it_created(server, tmp_path):
    (server.site / "val.en.gz").write_bytes(b"<html>not found</html>")
    sums = dict(server.sums, **{"val.en.gz": sha256(b"<html>not found</html>")})
    with pytest.raises(DownloadError, match="not a readable gzip file"):
        fetch(server, tmp_path / "work" / "data" / "multi30k", raw_sha256=sums)
    assert not (tmp_path / "work").exists()


def test_a_missing_local_folder_and_bad_arguments(tmp_path):
    with pytest.raises(DownloadError, match="no such folder"):
        download_multi30k(tmp_path / "out", base_url=str(tmp_path / "nowhere"),
                          log=lambda line: None)
    with pytest.raises(ValueError, match="timeout must be a positive number.*-1"):
        download_multi30k(tmp_path / "out", timeout=-1)
    with pytest.raises(ValueError, match="raw_sha256 has no sha256 for val.en.gz"):
        download_multi30k(tmp_path / "out",
                          raw_sha256={k: v for k, v in download.RAW_SHA256.items()
                                      if k != "val.en.gz"})
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DownloadError, match="is a file, not a folder"):
        download_multi30k(tmp_path / "afile", log=lambda line: None)
    assert not (tmp_path / "out").exists()


# --- the command -------------------------------------------------------------------------

def test_run_through_an_argparse_parser(server, tmp_path):
    parser = add_arguments(argparse.ArgumentParser())
    defaults = parser.parse_args([])
    assert defaults.dir == os.path.join("data", "multi30k")
    assert defaults.base_url == download.DEFAULT_BASE_URL
    assert defaults.force is False and defaults.timeout == download.DEFAULT_TIMEOUT

    out = tmp_path / "cmd"
    args = parser.parse_args(["--dir", str(out), "--base-url", server.url, "--timeout", "5"])
    paths = run(args, raw_sha256=server.sums, tsv_sha256=TSV_SUMS, log=lambda line: None)
    assert open(paths["train"], encoding="utf-8").read() == EXPECTED_TSV["train.tsv"]

    # With the real table, the fixture files are rejected, and the message names them.
    args = parser.parse_args(["--dir", str(out), "--base-url", server.url, "--force"])
    with pytest.raises(DownloadError, match="wrong sha256"):
        run(args, log=lambda line: None)
    assert sorted(os.listdir(out)) == ["test2016.tsv", "train.tsv", "val.tsv"]  # kept as they were
    assert (out / "val.tsv").read_bytes() == EXPECTED_TSV["val.tsv"].encode("utf-8")


def test_a_killed_downloads_folder_is_removed_by_the_next_download(server, tmp_path, ended_pid):
    out = tmp_path / "data"
    out.mkdir()
    dead = ended_pid
    left = out / f".multi30k-download-{dead}-abc"          # what a kill -9 leaves
    left.mkdir()
    (left / "train.de.gz").write_bytes(b"partial")
    running = out / f".multi30k-download-{os.getpid()}-xyz"   # a download still running
    running.mkdir()
    lines = []
    fetch(server, out, log=lines.append)
    assert not left.exists() and running.exists()
    assert any(left.name in line and "killed" in line for line in lines)


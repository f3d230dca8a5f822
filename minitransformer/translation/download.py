"""Download Multi30k (Task 1, English-German) and write it as tab-separated pairs.

``python -m minitransformer data multi30k [--dir DIR]`` calls :func:`run`. What happens:

1. The six raw gzip files (:data:`RAW_SHA256`) are fetched from ``base_url`` (by default the
   ``multi30k/dataset`` repository on GitHub) into a temporary folder inside DIR, and the
   sha256 of each is checked before it is used.
2. Each split pastes its English and German files side by side, one pair a line:
   ``english<TAB>german``. A TAB inside a sentence becomes a space (it would make a third
   column) and trailing whitespace is trimmed. Nothing else changes: no lowercasing, no
   tokenisation.
3. The sha256 of each TSV is checked too (:data:`TSV_SHA256`), so a user knows the files equal
   the ones the project's results were measured on. Only when all three are right are they
   renamed into DIR; the temporary folder is removed whatever happens. So a failure never
   leaves a half-written file behind. (A killed download cannot remove its folder; it is
   named after its process, ``.multi30k-download-<pid>-*``, and the next download into
   DIR removes it.)

Offline? Fetch the six files by hand (in a browser, on another machine) into a folder and pass
that folder (or a ``file://`` URL) as ``--base-url``: the same checks apply.

Only this command touches the network; training and the tests never do.
Multi30k is for non-commercial research and education only: never commit it to a repository.
"""
import gzip
import hashlib
import http.client
import math
import os
import pathlib
import shutil
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib

from .checkpoint import made_folder, process_alive
from .data import sha256_of_file

DEFAULT_BASE_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/"
DEFAULT_DIR = os.path.join("data", "multi30k")
DEFAULT_TIMEOUT = 60.0  # seconds without an answer before one request is given up

# The raw files as published (data last changed in commit c9be912 of multi30k/dataset).
RAW_SHA256 = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
}

# Which TSV is made from which pair of raw files: (English, German).
SPLITS = {
    "train.tsv": ("train.en.gz", "train.de.gz"),
    "val.tsv": ("val.en.gz", "val.de.gz"),
    "test2016.tsv": ("test_2016_flickr.en.gz", "test_2016_flickr.de.gz"),
}

# The TSVs the project's results were measured on (29,000 / 1,014 / 1,000 pairs).
TSV_SHA256 = {
    "train.tsv": "78ff43940a23f67aade14825fcab956da9392edda4e5d2a08c14fce4ed9a46ec",
    "val.tsv": "2da4aa9f2f00e8aa94e3df29b4669e663fe821b662405a2d9b7fe9ca0ca1f837",
    "test2016.tsv": "5a087b0b6254fc8da010153b56c4450c369a2709abed12cce8b9ef6db260db35",
}

_CHUNK = 1 << 16  # bytes read at a time while downloading
_TEMP_PREFIX = ".multi30k-download-"   # then the pid of the downloading process, "-", random


class DownloadError(RuntimeError):
    """Getting or converting the data failed; the message says what and what to do."""


def _base_url(base_url):
    """``base_url`` as a URL ending in "/": a local folder becomes a ``file://`` URL."""
    if not isinstance(base_url, str) or not base_url:
        raise ValueError(f"base_url must be a URL or a folder, got {base_url!r}")
    if "://" not in base_url:  # a folder on this machine
        folder = pathlib.Path(base_url).expanduser()
        if not folder.is_dir():
            raise DownloadError(f"--base-url {base_url}: no such folder (give a folder holding "
                                f"the six .gz files, or a URL)")
        base_url = folder.resolve().as_uri()
    return base_url if base_url.endswith("/") else base_url + "/"


def _advice(url, http_code=None):
    """What a user can do when ``url`` cannot be fetched."""
    if url.startswith("file:"):
        return (f"put the six files ({', '.join(RAW_SHA256)}, from {DEFAULT_BASE_URL}) in "
                f"that folder and rerun")
    if http_code == 404:
        return ("the file is not at that address: --base-url must be the folder that holds "
                "the six .gz files")
    return (f"check the network and rerun; or, offline, fetch the six files "
            f"({', '.join(RAW_SHA256)}) by hand from {DEFAULT_BASE_URL} into a folder and "
            f"rerun with --base-url FOLDER")


def _fetch(url, dest, timeout):
    """Copy ``url`` to the file ``dest``, returning its sha256. Every failure of the network
    or the server becomes a DownloadError naming the URL."""
    digest = hashlib.sha256()
    code = None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer, open(dest, "wb") as f:
            for chunk in iter(lambda: answer.read(_CHUNK), b""):
                digest.update(chunk)
                f.write(chunk)
    except urllib.error.HTTPError as e:  # before URLError: it is one
        code = e.code
        why = f"the server answered HTTP {e.code} {e.reason}"
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            why = f"no answer within {timeout:g} s"
        else:
            why = getattr(reason, "strerror", None) or str(reason)
    except (socket.timeout, TimeoutError):  # a timeout while reading the body
        why = f"no answer within {timeout:g} s"
    except (OSError, http.client.HTTPException) as e:  # connection reset, truncated body...
        why = f"{type(e).__name__}: {e}"
    else:
        return digest.hexdigest()
    raise DownloadError(f"cannot download {url}: {why}; {_advice(url, code)}")


def _read_lines(path, name):
    """The lines of the gzip file ``path`` as text, without their line ends."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DownloadError(f"{name} is not a readable gzip file ({e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DownloadError(f"{name} is not UTF-8 text (byte {raw[e.start]:#04x} at offset "
                            f"{e.start})") from None
    # split("\n"), not splitlines(): splitlines also breaks at characters such as U+2028
    # that may sit inside a sentence, and would then pair the wrong lines.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return lines


def _clean(sentence):
    # A TAB inside a sentence would read as a third column; trailing whitespace is noise.
    return sentence.replace("\t", " ").rstrip()


def paste_pairs(english_lines, german_lines, english_name="English", german_name="German"):
    """The TSV text of two parallel lists of lines: ``english<TAB>german`` a line.
    Raises DownloadError (naming both files and their line counts) if the counts differ."""
    if len(english_lines) != len(german_lines):
        raise DownloadError(f"{english_name} has {len(english_lines)} lines but {german_name} "
                            f"has {len(german_lines)}: the two languages must have one line per "
                            f"sentence pair")
    return "".join(f"{_clean(en)}\t{_clean(de)}\n"
                   for en, de in zip(english_lines, german_lines))


def _check_table(table, names, argument):
    missing = [name for name in names if name not in table]
    if missing:
        raise ValueError(f"{argument} has no sha256 for {', '.join(missing)}")


def _existing_state(directory, tsv_sha256, log):
    """True if all three TSVs are already in ``directory`` with the right sums; False if some
    are missing. A present file with a wrong sum raises: it is not ours to overwrite."""
    missing = []
    for name in SPLITS:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            missing.append(name)
            continue
        got = sha256_of_file(path)
        if got != tsv_sha256[name]:
            raise DownloadError(f"{path} exists but is not the Multi30k file (sha256 expected "
                                f"{tsv_sha256[name]}, got {got}); move it away, or rerun with "
                                f"--force to replace it")
    if missing and len(missing) < len(SPLITS):
        log(f"{directory}: {', '.join(missing)} missing; downloading all three")
    return not missing


def download_multi30k(directory=DEFAULT_DIR, base_url=DEFAULT_BASE_URL, log=print,
                      timeout=DEFAULT_TIMEOUT, force=False, raw_sha256=RAW_SHA256,
                      tsv_sha256=TSV_SHA256):
    """Fetch Multi30k and write ``train.tsv``, ``val.tsv``, ``test2016.tsv`` into ``directory``.

    Returns ``{"train": path, "val": path, "test2016": path}``. If the three files are already
    there with the right sha256, nothing is downloaded (unless ``force``). ``base_url``: where
    the six ``.gz`` files are, a URL (``https://``, ``file://``) or a local folder. ``log``: a
    function given one line of progress at a time. ``raw_sha256`` / ``tsv_sha256``: the
    expected sums (the tables of this module; tests pass their own).
    Raises DownloadError on any failure, having removed everything it wrote.
    """
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    _check_table(raw_sha256, RAW_SHA256, "raw_sha256")
    _check_table(tsv_sha256, SPLITS, "tsv_sha256")
    directory = os.fspath(directory)
    paths = {os.path.splitext(name)[0]: os.path.join(directory, name) for name in SPLITS}
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise DownloadError(f"--dir {directory} is a file, not a folder")

    if not force and os.path.isdir(directory) and _existing_state(directory, tsv_sha256, log):
        log(f"Multi30k already present and verified in {directory} (use --force to download "
            f"it again)")
        return paths

    base = _base_url(base_url)
    # A failed download leaves no folder it made (and, below, no file it wrote).
    with made_folder(directory):
        for name in remove_leftovers(directory):
            log(f"removed {os.path.join(directory, name)}, left by a download that was killed")
        # The temporary folder sits inside DIR, so the final renames stay on one file system
        # (os.replace is then atomic: a reader sees the old file or the new one, never half).
        temp = tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-", dir=directory)
        try:
            _fetch_and_convert(base, temp, raw_sha256, tsv_sha256, timeout, log)
            for tsv in SPLITS:  # only now that all three are right
                os.replace(os.path.join(temp, tsv), os.path.join(directory, tsv))
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    log(f"wrote {', '.join(paths.values())}")
    return paths


def _fetch_and_convert(base, temp, raw_sha256, tsv_sha256, timeout, log):
    """Fetch the six raw files from ``base`` into the folder ``temp`` and write the three
    TSV files there, each checked against its sha256 (DownloadError if one differs)."""
    for name, expected in raw_sha256.items():
        url = urllib.parse.urljoin(base, name)
        log(f"downloading {url}")
        got = _fetch(url, os.path.join(temp, name), timeout)
        if got != expected:
            raise DownloadError(
                f"{name} from {url} has the wrong sha256: expected {expected}, got {got}; "
                f"the download was corrupted or the file changed at the source; rerun, or "
                f"fetch it by hand into a folder and rerun with --base-url FOLDER")
    for tsv, (english, german) in SPLITS.items():
        text = paste_pairs(_read_lines(os.path.join(temp, english), english),
                           _read_lines(os.path.join(temp, german), german),
                           english, german)
        data = text.encode("utf-8")
        got = hashlib.sha256(data).hexdigest()
        if got != tsv_sha256[tsv]:
            raise DownloadError(
                f"{tsv} made from {english} and {german} has the wrong sha256: expected "
                f"{tsv_sha256[tsv]}, got {got}; the raw files verified, so the conversion "
                f"in {__name__} is at fault: please report it")
        with open(os.path.join(temp, tsv), "wb") as f:
            f.write(data)
        log(f"{tsv}: {text.count(chr(10)):,} pairs, sha256 verified")


def remove_leftovers(directory):
    """Remove the temporary folders in ``directory`` of downloads whose process no longer
    runs (killed before they could clean up); returns their names."""
    removed = []
    for name in sorted(os.listdir(directory)):
        if not name.startswith(_TEMP_PREFIX):
            continue
        pid = name[len(_TEMP_PREFIX):].split("-", 1)[0]
        if not (pid.isdigit() and process_alive(int(pid))):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
            removed.append(name)
    return removed


def add_arguments(parser, seconds=float):
    """The options of ``data multi30k`` on an argparse ``parser``. ``seconds``: the type
    of ``--timeout`` (the command line passes one that refuses what is not positive)."""
    parser.add_argument("--dir", default=DEFAULT_DIR,
                        help=f"folder for train.tsv, val.tsv, test2016.tsv "
                             f"(default: {DEFAULT_DIR})")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL,
                        help="where the six raw .gz files are: a URL or, offline, a local folder "
                             "you filled by hand (default: the multi30k/dataset repository)")
    parser.add_argument("--force", action="store_true",
                        help="download and replace the files even if they are present")
    parser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT,
                        help="seconds to wait for the server before giving up "
                             "(default: %(default)s)")
    return parser


def run(args, **overrides):
    """Run ``data multi30k`` with the parsed ``args``; ``overrides`` go to
    :func:`download_multi30k` as they are (e.g. ``log``, or sha256 tables in tests)."""
    options = dict(directory=args.dir, base_url=args.base_url, timeout=args.timeout,
                   force=args.force)
    options.update(overrides)
    return download_multi30k(**options)

"""Parallel text from a tab-separated file, in the format of the Tatoeba/Anki pairs.

One pair per line, UTF-8::

    source<TAB>target[<TAB>attribution ...]

Fields after the second are ignored. A line with fewer than two fields, or with an
empty source or target, is *malformed*: :func:`read_tsv` skips it (and warns with
the first line numbers) or raises, as ``on_error`` says. Blank lines are ignored.
Problems with the file itself (missing, unreadable, not UTF-8, not text, a line over
1 MiB, empty, no valid pair) raise errors that name the path. Files are read as a
stream, one line at a time: their size is never a problem of memory.
"""
import os
import warnings
from dataclasses import dataclass, field

from .splits import split_pairs
from .vocab import tokenize

ON_ERROR = ("skip", "raise")
_SHOWN_LINES = 5  # line numbers listed in the warning about skipped lines


@dataclass
class TSVData:
    """What :func:`read_tsv` found: ``pairs`` kept (``(source, target)`` strings),
    the 1-based line numbers of ``malformed`` lines, and how many pairs were dropped
    as ``too_long``."""
    pairs: list
    malformed: list = field(default_factory=list)
    too_long: int = 0


MAX_LINE_BYTES = 1 << 20   # 1 MiB: thousands of sentences; a longer "line" is not text
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"   # that some editors write at the start of a file


def text_lines(stream, name):
    """(line number, text) of each line of the binary ``stream``, decoded as UTF-8,
    without its line end. Read one line at a time, each at most MAX_LINE_BYTES: a file
    of any size, or an endless stream such as /dev/zero, costs one line of memory.

    A line that is too long, holds a NUL byte (a binary file) or is not UTF-8 raises
    ValueError naming ``name`` (a path, "stdin") and the line."""
    for number, line in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""),
                                  start=1):
        if b"\0" in line:
            column = line.index(b"\0") + 1
            raise ValueError(f"{name}, line {number}: not text (got a NUL byte at column "
                             f"{column}, expected UTF-8 text)")
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise ValueError(f"{name}, line {number}: line too long (got more than "
                             f"{MAX_LINE_BYTES:,} bytes, expected a line of text)")
        if number == 1 and line.startswith(_BYTE_ORDER_MARK):
            line = line[len(_BYTE_ORDER_MARK):]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{name}, line {number}: not valid UTF-8 (got byte "
                             f"{line[e.start]:#04x} at column {e.start + 1}, expected UTF-8 "
                             f"text)") from None
        yield number, text.rstrip("\n").rstrip("\r")


def _lines(path):
    """:func:`text_lines` of the file ``path``; errors name the path, and a file with
    nothing but blank lines is an error too."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"parallel text file not found: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"expected a TSV file, got a directory: {path}")
    try:
        f = open(path, "rb")
    except OSError as e:
        # OSError(errno, ...) comes back as the matching subclass (PermissionError...).
        raise OSError(e.errno, f"cannot read parallel text file ({e.strerror})", path) from e
    blank = True
    with f:
        for number, text in text_lines(f, path):
            blank = blank and not text.strip()
            yield number, text
    if blank:
        raise ValueError(f"parallel text file is empty: {path}")


def read_tsv(path, max_tokens=None, on_error="skip", reverse=False):
    """Read ``path`` into a :class:`TSVData`.

    ``max_tokens``: drop pairs where either side has more tokens than this (counted
    by :func:`~minitransformer.translation.vocab.tokenize`). ``on_error``: "skip"
    malformed lines (counted in ``malformed``; no warning here) or "raise" a
    ValueError naming the file and line. ``reverse``: swap the columns (translate from
    the second language into the first).
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    data = TSVData(pairs=[])
    for number, line in _lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        problem = None
        if len(fields) < 2:
            problem = "expected source<TAB>target, found no tab"
        elif not fields[0].strip() or not fields[1].strip():
            problem = "empty source or target"
        if problem:
            if on_error == "raise":
                raise ValueError(f"{os.fspath(path)}, line {number}: malformed line ({problem})")
            data.malformed.append(number)
            continue
        source, target = fields[0].strip(), fields[1].strip()
        if reverse:
            source, target = target, source
        if max_tokens is not None and max(len(tokenize(source)),
                                          len(tokenize(target))) > max_tokens:
            data.too_long += 1
            continue
        data.pairs.append((source, target))
    return data


def load_tsv(path, max_tokens=None, on_error="skip", reverse=False):
    """The ``(source, target)`` pairs of ``path``: :func:`read_tsv` plus the checks a
    caller wants. Skipped malformed lines produce one ``UserWarning`` with their count
    and first line numbers; a file with no pair left raises ValueError naming it."""
    data = read_tsv(path, max_tokens=max_tokens, on_error=on_error, reverse=reverse)
    well_formed = len(data.pairs) + data.too_long
    if len(data.malformed) > well_formed:
        # Skipping a few bad lines is a courtesy; training on the few good lines of a file
        # that is mostly something else would only hide the mistake.
        shown = ", ".join(map(str, data.malformed[:_SHOWN_LINES]))
        raise ValueError(f"{os.fspath(path)}: {len(data.malformed)} of "
                         f"{len(data.malformed) + well_formed} lines are not source<TAB>target "
                         f"pairs (lines {shown}, ...): is this a tab-separated parallel text?")
    if data.malformed:
        shown = ", ".join(map(str, data.malformed[:_SHOWN_LINES]))
        more = ", ..." if len(data.malformed) > _SHOWN_LINES else ""
        warnings.warn(f"{os.fspath(path)}: skipped {len(data.malformed)} malformed "
                      f"line(s) (lines {shown}{more})", UserWarning, stacklevel=2)
    if not data.pairs:
        raise ValueError(f"no valid sentence pairs in {os.fspath(path)} "
                         f"({len(data.malformed)} malformed line(s), {data.too_long} pair(s) "
                         f"longer than max_tokens={max_tokens})")
    return data.pairs


def load_tsv_corpus(path, splits=(0.8, 0.1, 0.1), seed=0, max_tokens=None,
                    on_error="skip", reverse=False):
    """:func:`load_tsv` split into ``{"train", "valid", "test"}`` lists with no
    source sentence in two splits (see :func:`~minitransformer.translation.splits.split_pairs`)."""
    pairs = load_tsv(path, max_tokens=max_tokens, on_error=on_error, reverse=reverse)
    return split_pairs(pairs, splits=splits, seed=seed)

"""Which sentence pairs to train, validate and test on: the built-in corpus, or TSV files.

Real corpora come with their official splits (Multi30k: ``train.tsv``, ``val.tsv``,
``test2016.tsv``), and published scores are on those files, whole: a file given as
``valid`` or ``test`` is used exactly as it is. Only a lone training file is split
(80/10/10, no source sentence in two parts).

A checkpoint keeps the sha256 of the files it was trained on (:func:`data_sha256`), so
that a resumed run or a rebuilt test set can tell when a file has changed since.
"""
import hashlib
import os

from .grammar import load_corpus
from .splits import split_pairs
from .tsv import load_tsv

DATA_FILES = ("tsv", "valid", "test")   # the arguments of load_data that name files
_CHUNK = 1 << 16   # bytes read at a time while hashing


class DataChanged(ValueError):
    """A data file's sha256 differs from the one recorded when the model was trained."""

    def __init__(self, path, expected, got):
        self.path, self.expected, self.got = path, expected, got
        super().__init__(f"{path} has changed since the model was trained on it (got sha256 "
                         f"{got[:12]}..., expected {expected[:12]}...)")


def sha256_of_file(path):
    """Hex sha256 of the file at ``path``, read in chunks (the train files are megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_sha256(data_args):
    """{argument: sha256} of the regular files among ``data_args``' tsv, valid and test
    (a pipe cannot be read twice, and the built-in corpus has no file)."""
    return {name: sha256_of_file(data_args[name]) for name in DATA_FILES
            if data_args.get(name) and os.path.isfile(data_args[name])}


def check_unchanged(data_args, sha256):
    """Raise DataChanged for the first file of ``data_args`` whose sha256 is not the one
    recorded in ``sha256`` ({argument: hex digest}, as :func:`data_sha256` gives)."""
    now = data_sha256(data_args)
    for name, expected in sha256.items():
        if now.get(name) != expected:
            raise DataChanged(data_args.get(name), expected, now.get(name) or "(no such file)")


def load_data(corpus_size=20000, seed=0, tsv=None, valid=None, test=None, max_tokens=None,
              reverse=False, sha256=None):
    """``{"train", "valid", "test"}`` lists of (source, target) pairs.

    ``tsv``: a file of ``source<TAB>target`` lines to train on; ``valid``/``test``:
    files used whole for validation and test (either may be left out: that list is
    then empty). With ``tsv`` alone, the file is split deterministically for ``seed``,
    so a checkpoint can rebuild its test set. Without ``tsv``, the built-in English ->
    German grammar, ``corpus_size`` pairs. ``max_tokens`` drops longer *training* pairs
    only: a test set is never shortened. ``reverse`` swaps the columns of every file.
    ``sha256``: {argument: hex digest} the files must still have (a checkpoint's record);
    a file that differs raises :class:`DataChanged` before anything is read.
    """
    if (valid or test) and not tsv:
        raise ValueError("valid and test files need a training file too (--data TRAIN.tsv)")
    if sha256:
        check_unchanged(dict(tsv=tsv, valid=valid, test=test), sha256)
    if not tsv:
        return _split_whole(load_corpus(size=corpus_size, seed=seed),
                            f"{corpus_size} pairs of the built-in corpus",
                            "give a larger --corpus-size")
    train = load_tsv(tsv, max_tokens=max_tokens, reverse=reverse)
    if valid or test:
        return {"train": train,
                "valid": load_tsv(valid, reverse=reverse) if valid else [],
                "test": load_tsv(test, reverse=reverse) if test else []}
    return _split_whole(split_pairs(train, seed=seed), f"{tsv}: {len(train)} sentence pairs",
                        "give --valid/--test files, or more pairs")


def _split_whole(splits, what, advice):
    """``splits``, unless a part of them is empty: a run without validation or test set
    would report nothing, so that is an error naming ``what`` was split."""
    empty = [name for name, pairs in splits.items() if not pairs]
    if empty:
        raise ValueError(f"{what} are too few to split 80/10/10 (the {' and '.join(empty)} "
                         f"part would be empty); {advice}")
    return splits


# ---------------------------------------------------------------- where Multi30k lives
MULTI30K_FILES = ("train.tsv", "val.tsv", "test2016.tsv")
DATA_VARIABLE = "MINITRANSFORMER_DATA"
DEFAULT_MULTI30K_DIR = os.path.join("data", "multi30k")   # where `data multi30k` writes


def multi30k_candidates():
    """The folders to look in, in order: the one named by $MINITRANSFORMER_DATA (if set),
    then data/multi30k/ of the current directory."""
    named = os.environ.get(DATA_VARIABLE)
    return [named, DEFAULT_MULTI30K_DIR] if named else [DEFAULT_MULTI30K_DIR]


def find_multi30k():
    """The first folder of :func:`multi30k_candidates` holding train.tsv, val.tsv and
    test2016.tsv, or None. Multi30k is never part of the project (its licence allows
    non-commercial research and education only), so callers skip where it is absent."""
    for folder in multi30k_candidates():
        if all(os.path.isfile(os.path.join(folder, name)) for name in MULTI30K_FILES):
            return folder
    return None


def multi30k_not_found():
    """The one-line reason to give when :func:`find_multi30k` finds nothing."""
    return (f"Multi30k not found (looked in {' and '.join(multi30k_candidates())}): set "
            f"{DATA_VARIABLE} to a folder holding {', '.join(MULTI30K_FILES)}, or run "
            f"python -m minitransformer data multi30k")

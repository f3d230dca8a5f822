"""Which sentence pairs to train, validate and test on: the built-in corpus, or TSV files.

Real corpora come with their official splits (Multi30k: ``train.tsv``, ``val.tsv``,
``test2016.tsv``), and published scores are on those files, whole: a file given as
``valid`` or ``test`` is used exactly as it is. Only a lone training file is split
(80/10/10, no source sentence in two parts).
"""
import os

from .grammar import load_corpus
from .splits import split_pairs
from .tsv import load_tsv


def load_data(corpus_size=20000, seed=0, tsv=None, valid=None, test=None, max_tokens=None,
              reverse=False):
    """``{"train", "valid", "test"}`` lists of (source, target) pairs.

    ``tsv``: a file of ``source<TAB>target`` lines to train on; ``valid``/``test``:
    files used whole for validation and test (either may be left out: that list is
    then empty). With ``tsv`` alone, the file is split deterministically for ``seed``,
    so a checkpoint can rebuild its test set. Without ``tsv``, the built-in English ->
    German grammar, ``corpus_size`` pairs. ``max_tokens`` drops longer *training* pairs
    only: a test set is never shortened. ``reverse`` swaps the columns of every file.
    """
    if (valid or test) and not tsv:
        raise ValueError("valid and test files need a training file too (--data TRAIN.tsv)")
    if not tsv:
        return load_corpus(size=corpus_size, seed=seed)
    train = load_tsv(tsv, max_tokens=max_tokens, reverse=reverse)
    if valid or test:
        return {"train": train,
                "valid": load_tsv(valid, reverse=reverse) if valid else [],
                "test": load_tsv(test, reverse=reverse) if test else []}
    splits = split_pairs(train, seed=seed)
    empty = [name for name, pairs in splits.items() if not pairs]
    if empty:
        raise ValueError(f"{tsv}: {len(train)} sentence pairs are too few to split 80/10/10 "
                         f"(the {' and '.join(empty)} part would be empty); give --valid/--test "
                         f"files, or more pairs")
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

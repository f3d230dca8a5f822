"""Which sentence pairs to train, validate and test on: the built-in corpus, or TSV files.

Real corpora come with their official splits (Multi30k: ``train.tsv``, ``val.tsv``,
``test2016.tsv``), and published scores are on those files, whole: a file given as
``valid`` or ``test`` is used exactly as it is. Only a lone training file is split
(80/10/10, no source sentence in two parts).
"""
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

"""Which sentence pairs to train on: the built-in corpus, or a TSV file of your own."""
from .grammar import load_corpus
from .tsv import load_tsv_corpus


def load_data(corpus_size=20000, seed=0, tsv=None, max_tokens=None, reverse=False):
    """``{"train", "valid", "test"}`` lists of (source, target) pairs.

    With ``tsv`` (a path to Tatoeba/Anki-style ``source<TAB>target`` lines) the pairs
    come from that file, longer than ``max_tokens`` dropped; otherwise from the
    built-in English -> German grammar, ``corpus_size`` pairs. The split is
    deterministic for ``seed``, so a checkpoint can rebuild its test set.
    """
    if tsv:
        return load_tsv_corpus(tsv, seed=seed, max_tokens=max_tokens, reverse=reverse)
    return load_corpus(size=corpus_size, seed=seed)

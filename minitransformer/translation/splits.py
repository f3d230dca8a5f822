"""Train / validation / test splits that never share a source sentence.

A model evaluated on sentences it trained on measures memory, not translation. Real
corpora list one source with several translations (Tatoeba: "Go." -> "Va !",
"Marche.", "Bouge !"), so pairs are grouped by their source first and each group goes
to one split whole.
"""
import random


def split_pairs(pairs, splits=(0.8, 0.1, 0.1), seed=0):
    """Split ``pairs`` (a list of ``(source, target)``) into
    ``{"train": [...], "valid": [...], "test": [...]}``.

    ``splits`` gives the fractions of *distinct source sentences* per split (three
    non-negative numbers summing to 1). Exact duplicate pairs are dropped; all pairs
    sharing a source land in the same split. The groups are shuffled with ``seed``;
    within a split, pairs keep their order of first appearance in each group.
    """
    if len(splits) != 3 or any(f < 0 for f in splits) or abs(sum(splits) - 1) > 1e-6:
        raise ValueError(f"splits must be three non-negative fractions summing to 1, "
                         f"got {splits!r}")
    groups = {}  # source -> its distinct targets, in order (dicts keep insertion order)
    for source, target in pairs:
        groups.setdefault(source, {})[target] = None
    sources = list(groups)
    random.Random(seed).shuffle(sources)
    n_valid = round(len(sources) * splits[1])
    n_test = round(len(sources) * splits[2])
    n_train = len(sources) - n_valid - n_test
    parts = {"train": sources[:n_train], "valid": sources[n_train:n_train + n_valid],
             "test": sources[n_train + n_valid:]}
    return {name: [(s, t) for s in part for t in groups[s]] for name, part in parts.items()}

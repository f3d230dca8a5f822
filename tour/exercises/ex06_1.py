"""Exercise 6.1: an alignment from an attention map.

Write ``alignment``. Check with ``python -m pytest -m exercise_6_1``.
"""


def alignment(weights, source_tokens, target_tokens):
    """For each target word, the source word it attends to most.

    weights: a (T, S) array (NumPy), row i the attention of target word i over the S
    source words (each row sums to 1). source_tokens: S strings, target_tokens: T strings.
    Return a list of T pairs ``(target_word, source_word)``, in the order of the
    target words, pairing each with the source word of the largest weight in its row
    (the first of them where several are equally large).
    """
    raise NotImplementedError("exercise 6.1: write alignment")

"""Exercise 4.1: a causal mask by hand.

Write ``future_mask``. Check with ``python -m pytest -m exercise_4_1``.
"""
import minitransformer as mt  # noqa: F401  (for your answer)


def future_mask(n):
    """The boolean (n, n) mask of causal self-attention, as an ``mt.tensor``.

    Entry [i, j] is True where query i may NOT attend to key j: where key j lies in
    query i's future (j > i). Everything on and below the diagonal is False. For n = 3:

        [[False, True,  True ],
         [False, False, True ],
         [False, False, False]]

    Build it yourself (NumPy is fine: ``numpy.arange`` and a comparison, then
    ``mt.tensor(array)``), without ``nn.causal_mask``.
    """
    raise NotImplementedError("exercise 4.1: write future_mask")

"""Exercise 5.1: a causal 1-D convolution, for a new row of Table 1.

Write ``conv1d`` from tensor ops. Check with ``python -m pytest -m exercise_5_1``.
"""
import minitransformer as mt  # noqa: F401  (for your answer)


def conv1d(x, weight):
    """A causal convolution over the tokens: x (batch, n, d_in) -> (batch, n, d_out).

    weight: (k, d_in, d_out), one matrix per offset. Output token t mixes the input
    tokens t, t-1, ..., t-k+1:

        out[:, t] = Σ_{j=0}^{k-1} x[:, t - j] @ weight[j]

    where a token before the start (t - j < 0) counts as zeros. No bias.

    Hint: put k - 1 zero tokens in front of x (``mt.zeros`` and
    ``mt.concat(..., axis=1)``); then offset j is one slice of n tokens of the padded
    input times ``weight[j]``, and the output is the sum of the k products. Each
    product handles all n tokens at once: no loop over t.
    """
    raise NotImplementedError("exercise 5.1: write conv1d")

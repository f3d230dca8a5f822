"""Exercise 3.1: a GRU cell, and a GRU layer that loops over the tokens.

Write both functions with tensor ops (``@``, ``+``, ``*``, ``mt.sigmoid``,
``mt.tanh``, slicing, ``mt.stack``, ``mt.zeros``). Check with
``python -m pytest -m exercise_3_1``.
"""
import minitransformer as mt  # noqa: F401  (for your answer)


def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step of a gated recurrent unit (PyTorch's ``GRUCell`` equations).

    x: (batch, input_size), h: (batch, hidden) -> the new h, (batch, hidden).
    weight_ih: (3·hidden, input_size) and weight_hh: (3·hidden, hidden), each the
    three gates stacked in the order r, z, n; bias_ih, bias_hh: (3·hidden,), the same.
    With W_ir = weight_ih[:hidden], W_iz = weight_ih[hidden:2·hidden],
    W_in = weight_ih[2·hidden:] (and the same for the others):

        r  = sigmoid(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)        reset gate
        z  = sigmoid(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)        update gate
        n  = tanh(x W_inᵀ + b_in + r * (h W_hnᵀ + b_hn))     candidate
        h' = (1 - z) * n + z * h

    Hint: compute the two products x weight_ihᵀ + bias_ih and h weight_hhᵀ + bias_hh
    once each, then slice their last axis into the three gates.
    """
    raise NotImplementedError("exercise 3.1: write gru_cell")


def gru(x, weight_ih, weight_hh, bias_ih, bias_hh):
    """A GRU layer over a sequence: x (n, batch, input_size) -> (n, batch, hidden).

    Start from h = zeros (batch, hidden) (``mt.zeros(batch, hidden, dtype=x.dtype)``),
    apply ``gru_cell`` to each token in turn, and stack the n hidden states along a
    new first axis. hidden is ``weight_hh.shape[1]``.
    """
    raise NotImplementedError("exercise 3.1: write gru")

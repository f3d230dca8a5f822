"""Exercise 3.1, a reference answer: a GRU cell and a GRU layer."""
import minitransformer as mt


def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    hidden = h.shape[-1]
    gi = x @ weight_ih.T + bias_ih          # (batch, 3·hidden): everything that reads x
    gh = h @ weight_hh.T + bias_hh          # (batch, 3·hidden): everything that reads h
    r = mt.sigmoid(gi[:, :hidden] + gh[:, :hidden])
    z = mt.sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
    n = mt.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
    return (1 - z) * n + z * h


def gru(x, weight_ih, weight_hh, bias_ih, bias_hh):
    hidden = weight_hh.shape[1]
    h = mt.zeros(x.shape[1], hidden, dtype=x.dtype)
    states = []
    for t in range(x.shape[0]):             # step t waits for step t-1
        h = gru_cell(x[t], h, weight_ih, weight_hh, bias_ih, bias_hh)
        states.append(h)
    return mt.stack(states)

"""Exercise 5.1, a reference answer: a causal 1-D convolution."""
import minitransformer as mt


def conv1d(x, weight):
    batch, n, d_in = x.shape
    k = weight.shape[0]
    if k > 1:
        padded = mt.concat([mt.zeros(batch, k - 1, d_in, dtype=x.dtype), x], axis=1)
    else:
        padded = x
    out = None
    for j in range(k):                       # k offsets, each over all n tokens at once
        start = k - 1 - j                    # padded[:, start + t] is x[:, t - j]
        term = padded[:, start:start + n] @ weight[j]
        out = term if out is None else out + term
    return out

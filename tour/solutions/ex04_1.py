"""Exercise 4.1, a reference answer: a causal mask by hand."""
import numpy as np

import minitransformer as mt


def future_mask(n):
    positions = np.arange(n)
    # Key j is in query i's future where j > i: a column index above the row index.
    return mt.tensor(positions[None, :] > positions[:, None])

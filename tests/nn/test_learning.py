"""Behaviour tests: the layers learn what they are supposed to be good at (seeded, seconds)."""
import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim
from tests.conftest import to_host

pytestmark = pytest.mark.slow   # training runs: a few seconds of CPU each

SYMBOLS = 4


def recall_batch(rng, batch, delay, device):
    """Sequences of delay + 1 random symbols (one-hot) with a "remember this" flag on
    the first step; the target is the first symbol."""
    tokens = rng.integers(0, SYMBOLS, (batch, delay + 1))
    x = np.zeros((batch, delay + 1, SYMBOLS + 1), np.float32)
    x[np.arange(batch)[:, None], np.arange(delay + 1), tokens] = 1
    x[:, 0, SYMBOLS] = 1
    return mt.tensor(x, device=device), mt.tensor(tokens[:, 0], device=device)


HIDDEN = 32


class Recall(nn.Module):
    def __init__(self, recurrent):
        super().__init__()
        self.rnn = recurrent(SYMBOLS + 1, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, SYMBOLS)
        if recurrent is nn.LSTM:
            remember(self.rnn)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])         # predict from the last step only


def remember(lstm):
    """The usual LSTM initialisation trick (Gers et al.; Jozefowicz et al. 2015): a
    positive forget-gate bias, so that the cell starts out remembering."""
    forget = slice(HIDDEN, 2 * HIDDEN)       # gates in PyTorch's order: input, forget, cell, output
    lstm.bias_hh_l0.data[forget] += 3.0


@pytest.mark.parametrize("seed", range(3))
def test_an_lstm_learns_to_recall_a_symbol_across_a_delay(device, seed, delay=20):
    # Several seeds, each of which must learn: settings that learn only on a lucky
    # seed would pass or fail with the rounding of the CPU and BLAS underneath.
    mt.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Recall(nn.LSTM).to(device)
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):
        x, y = recall_batch(rng, 64, delay, device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    x, y = recall_batch(np.random.default_rng(99), 500, delay, device)
    with mt.no_grad():
        accuracy = float((to_host(model(x)).argmax(-1) == to_host(y)).mean())
    assert accuracy > 0.95


def reach_back(recurrent, seed, device, delay=20):
    """How much of the gradient of the last output reaches the first input, relative to
    the last input's: what a training step can learn about step 0 from step ``delay``."""
    mt.manual_seed(seed)
    layer = recurrent(SYMBOLS + 1, HIDDEN, batch_first=True)
    if recurrent is nn.LSTM:
        remember(layer)
    layer.to(device)
    x = np.random.default_rng(seed).normal(size=(8, delay + 1, SYMBOLS + 1))
    x = mt.tensor(x.astype(np.float32), device=device, requires_grad=True)
    out, _ = layer(x)                        # (batch, delay + 1, hidden)
    out[:, -1].sum().backward()
    per_step = np.abs(to_host(x.grad)).sum(axis=(0, 2))   # (delay + 1,)
    return per_step[0] / per_step[-1]


@pytest.mark.parametrize("seed", range(5))
def test_the_gradient_fades_across_a_delay_in_an_rnn_and_not_in_an_lstm(device, seed):
    # Why the LSTM learns what the RNN finds hard: through 20 tanh steps the RNN's
    # gradient shrinks by a factor per step (about a millionth here); the LSTM's cell,
    # whose forget gate starts near 1, passes it on almost whole. (Adam rescales small
    # gradients, so a plain RNN can still learn this delay in time; how much gradient
    # arrives is what tells the two layers apart on every seed.)
    assert reach_back(nn.LSTM, seed, device) > 0.1
    assert reach_back(nn.RNN, seed, device) < 1e-3


VOCAB, LENGTH = 8, 6


class Reverser(nn.Module):
    """Token and position embeddings, one self-attention layer, a linear read-out."""

    def __init__(self, d_model=32, heads=2):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, d_model)
        self.positions = nn.Embedding(LENGTH, d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.out = nn.Linear(d_model, VOCAB)

    def forward(self, x):
        h = self.tokens(x) + self.positions(mt.arange(LENGTH, device=x.device))
        h, _ = self.attn(h, h, h)
        return self.out(h)


def test_one_attention_layer_learns_to_reverse_a_sequence(device):
    mt.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Reverser().to(device)
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        x = rng.integers(0, VOCAB, (32, LENGTH))
        logits = model(mt.tensor(x, device=device))
        target = mt.tensor(x[:, ::-1].reshape(-1).copy(), device=device)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = np.random.default_rng(9).integers(0, VOCAB, (500, LENGTH))
    with mt.no_grad():
        predicted = to_host(model(mt.tensor(x, device=device))).argmax(-1)
    assert (predicted == x[:, ::-1]).all(axis=1).mean() > 0.95   # whole sequences right

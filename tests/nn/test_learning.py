"""Behaviour tests: the layers learn what they are supposed to be good at (seeded, seconds)."""
import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn, optim
from tests.conftest import to_host

pytestmark = pytest.mark.slow   # training runs: 3-5 s of CPU each

SYMBOLS = 4


def recall_batch(rng, batch, delay, device):
    """Sequences of delay + 1 random symbols (one-hot) with a "remember this" flag on
    the first step; the target is the first symbol."""
    tokens = rng.integers(0, SYMBOLS, (batch, delay + 1))
    x = np.zeros((batch, delay + 1, SYMBOLS + 1), np.float32)
    x[np.arange(batch)[:, None], np.arange(delay + 1), tokens] = 1
    x[:, 0, SYMBOLS] = 1
    return mt.tensor(x, device=device), mt.tensor(tokens[:, 0], device=device)


class Recall(nn.Module):
    def __init__(self, recurrent, hidden=16):
        super().__init__()
        self.rnn = recurrent(SYMBOLS + 1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, SYMBOLS)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])         # predict from the last step only


def train_recall(recurrent, device, delay=20, steps=200):
    mt.manual_seed(0)
    rng = np.random.default_rng(0)
    model = Recall(recurrent)
    if recurrent is nn.LSTM:
        # The usual LSTM initialisation trick (Gers et al.; Jozefowicz et al. 2015): a
        # positive forget-gate bias, so that the cell starts out remembering.
        model.rnn.bias_hh_l0.data[16:32] += 3.0
    model.to(device)
    opt = optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        x, y = recall_batch(rng, 32, delay, device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    x, y = recall_batch(np.random.default_rng(99), 500, delay, device)
    with mt.no_grad():
        return float((to_host(model(x)).argmax(-1) == to_host(y)).mean())


def test_lstm_remembers_across_a_delay_that_defeats_a_plain_rnn(device):
    lstm_accuracy = train_recall(nn.LSTM, device)
    rnn_accuracy = train_recall(nn.RNN, device)
    assert lstm_accuracy > 0.95
    assert rnn_accuracy < lstm_accuracy - 0.3


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

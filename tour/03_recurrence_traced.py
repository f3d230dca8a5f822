# %% [markdown]
# # 3. Recurrence, traced
#
# After this chapter you will be able to trace a recurrent layer token by token, read
# its chain of dependent ops off the tracer, and say why an RNN or an LSTM over n
# tokens needs n sequential steps however many processors you give it.

# %%
import os

import minitransformer as mt
from minitransformer import nn
from minitransformer.trace import trace

QUICK = os.environ.get("MINITRANSFORMER_TOUR_QUICK") == "1"
mt.manual_seed(0)
d = 16                                   # features per token
lengths = (4, 8, 16) if QUICK else (4, 8, 16, 32, 64)

# %% [markdown]
# ## One recurrent step, written out
#
# An Elman RNN reads its tokens one at a time: h[t] = tanh(x[t] Wᵀ + h[t-1] Uᵀ). Step t
# reads h[t-1], so it cannot start before step t-1 has finished. Here is that loop
# with plain tensor ops.

# %%
W = mt.randn(d, d) * 0.3
U = mt.randn(d, d) * 0.3


def rnn_by_hand(x):
    """x: (n, d), one token a row -> the n hidden states, (n, d)."""
    W_t, U_t = W.T, U.T
    h = mt.zeros(1, d)
    states = []
    for t in range(x.shape[0]):                       # step t waits for step t-1
        h = (x[t:t + 1] @ W_t + h @ U_t).tanh()
        states.append(h)
    return mt.concat(states, axis=0)


x = mt.randn(3, d)
with trace() as t:
    rnn_by_hand(x)
print(t.listing())

# %% [markdown]
# ## The schedule with unlimited processors
#
# `levels()` groups the ops by the earliest step at which each could run if every
# op had its own processor. The input products `x[t] Wᵀ` of all tokens share the first
# steps; everything that touches h forms one chain, a few ops per token.

# %%
for step, ops in enumerate(t.levels(), start=1):
    print(f"step {step:2d}: " + ", ".join(node.name for node in ops))
chain = t.critical_path()
print("\ncritical path:", " -> ".join(node.name for node in chain.nodes))

# %% [markdown]
# ## The chain grows with n
#
# Trace the library's `nn.RNN` and `nn.LSTM` over longer and longer sequences. The
# critical path (the *sequential ops*) grows by the same few ops for every token.

# %%
rnn = nn.RNN(d, d, batch_first=True)
lstm = nn.LSTM(d, d, batch_first=True)


def sequential_ops(layer, n):
    x = mt.randn(1, n, d)                            # (batch, n tokens, d)
    with mt.no_grad(), trace() as t:
        layer(x)
    return t.summary()["sequential_ops"]


print(f"{'n':>4} {'RNN seq. ops':>13} {'LSTM seq. ops':>14}")
for n in lengths:
    print(f"{n:>4} {sequential_ops(rnn, n):>13} {sequential_ops(lstm, n):>14}")
per_token = sequential_ops(lstm, 9) - sequential_ops(lstm, 8)
print(f"each token adds {per_token} ops to the LSTM's chain")

# %% [markdown]
# ## Following token 0 to the last token
#
# The *maximum path length* of Table 1 asks: through how many ops must information
# from the first token pass to reach the last output? `watch_position` marks token 0
# of the input; `path_length` reads the answer at the last output token.

# %%
for n in lengths:
    x = mt.randn(1, n, d)
    with mt.no_grad(), trace() as t:
        t.watch_position(x, axis=1, position=0)
        out, _ = lstm(x)
    ops = t.path_length(out, axis=1)["ops"]
    print(f"n = {n:>3}: token 0 reaches token {n - 1} after {ops} ops")

# %% [markdown]
# ## Backward walks the same chain in reverse
#
# Training needs the gradient of the loss with respect to every step, and the
# gradient of step t needs that of step t+1 (*backpropagation through time*). The
# backward graph has a chain as long as the forward one.

# %%
x = mt.randn(1, 16, d)
with trace() as t:
    out, _ = lstm(x)
    out.sum().backward()
for phase in ("forward", "backward"):
    print(f"{phase:>8}: {t.summary(phase)['sequential_ops']} sequential ops")

# %% [markdown]
# ## Exercises
#
# **Exercise 3.1: a GRU, and its chain.** `tour/exercises/ex03_1.py` asks for
# `gru_cell` (one step of a gated recurrent unit, with PyTorch's equations, given in
# the docstring) and `gru` (the loop over the tokens). The check compares your values
# with a reference computation, runs `mt.gradcheck` on your cell, and traces your
# `gru` at several lengths: its critical path must grow in proportion to n, by the
# same number of ops per token: `python -m pytest -m exercise_3_1`.

# %% [markdown]
# # 4. Attention, traced
#
# After this chapter you will be able to write scaled dot-product attention from
# tensor ops, trace it and see that its chain of dependent ops does not grow with the
# number of tokens, hide keys with causal and padding masks, look at the weights of
# several heads as a heatmap, and compute the same result block by block in memory
# that grows only linearly with n.

# %%
import math
import os

import numpy as np

import minitransformer as mt
from minitransformer import analysis, nn
from minitransformer.trace import trace

QUICK = os.environ.get("MINITRANSFORMER_TOUR_QUICK") == "1"
mt.manual_seed(0)
d = 16
lengths = (4, 16, 64) if QUICK else (4, 16, 64, 256)

# %% [markdown]
# ## The formula in four lines
#
# Attention(Q, K, V) = softmax(Q Kᵀ / √d) V. Every query is compared with every key in
# one matrix product; the weights of each query sum to 1; the output of each token is
# a weighted sum of the values. No token waits for another.

# %%
def attention_by_hand(q, k, v):
    """q, k, v: (n, d) -> (output (n, d), weights (n, n))."""
    scores = (q @ k.T) * (1 / math.sqrt(q.shape[-1]))   # (n, n): all pairs at once
    weights = mt.softmax(scores, axis=-1)
    return weights @ v, weights


x = mt.randn(5, d)
with trace() as t:
    out, weights = attention_by_hand(x, x, x)
print(t.listing())
print("rows of the weights sum to", weights.sum(axis=-1).numpy().round(6))

# %% [markdown]
# ## The chain does not grow with n
#
# The same four ops run whatever n is: only their shapes grow. The critical path of a
# whole `nn.MultiheadAttention` layer (projections, heads, output projection) stays
# the same, and so does the path from token 0 to the last token.

# %%
layer = nn.MultiheadAttention(d, 4, batch_first=True)
print(f"{'n':>4} {'seq. ops':>9} {'token 0 -> last':>16} {'FLOPs':>12} {'W/S':>9}")
for n in lengths:
    x = mt.randn(1, n, d)
    with mt.no_grad(), trace() as t:
        t.watch_position(x, axis=1, position=0)
        out, _ = layer(x, x, x, need_weights=False)
    s = t.summary()
    path = t.path_length(out, axis=1)["ops"]
    print(f"{n:>4} {s['sequential_ops']:>9} {path:>16} {s['work_flops']:>12,} "
          f"{s['parallelism']:>9,.0f}")

# %% [markdown]
# The price is in the FLOPs column: the n × n scores make the work grow faster than n.
# The parallelism W/S grows with it: attention keeps ever more processors busy.
#
# ## Masks: who may look at whom
#
# A boolean mask is True where a query may *not* attend to a key; a hidden key gets
# weight exactly 0. A causal mask hides the future (key j > query i), so a decoder
# cannot peek at the word it is about to predict.

# %%
n = 6
causal = nn.causal_mask(n)
print(causal.numpy().astype(int))
x = mt.randn(1, n, d)
_, w_causal = layer(x, x, x, attn_mask=causal)
print(w_causal.numpy()[0].round(2))

# %% [markdown]
# Autograd confirms it: the gradient of output token 0 with respect to the last input
# token is exactly zero under the causal mask, and not without it.
#
# (The tracer's dependence rule would not show this: it follows the *structure* of the
# ops, and the softmax still reads a hidden key's score before setting its weight to
# 0. It over-estimates dependences, never under-estimates them.)

# %%
for mask in (None, causal):
    x = mt.randn(1, n, d, requires_grad=True)
    out, _ = layer(x, x, x, attn_mask=mask, need_weights=False)
    out[:, 0].sum().backward()                       # output token 0 only
    reach = float(np.abs(x.grad[0, n - 1]).max())
    label = "causal mask" if mask is not None else "no mask    "
    print(f"{label}: |d output[0] / d input[{n - 1}]| = {reach:.3g}")

# %% [markdown]
# A padding mask hides the keys of padding positions, where a short sentence is padded
# to the length of the longest one in its batch (True = padding).

# %%
padding = mt.tensor([[False, False, False, False, True, True]])   # 4 words, 2 pads
_, w_pad = layer(x, x, x, key_padding_mask=padding)
print(w_pad.numpy()[0].round(2))

# %% [markdown]
# ## Heads, and a heatmap
#
# Each of the 4 heads attends in its own 4-dimensional subspace with its own weights:
# `average_attn_weights=False` returns them one by one, (batch, heads, n, n).
#
# Random weights attend almost evenly. To see a map with a pattern, build a head by
# hand that looks at the *previous* token: token i gets the query 12·eᵢ₋₁ and token j
# the key eⱼ (eᵢ is the i-th unit vector), so the score is high exactly where j = i - 1.

# %%
_, per_head = layer(x, x, x, attn_mask=causal, average_attn_weights=False)
print("per-head weights:", per_head.shape)

eye = np.eye(n, dtype="float32")
pointers = np.roll(eye, -1, axis=1)                     # row i: a 1 at column i - 1
pointers[0] = 0                                         # token 0 has no previous token
queries = mt.tensor(12.0 * pointers)
keys = mt.tensor(eye)
values = mt.randn(n, n)
_, previous = attention_by_hand(queries, keys, values)
heatmap = previous.numpy()

# %%
SHADES = " .:-=+*#%@"     # weight 0 ... 1


def text_heatmap(weights):
    lines = ["      keys: " + " ".join(str(j) for j in range(weights.shape[1]))]
    for i, row in enumerate(weights):
        shades = " ".join(SHADES[min(int(w * len(SHADES)), len(SHADES) - 1)] for w in row)
        lines.append(f"  query {i}:  {shades}")
    return "\n".join(lines)


print(text_heatmap(heatmap))
plt = analysis.pyplot()                        # None where matplotlib is not installed
if plt is not None:
    os.makedirs("tour_output", exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(heatmap, cmap="Blues", vmin=0, vmax=1)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.set_title("a previous-token head")
    fig.tight_layout()
    fig.savefig(os.path.join("tour_output", "previous_token_head.png"))
    plt.close(fig)
    print("saved tour_output/previous_token_head.png")

# %% [markdown]
# Query 0 has no previous token: its score is the same for every key, so it spreads
# its weight evenly. Every other row has one dark cell, just left of the diagonal.
#
# ## Blockwise attention: the same result without the n × n matrix
#
# The scores take n² numbers of memory. `nn.blockwise_attention` walks over the keys in
# blocks and keeps, per query, a running maximum, a running sum and a running weighted
# sum of values (an *online softmax*): the same output, in memory linear in n.

# %%
n = 128 if QUICK else 512
q, k, v = (mt.randn(1, 4, n, d) for _ in range(3))     # (batch, heads, n, head dim)
standard, _ = nn.scaled_dot_product_attention(q, k, v, is_causal=True)
blocks = nn.blockwise_attention(q, k, v, is_causal=True, block_size=64)
print("largest difference:", float(np.abs(standard.numpy() - blocks.numpy()).max()))
print(f"the standard form holds {n}x{n} scores and {n}x{n} weights for each of 4 heads: "
      f"{2 * 4 * n * n * 4 / 2**20:.1f} MiB in float32; the blockwise one {n}x64 at a time")

# %%
with mt.no_grad(), trace() as t:
    nn.blockwise_attention(q, k, v, is_causal=True, block_size=64)
node = t.nodes[0]
print(f"one op, {node.name}: {node.flops:,} FLOPs, {node.steps} parallel steps")

# %% [markdown]
# The blockwise op states the steps of the equations it fuses: the blocks of keys
# are combined one after another, so its span grows with the number of blocks, a
# trade of a little parallel depth for a lot of memory.

# %% [markdown]
# ## Exercises
#
# **Exercise 4.1: a causal mask by hand.** In `tour/exercises/ex04_1.py` write
# `future_mask(n)`: the boolean (n, n) mask that hides from each query the keys after
# it. The check compares it with the right mask, then runs attention with your mask:
# no output token may have a gradient from a later input token, and under the tracer
# the critical path must be as long at n = 32 as at n = 4:
# `python -m pytest -m exercise_4_1`.

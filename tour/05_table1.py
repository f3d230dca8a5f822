# %% [markdown]
# # 5. Table 1 and its exponents
#
# After this chapter you will be able to measure the three columns of Table 1 of
# "Attention Is All You Need" (complexity per layer, sequential operations, maximum
# path length) for an RNN, an LSTM and a self-attention layer, fit the exponent of n
# of each from a few small measurements, and say why counts make better evidence
# than clock times.
#
# | layer | complexity per layer | sequential operations | maximum path length |
# |---|---|---|---|
# | self-attention | O(n²·d) | O(1) | O(1) |
# | recurrent | O(n·d²) | O(n) | O(n) |

# %%
import os

import minitransformer as mt
from minitransformer import analysis, nn
from minitransformer.trace import trace

QUICK = os.environ.get("MINITRANSFORMER_TOUR_QUICK") == "1"
d = 32
lengths = (8, 16, 32, 64) if QUICK else (8, 16, 32, 64, 128, 256)

# %% [markdown]
# ## One measurement: a layer, n tokens, one forward pass
#
# The tracer gives all three columns at once: the work W (FLOPs), the critical path
# (sequential ops), and the path from token 0 to the last token. They are *counts*:
# the same on every run and every machine.

# %%
def build(kind):
    """A function x (1, n, d) -> (1, n, d) running one freshly seeded layer."""
    mt.manual_seed(0)
    if kind == "attention":
        layer = nn.MultiheadAttention(d, 1, batch_first=True)
        return lambda x: layer(x, x, x, need_weights=False)[0]
    layer = (nn.RNN if kind == "rnn" else nn.LSTM)(d, d, batch_first=True)
    return lambda x: layer(x)[0]


def measure(kind, n):
    run = build(kind)
    x = mt.randn(1, n, d)
    with mt.no_grad(), trace() as t:
        t.watch_position(x, axis=1, position=0)
        out = run(x)
    s = t.summary()
    return {"flops": s["work_flops"], "sequential_ops": s["sequential_ops"],
            "path": t.path_length(out, axis=1)["ops"], "seconds": s["time_s"]}


print(measure("lstm", 16))

# %% [markdown]
# ## The table, measured

# %%
kinds = ("rnn", "lstm", "attention")
rows = {kind: [measure(kind, n) for n in lengths] for kind in kinds}
print(f"{'layer':>10} {'n':>4} {'FLOPs':>12} {'seq. ops':>9} {'path':>6} {'ms':>7}")
for kind in kinds:
    for n, row in zip(lengths, rows[kind]):
        print(f"{kind:>10} {n:>4} {row['flops']:>12,} {row['sequential_ops']:>9} "
              f"{row['path']:>6} {row['seconds'] * 1e3:>7.2f}")

# %% [markdown]
# ## Fitting exponents
#
# If a value grows as c·nᵏ, then log value = log c + k·log n: a straight line on a
# log-log plot whose slope is k. `analysis.fit_exponent` fits that slope by least
# squares; `analysis.local_exponent` gives the slope between the two largest n only.

# %%
paper = {"rnn": (1, 1, 1), "lstm": (1, 1, 1), "attention": (2, 0, 0)}
print(f"{'layer':>10} {'FLOPs k':>12} {'seq. ops k':>12} {'path k':>12}   paper")
for kind in kinds:
    cells = []
    for column in ("flops", "sequential_ops", "path"):
        values = [row[column] for row in rows[kind]]
        whole = analysis.fit_exponent(lengths, values)
        local = analysis.local_exponent(lengths, values)
        cells.append(f"{whole:5.2f} ({local:4.2f})")
    print(f"{kind:>10} " + " ".join(f"{c:>12}" for c in cells) + f"   {paper[kind]}")

# %% [markdown]
# The recurrent layers' exponents are 1: n tokens, n times the work and n times the
# chain. The chain is 3 ops a token plus a few at the start and the end; those few
# pull the slope fitted over small n a little below 1, and the local slope is 1.
# Attention's chain and path have exponent 0.
#
# Attention's FLOPs exponent lies between 1 and 2: its projections cost 8·n·d² (linear
# in n), its scores and weighted sum about 4·n²·d. The n² term takes over only once n
# passes about 2d, which is why the local slope at the largest n (in brackets) is
# nearer 2 than the fit over all n. Two values fix the two coefficients exactly:

# %%
(n1, f1), (n2, f2) = [(n, row["flops"]) for n, row in zip(lengths, rows["attention"])][-2:]
b = (f2 / n2 - f1 / n1) / (n2 - n1)          # FLOPs / n = a + b·n: a line through 2 points
a = f1 / n1 - b * n1
print(f"attention FLOPs = {a:,.0f}·n + {b:,.0f}·n²; the terms are equal at n = {a / b:.0f} "
      f"(d = {d}, 2d = {2 * d})")

# %% [markdown]
# ## Why counts, not times
#
# The times of the same measurements, fitted the same way, are noisier: small layers
# are dominated by the fixed cost of each op in Python, other programs share the
# machine, and a repeat gives other numbers. The counts are exact.

# %%
for kind in kinds:
    seconds = [row["seconds"] for row in rows[kind]]
    print(f"{kind:>10}: time exponent {analysis.fit_exponent(lengths, seconds):5.2f}")

repeat = measure("lstm", lengths[-1])
print(f"the LSTM at n = {lengths[-1]} once more: {repeat['seconds'] * 1e3:.2f} ms of op time "
      f"(first run {rows['lstm'][-1]['seconds'] * 1e3:.2f} ms), "
      f"the same {repeat['sequential_ops']} sequential ops")

# %% [markdown]
# ## Exercises
#
# **Exercise 5.1: a row for a 1-D convolution.** Table 1 also lists convolutional
# layers: complexity O(k·n·d²), O(1) sequential operations. In
# `tour/exercises/ex05_1.py` write `conv1d(x, weight)`, a causal convolution of kernel
# size k over the tokens, from matrix products and slices. The check compares your
# values with a reference, then traces your layer at several n and fits the
# exponents: FLOPs ~ n¹ and sequential ops ~ n⁰: `python -m pytest -m exercise_5_1`.
# Then add your layer to the table above: what path length does one layer give from
# token 0 to token n - 1, and why does the paper speak of a *stack* of layers?

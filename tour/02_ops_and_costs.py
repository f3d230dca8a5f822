# %% [markdown]
# # 2. Ops and what each costs
#
# After this chapter you will be able to read what the tracer records about every op
# (its FLOPs, its parallel steps or *span*, and which earlier ops it waits for), tell
# work from span, and give an op of your own its cost so that the tracer can count it.

# %%
import os

import minitransformer as mt
from minitransformer.trace import trace

QUICK = os.environ.get("MINITRANSFORMER_TOUR_QUICK") == "1"
mt.manual_seed(0)

# %% [markdown]
# ## The tracer records every op
#
# Inside `with trace() as t:` each op that runs becomes a node of a graph: its name,
# shapes, FLOPs, bytes, wall time, its *steps* (how many dependent steps it needs with
# as many processors as it likes) and its *deps* (the nodes whose outputs it reads).

# %%
a = mt.randn(64, 32)
b = mt.randn(32, 16)
with trace() as t:
    c = a @ b             # a matrix product
    d = c.tanh()          # elementwise
    e = d.sum(axis=1)     # a reduction over 16 numbers per row
print(t.listing())

# %% [markdown]
# ## Where the numbers come from
#
# Each op states its own costs beside its forward and backward:
#
# * **matmul** (m, k) @ (k, n): 2·m·k·n FLOPs (a multiply and an add per term). Span:
#   all m·k·n products at once (1 step), then a tree of additions over k, ⌈log₂ k⌉
#   steps.
# * **elementwise** (tanh, add, ...): one FLOP per element, 1 step whatever the size.
# * **reduction** over r numbers: a pairwise tree, ⌈log₂ r⌉ steps.

# %%
for node in t.nodes:
    waits = [t.node(dep).index for dep in node.deps]      # deps are node ids; show positions
    print(f"{node.name:>8}: {node.flops:>7,} FLOPs, {node.steps} steps, waits for op {waits}")
print("matmul by the formula: 2·m·k·n =", 2 * 64 * 32 * 16, "FLOPs, 1 + ceil(log2 32) = 6 steps")

# %% [markdown]
# ## Work, span and parallelism
#
# * **Work W**: all FLOPs added up; the time one processor needs.
# * **Span S**: the longest chain of dependent steps; the time with unlimited
#   processors. Here the three ops form one chain, so S = 6 + 1 + 4.
# * **Parallelism W / S**: how many processors the graph can keep busy on average.
#
# The *critical path* is that longest chain, counted in ops: the *sequential ops*.

# %%
s = t.summary()
print(f"work W = {s['work_flops']:,} FLOPs, span S = {s['span_steps']} steps, "
      f"W/S = {s['parallelism']:,.0f}, sequential ops = {s['sequential_ops']}")

# %% [markdown]
# ## Independent ops run side by side
#
# Two products that read only the inputs do not wait for each other: they share
# step 1 of the schedule, and the critical path is not longer for having two.

# %%
with trace() as t2:
    left = a @ b
    right = a @ b
    both = left + right
for step, ops in enumerate(t2.levels(), start=1):
    print(f"step {step}: " + ", ".join(node.name for node in ops))
print("sequential ops:", t2.summary()["sequential_ops"], "of", len(t2), "ops")

# %% [markdown]
# ## Which inputs each output reads: the dependence rule
#
# Each op also says *which* input elements every output element is a function of.
# The tracer uses it to follow one token: `watch_position` marks row 0 of `a`, and
# `depth_of` then gives, for each element of a later result, the most ops on any
# chain from that row to it (-inf where the row never reaches).

# %%
with trace() as t3:
    t3.watch_position(a, axis=0, position=0)     # follow row 0 of a
    rows = (a @ b).tanh()
print("depth of the first column of each row:", t3.depth_of(rows)[:4, 0].tolist())

# %% [markdown]
# Row 0 of the result is two ops from row 0 of `a`; the other rows never read it. A
# matmul mixes the rows of its *second* operand, never those of its first.
#
# ## Forward and backward
#
# Backward ops are recorded too, with their own FLOPs: a matmul's backward does two
# products, one per operand that needs a gradient, so twice its forward.

# %%
x = mt.randn(64, 32, requires_grad=True)
w = mt.randn(32, 16, requires_grad=True)
with trace() as t4:
    (x @ w).tanh().sum().backward()
for phase in ("forward", "backward"):
    print(f"{phase:>8}: {t4.summary(phase)['work_flops']:>8,} FLOPs")
print(t4.report())

# %% [markdown]
# ## Exercises
#
# **Exercise 2.1: give an op its span.** `tour/exercises/ex02_1.py` holds an op
# `SumOfSquares` (Σ xᵢ² along the last axis) without `span()`. Write it: how many
# dependent steps does it take with unlimited processors for r numbers per row?
# The check traces your op at several sizes and compares the steps the tracer
# records with the right count: `python -m pytest -m exercise_2_1`.
#
# **Exercise 2.2: a running sum's cost and dependences.** `tour/exercises/ex02_2.py`
# holds `RunningSum` (yᵢ = x₀ + ... + xᵢ along the last axis). Give it `span()` (a
# running sum of n numbers can be done in ⌈log₂ n⌉ parallel steps: it looks
# sequential, it is not) and `depends()` (output i reads inputs 0..i). The check
# follows one position through your op with the tracer:
# `python -m pytest -m exercise_2_2`.

# %% [markdown]
# # 1. Autograd and gradcheck
#
# After this chapter you will be able to build a small computation from tensors,
# ask for its gradients with `backward()`, write a new op with its own forward and
# backward, and prove that backward right with `mt.gradcheck`.
#
# Everything later in the tour (recurrent layers, attention, the translator) is made
# of the ops you meet here.

# %%
import os

import minitransformer as mt

QUICK = os.environ.get("MINITRANSFORMER_TOUR_QUICK") == "1"   # smaller sizes for the tests
mt.manual_seed(0)

# %% [markdown]
# ## A graph is recorded as the ops run
#
# A tensor made with `requires_grad=True` remembers every op that reads it. The result
# `y` below knows it came from a `mul` and a `sum`; `y.backward()` walks that record
# backwards and leaves dy/dx in `x.grad`.

# %%
x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
y = (x * x).sum()
y.backward()
print("y =", y.item())
print("dy/dx =", x.grad.tolist(), " (it is 2x)")

# %% [markdown]
# `x.grad` is a plain array of `x`'s shape. Gradients add up: run a second backward
# without clearing `x.grad` and you get the sum of both. Training loops therefore set
# `grad = None` before each step.

# %%
y = (x * x).sum()
y.backward()
print("after a second backward:", x.grad.tolist())
x.grad = None

# %% [markdown]
# ## Gradients of a small network layer
#
# A matrix product followed by `tanh`, summed: the same pattern as one step of a
# recurrent network. The gradient of each operand has that operand's shape.

# %%
inputs = mt.randn(4, 3, requires_grad=True)
weight = mt.randn(3, 2, requires_grad=True)
loss = (inputs @ weight).tanh().sum()
loss.backward()
print("inputs.grad shape:", inputs.grad.shape, " weight.grad shape:", weight.grad.shape)

# %% [markdown]
# ## How do we know a backward is right?
#
# By finite differences. Nudge one input element by ±ε, recompute the function, and
# the change of the output divided by 2ε approximates the derivative. `mt.gradcheck`
# does this for every element of every input and compares with what `backward()`
# says. It needs float64: in float32 the rounding of the two function values is
# larger than their difference.

# %%
a = mt.randn(3, 4, dtype="float64", requires_grad=True)
b = mt.randn(4, 2, dtype="float64", requires_grad=True)
print("gradcheck of softmax(a @ b):", mt.gradcheck(lambda a, b: mt.softmax(a @ b), [a, b]))

# %% [markdown]
# ## Writing an op: forward and backward side by side
#
# An op is a subclass of `mt.Function`. `forward` receives arrays (NumPy on the CPU,
# CuPy on a GPU) and keeps on `self` what backward will need; `backward` receives the
# gradient of the output and returns one gradient per input. `flops` says how much
# arithmetic the forward did (chapter 2 uses it).
#
# Here is the square, x², with its derivative 2x.

# %%
class Square(mt.Function):
    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return (grad * 2 * self.x,)

    def flops(self):
        return self.x.size


z = mt.randn(5, dtype="float64", requires_grad=True)
print("Square passes gradcheck:", mt.gradcheck(lambda z: Square.apply(z), [z]))

# %% [markdown]
# ## What a wrong backward looks like
#
# Forget the factor 2 and gradcheck names the input and the element where the
# analytic and the numeric gradient disagree.

# %%
class WrongSquare(Square):
    def backward(self, grad):
        return (grad * self.x,)


try:
    mt.gradcheck(lambda z: WrongSquare.apply(z), [z])
except mt.GradcheckError as error:
    print("caught:", error)

# %% [markdown]
# ## Learning from gradients
#
# Gradient descent on two numbers, w and c, to fit y = 3x - 1. Each step: forward,
# backward, then move every parameter a little against its gradient. The update
# runs under `mt.no_grad()`, so it is not recorded as part of the graph.

# %%
samples = mt.randn(64, 1)
targets = samples * 3.0 - 1.0
w = mt.zeros(1, 1, requires_grad=True)
c = mt.zeros(1, requires_grad=True)
for step in range(50 if QUICK else 200):
    loss = mt.mse_loss(samples @ w + c, targets)
    w.grad = c.grad = None
    loss.backward()
    with mt.no_grad():
        w.data -= 0.1 * w.grad
        c.data -= 0.1 * c.grad
print(f"w = {w.item():.3f}, c = {c.item():.3f} (the truth: 3 and -1), loss {loss.item():.1e}")

# %% [markdown]
# ## Exercises
#
# **Exercise 1.1: softplus's backward.** softplus(x) = log(1 + eˣ) is a smooth ReLU.
# `tour/exercises/ex01_1.py` holds an op `Softplus` whose forward is written; write
# its `backward` (the derivative of softplus is the sigmoid, 1 / (1 + e⁻ˣ)). Check it:
#
#     python -m pytest -m exercise_1_1
#
# The check runs `mt.gradcheck` on your op. A reference answer lies in
# `tour/solutions/ex01_1.py`: look only once your own passes.

"""The engine in a screenful: tensors, backward, a gradient check, and a tiny fit.

    python examples/autograd_basics.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

import minitransformer as mt  # noqa: E402
import minitransformer.functional as F  # noqa: E402

mt.manual_seed(0)

# A graph is recorded as ops run; backward() walks it in reverse.
x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
y = (x * x).sum()
y.backward()
print("d/dx sum(x²) =", x.grad.tolist())            # 2x

# Every backward in the library is checked against finite differences like this:
a = mt.randn(3, 4, dtype="float64", requires_grad=True)
b = mt.randn(4, 2, dtype="float64", requires_grad=True)
print("gradcheck of softmax(a @ b):", mt.gradcheck(lambda a, b: F.softmax(a @ b), [a, b]))

# Fit y = 3x - 1 with two parameters and plain gradient descent.
inputs = mt.randn(64, 1)
targets = inputs * 3.0 - 1.0
w = mt.zeros(1, 1, requires_grad=True)
c = mt.zeros(1, requires_grad=True)
for step in range(200):
    loss = F.mse_loss(inputs @ w + c, targets)
    w.grad = c.grad = None
    loss.backward()
    with mt.no_grad():
        w.data -= 0.1 * w.grad
        c.data -= 0.1 * c.grad
print(f"learned w = {w.item():.3f}, c = {c.item():.3f} (true 3, -1), loss {loss.item():.2e}")

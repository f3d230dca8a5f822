"""Exercise 1.1: the backward of softplus.

softplus(x) = log(1 + exp(x)), a smooth ReLU. Its forward is written below; write
``Softplus.backward``. Check your answer with ``python -m pytest -m exercise_1_1``.
"""
import minitransformer as mt


class Softplus(mt.Function):
    """softplus(x) = log(1 + eˣ), elementwise."""

    def forward(self, x):
        xp = mt.backend.array_module(x)            # NumPy on the CPU, CuPy on a GPU
        self.x = x
        # log(1 + eˣ) = max(x, 0) + log(1 + e^-|x|): no overflow for large x.
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, grad):
        """Return a one-element tuple: the gradient with respect to x.

        ``grad`` is the gradient of the loss with respect to the output (an array of
        x's shape). The derivative of softplus is the sigmoid, 1 / (1 + e⁻ˣ); multiply
        it by ``grad`` element by element. ``self.x`` holds the input.
        """
        raise NotImplementedError("exercise 1.1: write Softplus.backward")

    def flops(self):
        return 4 * self.x.size


def softplus(x):
    """softplus of a Tensor, recorded for backward."""
    return Softplus.apply(x)

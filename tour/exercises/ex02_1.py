"""Exercise 2.1: give an op its span.

``SumOfSquares`` computes Σ xᵢ² along the last axis. Its forward, backward and FLOPs
are written; write ``span``. Check with ``python -m pytest -m exercise_2_1``.
"""
import minitransformer as mt


class SumOfSquares(mt.Function):
    """y[..., 0] = Σ_i x[..., i]² (the last axis reduced, kept with length 1)."""

    def forward(self, x):
        self.x = x
        return (x * x).sum(axis=-1, keepdims=True)

    def backward(self, grad):
        return (grad * 2 * self.x,)

    def flops(self):
        return 2 * self.x.size        # a multiply and an add per element

    def span(self):
        """Return the op's parallel steps, an int: how many dependent steps it needs
        with as many processors as it likes, for r = ``self.x.shape[-1]`` numbers per row.

        Every square can be computed at the same time (how many steps?), then the r
        squares are added pairwise in a tree (how deep is a tree over r numbers? over
        1 number?). ``mt.ops.dependence.tree`` knows the depth of such a tree.
        """
        raise NotImplementedError("exercise 2.1: write SumOfSquares.span")


def sum_of_squares(x):
    return SumOfSquares.apply(x)

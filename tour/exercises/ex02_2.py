"""Exercise 2.2: a running sum's span and dependence rule.

``RunningSum`` computes y_i = x_0 + x_1 + ... + x_i along the last axis. Its forward,
backward and FLOPs are written; write ``span`` and ``depends``. Check with
``python -m pytest -m exercise_2_2``.
"""
import minitransformer as mt


class RunningSum(mt.Function):
    """y[..., i] = Σ_{j <= i} x[..., j] (a cumulative sum along the last axis)."""

    def forward(self, x):
        self.size = x.size
        self.length = x.shape[-1]
        return mt.backend.array_module(x).cumsum(x, axis=-1)

    def backward(self, grad):
        # x_j reaches every y_i with i >= j: the gradient is a running sum from the end.
        xp = mt.backend.array_module(grad)
        return (xp.flip(xp.cumsum(xp.flip(grad, axis=-1), axis=-1), axis=-1),)

    def flops(self):
        return self.size

    def span(self):
        """Return the parallel steps of a running sum over ``self.length`` numbers.

        A parallel prefix sum (the Hillis-Steele scan: in round s every element adds
        the one 2^s places to its left) needs ⌈log2 n⌉ rounds for n numbers, and at
        least 1 step even for n = 1. ``mt.ops.dependence.tree(n)`` is ⌈log2 n⌉.
        """
        raise NotImplementedError("exercise 2.2: write RunningSum.span")

    def depends(self, depths, out):
        """Return, for each output element, the largest depth among the inputs it reads.

        ``depths`` is a list with one array (or None) for the one input: the array has
        x's shape and holds, for each element, the length of the longest chain of ops
        from the watched token to it (-inf where it is not reached). Output element i
        reads input elements 0..i along the last axis, so its depth is the running
        *maximum* of the input depths up to i. (NumPy and CuPy give a running maximum
        as ``xp.maximum.accumulate(array, axis=-1)``, with
        ``xp = mt.backend.array_module(out)``.) The tracer adds one for this op.
        """
        raise NotImplementedError("exercise 2.2: write RunningSum.depends")


def running_sum(x):
    return RunningSum.apply(x)

"""Reductions over axes: sum, mean and max.

Each backward spreads the output's gradient back over the elements that were
reduced; the helper ``_expand`` undoes ``keepdims=False`` and broadcasts.
FLOPs: one per input element (n-1 additions make n numbers into one). Span:
r numbers reduce in a tree of ⌈log2 r⌉ pairwise steps; each output element reads
every input element along the reduced axes.
"""
from .. import backend
from .._tensor import Function
from . import dependence


def normalize_axes(axis, ndim):
    """``axis`` (None, an int or a tuple; negatives allowed) as a sorted tuple."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _expand(grad, axes, keepdims, shape):
    """Broadcast the gradient of a reduction back to the input ``shape``."""
    xp = backend.array_module(grad)
    if not keepdims:
        grad = grad.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return xp.broadcast_to(grad, shape)


class _Reduction(Function):
    """What the reductions share: the tree span and the dependence rule."""
    axis = None
    keepdims = False
    extra_steps = 0    # steps after the tree (mean: one division)

    def span(self):
        reduced = 1
        for a in self.axes:
            reduced *= self.shape[a]
        return max(1, dependence.tree(reduced) + self.extra_steps)

    def depends(self, depths, out):
        return dependence.along_axes(depths[0], self.axes, self.keepdims)


class Sum(_Reduction):
    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim)
        self.shape, self.in_size = x.shape, x.size
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, grad):
        return (_expand(grad, self.axes, self.keepdims, self.shape),)

    def flops(self):
        return self.in_size

    def backward_flops(self):
        return 0  # a broadcast, no arithmetic


class Mean(_Reduction):
    extra_steps = 1

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim)
        self.shape, self.in_size = x.shape, x.size
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]
        return x.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, grad):
        return (_expand(grad * (1.0 / self.count), self.axes, self.keepdims, self.shape),)

    def flops(self):
        return self.in_size

    def backward_flops(self):
        return self.in_size // self.count


class Max(_Reduction):
    """Maximum over axes. Tied maxima share the gradient equally (as torch.amax)."""

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim)
        self.shape, self.in_size = x.shape, x.size
        out = x.max(axis=self.axes, keepdims=True)
        self.winners = x == out
        return out if self.keepdims else out.reshape(
            [n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, grad):
        grad = _expand(grad, self.axes, self.keepdims, self.shape)
        ties = self.winners.sum(axis=self.axes, keepdims=True)
        return (grad * self.winners / ties.astype(grad.dtype),)

    def flops(self):
        return self.in_size

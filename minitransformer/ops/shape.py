"""Ops that move numbers without arithmetic: reshape, transpose, indexing, concat, stack.

Their backward passes move the gradient back to where each number came from.
None of them does floating-point work, so their FLOPs are zero; the tracer still
counts the bytes they move. Each is one parallel step (every element moved at
once), and its dependence rule is the op itself applied to the depth arrays: an
element's dependences travel with it.
"""
from .. import backend
from .._tensor import Function, IndexedGrad
from . import dependence


class _DataMovement(Function):
    """One step: every element moved by its own processor."""

    def span(self):
        return 1


class Reshape(_DataMovement):
    shape = None

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, grad):
        return (grad.reshape(self.input_shape),)

    def depends(self, depths, out):
        return depths[0].reshape(out.shape)


class Transpose(_DataMovement):
    """Permute axes; ``axes=None`` reverses them, as ``numpy.transpose``."""
    axes = None

    def forward(self, x):
        self.perm = tuple(self.axes) if self.axes is not None else tuple(reversed(range(x.ndim)))
        return x.transpose(self.perm)

    def backward(self, grad):
        inverse = [0] * len(self.perm)
        for i, p in enumerate(self.perm):
            inverse[p] = i
        return (grad.transpose(inverse),)

    def depends(self, depths, out):
        return depths[0].transpose(self.perm)


def _may_repeat(index):
    """True when ``index`` holds an integer array, which may pick one element twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(backend.is_array(p) and p.dtype.kind in "iu" for p in parts)


class GetItem(_DataMovement):
    """``x[index]``: slices, integer arrays (repeats allowed) and boolean masks.

    Basic indexing (slices) selects each element at most once, so backward can
    add the gradient into place; integer arrays may select an element several
    times, and its gradient is then the sum, which needs a scatter-add. Backward
    returns an :class:`IndexedGrad`, not a full-size array: see its docstring.
    """
    index = None

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, grad):
        # Sparse: the engine adds it into the input's gradient buffer, slot by slot.
        return (IndexedGrad(self.shape, self.dtype, self.index, grad,
                            repeats=_may_repeat(self.index)),)

    def depends(self, depths, out):
        return depths[0][self.index]


def _along(axis, index):
    """An index that applies ``index`` to axis ``axis`` (non-negative) and keeps the rest."""
    return (slice(None),) * axis + (index,)


class Concat(_DataMovement):
    """Join tensors along an existing axis; backward cuts the gradient into the pieces."""
    axis = 0

    def forward(self, *arrays):
        xp = backend.array_module(arrays[0])
        self.sizes = [a.shape[self.axis] for a in arrays]
        return xp.concatenate(arrays, axis=self.axis)

    def backward(self, grad):
        bounds = [0]
        for n in self.sizes:
            bounds.append(bounds[-1] + n)
        return tuple(grad[_along(self.axis, slice(lo, hi))] if need else None
                     for lo, hi, need in zip(bounds, bounds[1:], self.needs_input_grad))

    def depends(self, depths, out):
        axis = self.axis % out.ndim
        shapes = [out.shape[:axis] + (n,) + out.shape[axis + 1:] for n in self.sizes]
        return backend.array_module(out).concatenate(dependence.filled(depths, shapes, out),
                                                     axis=axis)


class Stack(_DataMovement):
    """Join tensors of one shape along a new axis."""
    axis = 0

    def forward(self, *arrays):
        xp = backend.array_module(arrays[0])
        return xp.stack(arrays, axis=self.axis)

    def backward(self, grad):
        return tuple(grad[_along(self.axis, i)] if need else None
                     for i, need in enumerate(self.needs_input_grad))

    def depends(self, depths, out):
        axis = self.axis % out.ndim
        shape = out.shape[:axis] + out.shape[axis + 1:]
        return backend.array_module(out).stack(
            dependence.filled(depths, [shape] * len(depths), out), axis=axis)

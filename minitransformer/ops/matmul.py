"""Matrix multiplication with numpy.matmul's semantics: 1-D, 2-D and batched.

This is where nearly all the work of a Transformer happens. An (m, k) @ (k, n)
product costs 2·m·k·n FLOPs (a multiply and an add per term), times the number
of matrices in the batch.

One speed lever lives here: ``x @ W`` with ``x`` of shape (batch, seq, k) and a
2-D ``W`` is computed as one (batch·seq, k) @ (k, n) product. NumPy would
otherwise run one small product per batch element; a single large one keeps the
BLAS kernel busy. The same trick makes the weight gradient one product.
"""
import math

from .. import backend
from .._tensor import Function, unbroadcast
from . import dependence


def _matmul(a, b):
    """``a @ b``, flattening leading axes of ``a`` when ``b`` is a plain matrix."""
    if a.ndim > 2 and b.ndim == 2:
        out = a.reshape(-1, a.shape[-1]) @ b
        return out.reshape(a.shape[:-1] + (b.shape[-1],))
    return a @ b


def _swap_last(x):
    return x.swapaxes(-1, -2)


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        out = _matmul(a, b)
        k = a.shape[-1]
        self.out_flops = 2 * out.size * k
        self.out_shape = out.shape
        return out

    def backward(self, grad):
        a, b = self.a, self.b
        # Promote 1-D operands to matrices as matmul does, so one rule covers all.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad
        if b.ndim == 1:  # restore the column axis first, then the row axis
            g = g[..., None]
        if a.ndim == 1:
            g = g[..., None, :]
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            # dL/dA = dL/dC · Bᵀ
            grad_a = unbroadcast(_matmul(g, _swap_last(b2)), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            # dL/dB = Aᵀ · dL/dC, summed over the batch axes B was broadcast along.
            if b2.ndim == 2 and a2.ndim > 2:
                flat_a = a2.reshape(-1, a2.shape[-1])
                grad_b = (flat_a.T @ g.reshape(-1, g.shape[-1])).reshape(b.shape)
            else:
                grad_b = unbroadcast(_swap_last(a2) @ g, b2.shape).reshape(b.shape)
        return grad_a, grad_b

    def flops(self):
        return self.out_flops

    def backward_flops(self):
        return self.out_flops * (self.needs_input_grad[0] + self.needs_input_grad[1])

    def span(self):
        # Every product a[i, k]·b[k, j] at once, then a tree of additions over k.
        return 1 + dependence.tree(self.a.shape[-1])

    def backward_span(self):
        # dA = dC Bᵀ contracts over C's columns; dB = Aᵀ dC over every row of C that
        # used the same B (all rows, and the batch axes B was broadcast along).
        b_shape, out_shape = self.b.shape, self.out_shape
        out_cols = out_shape[-1] if len(b_shape) > 1 else 1
        b_matrices = math.prod(b_shape[:-2]) if len(b_shape) > 2 else 1
        rows = math.prod(out_shape) // max(1, out_cols * b_matrices)
        return 1 + max(dependence.tree(out_cols), dependence.tree(rows))

    def depends(self, depths, out):
        # C[i, j] reads all of row i of A and all of column j of B.
        xp = backend.array_module(out)
        a, b = self.a, self.b
        depth_a, depth_b = depths
        # Promote 1-D operands as matmul does: a vector is a 1-row / 1-column matrix.
        rows_a = a.shape if a.ndim > 1 else (1,) + a.shape
        cols_b = b.shape if b.ndim > 1 else b.shape + (1,)
        batch = backend.numpy.broadcast_shapes(rows_a[:-2], cols_b[:-2])  # shapes only
        reached = xp.full(tuple(batch) + (rows_a[-2], cols_b[-1]), dependence.NEG_INF)
        if depth_a is not None:
            reached = xp.maximum(reached, depth_a.reshape(rows_a).max(axis=-1, keepdims=True))
        if depth_b is not None:
            reached = xp.maximum(reached, depth_b.reshape(cols_b).max(axis=-2, keepdims=True))
        return reached.reshape(out.shape)

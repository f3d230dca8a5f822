"""The basic layers: Linear, Embedding, LayerNorm, Dropout.

Names, shapes and default initialisations follow PyTorch, so that a state dict
from one maps onto the other and a reader can check our numbers against it.
"""
import math

from .. import functional as F
from .module import Module, constant_parameter, normal_parameter, uniform_parameter


class Linear(Module):
    """y = x Wᵀ + b.

    Shapes: input (..., in_features) -> output (..., out_features).
    Parameters: ``weight`` (out_features, in_features), ``bias`` (out_features,).
    Both start uniform in ±1/√in_features (PyTorch's default).
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = uniform_parameter((out_features, in_features), bound)
        self.bias = uniform_parameter((out_features,), bound) if bias else None

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input of shape {x.shape} must end in "
                             f"in_features={self.in_features}")
        # (..., in) @ (in, out): the matmul op makes this one GEMM over all leading axes.
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: token ids (any shape, integers) -> vectors (..., embedding_dim).

    ``weight`` (num_embeddings, embedding_dim) starts N(0, 1); the ``padding_idx``
    row starts at zero and never receives a gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx={padding_idx} is out of range for "
                                 f"num_embeddings={num_embeddings}")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = normal_parameter((num_embeddings, embedding_dim))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, indices):
        return F.embedding(indices, self.weight, padding_idx=self.padding_idx)

    def extra_repr(self):
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class LayerNorm(Module):
    """Normalise the trailing ``normalized_shape`` axes to mean 0, variance 1, then
    scale by ``weight`` (ones at start) and shift by ``bias`` (zeros).

    Shapes: input (..., *normalized_shape) -> output of the same shape.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        self.weight = constant_parameter(self.normalized_shape, 1.0) if elementwise_affine else None
        self.bias = (constant_parameter(self.normalized_shape, 0.0)
                     if elementwise_affine and bias else None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode, scaling the rest
    by 1/(1-p); the identity in evaluation mode. Any shape."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"

"""minitransformer: why attention trains all tokens at once, in code you can read.

Reading order (README "Reading the source", checked by tests/test_reading_order.py):
backend -> _tensor -> ops/ -> functional -> _gradcheck -> analysis -> trace -> nn/ ->
optim -> distributed -> this file -> translation/ -> benchmarks/ -> cli.
"""
from . import backend, functional
from .backend import gpu_available, manual_seed, set_default_device, default_device, synchronize
from .functional import (  # noqa: F401  (the public function API)
    add, astype, concat, cross_entropy, div, dropout, embedding, exp, gelu, layer_norm, log,
    log_softmax, masked_fill, matmul, mse_loss, mul, neg, relu, reshape, sigmoid, softmax, sqrt,
    stack, sub, tanh, transpose, where,
)
from .functional import max, mean, sum  # noqa: F401,A004  (shadow builtins on purpose, as numpy)
from ._gradcheck import GradcheckError, gradcheck
from ._tensor import (
    Function, Tensor, arange, full, is_grad_enabled, no_grad, ones, ones_like, rand, rand_like,
    randn, randn_like, tensor, zeros, zeros_like,
)

# Last, because they build on everything above: after `import minitransformer as mt`,
# `mt.nn.Linear` and `mt.optim.Adam` work as `torch.nn` and `torch.optim` do after `import torch`.
from . import nn, optim

__version__ = "0.1.0"

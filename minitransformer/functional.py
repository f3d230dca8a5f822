"""The functions of the engine: every op, by name, with its arguments checked.

Each function here checks its arguments (and raises an error that names the op,
the shapes or values received and what was expected) *before* any computation,
then hands the arrays to an op class in ``ops/``, where forward and backward sit
side by side. A few functions (dropout, masked_fill, mse_loss) are compositions
of those ops rather than ops of their own.

Arguments follow NumPy: ``axis``, ``keepdims``, ``concat(tensors, axis=0)``.
"""
import builtins

from . import backend
from .ops import elementwise, matmul as _matmul, nn as _nn, reduction, shape as _shape
from ._tensor import Tensor


# ---------------------------------------------------------------- helpers
def _as_tensor(x, like, op):
    """``x`` as a Tensor: a Python number takes the dtype and device of ``like``."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, bool)):
        return Tensor(backend.array_module(like.data).asarray(x, dtype=like.dtype))
    if backend.is_array(x):
        return Tensor(x)
    raise TypeError(f"{op}: expected a Tensor or a number, got {type(x).__name__}")


def _binary(op_class, a, b, op):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: at least one operand must be a Tensor")
    a = _as_tensor(a, b if isinstance(b, Tensor) else a, op)
    b = _as_tensor(b, a, op)
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: operands have dtypes {a.dtype} and {b.dtype}; an op keeps "
                        f"its inputs' dtype, so cast one with .astype() first")
    if a.shape != b.shape:
        _check_broadcast(op, a.shape, b.shape)
    return op_class.apply(a, b)


def _check_broadcast(op, *shapes):
    """Shapes broadcast when, axis by axis from the right, their sizes agree or are 1."""
    for i, first in enumerate(shapes):
        for second in shapes[i + 1:]:
            for m, n in zip(reversed(first), reversed(second)):
                if m != n and m != 1 and n != 1:
                    raise ValueError(f"{op}: shapes {' and '.join(map(str, shapes))} do not "
                                     f"broadcast (sizes {m} and {n} on one axis; each must "
                                     f"match or be 1)")


def _check_float(op, x, argument="input"):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {argument} must be a floating-point tensor, got dtype {x.dtype}")


def _check_axis(op, axis, ndim):
    axes = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not isinstance(a, int) or not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"{op}: axis {a!r} is out of range for a tensor of {ndim} dims")
    return axis


def _unary(op_class, x, op):
    _check_float(op, x)
    return op_class.apply(x)


# ---------------------------------------------------------------- arithmetic
def add(a, b):
    """a + b, broadcasting."""
    return _binary(elementwise.Add, a, b, "add")


def sub(a, b):
    """a - b, broadcasting."""
    return _binary(elementwise.Sub, a, b, "sub")


def mul(a, b):
    """a * b, broadcasting."""
    number, x = (a, b) if _is_number(a) else (b, a)
    if _is_number(number) and isinstance(x, Tensor) and x.dtype.kind == "f":
        return elementwise.MulNumber.apply(x, number=number)
    return _binary(elementwise.Mul, a, b, "mul")


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def div(a, b):
    """a / b, broadcasting."""
    return _binary(elementwise.Div, a, b, "div")


def neg(x):
    return elementwise.Neg.apply(x)


def pow(x, exponent):
    """x ** exponent for a Python number ``exponent``."""
    if not isinstance(exponent, (int, float)) or isinstance(exponent, bool):
        raise TypeError(f"pow: exponent must be a Python number, got {type(exponent).__name__}")
    _check_float("pow", x)
    return elementwise.Pow.apply(x, exponent=exponent)


def exp(x):
    return _unary(elementwise.Exp, x, "exp")


def log(x):
    return _unary(elementwise.Log, x, "log")


def sqrt(x):
    return _unary(elementwise.Sqrt, x, "sqrt")


def tanh(x):
    return _unary(elementwise.Tanh, x, "tanh")


def sigmoid(x):
    return _unary(elementwise.Sigmoid, x, "sigmoid")


def relu(x):
    return _unary(elementwise.Relu, x, "relu")


def gelu(x):
    """The exact GELU, x·Φ(x) (PyTorch's default, not the tanh approximation)."""
    return _unary(elementwise.Gelu, x, "gelu")


def astype(x, dtype):
    """``x`` cast to ``dtype``; differentiable between floating-point dtypes."""
    dtype = backend.as_dtype(dtype)
    if dtype == x.dtype:
        return x
    return elementwise.Cast.apply(x, dtype=dtype)


def where(condition, a, b):
    """``a`` where the boolean tensor ``condition`` holds, else ``b``; broadcasting."""
    condition = condition if isinstance(condition, Tensor) else _as_tensor(condition, a, "where")
    if condition.dtype.kind != "b":
        raise TypeError(f"where: condition must be a boolean tensor, got dtype {condition.dtype}")
    like = a if isinstance(a, Tensor) else b
    a, b = _as_tensor(a, like, "where"), _as_tensor(b, like, "where")
    if a.dtype != b.dtype:
        raise TypeError(f"where: a and b have dtypes {a.dtype} and {b.dtype}; cast one first")
    _check_broadcast("where", condition.shape, a.shape, b.shape)
    return elementwise.Where.apply(condition, a, b)


def masked_fill(x, mask, value):
    """``x`` with ``value`` wherever the boolean ``mask`` is True (``mask`` broadcasts)."""
    return where(mask, _as_tensor(value, x, "masked_fill"), x)


# ---------------------------------------------------------------- reductions
def sum(x, axis=None, keepdims=False):
    _check_axis("sum", axis, x.ndim)
    return reduction.Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    _check_axis("mean", axis, x.ndim)
    _check_float("mean", x)
    return reduction.Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    _check_axis("max", axis, x.ndim)
    if x.size() == 0:
        raise ValueError("max: the tensor is empty")
    return reduction.Max.apply(x, axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------- shapes
def reshape(x, shape):
    """``x`` with a new shape of the same size; one entry may be -1."""
    shape = tuple(shape)
    known = 1
    for n in shape:
        if n != -1:
            known *= n
    if shape.count(-1) > 1 or any(n < -1 for n in shape) or \
            (known != x.size() if -1 not in shape else known == 0 or x.size() % known):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size()} elements) to {shape}")
    return _shape.Reshape.apply(x, shape=shape)


def transpose(x, axes=None):
    """Permute axes as ``numpy.transpose``; ``axes=None`` reverses them."""
    if axes is not None:
        axes = tuple(a % x.ndim if isinstance(a, int) and -x.ndim <= a < x.ndim else a
                     for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the "
                             f"{x.ndim} axes of shape {x.shape}")
    return _shape.Transpose.apply(x, axes=axes)


def swapaxes(x, axis1, axis2):
    """``x`` with two axes exchanged (a transpose)."""
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes)


def _index_arrays(index, device):
    """Replace Tensors inside an index by their arrays."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, Tensor):
            if p.device != device:
                raise RuntimeError(f"getitem: index tensor is on {p.device}, tensor on {device}")
            p = p.data
        elif isinstance(p, list):
            p = backend.xp_for(device).asarray(p)
        out.append(p)
    return tuple(out) if isinstance(index, tuple) else out[0]


def getitem(x, index):
    """``x[index]``: ints, slices, None, Ellipsis, integer arrays, boolean masks.

    An integer array with an entry out of range raises IndexError on the CPU, but on
    a GPU CuPy wraps it around and reads another element without a word (checking
    would make the GPU wait): check indices where they are made."""
    index = _index_arrays(index, x.device)
    try:  # the array module validates the index; forward runs before any graph is built
        return _shape.GetItem.apply(x, index=index)
    except IndexError as err:
        raise IndexError(f"getitem: index {index!r} is invalid for shape {x.shape}: {err}") from None


def _check_same_shapes(op, tensors, skip_axis=None):
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    first = tensors[0]
    for t in tensors[1:]:
        if t.dtype != first.dtype:
            raise TypeError(f"{op}: tensors have dtypes {first.dtype} and {t.dtype}")
        same = len(t.shape) == len(first.shape) and all(
            a == b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != skip_axis)
        if not same:
            raise ValueError(f"{op}: shapes {[t.shape for t in tensors]} must agree "
                             f"{'except along axis %d' % skip_axis if skip_axis is not None else 'exactly'}")


def concat(tensors, axis=0):
    """Join tensors along an existing ``axis``."""
    tensors = list(tensors)
    _check_same_shapes("concat", tensors[:1] or tensors, None)
    ndim = tensors[0].ndim
    _check_axis("concat", axis, ndim)
    axis %= ndim
    _check_same_shapes("concat", tensors, axis)
    return _shape.Concat.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    """Join tensors of one shape along a new ``axis``."""
    tensors = list(tensors)
    _check_same_shapes("stack", tensors)
    ndim = tensors[0].ndim + 1
    _check_axis("stack", axis, ndim)
    return _shape.Stack.apply(*tensors, axis=axis % ndim)


# ---------------------------------------------------------------- matmul
def matmul(a, b):
    """``a @ b`` with numpy.matmul's rules: 1-D, 2-D, and batched with broadcast batch axes."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dim, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match: the last axis "
                         f"of the first ({k_a}) must equal the "
                         f"{'only' if b.ndim == 1 else 'second-to-last'} axis of the second ({k_b})")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: operands have dtypes {a.dtype} and {b.dtype}; cast one first")
    _check_float("matmul", a)
    if a.ndim > 2 and b.ndim > 2:
        _check_broadcast("matmul (batch axes)", a.shape[:-2], b.shape[:-2])
    return _matmul.MatMul.apply(a, b)


# ---------------------------------------------------------------- neural-network ops
def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, stable for large logits."""
    _check_float("softmax", x)
    _check_axis("softmax", axis, x.ndim)
    return _nn.Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, computed without overflow or log(0)."""
    _check_float("log_softmax", x)
    _check_axis("log_softmax", axis, x.ndim)
    return _nn.LogSoftmax.apply(x, axis=axis)


def cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """Cross-entropy between ``logits`` and integer class ``targets`` (PyTorch's layout).

    logits: (N, C) or (N, C, d1, ...); targets: (N,) or (N, d1, ...), integers in
    [0, C) or ``ignore_index``. ``reduction``: "mean" (over non-ignored targets),
    "sum" or "none" (a loss per target, 0 where ignored).
    """
    _check_float("cross_entropy", logits, "logits")
    if not isinstance(targets, Tensor):
        targets = Tensor(backend.xp_for(logits.device).asarray(targets))
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got dtype {targets.dtype}")
    if logits.ndim < 2:
        raise ValueError(f"cross_entropy: logits must be (N, C) or (N, C, d1, ...), got shape {logits.shape}")
    expected = (logits.shape[0],) + logits.shape[2:]
    if targets.shape != expected:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} need targets of shape "
                         f"{expected}, got {targets.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    # Out-of-range targets would read other classes unnoticed on a GPU (CuPy wraps
    # indices); checking them reads them, so on the GPU the check is deferred to the next
    # device wait instead of costing waits of its own (see backend.check_index_range).
    backend.check_index_range(targets.data, 0, logits.shape[1], "cross_entropy: targets",
                              ignore=ignore_index)
    return _nn.CrossEntropy.apply(logits, targets, ignore_index=ignore_index,
                                  label_smoothing=label_smoothing, reduction=reduction)


def nll_loss(log_probs, targets, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of integer ``targets`` under ``log_probs`` (N, C)."""
    if log_probs.ndim != 2 or targets.shape != (log_probs.shape[0],):
        raise ValueError(f"nll_loss: needs log_probs (N, C) and targets (N,), got "
                         f"{log_probs.shape} and {targets.shape}")
    xp = backend.array_module(log_probs.data)
    valid = targets.data != ignore_index
    rows = xp.arange(log_probs.shape[0])
    picked = getitem(log_probs, (rows, xp.where(valid, targets.data, 0)))
    losses = -picked * Tensor(valid.astype(log_probs.dtype))
    if reduction == "none":
        return losses
    total = sum(losses)
    if reduction == "sum":
        return total
    # The count stays on the device (reading it would be a wait for the GPU).
    count = xp.maximum(valid.sum(), 1).astype(log_probs.dtype)
    return total / Tensor(count)


def mse_loss(input, target, reduction="mean"):
    """Mean (or summed) squared difference."""
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input and target shapes differ: {input.shape} and {target.shape}")
    squared = (input - target) ** 2
    if reduction == "none":
        return squared
    return sum(squared) if reduction == "sum" else mean(squared)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing ``normalized_shape`` axes to mean 0 and variance 1,
    then scale by ``weight`` and shift by ``bias`` (both of shape ``normalized_shape``)."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    _check_float("layer_norm", x)
    if tuple(x.shape[x.ndim - len(normalized_shape):]) != normalized_shape:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end in "
                         f"normalized_shape {normalized_shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != normalized_shape:
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected {normalized_shape}")
    affine = [p for p in (weight, bias) if p is not None]
    return _nn.LayerNorm.apply(x, *affine, normalized_ndim=len(normalized_shape), eps=eps,
                               has_weight=weight is not None, has_bias=bias is not None)


def embedding(indices, weight, padding_idx=None):
    """Rows of ``weight`` (num_embeddings, dim) at integer ``indices`` (any shape)."""
    if not isinstance(indices, Tensor):
        indices = Tensor(backend.xp_for(weight.device).asarray(indices))
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be (num_embeddings, dim), got shape {weight.shape}")
    # Checked without waiting for the GPU: deferred there (see backend.check_index_range).
    backend.check_index_range(indices.data, 0, weight.shape[0], "embedding: indices")
    return _nn.Embedding.apply(indices, weight, padding_idx=padding_idx)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    The scaling keeps the expected value unchanged, so evaluation (``training=False``)
    just returns ``x``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = backend.random_uniform(x.shape, x.dtype, x.device) >= p
    return x * Tensor(keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p)))

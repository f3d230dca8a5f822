"""Tensor: an array, its gradient, and the op that made it.

Reverse-mode automatic differentiation in three pieces:

* :class:`Function` -- the base class of every op. ``forward`` computes on arrays,
  ``backward`` turns the gradient of the output into gradients of the inputs.
  ``Function.apply`` runs an op on tensors and, when a gradient will be needed,
  remembers the op in the output's ``_ctx`` so that backward can find it.
* :class:`Tensor` -- wraps one array (NumPy or CuPy) and points to the op that
  made it. An op keeps references to its *inputs* only, never to its output, so a
  graph is freed by plain reference counting as soon as its last tensor goes.
* :meth:`Tensor.backward` -- sorts the graph's ops so that every op comes after
  the ops that consume its output, then calls their ``backward`` in that order.
  The walk is an explicit loop with a stack, not recursion: an RNN over 512 tokens
  builds a graph thousands of ops deep, deeper than Python's recursion limit.
"""
import contextlib
import numbers

from . import backend

_grad_enabled = True
# The active tracer (see trace.py) or None. Ops check this one global, so that
# with no trace running the engine pays a single comparison per op.
_tracer = None


@contextlib.contextmanager
def no_grad():
    """Within this block ops build no graph (for evaluation and optimizer updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


class Function:
    """Base class of an op: forward and backward side by side.

    Subclasses implement

    * ``forward(self, *arrays)`` -> array: the op's result. Save what backward
      needs on ``self``. Op parameters (an axis, a shape) arrive as keyword
      arguments of ``apply`` and are set as attributes before ``forward`` runs.
    * ``backward(self, grad)`` -> one gradient array (or None) per input; an input
      whose entry in ``self.needs_input_grad`` is False may get None.
    * ``flops(self)`` -> the floating-point operations of the forward pass, and
      optionally ``backward_flops(self)`` (default: twice the forward).
    """

    name = None  # op name in traces and errors; defaults to the class name in lower case
    released = False  # set once backward has freed what forward saved

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on tensors ``inputs`` and return the output tensor."""
        # This runs for every op: it is kept lean, because on small arrays its
        # bookkeeping, not the arithmetic, is what a step costs.
        fn = cls()
        for key, value in params.items():
            setattr(fn, key, value)
        if len(inputs) > 1:
            device = inputs[0].device
            for t in inputs[1:]:
                if t.device != device:
                    raise RuntimeError(f"{fn.op_name}: tensors are on different devices "
                                       f"({', '.join(x.device for x in inputs)}); move them "
                                       f"to one device with .to(device)")
        arrays = [t.data for t in inputs]
        fn.needs_input_grad = needs = tuple([t.requires_grad for t in inputs])
        if _tracer is None:
            out = Tensor(fn.forward(*arrays))
        else:
            out = _tracer.run_forward(fn, inputs, arrays)
        if _grad_enabled and True in needs:
            out.requires_grad = True
            out._ctx = fn
            fn.inputs = inputs
        return out

    @property
    def op_name(self):
        return self.name or type(self).__name__.lower()

    def forward(self, *arrays):  # abstract: every op overrides it
        raise NotImplementedError(f"{type(self).__name__}.forward (abstract)")

    def backward(self, grad):  # abstract: every op overrides it
        raise NotImplementedError(f"{type(self).__name__}.backward (abstract)")

    def flops(self):
        return 0

    def backward_flops(self):
        return 2 * self.flops()

    def release(self):
        """Drop what forward saved, once backward no longer needs it."""
        self.__dict__.clear()
        self.released = True


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    Broadcasting repeats an operand along new leading axes and along axes of size
    1; the gradient of a repeated value is the sum over its copies.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape)
                                       if n == 1 and grad.shape[i + extra] != 1)
    grad = grad.sum(axis=axes, keepdims=True) if axes else grad
    return grad.reshape(shape)


def _topological_order(root):
    """The ops of the graph ending in op ``root``, every op after the ops it reads.

    An iterative depth-first search: each op is pushed once unexpanded and, when its
    inputs have all been pushed, once more to be emitted (post-order).
    """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t._ctx is not None and id(t._ctx) not in seen:
                stack.append((t._ctx, False))
    return order


class Tensor:
    """An n-dimensional array that can remember how it was computed.

    Attributes: ``data`` (the NumPy or CuPy array), ``grad`` (an array of the same
    shape on the same device, or None), ``requires_grad``, and ``_ctx``, the op
    that produced this tensor (None for a leaf).
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_trace_node", "__weakref__")
    # Make NumPy hand `ndarray * Tensor` to Tensor.__rmul__ instead of looping.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False):
        data = backend.ensure_array(data)
        if not backend.is_array(data):
            raise TypeError(f"Tensor() takes a NumPy or CuPy array, got {type(data).__name__}; "
                            f"use minitransformer.tensor() for lists and numbers")
        self.data = data
        self.grad = None
        self._ctx = None
        self._trace_node = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # ---------------------------------------------------------------- properties
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    def size(self, axis=None):
        """Number of elements, or the length of ``axis`` (as ``torch.Tensor.size``)."""
        return self.data.size if axis is None else self.data.shape[axis]

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = repr(backend.to_numpy(self.data)).replace("array(", "tensor(", 1)[:-1]
        dev = ", device='gpu'" if self.device == "gpu" else ""
        return f"{body}{dev}{grad})"

    def requires_grad_(self, flag=True):
        """Mark a leaf as needing a gradient (float tensors only)."""
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}")
        self.requires_grad = bool(flag)
        return self

    # ---------------------------------------------------------------- conversion
    def numpy(self):
        """A NumPy copy of the data on the host."""
        return backend.to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph: no gradient flows through the result."""
        return Tensor(self.data)

    def to(self, device):
        """This tensor on ``device`` ("cpu" or "gpu"); ``self`` when already there.

        The copy is a leaf: moving is a step of setup, not of the computation.
        """
        device = backend.resolve_device(device)
        if device == self.device:
            return self
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    def astype(self, dtype):
        """A differentiable cast to ``dtype``."""
        return F.astype(self, dtype)

    def float(self):
        return F.astype(self, "float32")

    def double(self):
        return F.astype(self, "float64")

    # ---------------------------------------------------------------- autograd
    def backward(self, grad=None, retain_graph=False):
        """Accumulate into ``.grad`` of every leaf the gradient of this tensor.

        ``grad`` is the gradient of some scalar with respect to this tensor; it may
        be omitted for a one-element tensor (it is then 1). Unless
        ``retain_graph=True`` each op frees its saved arrays once used, so a second
        backward through the same graph is an error.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad; none of the "
                               "tensors it was computed from had requires_grad=True")
        xp = backend.array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without grad needs a one-element tensor, got "
                                   f"shape {self.shape}; pass grad= of that shape")
            grad = xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape}, expected the "
                                 f"tensor's shape {self.shape}")
        if self._ctx is None:
            self._accumulate_leaf(grad)
            return
        if self._ctx.released:
            raise RuntimeError("backward() through a graph a second time: its saved arrays "
                               "were freed; call the first backward with retain_graph=True")
        run_backward(self._ctx, grad, retain_graph)

    def _accumulate_leaf(self, grad):
        if isinstance(grad, IndexedGrad):
            if self.grad is None:
                self.grad = grad.dense()
            else:
                grad.add_to(self.grad)
            return
        grad = backend.ensure_array(grad)
        if self.grad is None:
            self.grad = grad.copy()  # a copy: `grad` may be shared with other gradients
        else:
            self.grad += grad

    # ---------------------------------------------------------------- operators
    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __neg__(self): return F.neg(self)
    def __pow__(self, exponent): return F.pow(self, exponent)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __getitem__(self, index): return F.getitem(self, index)

    # Comparisons return boolean tensors outside the graph (masks, accuracy).
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)
    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    __hash__ = object.__hash__  # tensors are hashed by identity, as in PyTorch

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                             f"use .any() or .all() on .data")
        return bool(self.data.reshape(()))

    # ---------------------------------------------------------------- methods
    def sum(self, axis=None, keepdims=False): return F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return F.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return F.max(self, axis, keepdims)
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def sqrt(self): return F.sqrt(self)
    def tanh(self): return F.tanh(self)
    def sigmoid(self): return F.sigmoid(self)
    def relu(self): return F.relu(self)
    def softmax(self, axis=-1): return F.softmax(self, axis)
    def log_softmax(self, axis=-1): return F.log_softmax(self, axis)
    def matmul(self, other): return F.matmul(self, other)

    def reshape(self, *shape):
        """``reshape(2, 3)`` or ``reshape((2, 3))``; one dimension may be -1."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return F.reshape(self, shape)

    def transpose(self, *axes):
        """Permute axes as ``numpy.transpose``: no argument reverses them."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return F.transpose(self, axes or None)

    permute = transpose

    @property
    def T(self):
        return F.transpose(self, None)


class IndexedGrad:
    """The gradient of ``x[index]`` with respect to ``x``: ``values`` at ``index``, zero
    elsewhere, kept in that form until it is added to the rest of ``x``'s gradient.

    A recurrent layer reads its input one time step at a time: x[:, 0], x[:, 1], ...
    Were each slice's gradient a full-size array of zeros, T steps would cost T
    full-size arrays and T full-size additions in backward -- O(T²). Written into one
    buffer, slot by slot, they cost O(T).
    """

    __slots__ = ("shape", "dtype", "index", "values", "repeats")

    def __init__(self, shape, dtype, index, values, repeats):
        self.shape, self.dtype, self.index, self.values = shape, dtype, index, values
        self.repeats = repeats  # True when the index may select an element twice

    @property
    def nbytes(self):
        return self.values.nbytes  # what backward actually writes

    def add_to(self, dense):
        if self.repeats:
            backend.scatter_add(dense, self.index, self.values)
        elif _selects_a_view(self.index, dense.ndim):
            # ``dense[index] += values`` would read the slot, add, then write it back
            # (two kernels on a GPU); adding into a view of the slot is one.
            slot = dense[self.index]
            slot += self.values
        else:
            dense[self.index] += self.values

    def dense(self):
        full = backend.array_module(self.values).zeros(self.shape, dtype=self.dtype)
        self.add_to(full)
        return full


def _selects_a_view(index, ndim):
    """True when ``x[index]`` is a view of an array x with ``ndim`` dimensions: basic
    indexing (integers, slices, ``...``, None) that leaves at least one dimension
    (NumPy gives a scalar copy, not a view, for a single element)."""
    parts = index if isinstance(index, tuple) else (index,)
    integers = 0
    for part in parts:
        if isinstance(part, numbers.Integral) and not isinstance(part, bool):
            integers += 1
        elif not (part is None or part is Ellipsis or isinstance(part, slice)):
            return False            # an array or a boolean: advanced indexing copies
    return integers < ndim


def run_backward(root, grad, retain_graph=False):
    """Backpropagate ``grad``, the gradient of op ``root``'s output, through its graph.

    Gradients flowing into one tensor from several consumers are summed. The first
    one to arrive is stored as it is (it may be an array another op still uses);
    once a second arrives the sum is a fresh array, which later arrivals may add to
    in place. A slice's gradient (:class:`IndexedGrad`) is added into its slot.
    """
    order = _topological_order(root)
    grads = {id(root): grad}   # op id -> gradient of that op's output
    owned = set()              # op ids whose gradient array is ours to modify
    sources = {}               # traced runs: op id -> backward trace nodes feeding it
    for fn in reversed(order):
        out_grad = grads.pop(id(fn), None)
        if out_grad is None:   # the op's output did not influence the root
            continue
        if fn.released:
            raise RuntimeError(f"backward() through {fn.op_name} a second time: its saved "
                               f"arrays were freed; pass retain_graph=True to the first backward")
        if _tracer is None:
            in_grads = fn.backward(out_grad)
        else:
            in_grads, node = _tracer.run_backward(fn, out_grad, sources.pop(id(fn), ()))
        inputs = fn.inputs
        if not retain_graph:
            fn.release()
        for t, g in zip(inputs, in_grads):
            if g is None or not t.requires_grad:
                continue
            if t._ctx is None:
                t._accumulate_leaf(g)
                continue
            key = id(t._ctx)
            if _tracer is not None:
                sources.setdefault(key, []).append(node)
            if isinstance(g, IndexedGrad):
                # A slice's gradient goes straight into one owned buffer of the full shape.
                if key not in grads:
                    grads[key] = g.dense()
                elif key in owned:
                    g.add_to(grads[key])
                    continue
                else:
                    grads[key] = grads[key].copy()
                    g.add_to(grads[key])
                owned.add(key)
                continue
            g = backend.ensure_array(g)  # NumPy turns 0-d results into scalars
            if key not in grads:
                grads[key] = g
            elif key in owned:
                grads[key] += g
            else:
                grads[key] = grads[key] + g
                owned.add(key)


# ---------------------------------------------------------------- constructors
def _float_default(data, xp):
    """The dtype a Python number or list becomes: float32, except all-int/bool data."""
    probe = xp.asarray(data)
    if probe.dtype.kind in "iub":
        return probe.dtype if probe.dtype.kind == "b" else backend.as_dtype("int64")
    return backend.as_dtype("float32")


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new leaf tensor holding a copy of ``data``.

    An array keeps its dtype (float64 stays float64, as in PyTorch). Python floats
    and lists of them become float32; Python ints and bools (and lists of them)
    become int64 and bool, as in PyTorch, so token ids stay integers.
    """
    device = backend.resolve_device(device if device is not None else
                                    (data.device if isinstance(data, Tensor) else None))
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.xp_for(device)
    if dtype is None:
        dtype = data.dtype if backend.is_array(data) else _float_default(data, backend.numpy)
    dtype = backend.as_dtype(dtype)
    if backend.is_array(data) and backend.device_of(data) != device:
        # Convert where the data is, then move it: the move is the copy (one transfer,
        # not a transfer and then a copy on the device).
        array = backend.to_device(data.astype(dtype, copy=False), device)
    else:
        array = xp.array(data, dtype=dtype)
    return Tensor(array, requires_grad=requires_grad)


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype="float32", device=None, requires_grad=False):
    xp = backend.xp_for(device)
    return Tensor(xp.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype="float32", device=None, requires_grad=False):
    xp = backend.xp_for(device)
    return Tensor(xp.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, value, dtype="float32", device=None, requires_grad=False):
    xp = backend.xp_for(device)
    return Tensor(xp.full(tuple(shape), value, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype="float32", device=None, requires_grad=False):
    """Standard normal samples from the device's seeded generator (see manual_seed)."""
    data = backend.random_normal(_shape_arg(shape), backend.as_dtype(dtype), device)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, dtype="float32", device=None, requires_grad=False):
    """Uniform samples in [0, 1) from the device's seeded generator."""
    data = backend.random_uniform(_shape_arg(shape), backend.as_dtype(dtype), device)
    return Tensor(data, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype="int64", device=None):
    xp = backend.xp_for(device)
    if stop is None:
        start, stop = 0, start
    return Tensor(xp.arange(start, stop, step, dtype=dtype))


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn_like(t, dtype=None, requires_grad=False):
    return randn(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad=False):
    return rand(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


# The ops need Tensor and Function, so they are imported after both exist.
from . import functional as F  # noqa: E402

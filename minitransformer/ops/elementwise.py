"""Elementwise ops: arithmetic with broadcasting, and the usual nonlinearities.

FLOPs: one per output element for each arithmetic operation or function
evaluation (exp, tanh, ... count as one), the convention of the papers that
count work per layer. Span: one step, whatever the size -- every element on its
own processor -- and each output element reads the same element of each input
(see ``dependence.py``).
"""
import math

from .. import backend
from .._tensor import Function, unbroadcast
from . import dependence


class _Elementwise(Function):
    """What every elementwise op shares: one parallel step, element i from element i."""

    def span(self):
        return 1

    def depends(self, depths, out):
        return dependence.elementwise(depths, out)


class _Binary(_Elementwise):
    """Shared bookkeeping of the broadcasting binary ops."""

    def flops(self):
        return self.out_size

    def _remember_shapes(self, a, b, out):
        self.shapes = (a.shape, b.shape)
        self.out_size = out.size
        return out


class Add(_Binary):
    def forward(self, a, b):
        return self._remember_shapes(a, b, a + b)

    def backward(self, grad):
        return unbroadcast(grad, self.shapes[0]), unbroadcast(grad, self.shapes[1])


class Sub(_Binary):
    def forward(self, a, b):
        return self._remember_shapes(a, b, a - b)

    def backward(self, grad):
        grad_b = unbroadcast(-grad, self.shapes[1]) if self.needs_input_grad[1] else None
        return unbroadcast(grad, self.shapes[0]), grad_b


class Mul(_Binary):
    def forward(self, a, b):
        # d(ab)/da = b and d(ab)/db = a: keep each factor only if the other needs it.
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        return self._remember_shapes(a, b, a * b)

    def backward(self, grad):
        grad_a = unbroadcast(grad * self.b, self.shapes[0]) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * self.a, self.shapes[1]) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class MulNumber(_Elementwise):
    """``x * number`` for a Python number ``number`` (attention's 1/√d, the
    embeddings' √d). The number reaches the multiplication as a scalar of x's dtype:
    on a GPU, a kernel argument. As an operand of :class:`Mul` it would first become
    a one-element array sent to the device: a copy and a kernel more, each time."""
    name = "mul"        # the same multiplication in a trace
    number = None

    def forward(self, x):
        self.out_size = x.size
        self.factor = x.dtype.type(self.number)
        return x * self.factor

    def backward(self, grad):
        return (grad * self.factor,)

    def flops(self):
        return self.out_size


class Div(_Binary):
    def forward(self, a, b):
        out = a / b
        self.b = b
        self.out = out if self.needs_input_grad[1] else None
        return self._remember_shapes(a, b, out)

    def backward(self, grad):
        grad_a = grad / self.b
        # d(a/b)/db = -a/b² = -(a/b)/b
        grad_b = unbroadcast(-grad_a * self.out, self.shapes[1]) if self.needs_input_grad[1] else None
        return unbroadcast(grad_a, self.shapes[0]), grad_b


class _Unary(_Elementwise):
    def flops(self):
        return self.out_size


class Neg(_Unary):
    def forward(self, x):
        self.out_size = x.size
        return -x

    def backward(self, grad):
        return (-grad,)


class Pow(_Unary):
    """``x ** exponent`` for a Python number ``exponent``."""
    exponent = None

    def forward(self, x):
        self.x, self.out_size = x, x.size
        return x ** self.exponent

    def backward(self, grad):
        return (grad * (self.exponent * self.x ** (self.exponent - 1)),)


class Exp(_Unary):
    def forward(self, x):
        self.out = backend.array_module(x).exp(x)
        self.out_size = x.size
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class Log(_Unary):
    def forward(self, x):
        self.x, self.out_size = x, x.size
        return backend.array_module(x).log(x)

    def backward(self, grad):
        return (grad / self.x,)


class Sqrt(_Unary):
    def forward(self, x):
        self.out = backend.array_module(x).sqrt(x)
        self.out_size = x.size
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


class Tanh(_Unary):
    def forward(self, x):
        self.out = backend.array_module(x).tanh(x)
        self.out_size = x.size
        return self.out

    def backward(self, grad):
        return (grad * (1 - self.out * self.out),)


class Sigmoid(_Unary):
    def forward(self, x):
        xp = backend.array_module(x)
        # 1/(1+e^-x) overflows for very negative x; tanh form is stable everywhere.
        self.out = 0.5 * (xp.tanh(0.5 * x) + 1)
        self.out_size = x.size
        return self.out

    def backward(self, grad):
        return (grad * self.out * (1 - self.out),)


class Relu(_Unary):
    def forward(self, x):
        self.positive = x > 0
        self.out_size = x.size
        return x * self.positive

    def backward(self, grad):
        return (grad * self.positive,)


class Gelu(_Unary):
    """The exact GELU, x·Φ(x) with Φ the standard normal CDF (PyTorch's default)."""

    def forward(self, x):
        self.x, self.out_size = x, x.size
        self.cdf = 0.5 * (1 + backend.erf(x * (1 / math.sqrt(2))))
        return x * self.cdf

    def backward(self, grad):
        xp = backend.array_module(self.x)
        pdf = xp.exp(-0.5 * self.x * self.x) * (1 / math.sqrt(2 * math.pi))
        return (grad * (self.cdf + self.x * pdf),)


class Where(_Elementwise):
    """``where(condition, a, b)``: ``a`` where the boolean ``condition`` holds, else ``b``."""

    def forward(self, condition, a, b):
        xp = backend.array_module(a)
        self.condition, self.shapes = condition, (a.shape, b.shape)
        out = xp.where(condition, a, b)
        self.out_size = out.size
        return out

    def backward(self, grad):
        zero = grad.dtype.type(0)
        xp = backend.array_module(grad)
        grad_a = grad_b = None
        if self.needs_input_grad[1]:
            grad_a = unbroadcast(xp.where(self.condition, grad, zero), self.shapes[0])
        if self.needs_input_grad[2]:
            grad_b = unbroadcast(xp.where(self.condition, zero, grad), self.shapes[1])
        return None, grad_a, grad_b

    def flops(self):
        return 0


class Cast(_Elementwise):
    """``astype(dtype)``: the gradient is cast back to the input's dtype."""
    dtype = None

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, grad):
        return (grad.astype(self.input_dtype),)

"""gradcheck itself: it passes correct gradients and catches wrong ones."""
import numpy as np
import pytest

import minitransformer as mt
from minitransformer._tensor import Function


class _WrongSquare(Function):
    """x² with a deliberately wrong backward (x instead of 2x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return (grad * self.x,)


def test_gradcheck_passes_a_correct_backward(device):
    x = mt.randn(3, 4, dtype="float64", device=device, requires_grad=True)
    assert mt.gradcheck(lambda t: (t * t).tanh().sum(axis=0), [x])


def test_gradcheck_catches_a_wrong_backward(device):
    x = mt.tensor([[1.0, -2.0], [0.5, 3.0]], dtype="float64", device=device, requires_grad=True)
    with pytest.raises(mt.GradcheckError) as err:
        mt.gradcheck(lambda t: _WrongSquare.apply(t), [x])
    message = str(err.value)
    assert "input 0" in message and "at index (" in message
    # the wrong backward gives x·v where the truth is 2x·v: exactly half
    analytic = float(message.split("analytic ")[1].split(",")[0])
    numeric = float(message.split("numeric ")[1].split(" ")[0])
    assert analytic == pytest.approx(numeric / 2, rel=1e-6)


def test_gradcheck_names_the_wrong_input(device):
    a = mt.randn(2, dtype="float64", device=device, requires_grad=True)
    b = mt.randn(2, dtype="float64", device=device, requires_grad=True)
    with pytest.raises(mt.GradcheckError, match="input 1"):
        mt.gradcheck(lambda x, y: x + _WrongSquare.apply(y), [a, b])


def test_gradcheck_requires_float64():
    x = mt.randn(2, requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        mt.gradcheck(lambda t: t * 2, [x])


def test_gradcheck_leaves_inputs_and_grads_unchanged():
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.grad = np.array([5.0, 5.0])
    mt.gradcheck(lambda t: t.exp(), [x])
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])


def test_gradcheck_checks_tuple_outputs():
    x = mt.randn(3, dtype="float64", requires_grad=True)
    assert mt.gradcheck(lambda t: (t * 2, (t.exp(), t.sum())), [x])

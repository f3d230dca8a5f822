"""Tensor construction, graph semantics of backward, and error messages."""
import gc
import weakref

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import backend
from tests.conftest import to_host


# ---------------------------------------------------------------- construction
def test_dtypes_follow_pytorch(device):
    assert mt.tensor([1.0, 2.0], device=device).dtype == np.float32
    assert mt.tensor(3.5, device=device).dtype == np.float32
    assert mt.tensor([1, 2], device=device).dtype == np.int64
    assert mt.tensor([True, False], device=device).dtype == np.bool_
    assert mt.tensor(np.zeros(3), device=device).dtype == np.float64      # arrays keep theirs
    assert mt.tensor(np.zeros(3, np.float16), device=device).dtype == np.float16
    assert mt.tensor([1, 2], dtype="float64", device=device).dtype == np.float64


def test_tensor_copies_its_data(device):
    data = np.ones(3)
    t = mt.tensor(data, device=device)
    data[0] = 5
    assert to_host(t)[0] == 1


def test_factories(device):
    assert mt.zeros(2, 3, device=device).shape == (2, 3)
    assert mt.ones((2, 3), device=device).numpy().sum() == 6
    assert mt.randn(4, 5, device=device).dtype == np.float32
    r = mt.rand(1000, device=device).numpy()
    assert r.min() >= 0 and r.max() < 1
    np.testing.assert_array_equal(mt.arange(5, device=device).numpy(), np.arange(5))
    x = mt.randn(2, 2, dtype="float64", device=device)
    for like in (mt.zeros_like, mt.ones_like, mt.randn_like, mt.rand_like):
        y = like(x)
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device


def test_properties(device):
    x = mt.zeros(2, 3, 4, device=device)
    assert (x.shape, x.ndim, x.size(), x.size(1), x.device) == ((2, 3, 4), 3, 24, 3, device)
    assert mt.tensor([[2.5]], device=device).item() == 2.5
    assert isinstance(x.numpy(), np.ndarray)


def test_manual_seed_reproduces(device):
    mt.manual_seed(123)
    a = mt.randn(5, device=device).numpy()
    mt.manual_seed(123)
    b = mt.randn(5, device=device).numpy()
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- backward semantics
def test_scalar_backward_and_grad_shape_device(device):
    x = mt.tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.shape == x.shape
    assert backend.device_of(x.grad) == device
    np.testing.assert_array_equal(to_host(x.grad), 2 * x.numpy())


def test_tensor_used_twice_accumulates(device):
    x = mt.tensor([3.0], device=device, requires_grad=True)
    y = x * x + x          # x feeds three uses
    y.sum().backward()
    np.testing.assert_array_equal(to_host(x.grad), [7.0])


def test_gradients_accumulate_across_backward_calls(device):
    x = mt.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(to_host(x.grad), [6.0, 6.0])


def test_shared_gradient_arrays_are_not_corrupted(device):
    # add's backward hands the same array to both inputs; accumulating into one of
    # them in place must not change the other.
    x = mt.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = mt.tensor([5.0, 7.0], device=device, requires_grad=True)
    s = x + y
    (s + s * x).sum().backward()
    np.testing.assert_array_equal(to_host(y.grad), 1 + x.numpy())
    np.testing.assert_array_equal(to_host(x.grad), 1 + s.numpy() + x.numpy())


def test_backward_with_explicit_grad(device):
    x = mt.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (x * 2).backward(mt.tensor([1.0, 0.5, 0.0], device=device))
    np.testing.assert_array_equal(to_host(x.grad), [2.0, 1.0, 0.0])


def test_no_grad_builds_no_graph(device):
    x = mt.tensor([1.0], device=device, requires_grad=True)
    with mt.no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None
    assert mt.is_grad_enabled()


def test_detach_cuts_the_graph(device):
    x = mt.tensor([2.0], device=device, requires_grad=True)
    y = x * x.detach()     # gradient flows through the first factor only
    y.sum().backward()
    np.testing.assert_array_equal(to_host(x.grad), [2.0])


@pytest.mark.slow   # about 4 s: a graph thousands of ops deep
def test_long_chain_backpropagates_without_recursion():
    x = mt.tensor([1.0], dtype="float64", requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1e-5
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0])


def test_graph_is_freed_after_backward():
    x = mt.tensor(np.ones(4), requires_grad=True)
    hidden = (x * 2).exp()
    op = weakref.ref(hidden._ctx)
    loss = hidden.sum()
    loss.backward()
    del hidden, loss
    gc.collect()
    assert op() is None


def test_intermediate_memory_released_without_gc():
    # An op holds its inputs, never its output: no reference cycles, so dropping
    # the last tensor frees the graph through reference counting alone.
    gc.disable()
    try:
        x = mt.tensor(np.ones(4), requires_grad=True)
        y = (x * 2).tanh()
        op = weakref.ref(y._ctx)
        del y
        assert op() is None
    finally:
        gc.enable()


def test_second_backward_needs_retain_graph():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


# ---------------------------------------------------------------- errors
def test_non_scalar_backward_needs_grad():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element tensor, got shape \(2,\)"):
        (x * 2).backward()


def test_backward_without_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mt.tensor([1.0]).sum().backward()


def test_matmul_shape_error_names_both_shapes():
    a, b = mt.zeros(2, 3), mt.zeros(4, 5)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        a @ b


def test_broadcast_error_names_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        mt.zeros(2, 3) + mt.zeros(4)


def test_mixed_dtypes_are_refused():
    with pytest.raises(TypeError, match="float32 and float64"):
        mt.zeros(2) + mt.zeros(2, dtype="float64")
    with pytest.raises(TypeError, match="matmul: operands have dtypes"):
        mt.zeros(2, 2) @ mt.zeros(2, 2, dtype="float64")


def test_wrong_dtypes_are_refused():
    with pytest.raises(TypeError, match="floating-point"):
        mt.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="exp: input must be a floating-point"):
        mt.tensor([1, 2]).exp()
    with pytest.raises(TypeError, match="cross_entropy: targets must be integer"):
        F.cross_entropy(mt.zeros(2, 3), mt.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="embedding: indices must be integers"):
        F.embedding(mt.tensor([0.0]), mt.zeros(3, 2))


def test_value_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\)"):
        mt.zeros(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match="sum: axis 2 is out of range"):
        mt.zeros(2, 3).sum(axis=2)
    with pytest.raises(ValueError, match=r"cross_entropy: logits of shape \(2, 3\) need targets"):
        F.cross_entropy(mt.zeros(2, 3), mt.tensor([0, 1, 2]))
    with pytest.raises(IndexError, match=r"targets must lie in \[0, 3\)"):
        F.cross_entropy(mt.zeros(2, 3), mt.tensor([0, 3]))
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 3\)"):
        F.embedding(mt.tensor([3]), mt.zeros(3, 2))
    with pytest.raises(ValueError, match="layer_norm: input of shape"):
        F.layer_norm(mt.zeros(2, 3), 4)
    with pytest.raises(ValueError, match="concat: shapes"):
        F.concat([mt.zeros(2, 3), mt.zeros(3, 3)], axis=1)
    with pytest.raises(ValueError, match="dropout: p must be in"):
        F.dropout(mt.zeros(2), p=1.5)
    with pytest.raises(ValueError, match="device must be one of"):
        mt.zeros(2, device="tpu")


def test_ambiguous_truth_value():
    with pytest.raises(ValueError, match="ambiguous"):
        bool(mt.zeros(2))
    assert bool(mt.tensor([1.0]))


class _PretendGpuTensor(mt.Tensor):
    """A CPU tensor that reports another device, to test the device check without a GPU."""
    __slots__ = ()

    @property
    def device(self):
        return "gpu"


def test_tensors_on_two_devices_are_refused():
    a = mt.zeros(2)
    b = _PretendGpuTensor(np.zeros(2, np.float32))
    with pytest.raises(RuntimeError, match=r"mul: tensors are on different devices \(cpu, gpu\)"):
        a * b


@pytest.mark.gpu
def test_tensors_on_two_real_devices_are_refused():
    if not mt.gpu_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    with pytest.raises(RuntimeError, match="different devices"):
        mt.zeros(2) + mt.zeros(2, device="gpu")


def test_asking_for_a_missing_gpu_says_what_to_install(monkeypatch):
    monkeypatch.setattr(backend, "cupy", None)
    with pytest.raises(RuntimeError, match="pip install cupy-cuda12x"):
        mt.zeros(2, device="gpu")
    with pytest.raises(RuntimeError, match="CuPy"):
        mt.set_default_device("gpu")


def test_default_device_from_environment(monkeypatch):
    import importlib
    monkeypatch.setenv("MINITRANSFORMER_DEVICE", "tpu")
    importlib.reload(backend)          # importing never fails: the value is read when used
    with pytest.raises(ValueError, match="MINITRANSFORMER_DEVICE must be one of .*got 'tpu'"):
        backend.default_device()
    monkeypatch.setenv("MINITRANSFORMER_DEVICE", "cpu")
    importlib.reload(backend)
    assert backend.default_device() == "cpu"

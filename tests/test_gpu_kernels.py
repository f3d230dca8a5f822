"""Each fused CUDA kernel against its NumPy reference, on a real GPU.

The CuPy stand-in runs the references themselves, so only a real GPU checks the CUDA
source; these tests skip everywhere else (bench/gpu_check.sh runs them).
"""
import numpy as np
import pytest

import minitransformer as mt
from minitransformer import backend, optim
from minitransformer.nn import attention, recurrent

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_a_real_gpu():
    from tests import fake_cupy
    if not mt.gpu_available() or fake_cupy.installed():
        pytest.skip("needs a real CUDA GPU (the stand-in runs the references themselves)")


def _both(fn_gpu, fn_cpu, arrays):
    """Run ``fn_gpu`` on device copies and ``fn_cpu`` on host copies of ``arrays``."""
    import cupy
    gpu = fn_gpu(*[cupy.asarray(a) for a in arrays])
    cpu = fn_cpu(*[a.copy() for a in arrays])
    return [backend.to_numpy(g) for g in gpu], cpu


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-6), ("float64", 1e-12)])
def test_lstm_cell_kernels_match_their_references(dtype, rtol):
    import cupy
    rng = np.random.default_rng(0)
    batch, size = 5, 7
    x_proj, hidden_proj = (rng.standard_normal((batch, 4 * size)).astype(dtype) * 2 for _ in "ab")
    cell, grad_h, grad_c = (rng.standard_normal((batch, size)).astype(dtype) for _ in "abc")

    def forward_gpu(x_proj, hidden_proj, cell):
        outs = [cupy.empty(cell.shape, dtype), cupy.empty(cell.shape, dtype),
                cupy.empty(x_proj.shape, dtype), cupy.empty(cell.shape, dtype)]
        recurrent._LSTM_FORWARD_KERNEL(x_proj, hidden_proj, cell, size, *outs)
        return outs
    gpu, cpu = _both(forward_gpu, recurrent.lstm_cell_forward, [x_proj, hidden_proj, cell])
    for g, c in zip(gpu, cpu):
        np.testing.assert_allclose(g, c, rtol=rtol, atol=rtol)

    activations, tanh_cell = cpu[2], cpu[3]

    def backward_gpu(grad_h, grad_c, activations, cell, tanh_cell):
        outs = [cupy.empty(activations.shape, dtype), cupy.empty(cell.shape, dtype)]
        recurrent._LSTM_BACKWARD_KERNEL(grad_h, grad_c, activations, cell, tanh_cell, size, *outs)
        return outs
    gpu, cpu = _both(backward_gpu, recurrent.lstm_cell_backward,
                     [grad_h, grad_c, activations, cell, tanh_cell])
    for g, c in zip(gpu, cpu):
        np.testing.assert_allclose(g, c, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_kernel_matches_its_reference(decoupled):
    import cupy
    rng = np.random.default_rng(1)
    dtype = np.float32
    grad, param, m = (rng.standard_normal(50).astype(dtype) for _ in "abc")
    v = rng.random(50).astype(dtype)
    t = dtype
    scalars = [t(0.5), t(0.9), t(1 - 0.9), t(0.98), t(1 - 0.98), t(0.01 / (1 - 0.9 ** 3)),
               t(np.sqrt(1 - 0.98 ** 3)), t(1e-8), t(0.0 if decoupled else 0.1),
               t(1 - 0.01 * 0.1 if decoupled else 1.0)]
    p_gpu, m_gpu, v_gpu = cupy.asarray(param), cupy.asarray(m), cupy.asarray(v)
    optim._ADAM_KERNEL(cupy.asarray(grad), *scalars, p_gpu, m_gpu, v_gpu)
    expected = optim.adam_update_reference(grad, *scalars, param.copy(), m.copy(), v.copy())
    for g, c in zip((p_gpu, m_gpu, v_gpu), expected):
        np.testing.assert_allclose(backend.to_numpy(g), c, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-6), ("float64", 1e-12)])
def test_softmax_kernels_match_their_references(dtype, rtol):
    import cupy
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((2, 4, 6)).astype(dtype) * 3
    scores[0, 1, :] = -np.inf                          # a row with every key hidden
    peak = scores.max(axis=-1, keepdims=True)
    weights = attention.exp_shifted(scores, peak)
    total = weights.sum(axis=-1, keepdims=True)
    grad = rng.standard_normal(scores.shape).astype(dtype)
    dot = rng.standard_normal(total.shape).astype(dtype)
    cases = [(attention._EXP_SHIFTED_KERNEL, (scores, peak), weights),
             (attention._NORMALISE_KERNEL, (total,), attention.normalise(weights, total)),
             (attention._SOFTMAX_BACKWARD_KERNEL, (attention.normalise(weights, total), grad, dot),
              attention.softmax_backward(attention.normalise(weights, total), grad, dot))]
    for kernel, inputs, expected in cases:
        # The normalisation reads its output (the weights) before overwriting it.
        out = cupy.asarray(weights) if kernel is attention._NORMALISE_KERNEL else cupy.empty(scores.shape, dtype)
        kernel(*[cupy.asarray(a) for a in inputs], out)
        np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=rtol, atol=rtol)
    assert not np.isnan(expected).any()

"""The same computations on CPU and GPU agree to 1e-6 relative in float64."""
import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F

pytestmark = pytest.mark.gpu

COMPUTATIONS = {
    "arithmetic": lambda a, b: (a * b - a / (b * b + 1)) ** 2,
    "matmul_softmax": lambda a, b: F.softmax(a @ b.T, axis=-1),
    "log_softmax": lambda a, b: F.log_softmax(a * 30, axis=0),
    "layer_norm_gelu": lambda a, b: F.gelu(F.layer_norm(a, 5, b[0], b[1])),
    "reductions": lambda a, b: a.max(axis=1) + b.mean(axis=0, keepdims=True).sum(),
    "indexing": lambda a, b: F.concat([a[:, 1:3], b[np.array([0, 0, 2])][:, :2]], axis=0),
    "cross_entropy": lambda a, b: F.cross_entropy(a @ b.T, mt.tensor([0, 1, 3, 2], device=a.device),
                                                  label_smoothing=0.1),
}


@pytest.fixture(autouse=True)
def _needs_gpu():
    if not mt.gpu_available():
        pytest.skip("needs CuPy and a CUDA GPU")


@pytest.mark.parametrize("name", sorted(COMPUTATIONS))
def test_gpu_matches_cpu(name):
    rng = np.random.default_rng(1)
    a_np, b_np = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    results = {}
    for device in ("cpu", "gpu"):
        a = mt.tensor(a_np, device=device, requires_grad=True)
        b = mt.tensor(b_np, device=device, requires_grad=True)
        out = COMPUTATIONS[name](a, b)
        (out * mt.tensor(np.linspace(-1, 1, out.size()).reshape(out.shape), device=device)).sum().backward()
        # An input the computation ignores (b in log_softmax) has no gradient: compare
        # None with None, not array(None) with array(None), which cannot be compared.
        results[device] = [out.numpy()] + [None if t.grad is None else mt.backend.to_numpy(t.grad)
                                           for t in (a, b)]
    for cpu, gpu in zip(results["cpu"], results["gpu"]):
        assert (cpu is None) == (gpu is None)
        if cpu is not None:
            np.testing.assert_allclose(gpu, cpu, rtol=1e-6, atol=1e-12)


def test_gradcheck_on_gpu():
    x = mt.randn(3, 4, dtype="float64", device="gpu", requires_grad=True)
    assert mt.gradcheck(lambda t: F.softmax(t @ t.T), [x])


def test_to_moves_between_devices():
    x = mt.tensor([1.0, 2.0])
    g = x.to("gpu")
    assert g.device == "gpu" and x.to("cpu") is x
    np.testing.assert_array_equal(g.to("cpu").numpy(), [1.0, 2.0])
    mt.backend.synchronize("gpu")


def test_masked_softmax_names_a_host_mask_given_with_gpu_scores():
    """A NumPy mask with GPU scores is named as the wrong argument, as in attention,
    rather than left to fail inside cupy.where with "Unsupported type"."""
    scores = mt.randn(2, 3, device="gpu")
    with pytest.raises(RuntimeError, match="masked_softmax: hide is on cpu, the inputs on gpu"):
        _masked_softmax()(scores, np.zeros((2, 3), dtype=bool))
    hide = mt.tensor(np.array([[False, True, False]] * 2), device="gpu")
    weights = _masked_softmax()(scores, hide).numpy()
    np.testing.assert_allclose(weights[:, 1], 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)


def _masked_softmax():
    from minitransformer.nn.attention import masked_softmax
    return masked_softmax

"""Every op: forward values against NumPy/SciPy, and a float64 gradient check.

The same test bodies run on the CPU and, where a GPU is present, on the GPU (the
``device`` fixture); GPU results are compared with CPU results in test_gpu.py.
"""
import numpy as np
import pytest
import scipy.special

import minitransformer as mt
import minitransformer.functional as F
from tests.conftest import to_host


def leaf(shape, device, low=None, high=None, positive=False):
    """A float64 leaf tensor of random values that requires grad."""
    rng = np.random.default_rng(abs(hash(shape)) % 2**32)
    data = rng.standard_normal(shape)
    if positive:
        data = np.abs(data) + 0.5
    return mt.tensor(data, device=device, requires_grad=True)


# ---------------------------------------------------------------- binary ops
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((2, 1, 4), (3, 1)),
                    ((), (2, 3))]


@pytest.mark.parametrize("shape_a,shape_b", BROADCAST_SHAPES)
@pytest.mark.parametrize("name,ref", [("add", np.add), ("sub", np.subtract),
                                      ("mul", np.multiply), ("div", np.divide)])
def test_binary_ops(device, name, ref, shape_a, shape_b):
    a = leaf(shape_a, device)
    b = leaf(shape_b, device, positive=(name == "div"))
    op = getattr(F, name)
    np.testing.assert_allclose(to_host(op(a, b)), ref(a.numpy(), b.numpy()), rtol=1e-12)
    assert mt.gradcheck(op, [a, b])


def test_operators_and_scalars(device):
    x = leaf((2, 3), device, positive=True)
    xn = x.numpy()
    np.testing.assert_allclose(to_host(2 * x + 1), 2 * xn + 1)
    np.testing.assert_allclose(to_host(1 - x / 2), 1 - xn / 2)
    np.testing.assert_allclose(to_host(3 / x), 3 / xn)
    np.testing.assert_allclose(to_host(-x), -xn)
    np.testing.assert_allclose(to_host(x ** 3), xn ** 3)
    assert mt.gradcheck(lambda t: (2 * t - 1) / (t + 3) * t ** 2.5 - 4 / t, [x])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multiplying_by_a_number_keeps_the_dtype(device, dtype):
    x = mt.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=dtype, device=device,
                  requires_grad=True)
    for y, factor in ((x * 0.1, 0.1), (0.1 * x, 0.1), (x * 3, 3)):
        assert y.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(to_host(y), to_host(x) * np.dtype(dtype).type(factor))
    (x * 0.125).sum().backward()
    np.testing.assert_array_equal(to_host(x.grad), np.full((2, 3), 0.125, dtype=dtype))
    # An integer tensor keeps its integer arithmetic: the number takes its dtype.
    ids = mt.tensor([1, 2, 3], device=device)
    assert (ids * 2).dtype == np.dtype("int64") and to_host(ids * 2).tolist() == [2, 4, 6]


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.5])
def test_pow(device, exponent):
    x = leaf((3, 4), device, positive=True)
    np.testing.assert_allclose(to_host(x ** exponent), x.numpy() ** exponent, rtol=1e-12)
    assert mt.gradcheck(lambda t: t ** exponent, [x])


# ---------------------------------------------------------------- unary ops
UNARY = [
    ("exp", np.exp, False), ("log", np.log, True), ("sqrt", np.sqrt, True),
    ("tanh", np.tanh, False), ("sigmoid", scipy.special.expit, False),
    ("relu", lambda v: np.maximum(v, 0), False),
    ("gelu", lambda v: 0.5 * v * (1 + scipy.special.erf(v / np.sqrt(2))), False),
]


@pytest.mark.parametrize("name,ref,positive", UNARY)
def test_unary_ops(device, name, ref, positive):
    x = leaf((4, 5), device, positive=positive)
    op = getattr(F, name)
    np.testing.assert_allclose(to_host(op(x)), ref(x.numpy()), rtol=1e-12, atol=1e-15)
    assert mt.gradcheck(op, [x])


def test_unary_methods_match_functions(device):
    x = leaf((3,), device, positive=True)
    for name in ["exp", "log", "sqrt", "tanh", "sigmoid", "relu"]:
        np.testing.assert_array_equal(to_host(getattr(x, name)()), to_host(getattr(F, name)(x)))


def test_log_near_zero(device):
    x = mt.tensor([1e-8, 1e-4, 1.0], dtype="float64", device=device, requires_grad=True)
    np.testing.assert_allclose(to_host(F.log(x)), np.log([1e-8, 1e-4, 1.0]))
    # the gradient 1/x is large near zero: a relative tolerance still checks it exactly
    assert mt.gradcheck(F.log, [x], eps=1e-11, rtol=1e-4)


def test_sigmoid_is_stable_for_large_inputs(device):
    x = mt.tensor([-1000.0, 0.0, 1000.0], device=device)
    np.testing.assert_array_equal(to_host(F.sigmoid(x)), [0.0, 0.5, 1.0])


# ---------------------------------------------------------------- reductions
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), (-1, False),
                                           ((0, 2), False), ((0, 2), True)])
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reductions(device, name, axis, keepdims):
    x = leaf((3, 4, 5), device)
    out = getattr(F, name)(x, axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x.numpy(), axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(to_host(out), expected, rtol=1e-12)
    assert mt.gradcheck(lambda t: getattr(F, name)(t, axis=axis, keepdims=keepdims), [x])


def test_max_ties_share_the_gradient(device):
    x = mt.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], dtype="float64", device=device,
                  requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(to_host(x.grad), [[0, 0.5, 0.5], [1, 0, 0]])


# ---------------------------------------------------------------- shapes
def test_reshape_and_transpose(device):
    x = leaf((2, 3, 4), device)
    np.testing.assert_array_equal(to_host(x.reshape(4, -1)), x.numpy().reshape(4, 6))
    np.testing.assert_array_equal(to_host(x.transpose(2, 0, 1)), x.numpy().transpose(2, 0, 1))
    np.testing.assert_array_equal(to_host(x.T), x.numpy().T)
    np.testing.assert_array_equal(to_host(F.swapaxes(x, 0, 2)), x.numpy().swapaxes(0, 2))
    assert mt.gradcheck(lambda t: t.reshape(6, 4).T * mt.tensor(np.arange(24.).reshape(4, 6),
                                                                device=device), [x])
    assert mt.gradcheck(lambda t: t.permute(1, 2, 0).reshape(3, 8) ** 2, [x])


@pytest.mark.parametrize("index", [
    (slice(None), 1), (Ellipsis, slice(1, 3)), (0, slice(None, None, -1)), (None, 1),
    (1, 2), (np.int64(2),),                         # one element; a NumPy integer
    (np.array([0, 2, 0, 0]),),                     # repeated integer indices
    (slice(None), np.array([[1, 1], [0, 2]])),      # integer array on a later axis
])
def test_getitem(device, index):
    x = leaf((3, 4), device)
    idx = tuple(mt.backend.to_device(i, device) if isinstance(i, np.ndarray) else i for i in index)
    np.testing.assert_array_equal(to_host(x[idx]), x.numpy()[index])
    assert mt.gradcheck(lambda t: t[idx] * 1.5, [x])


def test_gradients_of_several_slices_of_one_tensor_add_up(device):
    # Each slice's gradient is added into one buffer in place, through a view of its
    # slot where indexing gives one (see IndexedGrad.add_to): overlapping slots add.
    x = leaf((3, 4), device)
    mask = mt.tensor(x.numpy() > 0, device=device)
    assert mt.gradcheck(lambda t: (t[:, 1] * t[:, 2]).sum() + (t[1, 2] * t[0]).sum()
                        + t[mask].sum() + (t[..., 1:3] ** 2).sum(), [x])


def test_getitem_repeated_indices_scatter_add(device):
    x = mt.tensor([1.0, 2.0, 3.0], dtype="float64", device=device, requires_grad=True)
    idx = mt.tensor([0, 0, 2, 0], device=device)
    x[idx].sum().backward()
    np.testing.assert_array_equal(to_host(x.grad), [3.0, 0.0, 1.0])


def test_getitem_boolean_mask(device):
    x = leaf((3, 4), device)
    mask = x.numpy() > 0
    m = mt.tensor(mask, device=device)
    np.testing.assert_array_equal(to_host(x[m]), x.numpy()[mask])
    assert mt.gradcheck(lambda t: t[m] ** 2, [x])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_and_stack(device, axis):
    a, b, c = leaf((2, 3), device), leaf((2, 3), device), leaf((2, 3), device)
    np.testing.assert_array_equal(to_host(F.concat([a, b, c], axis=axis)),
                                  np.concatenate([a.numpy(), b.numpy(), c.numpy()], axis=axis))
    np.testing.assert_array_equal(to_host(F.stack([a, b, c], axis=axis)),
                                  np.stack([a.numpy(), b.numpy(), c.numpy()], axis=axis))
    assert mt.gradcheck(lambda *t: F.concat(t, axis=axis) ** 2, [a, b, c])
    assert mt.gradcheck(lambda *t: F.stack(t, axis=axis) ** 2, [a, b, c])


def test_concat_different_lengths(device):
    a, b = leaf((2, 3), device), leaf((2, 5), device)
    assert F.concat([a, b], axis=1).shape == (2, 8)
    assert mt.gradcheck(lambda x, y: F.concat([x, y], axis=1).tanh(), [a, b])


def test_where_and_masked_fill(device):
    a, b = leaf((3, 4), device), leaf((4,), device)
    cond = mt.tensor(a.numpy() > 0, device=device)
    np.testing.assert_array_equal(to_host(F.where(cond, a, b)),
                                  np.where(a.numpy() > 0, a.numpy(), b.numpy()))
    assert mt.gradcheck(lambda x, y: F.where(cond, x, y) * 2, [a, b])
    filled = F.masked_fill(a, cond, -1e9)
    np.testing.assert_array_equal(to_host(filled), np.where(a.numpy() > 0, -1e9, a.numpy()))
    assert mt.gradcheck(lambda x: F.masked_fill(x, cond, 0.0) ** 2, [a])


def test_astype_keeps_gradient(device):
    x = leaf((3,), device)
    y = x.astype("float32")
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(to_host(x.grad), 2 * x.numpy(), rtol=1e-6)


# ---------------------------------------------------------------- matmul
MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                 ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((3, 4), (2, 4, 5))]


@pytest.mark.parametrize("shape_a,shape_b", MATMUL_SHAPES)
def test_matmul(device, shape_a, shape_b):
    a, b = leaf(shape_a, device), leaf(shape_b, device)
    out = a @ b
    np.testing.assert_allclose(to_host(out), np.matmul(a.numpy(), b.numpy()), rtol=1e-12)
    assert out.dtype == np.float64
    assert mt.gradcheck(F.matmul, [a, b])


def test_matmul_keeps_float32(device):
    a = mt.randn(2, 3, 4, device=device)
    b = mt.randn(4, 5, device=device)
    assert (a @ b).dtype == np.float32


# ---------------------------------------------------------------- fused nn ops
def test_softmax_matches_scipy(device):
    x = leaf((3, 5), device)
    np.testing.assert_allclose(to_host(F.softmax(x)), scipy.special.softmax(x.numpy(), axis=-1))
    np.testing.assert_allclose(to_host(F.softmax(x, axis=0)),
                               scipy.special.softmax(x.numpy(), axis=0))
    np.testing.assert_allclose(to_host(F.log_softmax(x)),
                               scipy.special.log_softmax(x.numpy(), axis=-1))
    assert mt.gradcheck(lambda t: F.softmax(t, axis=0), [x])
    assert mt.gradcheck(F.log_softmax, [x])


def test_softmax_of_large_logits(device):
    x = mt.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -1e4, -999.0]], dtype="float64",
                  device=device, requires_grad=True)
    probs = to_host(F.softmax(x))
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs, scipy.special.softmax(x.numpy(), axis=-1))
    logp = to_host(F.log_softmax(x))
    np.testing.assert_allclose(logp, scipy.special.log_softmax(x.numpy(), axis=-1))
    assert mt.gradcheck(F.softmax, [x])
    assert mt.gradcheck(F.log_softmax, [x])


def _reference_cross_entropy(logits, targets, ignore_index, smoothing):
    logp = scipy.special.log_softmax(logits, axis=1)
    valid = targets != ignore_index
    t = np.where(valid, targets, 0)
    nll = -np.take_along_axis(logp, t[:, None], axis=1)[:, 0]
    smooth = -logp.mean(axis=1)
    losses = ((1 - smoothing) * nll + smoothing * smooth) * valid
    return losses, valid


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(device, reduction, smoothing):
    logits = leaf((6, 5), device)
    targets_np = np.array([0, 4, 2, -100, 1, 4])
    targets = mt.tensor(targets_np, device=device)
    out = F.cross_entropy(logits, targets, label_smoothing=smoothing, reduction=reduction)
    losses, valid = _reference_cross_entropy(logits.numpy(), targets_np, -100, smoothing)
    expected = {"none": losses, "sum": losses.sum(), "mean": losses.sum() / valid.sum()}[reduction]
    np.testing.assert_allclose(to_host(out), expected, rtol=1e-12)
    assert mt.gradcheck(lambda x: F.cross_entropy(x, targets, label_smoothing=smoothing,
                                                  reduction=reduction), [logits])


def test_cross_entropy_with_class_axis_one(device):
    logits = leaf((2, 4, 3), device)   # (N, C, d1)
    targets_np = np.array([[0, 3, 1], [2, 2, -100]])
    targets = mt.tensor(targets_np, device=device)
    out = F.cross_entropy(logits, targets, ignore_index=-100)
    flat = logits.numpy().transpose(0, 2, 1).reshape(-1, 4)
    losses, valid = _reference_cross_entropy(flat, targets_np.reshape(-1), -100, 0.0)
    np.testing.assert_allclose(to_host(out), losses.sum() / valid.sum(), rtol=1e-12)
    assert mt.gradcheck(lambda x: F.cross_entropy(x, targets), [logits])


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(device, affine):
    x = leaf((2, 3, 4), device)
    w, b = (leaf((4,), device), leaf((4,), device)) if affine else (None, None)
    out = F.layer_norm(x, 4, w, b, eps=1e-5)
    xn = x.numpy()
    expected = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
    if affine:
        expected = expected * w.numpy() + b.numpy()
    np.testing.assert_allclose(to_host(out), expected, rtol=1e-10)
    inputs = [x, w, b] if affine else [x]
    assert mt.gradcheck(lambda *t: F.layer_norm(t[0], 4, *t[1:]), inputs)


def test_layer_norm_over_two_axes(device):
    x, w = leaf((2, 3, 4), device), leaf((3, 4), device)
    out = F.layer_norm(x, (3, 4), w)
    xn = x.numpy().reshape(2, 12)
    expected = ((xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5))
    np.testing.assert_allclose(to_host(out), expected.reshape(2, 3, 4) * w.numpy(), rtol=1e-10)
    assert mt.gradcheck(lambda a, b: F.layer_norm(a, (3, 4), b), [x, w])


def test_embedding(device):
    weight = leaf((5, 3), device)
    idx = mt.tensor([[1, 4, 1], [0, 1, 2]], device=device)
    out = F.embedding(idx, weight)
    np.testing.assert_array_equal(to_host(out), weight.numpy()[to_host(idx)])
    assert mt.gradcheck(lambda w: F.embedding(idx, w), [weight])


def test_embedding_padding_row_gets_no_gradient(device):
    weight = leaf((4, 2), device)
    idx = mt.tensor([0, 1, 0, 3], device=device)
    F.embedding(idx, weight, padding_idx=0).sum().backward()
    np.testing.assert_array_equal(to_host(weight.grad), [[0, 0], [1, 1], [0, 0], [1, 1]])


def test_dropout(device):
    x = mt.ones(1000, 10, device=device, dtype="float64", requires_grad=True)
    y = F.dropout(x, p=0.25)
    values = np.unique(to_host(y))
    np.testing.assert_allclose(values, [0.0, 1 / 0.75])
    kept = (to_host(y) != 0).mean()
    assert 0.72 < kept < 0.78
    y.sum().backward()
    np.testing.assert_array_equal(to_host(x.grad), to_host(y))  # same mask, same scale
    assert F.dropout(x, p=0.25, training=False) is x


def test_mse_loss(device):
    a, b = leaf((3, 2), device), leaf((3, 2), device)
    np.testing.assert_allclose(to_host(F.mse_loss(a, b)), ((a.numpy() - b.numpy()) ** 2).mean())
    assert mt.gradcheck(F.mse_loss, [a, b])


def test_ops_keep_float32(device):
    x = mt.randn(2, 3, device=device)
    for out in [x + 1.5, x * 2, x / 3, x ** 2, x.exp(), F.gelu(x), F.softmax(x), x.mean(),
                F.layer_norm(x, 3), F.cross_entropy(x, mt.tensor([0, 2], device=device))]:
        assert out.dtype == np.float32, out

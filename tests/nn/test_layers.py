"""Linear, Embedding, LayerNorm, Dropout and the loss modules."""
import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from tests.conftest import to_host


def check_module(module, *inputs):
    """Float64 gradient check of ``module`` w.r.t. its inputs and all its parameters."""
    params = list(module.parameters())
    n = len(inputs)
    return mt.gradcheck(lambda *args: module(*args[:n]), list(inputs) + params)


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 3, 5)])
def test_linear_shapes_and_formula(device, shape):
    layer = nn.Linear(5, 4).to(device)
    x = mt.randn(*shape, device=device)
    y = layer(x)
    assert y.shape == shape[:-1] + (4,)
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(to_host(y), expected, rtol=1e-5, atol=1e-6)


def test_linear_layout_and_default_init():
    layer = nn.Linear(16, 3)
    assert layer.weight.shape == (3, 16) and layer.bias.shape == (3,)
    bound = 1 / np.sqrt(16)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    assert layer.weight.dtype == np.float32
    assert nn.Linear(3, 2, bias=False).bias is None
    assert [n for n, _ in nn.Linear(3, 2, bias=False).named_parameters()] == ["weight"]


def test_linear_gradcheck(device):
    layer = nn.Linear(3, 2).to(device).double()
    x = mt.randn(2, 4, 3, dtype="float64", device=device, requires_grad=True)
    assert check_module(layer, x)


def test_linear_rejects_wrong_input_size():
    with pytest.raises(ValueError, match=r"Linear: input of shape \(2, 4\).*in_features=3"):
        nn.Linear(3, 2)(mt.randn(2, 4))


def test_embedding_lookup_and_padding(device):
    emb = nn.Embedding(6, 3, padding_idx=0).to(device)
    assert emb.weight.shape == (6, 3)
    np.testing.assert_array_equal(to_host(emb.weight)[0], 0)
    ids = mt.tensor([[0, 2, 2], [5, 1, 0]], device=device)
    out = emb(ids)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(to_host(out), to_host(emb.weight)[to_host(ids)])
    out.sum().backward()
    grad = to_host(emb.weight.grad)
    np.testing.assert_array_equal(grad[0], 0)          # padding row learns nothing
    np.testing.assert_array_equal(grad[2], 2)          # used twice
    np.testing.assert_array_equal(grad[3], 0)          # unused


def test_embedding_gradcheck(device):
    emb = nn.Embedding(4, 3).to(device).double()
    ids = mt.tensor([[1, 3], [1, 0]], device=device)
    assert mt.gradcheck(lambda w: emb(ids), [emb.weight])


def test_embedding_init_is_standard_normal():
    w = nn.Embedding(1000, 50).weight.numpy()
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02


def test_layer_norm_matches_formula_and_gradcheck(device):
    norm = nn.LayerNorm(4).to(device)
    x = mt.randn(2, 3, 4, device=device)
    y = to_host(norm(x))
    xn = x.numpy()
    ref = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    assert [n for n, _ in norm.named_parameters()] == ["weight", "bias"]
    norm = nn.LayerNorm((2, 3)).to(device).double()
    norm.weight.data += mt.randn(2, 3, dtype="float64", device=device).data  # not just ones
    x = mt.randn(2, 2, 3, dtype="float64", device=device, requires_grad=True)
    assert check_module(norm, x)


def test_dropout_train_and_eval(device):
    drop = nn.Dropout(0.25)
    x = mt.ones(4000, device=device)
    y = to_host(drop(x))
    assert 0.2 < (y == 0).mean() < 0.3
    np.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_losses(device):
    logits = mt.randn(4, 5, device=device, requires_grad=True)
    targets = mt.tensor([1, 0, -100, 4], device=device)
    loss = nn.CrossEntropyLoss()(logits, targets)
    ln = logits.numpy()
    logp = ln - np.log(np.exp(ln).sum(-1, keepdims=True))
    expected = -(logp[0, 1] + logp[1, 0] + logp[3, 4]) / 3
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    a, b = mt.randn(3, 2, device=device), mt.randn(3, 2, device=device)
    np.testing.assert_allclose(nn.MSELoss()(a, b).item(), ((a.numpy() - b.numpy()) ** 2).mean(),
                               rtol=1e-5)
    assert nn.MSELoss(reduction="none")(a, b).shape == (3, 2)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")

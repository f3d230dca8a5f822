"""RNNCell, LSTMCell, RNN, LSTM: PyTorch's layouts, shapes, the equations, gradients."""
import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from tests.conftest import to_host
from tests.nn.test_layers import check_module


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference_lstm(layer, x, h, c):
    """One-layer LSTM in plain NumPy, time-major x (seq, batch, input)."""
    sd = {k: mt.backend.to_numpy(v) for k, v in layer.state_dict().items()}
    w, u = sd["weight_ih_l0"], sd["weight_hh_l0"]
    b = sd["bias_ih_l0"] + sd["bias_hh_l0"]
    outputs = []
    for t in range(x.shape[0]):
        i, f, g, o = np.split(x[t] @ w.T + h @ u.T + b, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs), h, c


def test_parameter_names_and_shapes_follow_pytorch():
    lstm = nn.LSTM(3, 5, num_layers=2)
    assert {n: p.shape for n, p in lstm.named_parameters()} == {
        "weight_ih_l0": (20, 3), "weight_hh_l0": (20, 5), "bias_ih_l0": (20,), "bias_hh_l0": (20,),
        "weight_ih_l1": (20, 5), "weight_hh_l1": (20, 5), "bias_ih_l1": (20,), "bias_hh_l1": (20,)}
    rnn = nn.RNN(3, 5, bias=False)
    assert [n for n, _ in rnn.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    bound = 1 / np.sqrt(5)
    assert all(np.abs(p.numpy()).max() <= bound for p in lstm.parameters())
    cell = nn.LSTMCell(3, 5)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert cell.weight_ih.shape == (20, 3)


def test_lstm_matches_the_equations(device):
    lstm = nn.LSTM(3, 4).to(device)
    x, h0, c0 = mt.randn(6, 2, 3), mt.randn(1, 2, 4), mt.randn(1, 2, 4)
    out, (h, c) = lstm(x.to(device), (h0.to(device), c0.to(device)))
    ref_out, ref_h, ref_c = reference_lstm(lstm, x.numpy(), h0.numpy()[0], c0.numpy()[0])
    np.testing.assert_allclose(to_host(out), ref_out, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(to_host(h)[0], ref_h, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(to_host(c)[0], ref_c, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("nonlinearity,act", [("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0))])
def test_rnn_matches_the_equations(device, nonlinearity, act):
    rnn = nn.RNN(3, 4, nonlinearity=nonlinearity).to(device)
    x = mt.randn(5, 2, 3)
    out, h = rnn(x.to(device))
    sd = {k: mt.backend.to_numpy(v) for k, v in rnn.state_dict().items()}
    hidden, outs = np.zeros((2, 4)), []
    for t in range(5):
        hidden = act(x.numpy()[t] @ sd["weight_ih_l0"].T + sd["bias_ih_l0"]
                     + hidden @ sd["weight_hh_l0"].T + sd["bias_hh_l0"])
        outs.append(hidden)
    np.testing.assert_allclose(to_host(out), np.stack(outs), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(to_host(h)[0], hidden, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_shapes_of_every_signature(device, kind):
    layer = getattr(nn, kind)(3, 4, num_layers=2).to(device)
    first = getattr(nn, kind)(3, 4, num_layers=2, batch_first=True).to(device)
    first.load_state_dict(layer.state_dict())
    x = mt.randn(7, 2, 3, device=device)                 # (seq, batch, input)
    out, state = layer(x)
    h = state if kind == "RNN" else state[0]
    assert out.shape == (7, 2, 4) and h.shape == (2, 2, 4)
    if kind == "LSTM":
        assert state[1].shape == (2, 2, 4)
    out_bf, _ = first(x.transpose(1, 0, 2))             # (batch, seq, input)
    assert out_bf.shape == (2, 7, 4)
    np.testing.assert_allclose(to_host(out_bf), to_host(out).transpose(1, 0, 2), rtol=1e-6)
    out_u, state_u = layer(x[:, 0])                      # unbatched (seq, input)
    h_u = state_u if kind == "RNN" else state_u[0]
    assert out_u.shape == (7, 4) and h_u.shape == (2, 4)
    np.testing.assert_allclose(to_host(out_u), to_host(out)[:, 0], rtol=1e-5, atol=1e-6)
    # the final hidden state of the top layer is the last output
    np.testing.assert_allclose(to_host(h)[-1], to_host(out)[-1], rtol=1e-6)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_initial_state_is_used(device, kind):
    layer = getattr(nn, kind)(3, 4).to(device)
    x = mt.randn(4, 2, 3, device=device)
    h0 = mt.randn(1, 2, 4, device=device)
    state = h0 if kind == "RNN" else (h0, mt.zeros(1, 2, 4, device=device))
    with_state, _ = layer(x, state)
    without, _ = layer(x)
    assert not np.allclose(to_host(with_state), to_host(without))
    zero_state = mt.zeros(1, 2, 4, device=device)
    zero_state = zero_state if kind == "RNN" else (zero_state, zero_state)
    np.testing.assert_allclose(to_host(layer(x, zero_state)[0]), to_host(without), rtol=1e-6)


def test_cells_agree_with_one_layer_step(device):
    lstm, cell = nn.LSTM(3, 4).to(device), nn.LSTMCell(3, 4).to(device)
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    x = mt.randn(3, 2, 3, device=device)
    out, (h_n, c_n) = lstm(x)
    h = c = None
    for t in range(3):
        h, c = cell(x[t], None if h is None else (h, c))
    np.testing.assert_allclose(to_host(h), to_host(h_n)[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(to_host(c), to_host(c_n)[0], rtol=1e-5, atol=1e-7)
    rnn, rcell = nn.RNN(3, 4).to(device), nn.RNNCell(3, 4).to(device)
    rcell.load_state_dict({k[:-3]: v for k, v in rnn.state_dict().items()})
    out, h_n = rnn(x)
    h = None
    for t in range(3):
        h = rcell(x[t], h)
    np.testing.assert_allclose(to_host(h), to_host(h_n)[0], rtol=1e-5, atol=1e-7)
    assert rcell(x[0, 0]).shape == (4,) and cell(x[0, 0])[1].shape == (4,)


def test_rnn_gradcheck_layers_and_initial_state(device):
    rnn = nn.RNN(2, 3, num_layers=2).to(device).double()
    x = mt.randn(4, 2, 2, dtype="float64", device=device, requires_grad=True)
    h0 = mt.randn(2, 2, 3, dtype="float64", device=device, requires_grad=True)
    assert check_module(rnn, x, h0)
    relu = nn.RNN(2, 3, nonlinearity="relu", bias=False, batch_first=True).to(device).double()
    assert check_module(relu, mt.randn(2, 3, 2, dtype="float64", device=device, requires_grad=True))


def test_lstm_gradcheck_layers_and_initial_state(device):
    lstm = nn.LSTM(2, 3, num_layers=2).to(device).double()
    x = mt.randn(3, 2, 2, dtype="float64", device=device, requires_grad=True)
    h0 = mt.randn(2, 2, 3, dtype="float64", device=device, requires_grad=True)
    c0 = mt.randn(2, 2, 3, dtype="float64", device=device, requires_grad=True)
    params = list(lstm.parameters())
    assert mt.gradcheck(lambda x, h, c, *p: lstm(x, (h, c)), [x, h0, c0] + params)
    plain = nn.LSTM(2, 3, batch_first=True).to(device).double()
    assert check_module(plain, mt.randn(2, 3, 2, dtype="float64", device=device,
                                        requires_grad=True))


def test_cells_gradcheck(device):
    x = mt.randn(2, 3, dtype="float64", device=device, requires_grad=True)
    h = mt.randn(2, 2, dtype="float64", device=device, requires_grad=True)
    c = mt.randn(2, 2, dtype="float64", device=device, requires_grad=True)
    cell = nn.LSTMCell(3, 2).to(device).double()
    assert mt.gradcheck(lambda x, h, c, *p: cell(x, (h, c)), [x, h, c] + list(cell.parameters()))
    rcell = nn.RNNCell(3, 2).to(device).double()
    assert check_module(rcell, x, h)


def test_dropout_between_layers_only_in_training(device):
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5).to(device)
    x = mt.randn(5, 2, 3, device=device)
    a, b = lstm(x)[0], lstm(x)[0]
    assert not np.allclose(to_host(a), to_host(b))
    lstm.eval()
    np.testing.assert_array_equal(to_host(lstm(x)[0]), to_host(lstm(x)[0]))


def test_errors_name_the_argument_before_computing():
    lstm = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM: input has shape \(5, 2, 6\).*ending in 3"):
        lstm(mt.randn(5, 2, 6))
    with pytest.raises(ValueError, match=r"h0.*shape \(2, 2, 5\), expected \(2, 2, 4\)"):
        lstm(mt.randn(5, 2, 3), (mt.randn(2, 2, 5), mt.randn(2, 2, 4)))
    with pytest.raises(ValueError, match=r"c0.*shape \(1, 2, 4\), expected \(2, 2, 4\)"):
        lstm(mt.randn(5, 2, 3), (mt.randn(2, 2, 4), mt.randn(1, 2, 4)))
    with pytest.raises(ValueError, match=r"RNN: h0 has shape \(1, 3, 4\), expected \(1, 2, 4\)"):
        nn.RNN(3, 4)(mt.randn(5, 2, 3), mt.randn(1, 3, 4))
    with pytest.raises(ValueError, match="hx"):
        nn.RNNCell(3, 4)(mt.randn(2, 3), mt.randn(2, 5))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="bidirectional"):
        nn.LSTM(3, 4, bidirectional=True)


def test_repr():
    assert repr(nn.LSTM(3, 4, num_layers=2, batch_first=True)) == \
        "LSTM(3, 4, num_layers=2, batch_first=True)"


def test_fused_lstm_cell_update_matches_the_equations_and_gradchecks(device):
    """The fused op computes exactly the textbook gate equations, and its backward is right."""
    from minitransformer.nn.recurrent import LSTMCellUpdate
    gates = mt.randn(3, 8, dtype="float64", device=device, requires_grad=True)
    cell = mt.randn(3, 2, dtype="float64", device=device, requires_grad=True)
    both = LSTMCellUpdate.apply(gates, cell)
    i, f = gates[:, 0:2].sigmoid(), gates[:, 2:4].sigmoid()
    g, o = gates[:, 4:6].tanh(), gates[:, 6:8].sigmoid()
    new_cell = f * cell + i * g
    np.testing.assert_allclose(both[1].numpy(), new_cell.numpy(), rtol=1e-12)
    np.testing.assert_allclose(both[0].numpy(), (o * new_cell.tanh()).numpy(), rtol=1e-12)
    assert mt.gradcheck(LSTMCellUpdate.apply, [gates, cell])

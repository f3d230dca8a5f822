"""Blockwise (memory-efficient) attention: the same numbers as the plain version, in blocks."""
import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from tests.conftest import to_host


def random_mask(shape, device, hidden_rows=()):
    """A boolean mask, True (may not attend) with probability 0.4, some rows fully hidden."""
    mask = np.random.rand(*shape) < 0.4
    for row in hidden_rows:
        mask[..., row, :] = True
    return mt.tensor(mask, device=device)


def outputs_and_grads(attend, q, k, v, grad):
    """The output of ``attend(q, k, v)`` and the gradients of q, k and v for ``grad``."""
    for t in (q, k, v):
        t.grad = None
    out = attend(q, k, v)
    out.backward(grad)
    return [to_host(out)] + [to_host(t.grad) for t in (q, k, v)]


MASKS = ["none", "causal", "boolean", "boolean+causal", "float"]


def mask_arguments(kind, L, S, device):
    if kind == "none":
        return {}
    if kind == "causal":
        return {"is_causal": True}
    if kind == "float":  # added to the scores; -inf hides
        bias = np.random.randn(1, L, S)
        bias[np.random.rand(1, L, S) < 0.3] = -np.inf
        return {"attn_mask": mt.tensor(bias, device=device)}
    return {"attn_mask": random_mask((L, S), device, hidden_rows=[1]),
            "is_causal": kind == "boolean+causal"}


@pytest.mark.parametrize("kind", MASKS)
def test_gradcheck_block_not_dividing_n(device, kind):
    # n = 7 keys in blocks of 3: blocks of 3, 3 and 1.
    args = dict(dtype="float64", device=device, requires_grad=True)
    q, k, v = mt.randn(2, 7, 4, **args), mt.randn(2, 7, 4, **args), mt.randn(2, 7, 3, **args)
    masks = mask_arguments(kind, 7, 7, device)
    assert mt.gradcheck(lambda q, k, v: nn.blockwise_attention(q, k, v, block_size=3, **masks),
                        [q, k, v])


@pytest.mark.parametrize("dtype, rtol, atol", [("float32", 1e-5, 1e-6), ("float64", 1e-10, 1e-12)])
@pytest.mark.parametrize("kind", MASKS)
def test_equals_plain_attention_outputs_and_gradients(device, dtype, rtol, atol, kind):
    L, S = 9, 11   # more keys than queries; blocks of 4 leave a remainder of 3
    q = mt.randn(2, 3, L, 8, dtype=dtype, device=device, requires_grad=True)
    k = mt.randn(2, 3, S, 8, dtype=dtype, device=device, requires_grad=True)
    v = mt.randn(2, 3, S, 5, dtype=dtype, device=device, requires_grad=True)
    grad = mt.randn(2, 3, L, 5, dtype=dtype, device=device)
    masks = mask_arguments(kind, L, S, device)
    plain = outputs_and_grads(lambda *x: nn.scaled_dot_product_attention(*x, **masks)[0],
                              q, k, v, grad)
    for block_size in (1, 4, S, 64):
        blockwise = outputs_and_grads(
            lambda *x: nn.blockwise_attention(*x, block_size=block_size, **masks), q, k, v, grad)
        for name, got, expected in zip(["output", "dq", "dk", "dv"], blockwise, plain):
            assert got.dtype == expected.dtype == np.dtype(dtype)
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol,
                                       err_msg=f"{name}, block_size={block_size}")


def test_broadcast_leading_axes_and_scale(device):
    # One key/value sequence shared by every head, a per-batch padding mask (N, 1, 1, S).
    q = mt.randn(2, 4, 5, 6, dtype="float64", device=device, requires_grad=True)
    k = mt.randn(2, 1, 7, 6, dtype="float64", device=device, requires_grad=True)
    v = mt.randn(7, 3, dtype="float64", device=device, requires_grad=True)
    padding = mt.tensor(np.array([[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1]], bool)
                        .reshape(2, 1, 1, 7), device=device)
    grad = mt.randn(2, 4, 5, 3, dtype="float64", device=device)
    plain = outputs_and_grads(lambda *x: nn.scaled_dot_product_attention(
        *x, attn_mask=padding, scale=0.3)[0], q, k, v, grad)
    blockwise = outputs_and_grads(lambda *x: nn.blockwise_attention(
        *x, attn_mask=padding, scale=0.3, block_size=3), q, k, v, grad)
    assert [a.shape for a in blockwise] == [(2, 4, 5, 3), (2, 4, 5, 6), (2, 1, 7, 6), (7, 3)]
    for got, expected in zip(blockwise, plain):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_fully_masked_rows_give_zero_output_and_finite_gradients(device):
    q, k, v = (mt.randn(1, 4, 3, device=device, requires_grad=True) for _ in range(3))
    mask = random_mask((4, 4), device, hidden_rows=[0, 2])
    with np.errstate(all="raise"):   # no 0/0, no log(0), no inf - inf along the way
        out = nn.blockwise_attention(q, k, v, attn_mask=mask, block_size=3)
        out.sum().backward()
    np.testing.assert_array_equal(to_host(out)[0, [0, 2]], 0)
    assert all(np.isfinite(to_host(t.grad)).all() for t in (q, k, v))
    np.testing.assert_array_equal(to_host(q.grad)[0, [0, 2]], 0)


def test_large_scores_do_not_overflow(device):
    # Scores of several hundred: exp would overflow float32 without the running max.
    q, k, v = (mt.randn(1, 6, 4, device=device) * 30 for _ in range(3))
    out = nn.blockwise_attention(q, k, v, block_size=2)
    expected, _ = nn.scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(to_host(out), to_host(expected), rtol=1e-4, atol=1e-4)


def test_bad_arguments_are_named():
    q, k, v = mt.randn(2, 3, 4), mt.randn(2, 5, 4), mt.randn(2, 5, 6)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"block_size must be an int >= 1, got {bad!r}"):
            nn.blockwise_attention(q, k, v, block_size=bad)
    with pytest.raises(ValueError, match=r"attn_mask has shape \(3, 4\), expected .*\(\.\.\., 3, 5\)"):
        nn.blockwise_attention(q, k, v, attn_mask=mt.zeros(3, 4, dtype=bool))
    with pytest.raises(ValueError, match=r"attn_mask has shape \(3, 3, 5\)"):
        nn.blockwise_attention(q, k, v, attn_mask=mt.zeros(3, 3, 5, dtype=bool))
    with pytest.raises(ValueError, match=r"value has shape \(2, 4, 6\)"):
        nn.blockwise_attention(q, k, mt.randn(2, 4, 6))
    with pytest.raises(ValueError, match=r"key has shape \(2, 5, 3\)"):
        nn.blockwise_attention(q, mt.randn(2, 5, 3), v)
    with pytest.raises(TypeError, match="attn_mask must be boolean"):
        nn.blockwise_attention(q, k, v, attn_mask=mt.zeros(3, 5, dtype="int64"))


# ---------------------------------------------------------------- MultiheadAttention
@pytest.mark.parametrize("masks", ["none", "padding+causal"])
def test_mha_blockwise_equals_standard(device, masks):
    standard = nn.MultiheadAttention(8, 2, batch_first=True).to(device)
    blockwise = nn.MultiheadAttention(8, 2, batch_first=True, attention="blockwise",
                                      block_size=2).to(device)
    blockwise.load_state_dict(standard.state_dict())
    x = mt.randn(2, 5, 8, device=device, requires_grad=True)
    kwargs = {}
    if masks != "none":
        padding = mt.tensor([[False] * 5, [False, False, False, True, True]], device=device)
        kwargs = dict(key_padding_mask=padding, is_causal=True)
    grad = mt.randn(2, 5, 8, device=device)
    results = []
    for layer in (standard, blockwise):
        x.grad = None
        layer.zero_grad()
        out, _ = layer(x, x, x, **kwargs)
        out.backward(grad)
        results.append([to_host(out), to_host(x.grad)] +
                       [to_host(p.grad) for p in layer.parameters()])
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_mha_blockwise_returns_no_weights_and_refuses_dropout():
    mha = nn.MultiheadAttention(8, 2, dropout=0.1, attention="blockwise")
    q = mt.randn(3, 2, 8)
    with pytest.raises(RuntimeError, match="no dropout on the attention weights"):
        mha(q, q, q)
    mha.eval()                      # dropout is off in evaluation: fine
    out, weights = mha(q, q, q, need_weights=True)
    assert out.shape == (3, 2, 8) and weights is None
    assert "attention='blockwise', block_size=128" in repr(mha)
    with pytest.raises(ValueError, match="attention must be 'standard' or 'blockwise'"):
        nn.MultiheadAttention(8, 2, attention="flash")
    with pytest.raises(ValueError, match="block_size must be an int >= 1, got 0"):
        nn.MultiheadAttention(8, 2, attention="blockwise", block_size=0)


def test_transformer_layers_forward_the_choice():
    enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, attention="blockwise", block_size=4)
    dec = nn.TransformerDecoderLayer(8, 2, 16, attention="blockwise")
    assert enc.self_attn.attention == "blockwise" and enc.self_attn.block_size == 4
    assert dec.self_attn.attention == dec.multihead_attn.attention == "blockwise"
    standard = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    standard.load_state_dict(enc.state_dict())
    x = mt.randn(6, 2, 8)
    np.testing.assert_allclose(to_host(enc(x, is_causal=True)),
                               to_host(standard(x, is_causal=True)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the memory benchmark
def test_memory_benchmark_blockwise_stays_below_standard(tmp_path):
    from minitransformer.benchmarks import attention_memory
    rows = attention_memory.run("cpu", lengths=[64, 256], heads=2, head_dim=8, block_size=32,
                                quiet=True)
    peak = {(r["variant"], r["n"]): r["peak_mib"] for r in rows}
    assert all(r["status"] == "ok" for r in rows) and len(rows) == 4
    # At n = 256 the standard version holds (2, 256, 256) matrices, the blockwise (2, 256, 32).
    assert peak["blockwise", 256] < peak["standard", 256] / 2
    fitted = attention_memory.slopes(rows)
    assert fitted["standard"] > fitted["blockwise"]
    # A budget below the next point's expected peak skips it instead of running it.
    rows = attention_memory.run("cpu", lengths=[64, 128], heads=2, head_dim=8,
                                memory_budget_gib=1e-4, quiet=True)
    assert rows[1]["status"].startswith("skipped: expected")

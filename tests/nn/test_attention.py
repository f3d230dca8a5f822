"""Scaled dot-product attention and MultiheadAttention: formula, masks, shapes, gradients."""
import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from tests.conftest import to_host


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def reference_mha(mha, q, k, v):
    """PyTorch's multi-head attention in NumPy, batch-first (N, L, E), no masks."""
    sd = {name: mt.backend.to_numpy(a) for name, a in mha.state_dict().items()}
    E, h = mha.embed_dim, mha.num_heads
    w, b = sd["in_proj_weight"], sd["in_proj_bias"]
    heads = lambda x: x.reshape(x.shape[0], x.shape[1], h, E // h).transpose(0, 2, 1, 3)
    Q, K, V = (heads(x @ w[i * E:(i + 1) * E].T + b[i * E:(i + 1) * E]) for i, x in enumerate((q, k, v)))
    weights = softmax(Q @ K.transpose(0, 1, 3, 2) / np.sqrt(E // h))
    ctx = (weights @ V).transpose(0, 2, 1, 3).reshape(q.shape[0], q.shape[1], E)
    return ctx @ sd["out_proj.weight"].T + sd["out_proj.bias"], weights.mean(1)


def test_sdpa_matches_formula(device):
    q, k, v = mt.randn(2, 3, 4), mt.randn(2, 5, 4), mt.randn(2, 5, 6)
    out, weights = nn.scaled_dot_product_attention(q.to(device), k.to(device), v.to(device))
    ref_w = softmax(q.numpy() @ k.numpy().transpose(0, 2, 1) / 2.0)
    np.testing.assert_allclose(to_host(weights), ref_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_host(out), ref_w @ v.numpy(), rtol=1e-5, atol=1e-6)
    assert out.shape == (2, 3, 6) and weights.shape == (2, 3, 5)


def test_masked_keys_get_exactly_zero_weight(device):
    q, k, v = (mt.randn(2, 4, 3, device=device) for _ in range(3))
    mask = mt.tensor([[False, False, True, True]] * 4, device=device)   # may not attend to keys 2, 3
    _, weights = nn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    w = to_host(weights)
    assert (w[..., 2:] == 0).all()
    np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-6)


def test_causal_mask_hides_the_future(device):
    q, k, v = (mt.randn(1, 4, 3, device=device) for _ in range(3))
    out, weights = nn.scaled_dot_product_attention(q, k, v, is_causal=True)
    w = to_host(weights)[0]
    assert (w[np.triu_indices(4, 1)] == 0).all()
    np.testing.assert_allclose(w[0, 0], 1, rtol=1e-6)
    np.testing.assert_array_equal(to_host(nn.causal_mask(3)), np.triu(np.ones((3, 3), bool), 1))
    # the same as an explicit boolean mask, and as PyTorch's float -inf mask
    explicit = nn.scaled_dot_product_attention(q, k, v, attn_mask=nn.causal_mask(4, device=device))
    float_mask = mt.tensor(np.where(np.triu(np.ones((4, 4)), 1) > 0, -np.inf, 0).astype(np.float32),
                           device=device)
    additive = nn.scaled_dot_product_attention(q, k, v, attn_mask=float_mask)
    for other in (explicit, additive):
        np.testing.assert_allclose(to_host(other[1]), to_host(weights), rtol=1e-6)


def test_fully_masked_row_gives_zeros_not_nan(device):
    q, k, v = (mt.randn(1, 2, 3, device=device, requires_grad=True) for _ in range(3))
    mask = mt.tensor([[True, True], [False, True]], device=device)
    out, weights = nn.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert np.isfinite(to_host(out)).all()
    np.testing.assert_array_equal(to_host(weights)[0, 0], 0)
    np.testing.assert_array_equal(to_host(out)[0, 0], 0)
    out.sum().backward()
    assert all(np.isfinite(to_host(t.grad)).all() for t in (q, k, v))


def test_sdpa_gradcheck_with_masks(device):
    shape = dict(dtype="float64", device=device, requires_grad=True)
    q, k, v = mt.randn(2, 3, 2, **shape), mt.randn(2, 4, 2, **shape), mt.randn(2, 4, 3, **shape)
    mask = mt.tensor([[False, False, False, True], [False, True, False, False],
                      [True, True, True, True]], device=device)
    assert mt.gradcheck(lambda q, k, v: nn.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                        [q, k, v])
    q4 = mt.randn(2, 4, 2, **shape)
    assert mt.gradcheck(lambda q, k, v: nn.scaled_dot_product_attention(q, k, v, is_causal=True),
                        [q4, k, v])


def test_sdpa_rejects_bad_shapes():
    q, k, v = mt.randn(2, 3, 4), mt.randn(2, 5, 4), mt.randn(2, 5, 6)
    with pytest.raises(ValueError, match=r"attn_mask has shape \(3, 4\)"):
        nn.scaled_dot_product_attention(q, k, v, attn_mask=mt.zeros(3, 4, dtype=bool))
    with pytest.raises(ValueError, match=r"value has shape \(2, 4, 6\)"):
        nn.scaled_dot_product_attention(q, k, mt.randn(2, 4, 6))
    with pytest.raises(ValueError, match=r"key has shape \(2, 5, 3\)"):
        nn.scaled_dot_product_attention(q, mt.randn(2, 5, 3), v)
    with pytest.raises(TypeError, match="attn_mask must be boolean"):
        nn.scaled_dot_product_attention(q, k, v, attn_mask=mt.zeros(3, 5, dtype="int64"))


# ---------------------------------------------------------------- MultiheadAttention
def test_mha_parameters_follow_pytorch():
    mha = nn.MultiheadAttention(8, 2)
    assert {n: p.shape for n, p in mha.named_parameters()} == {
        "in_proj_weight": (24, 8), "in_proj_bias": (24,), "out_proj.weight": (8, 8),
        "out_proj.bias": (8,)}
    assert (mha.in_proj_bias.numpy() == 0).all() and (mha.out_proj.bias.numpy() == 0).all()
    assert np.abs(mha.in_proj_weight.numpy()).max() <= np.sqrt(6 / 32)
    assert [n for n, _ in nn.MultiheadAttention(8, 2, bias=False).named_parameters()] == \
        ["in_proj_weight", "out_proj.weight"]


@pytest.mark.parametrize("mode", ["self", "shared_kv", "separate"])
def test_mha_matches_reference(device, mode):
    mha = nn.MultiheadAttention(8, 2, batch_first=True).to(device)
    x = mt.randn(2, 3, 8, device=device)
    mem, val = mt.randn(2, 5, 8, device=device), mt.randn(2, 5, 8, device=device)
    q, k, v = {"self": (x, x, x), "shared_kv": (x, mem, mem), "separate": (x, mem, val)}[mode]
    out, weights = mha(q, k, v)
    ref_out, ref_w = reference_mha(mha, *(to_host(t) for t in (q, k, v)))
    np.testing.assert_allclose(to_host(out), ref_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_host(weights), ref_w, rtol=1e-4, atol=1e-6)


def test_mha_shapes_of_every_layout(device):
    mha = nn.MultiheadAttention(8, 4).to(device)            # (seq, batch, E)
    first = nn.MultiheadAttention(8, 4, batch_first=True).to(device)
    first.load_state_dict(mha.state_dict())
    q, kv = mt.randn(3, 2, 8, device=device), mt.randn(5, 2, 8, device=device)
    out, w = mha(q, kv, kv)
    assert out.shape == (3, 2, 8) and w.shape == (2, 3, 5)
    out_bf, w_bf = first(q.transpose(1, 0, 2), kv.transpose(1, 0, 2), kv.transpose(1, 0, 2))
    np.testing.assert_allclose(to_host(out_bf), to_host(out).transpose(1, 0, 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_host(w_bf), to_host(w), rtol=1e-5)
    out_u, w_u = mha(q[:, 0], kv[:, 0], kv[:, 0])            # unbatched
    assert out_u.shape == (3, 8) and w_u.shape == (3, 5)
    np.testing.assert_allclose(to_host(out_u), to_host(out)[:, 0], rtol=1e-5, atol=1e-6)
    _, per_head = mha(q, kv, kv, average_attn_weights=False)
    assert per_head.shape == (2, 4, 3, 5)
    assert mha(q, kv, kv, need_weights=False)[1] is None


def test_mha_key_padding_and_attn_mask(device):
    mha = nn.MultiheadAttention(4, 2, batch_first=True).to(device)
    x = mt.randn(2, 4, 4, device=device)
    padding = mt.tensor([[False, False, False, True], [False, False, True, True]], device=device)
    out, w = mha(x, x, x, key_padding_mask=padding, average_attn_weights=False)
    w = to_host(w)
    assert (w[0, :, :, 3] == 0).all() and (w[1, :, :, 2:] == 0).all()
    # padded keys change nothing: dropping them gives the same outputs for batch 1
    out_short, _ = mha(x[1:, :2], x[1:, :2], x[1:, :2])
    np.testing.assert_allclose(to_host(out)[1, :2], to_host(out_short)[0], rtol=1e-5, atol=1e-6)
    # combined with a causal attn_mask, and with a per-head mask of shape (N·heads, L, S)
    _, w = mha(x, x, x, key_padding_mask=padding, attn_mask=nn.causal_mask(4, device=device))
    w = to_host(w)
    assert (w[:, np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]] == 0).all()
    assert (w[1, :, 2:] == 0).all()
    per_head = mt.tensor(np.random.rand(4, 4, 4) > 0.5, device=device)
    _, w = mha(x, x, x, attn_mask=per_head, average_attn_weights=False)
    assert (to_host(w)[to_host(per_head).reshape(2, 2, 4, 4)] == 0).all()


def test_mha_gradcheck_self_and_cross_with_masks(device):
    mha = nn.MultiheadAttention(4, 2).to(device).double()
    params = list(mha.parameters())
    x = mt.randn(3, 2, 4, dtype="float64", device=device, requires_grad=True)
    padding = mt.tensor([[False, False, True], [False, False, False]], device=device)
    assert mt.gradcheck(lambda x, *p: mha(x, x, x, key_padding_mask=padding, is_causal=True),
                        [x] + params)
    memory = mt.randn(2, 2, 4, dtype="float64", device=device, requires_grad=True)
    value = mt.randn(2, 2, 4, dtype="float64", device=device, requires_grad=True)
    assert mt.gradcheck(lambda x, m, v, *p: mha(x, m, v)[0], [x, memory, value] + params)


def test_mha_errors_name_the_argument():
    with pytest.raises(ValueError, match="embed_dim=10 must be divisible by num_heads=3"):
        nn.MultiheadAttention(10, 3)
    mha = nn.MultiheadAttention(8, 2)
    q, kv = mt.randn(3, 2, 8), mt.randn(5, 2, 8)
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 3\), expected \(2, 5\)"):
        mha(q, kv, kv, key_padding_mask=mt.zeros(2, 3, dtype=bool))
    with pytest.raises(ValueError, match=r"attn_mask has shape \(3, 3\), expected \(3, 5\)"):
        mha(q, kv, kv, attn_mask=mt.zeros(3, 3, dtype=bool))
    with pytest.raises(ValueError, match=r"key has shape \(5, 2, 6\).*embed_dim=8"):
        mha(q, mt.randn(5, 2, 6), kv)
    with pytest.raises(ValueError, match=r"key has shape \(5, 2, 8\) and value \(4, 2, 8\)"):
        mha(q, kv, mt.randn(4, 2, 8))
    with pytest.raises(ValueError, match="batch sizes differ"):
        mha(q, mt.randn(5, 3, 8), mt.randn(5, 3, 8))

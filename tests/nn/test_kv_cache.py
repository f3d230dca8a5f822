"""The key/value cache of the attention and decoder layers: feeding positions one at a
time (or a few at a time) with a cache gives what one causal pass over all of them gives."""
import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from minitransformer.nn.attention import KeyValueCache
from minitransformer.nn.transformer import DecoderLayerCache
from minitransformer._tensor import no_grad

TOL = dict(rtol=1e-10, atol=1e-10)   # float64: only the order of the sums differs


def _pieces(x, sizes, batch_first):
    """Cut x along its sequence axis into consecutive pieces of ``sizes``."""
    axis, start = (1 if batch_first else 0), 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        yield x[index]
        start += size


def _join(pieces, batch_first):
    return np.concatenate([p.numpy() for p in pieces], axis=1 if batch_first else 0)


@pytest.mark.parametrize("attention", ["standard", "blockwise"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("sizes", [(1,) * 7, (3, 1, 2, 1)], ids=["one at a time", "chunks"])
def test_self_attention_with_a_cache_equals_one_causal_pass(device, attention, batch_first, sizes):
    mt.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, attention=attention,
                                block_size=2).to(device, "float64")
    x = mt.randn(*((3, 7, 8) if batch_first else (7, 3, 8)), dtype="float64", device=device)
    with no_grad():
        full, full_weights = mha(x, x, x, is_causal=True)
        cache, outs, weights = KeyValueCache(), [], []
        for piece in _pieces(x, sizes, batch_first):
            out, w = mha(piece, piece, piece, is_causal=True, cache=cache)
            outs.append(out)
            weights.append(w)
    np.testing.assert_allclose(_join(outs, batch_first), full.numpy(), **TOL)
    assert len(cache) == 7 and cache.keys.shape == (3, 2, 7, 4)   # (batch, heads, seq, head_dim)
    if attention == "standard":   # the weights of each piece: its rows of the full (N, L, S)
        start = 0
        for size, w in zip(sizes, weights):
            stop = start + size
            assert w.shape == (3, size, stop)
            np.testing.assert_allclose(w.numpy(), full_weights.numpy()[:, start:stop, :stop], **TOL)
            start = stop


def test_a_static_cache_projects_the_memory_once_and_ignores_later_keys(device):
    mt.manual_seed(1)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).to(device, "float64")
    query = mt.randn(2, 3, 8, dtype="float64", device=device)
    memory = mt.randn(2, 5, 8, dtype="float64", device=device)
    padding = mt.tensor([[False] * 5, [False, False, False, True, True]], device=device)
    with no_grad():
        expected, _ = mha(query, memory, memory, padding)
        cache = KeyValueCache(static=True)
        first, _ = mha(query[:, :1], memory, memory, padding, cache=cache)
        keys = cache.keys
        # Later calls reuse the projected memory: their key and value are not read.
        rest, _ = mha(query[:, 1:], memory * 0, memory * 0, padding, cache=cache)
    assert cache.keys is keys and len(cache) == 5
    np.testing.assert_allclose(np.concatenate([first.numpy(), rest.numpy()], axis=1),
                               expected.numpy(), **TOL)


def _decoder(norm_first, device):
    mt.manual_seed(2)
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True,
                                       norm_first=norm_first)
    return nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(8) if norm_first else None).to(
        device, "float64").eval()


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_decoder_step_by_step_equals_the_causal_decoder_and_returns_its_weights(device,
                                                                               norm_first):
    decoder = _decoder(norm_first, device)
    tgt = mt.randn(2, 6, 8, dtype="float64", device=device)
    memory = mt.randn(2, 4, 8, dtype="float64", device=device)
    padding = mt.tensor([[False] * 4, [False, False, True, True]], device=device)
    with no_grad():
        full, full_weights = decoder(tgt, memory, memory_key_padding_mask=padding,
                                     tgt_is_causal=True, need_weights=True)
        cache, outs = decoder.new_cache(), []
        for t in range(6):
            out, weights = decoder(tgt[:, t:t + 1], memory, memory_key_padding_mask=padding,
                                   tgt_is_causal=True, cache=cache, need_weights=True)
            outs.append(out)
            for layer_weights, layer_full in zip(weights, full_weights):
                for name in ("self_attn", "multihead_attn"):
                    expected = layer_full[name].numpy()[:, t:t + 1]
                    if name == "self_attn":
                        expected = expected[..., :t + 1]      # the keys fed so far
                    np.testing.assert_allclose(layer_weights[name].numpy(), expected, **TOL)
    np.testing.assert_allclose(_join(outs, True), full.numpy(), **TOL)
    assert len(full_weights) == 2
    assert full_weights[-1]["self_attn"].shape == (2, 6, 6)
    assert full_weights[-1]["multihead_attn"].shape == (2, 6, 4)
    # Padding keys get weight exactly 0, the future gets weight exactly 0.
    assert np.all(full_weights[-1]["multihead_attn"].numpy()[1, :, 2:] == 0)
    assert np.all(np.triu(full_weights[0]["self_attn"].numpy()[0], k=1) == 0)


def test_a_cache_copy_and_select_leave_the_original_alone(device):
    decoder = _decoder(False, device)
    tgt = mt.randn(3, 2, 8, dtype="float64", device=device)
    memory = mt.randn(3, 4, 8, dtype="float64", device=device)
    with no_grad():
        cache = decoder.new_cache()
        decoder(tgt[:, :1], memory, tgt_is_causal=True, cache=cache)
        kept = [c.copy() for c in cache]
        decoder(tgt[:, 1:], memory, tgt_is_causal=True, cache=cache)
        picked = [c.select(mt.backend.to_device(np.array([2, 0]), device)) for c in cache]
    assert [len(c.self_attn) for c in kept] == [1, 1]
    assert [len(c.self_attn) for c in cache] == [2, 2]
    assert isinstance(picked[0], DecoderLayerCache)
    np.testing.assert_array_equal(picked[0].self_attn.keys.numpy(),
                                  cache[0].self_attn.keys.numpy()[[2, 0]])


def test_bad_caches_are_refused_with_a_clear_message(device):
    mha = nn.MultiheadAttention(8, 2, batch_first=True).to(device)
    x = mt.randn(2, 1, 8, device=device)
    with pytest.raises(TypeError, match="cache must be a KeyValueCache"):
        mha(x, x, x, cache={})
    cache = KeyValueCache()
    mha(x, x, x, cache=cache)
    y = mt.randn(3, 1, 8, device=device)
    with pytest.raises(ValueError, match=r"the cache holds keys of shape \(2, 2, 1, 4\)"):
        mha(y, y, y, cache=cache)
    decoder = _decoder(False, device)
    with pytest.raises(ValueError, match="one per layer"):
        z = mt.randn(2, 1, 8, dtype="float64", device=device)
        decoder(z, z, cache=decoder.new_cache()[:1])

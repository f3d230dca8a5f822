"""Decoding with a key/value cache gives what decoding without one gives."""
import numpy as np
import pytest

import minitransformer as mt
from minitransformer._tensor import Tensor, no_grad
from minitransformer.translation.cached_decoding import CachedTransformerDecoder
from minitransformer.translation.decode import beam_search, greedy_decode
from minitransformer.translation.models import RNNTranslator, TransformerTranslator

BOS, EOS = 1, 2
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def random_model(norm_first, dtype, device="cpu"):
    mt.manual_seed(0)
    model = TransformerTranslator(20, 23, d_model=32, nhead=4, num_encoder_layers=2,
                                  num_decoder_layers=2, dim_feedforward=64,
                                  norm_first=norm_first).to(device, dtype).eval()
    # The second sentence is padded: the cached cross-attention must hide its padding.
    src = Tensor(backend_array([[3, 4, 5, 6, 2], [7, 8, 2, 0, 0]], device))
    mask = Tensor(backend_array([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], device, bool))
    return model, src, mask


def backend_array(rows, device, dtype="int64"):
    return mt.backend.to_device(np.array(rows, dtype=dtype), device)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_every_step_gives_the_logits_of_the_full_decoder(device, norm_first, dtype):
    model, src, mask = random_model(norm_first, dtype, device)
    cached = CachedTransformerDecoder(model)
    with no_grad():
        memory = model.encode(src, mask)
        full, fast = model.start_decoding(memory, mask), cached.start_decoding(memory, mask)
        tokens = Tensor(backend_array([BOS, BOS], device))
        for _ in range(12):
            expected, full = model.decode_step(full, tokens)
            got, fast = cached.decode_step(fast, tokens)
            assert got.dtype == expected.dtype
            np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=TOLERANCE[dtype],
                                       atol=TOLERANCE[dtype])
            tokens = Tensor(expected.data.argmax(axis=-1))
    # The cache of each layer's self-attention holds the 12 positions fed so far.
    for layer_cache in fast["cache"]:
        assert len(layer_cache.self_attn) == 12
        assert layer_cache.self_attn.keys.shape == (2, 4, 12, 8)     # (batch, heads, t, head_dim)
        assert layer_cache.multihead_attn.keys.shape == (2, 4, 5, 8)  # the source, projected once


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_greedy_and_beam_outputs_are_unchanged(norm_first):
    model, src, mask = random_model(norm_first, "float32")
    cached = CachedTransformerDecoder(model)
    assert greedy_decode(cached, src, mask, BOS, EOS, 15) == greedy_decode(model, src, mask,
                                                                           BOS, EOS, 15)
    # beam search reorders the rows of the cache with select()
    assert (beam_search(cached, src, mask, BOS, EOS, beam_size=3, max_len=15)
            == beam_search(model, src, mask, BOS, EOS, beam_size=3, max_len=15))


def test_only_a_transformer_has_keys_and_values_to_cache():
    with pytest.raises(TypeError, match="TransformerTranslator"):
        CachedTransformerDecoder(RNNTranslator(10, 10, embed_dim=8, hidden_size=8))

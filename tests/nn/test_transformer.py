"""Positional encoding and the Transformer encoder and decoder layers and stacks."""
import math

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from tests.conftest import to_host


def test_positional_encoding_is_the_papers_sinusoid(device):
    pe = nn.PositionalEncoding(6, dropout=0.0, max_len=10).to(device)
    x = mt.zeros(4, 2, 6, device=device)
    table = to_host(pe(x))[:, 0]
    for pos in range(4):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert math.isclose(table[pos, 2 * i], math.sin(angle), abs_tol=1e-6)
            assert math.isclose(table[pos, 2 * i + 1], math.cos(angle), abs_tol=1e-6)
    np.testing.assert_array_equal(to_host(pe(x))[:, 1], table)   # same for every batch entry
    first = nn.PositionalEncoding(6, dropout=0.0, batch_first=True).to(device)
    np.testing.assert_allclose(to_host(first(x.transpose(1, 0, 2)))[0], table, atol=1e-7)
    assert pe.state_dict() == {}          # a fixed table, not learned
    with pytest.raises(ValueError, match="max_len=10"):
        pe(mt.zeros(11, 1, 6, device=device))


def test_parameter_names_follow_pytorch():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, norm=nn.LayerNorm(8))
    names = [n for n, _ in enc.named_parameters()]
    assert names[:4] == ["layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias",
                         "layers.0.self_attn.out_proj.weight", "layers.0.self_attn.out_proj.bias"]
    assert "layers.1.linear2.weight" in names and "norm.bias" == names[-1]
    dec = nn.TransformerDecoderLayer(8, 2, 16)
    names = {n for n, _ in dec.named_parameters()}
    assert {"multihead_attn.in_proj_weight", "norm3.weight", "linear1.bias"} <= names
    # the stack deep-copies the layer: same starting weights, separate parameters
    a, b = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert a is not b
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("batch_first", [False, True])
def test_shapes(device, batch_first):
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=batch_first), 2)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, batch_first=batch_first), 2)
    enc.to(device), dec.to(device)
    src_shape, tgt_shape = ((2, 5, 8), (2, 3, 8)) if batch_first else ((5, 2, 8), (3, 2, 8))
    src, tgt = mt.randn(*src_shape, device=device), mt.randn(*tgt_shape, device=device)
    memory = enc(src, src_key_padding_mask=mt.zeros(2, 5, dtype=bool, device=device))
    assert memory.shape == src_shape
    out = dec(tgt, memory, tgt_mask=nn.causal_mask(3, device=device),
              memory_key_padding_mask=mt.zeros(2, 5, dtype=bool, device=device))
    assert out.shape == tgt_shape


def test_decoder_with_causal_mask_does_not_look_ahead(device):
    dec = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).to(device)
    memory = mt.randn(4, 1, 8, device=device)
    tgt = mt.randn(3, 1, 8)
    changed = tgt.numpy().copy()
    changed[2] += 1.0                                    # change only the last target position
    out_a = to_host(dec(tgt.to(device), memory, tgt_is_causal=True))
    out_b = to_host(dec(mt.tensor(changed, device=device), memory, tgt_is_causal=True))
    np.testing.assert_allclose(out_a[:2], out_b[:2], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out_a[2], out_b[2])


def test_post_norm_output_is_normalised_pre_norm_is_not(device):
    x = mt.randn(4, 2, 8, device=device) * 5.0
    post = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0).to(device)
    pre = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=True).to(device)
    y = to_host(post(x))
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    assert abs(to_host(pre(x)).std(-1).mean() - 1) > 0.5


def test_activation_choice():
    layer = nn.TransformerEncoderLayer(4, 2, 8, activation="gelu")
    assert layer.activation is mt.functional.gelu
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(4, 2, 8, activation="swish")


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradcheck(device, norm_first):
    layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first)
    layer.to(device).double()
    x = mt.randn(3, 2, 4, dtype="float64", device=device, requires_grad=True)
    padding = mt.tensor([[False, False, True], [False, False, False]], device=device)
    assert mt.gradcheck(lambda x, *p: layer(x, src_key_padding_mask=padding),
                        [x] + list(layer.parameters()))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_gradcheck(device, norm_first):
    layer = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, norm_first=norm_first)
    layer.to(device).double()
    tgt = mt.randn(3, 1, 4, dtype="float64", device=device, requires_grad=True)
    memory = mt.randn(2, 1, 4, dtype="float64", device=device, requires_grad=True)
    assert mt.gradcheck(lambda t, m, *p: layer(t, m, tgt_is_causal=True),
                        [tgt, memory] + list(layer.parameters()))


def test_state_dict_round_trip_of_a_stack(device):
    make = lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2)
    a, b = make().to(device), make().to(device)
    b.load_state_dict(a.state_dict())
    x = mt.randn(3, 2, 8, device=device)
    np.testing.assert_array_equal(to_host(a(x)), to_host(b(x)))

"""The Transformer of "Attention Is All You Need": positional encoding and the
encoder and decoder layers, with PyTorch's names and arguments.

An encoder layer is self-attention then a position-wise feed-forward network,
each wrapped as ``x + sublayer(x)`` and layer-normalised: after the residual
sum (post-norm, the paper's order, ``norm_first=False``) or before the sublayer
(pre-norm, ``norm_first=True``, which trains more stably in deep stacks). A
decoder layer adds attention over the encoder's output (the *memory*) between
the two.

Decoding one position at a time, the decoder layers take a key/value cache
(:class:`DecoderLayerCache`, ``TransformerDecoder.new_cache()``) and run for the
new positions only; with ``need_weights=True`` they also return their attention
weights (for attention maps). Both are our additions to PyTorch's signatures.
"""
import copy
import math
from typing import NamedTuple

from .. import backend
from .. import functional as F
from .._tensor import Tensor
from .attention import KeyValueCache, MultiheadAttention
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation(name_or_fn, layer):
    if callable(name_or_fn):
        return name_or_fn
    if name_or_fn not in _ACTIVATIONS:
        raise ValueError(f"{layer}: activation must be 'relu', 'gelu' or a function, "
                         f"got {name_or_fn!r}")
    return _ACTIVATIONS[name_or_fn]


class PositionalEncoding(Module):
    """Add the paper's sinusoidal position signal, then dropout:

        PE[pos, 2i] = sin(pos / 10000^(2i/d_model)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))

    Each dimension is a sinusoid of its own wavelength, so PE[pos + k] is a
    linear function of PE[pos]: relative positions are easy to attend to.
    Attention alone is blind to order; this is where order comes in.

    forward(x (seq, batch, d_model), or (batch, seq, d_model) if batch_first, *, start=0)
    -> same shape. ``start`` (our addition): the position of x's first token, for
    decoding one token at a time (token t gets PE[t], not PE[0]).
    The table (max_len, d_model) is a buffer, not learned, not in the state dict.
    (The paper also scales the embeddings by √d_model; that is the model's job.)
    """

    def __init__(self, d_model, dropout=0.1, max_len=5000, batch_first=False):
        super().__init__()
        np = backend.numpy  # built once on the host, then moved like a parameter
        position = np.arange(max_len, dtype=np.float64)[:, None]            # (max_len, 1)
        frequency = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = np.zeros((max_len, d_model))
        table[:, 0::2] = np.sin(position * frequency)
        table[:, 1::2] = np.cos(position * frequency[:d_model // 2])
        pe = backend.to_device(table.astype(np.float32), backend.default_device())
        self.register_buffer("pe", Tensor(pe), persistent=False)
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = Dropout(dropout)

    def forward(self, x, *, start=0):
        seq_axis = 1 if self.batch_first else 0
        if x.ndim != 3 or x.shape[-1] != self.d_model or start + x.shape[seq_axis] > self.max_len:
            raise ValueError(f"PositionalEncoding: input has shape {x.shape} from position "
                             f"{start}, expected "
                             f"{'(batch, seq, d_model)' if self.batch_first else '(seq, batch, d_model)'}"
                             f" with d_model={self.d_model} and start + seq <= max_len={self.max_len}")
        stop = start + x.shape[seq_axis]
        table = self.pe.data[start:stop].astype(x.dtype, copy=False)           # (seq, d_model)
        table = table[None] if self.batch_first else table[:, None]             # broadcast over batch
        return self.dropout(x + Tensor(table))

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward network, each with a residual connection.

    forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)
      src: (seq, batch, d_model), or (batch, seq, d_model) if batch_first
      src_mask: (seq, seq) boolean, True = may not attend; src_key_padding_mask: (batch, seq)
    -> same shape as src

    attention="blockwise" (with block_size) makes the attention memory-linear in
    the sequence length; see MultiheadAttention (it needs dropout=0 to train).
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True, *,
                 attention="standard", block_size=128):
        super().__init__()
        how_to_attend = dict(attention=attention, block_size=block_size)  # see MultiheadAttention
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **how_to_attend)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation, "TransformerEncoderLayer")

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:  # pre-norm: x + sublayer(norm(x))
            x = x + self._self_attention(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._feed_forward(self.norm2(x))
        else:                # post-norm, as in the paper: norm(x + sublayer(x))
            x = self.norm1(x + self._self_attention(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._feed_forward(x))
        return x

    def _self_attention(self, x, attn_mask, key_padding_mask, is_causal):
        out, _ = self.self_attn(x, x, x, key_padding_mask, attn_mask=attn_mask,
                                need_weights=False, is_causal=is_causal)
        return self.dropout1(out)

    def _feed_forward(self, x):
        # The same two-layer network applied to every position independently.
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class DecoderLayerCache(NamedTuple):
    """The key/value caches of one TransformerDecoderLayer (see KeyValueCache):

    * ``self_attn``: the keys and values of every target position fed so far,
      (N, heads, T, head_dim); each call appends its new positions;
    * ``multihead_attn`` (static): the memory's keys and values, (N, heads, S,
      head_dim), projected at the first call and reused at every later one.
    """
    self_attn: KeyValueCache
    multihead_attn: KeyValueCache

    @classmethod
    def empty(cls):
        return cls(KeyValueCache(), KeyValueCache(static=True))

    def copy(self):
        return DecoderLayerCache(self.self_attn.copy(), self.multihead_attn.copy())

    def select(self, rows):
        return DecoderLayerCache(self.self_attn.select(rows), self.multihead_attn.select(rows))


class TransformerDecoderLayer(Module):
    """Masked self-attention, attention over the encoder's output, feed-forward.

    forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
            memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False,
            *, cache=None, need_weights=False)
      tgt: (T, batch, d_model), memory: (S, batch, d_model) (batch first if batch_first)
      tgt_mask: (T, T), memory_mask: (T, S); key padding masks (batch, T) and (batch, S)
    -> same shape as tgt

    Our additions, for decoding one position at a time and for attention maps:

    * ``cache``: a :class:`DecoderLayerCache` (``DecoderLayerCache.empty()`` to start)
      or None. With a cache, tgt holds only the new positions (T of them, usually 1);
      the self-attention also sees the P positions fed at earlier calls, so tgt_mask
      and tgt_key_padding_mask cover P + T keys ((T, P + T) and (batch, P + T)), and
      tgt_is_causal lets new position i see the earlier ones and itself. The memory's
      keys and values are projected once, at the first call.
    * ``need_weights``: return ``(output, weights)``, ``weights`` a dict with the
      attention weights averaged over heads: ``"self_attn"`` (batch, T, P + T) and
      ``"multihead_attn"`` (batch, T, S) (None from a blockwise layer).

    attention / block_size: as for TransformerEncoderLayer, for both attentions.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True, *,
                 attention="standard", block_size=128):
        super().__init__()
        how_to_attend = dict(attention=attention, block_size=block_size)  # see MultiheadAttention
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **how_to_attend)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, **how_to_attend)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation, "TransformerDecoderLayer")

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False, *,
                cache=None, need_weights=False):
        if cache is not None and not isinstance(cache, DecoderLayerCache):
            raise TypeError(f"TransformerDecoderLayer: cache must be a DecoderLayerCache or "
                            f"None, got {type(cache).__name__}")
        self_cache, memory_cache = (None, None) if cache is None else cache

        def self_attention(x):
            out, weights = self.self_attn(x, x, x, tgt_key_padding_mask, attn_mask=tgt_mask,
                                          need_weights=need_weights, is_causal=tgt_is_causal,
                                          cache=self_cache)
            return self.dropout1(out), weights

        def cross_attention(x):
            # Queries from the decoder, keys and values from the encoder's output.
            out, weights = self.multihead_attn(x, memory, memory, memory_key_padding_mask,
                                               attn_mask=memory_mask, need_weights=need_weights,
                                               is_causal=memory_is_causal, cache=memory_cache)
            return self.dropout2(out), weights

        x = tgt
        if self.norm_first:   # pre-norm: x + sublayer(norm(x))
            attended, self_weights = self_attention(self.norm1(x))
            x = x + attended
            attended, cross_weights = cross_attention(self.norm2(x))
            x = x + attended
            x = x + self._feed_forward(self.norm3(x))
        else:                 # post-norm, as in the paper: norm(x + sublayer(x))
            attended, self_weights = self_attention(x)
            x = self.norm1(x + attended)
            attended, cross_weights = cross_attention(x)
            x = self.norm2(x + attended)
            x = self.norm3(x + self._feed_forward(x))
        if need_weights:
            return x, {"self_attn": self_weights, "multihead_attn": cross_weights}
        return x

    def _feed_forward(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (deep copies: same starting weights,
    as in PyTorch), then the optional final ``norm`` (use one with pre-norm layers).

    forward(src, mask=None, src_key_padding_mask=None, is_causal=False) -> same shape as src.
    """

    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=is_causal)
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer``, then the optional final ``norm``.

    forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
            memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False,
            *, cache=None, need_weights=False)
    -> same shape as tgt, or (output, weights) with need_weights: one dict per layer
    (see TransformerDecoderLayer). ``cache``: a list with one DecoderLayerCache per
    layer (``new_cache()``), updated in place; tgt then holds only the new positions.
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def new_cache(self):
        """An empty key/value cache: a list of one DecoderLayerCache per layer."""
        return [DecoderLayerCache.empty() for _ in self.layers]

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False, *,
                cache=None, need_weights=False):
        if cache is not None and len(cache) != len(self.layers):
            raise ValueError(f"TransformerDecoder: cache has {len(cache)} entries, expected one "
                             f"per layer ({len(self.layers)}); use new_cache()")
        x, weights = tgt, []
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal,
                      cache=None if cache is None else cache[i], need_weights=need_weights)
            if need_weights:
                x, layer_weights = x
                weights.append(layer_weights)
        x = self.norm(x) if self.norm is not None else x
        return (x, weights) if need_weights else x

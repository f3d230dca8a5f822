"""Transformer decoding with a cache of keys and values: one new position per step.

``TransformerTranslator.decode_step`` re-runs the whole decoder over the prefix at
every step: step t costs t positions of work, a sentence of n tokens costs
1 + 2 + ... + n ~ n²/2. But the causal mask means position i never changes once
computed -- it cannot see the positions after it. So a decoder layer only needs,
from the past, the *keys and values* its self-attention made for earlier positions.
Keep them, and step t runs every layer for the newest position alone:

* self-attention: project the new position to (q, k, v), append k and v to the
  cache, attend q over all cached keys (no mask needed: they are all in the past);
* cross-attention: the keys and values of the encoder's output (the memory) do not
  depend on the step at all, so they are projected once, in ``start_decoding``;
* feed-forward and layer norms act on each position independently anyway.

Work per step is now constant in the matmuls and linear in t in the attention:
n² / 2 positions of decoder work become n. What the cache cannot remove is the
chain of n dependent steps -- token t+1 needs token t -- which is where the
Transformer's parallelism stops, as the LSTM's does (see benchmarks/decoding.py).

Use it wherever a translator is expected (``greedy_decode``, ``beam_search``)::

    decoder = CachedTransformerDecoder(model)      # model: a TransformerTranslator
    ids = greedy_decode(decoder, src, src_padding_mask, bos_id, eos_id, max_len=50)

The results equal the uncached ones to float rounding (tests/translation/
test_cached_decoding.py); the decoder layers' dropout is applied as in the model,
so decode in ``eval()`` mode, as one always does.
"""
from .. import functional as F
from ..nn.attention import scaled_dot_product_attention
from ..tensor import Tensor


class CachedTransformerDecoder:
    """A :class:`~.models.TransformerTranslator` seen through the decoding interface
    (``encode``, ``start_decoding``, ``decode_step``, ``select``), with a cache.

    The state is a dict: ``"memory_keys"`` / ``"memory_values"`` and ``"keys"`` /
    ``"values"`` (one Tensor per decoder layer, (batch, heads, S or t, head_dim)),
    ``"memory_mask"`` ((batch, 1, 1, S) bool, True at source padding, or None), and
    ``"position"`` (how many tokens have been fed so far).
    """

    def __init__(self, model):
        if model.config.get("kind") != "transformer":
            raise TypeError(f"CachedTransformerDecoder: needs a TransformerTranslator, got a "
                            f"{model.config.get('kind')!r} model")
        self.model = model

    def encode(self, src, src_padding_mask):
        return self.model.encode(src, src_padding_mask)

    def start_decoding(self, memory, src_padding_mask):
        """memory (batch, S, d_model) -> a state with the memory's keys and values
        projected once per layer, and an empty self-attention cache."""
        memory_keys, memory_values = [], []
        for layer in self.model.decoder.layers:
            attn = layer.multihead_attn
            E = attn.embed_dim
            memory_keys.append(_heads(_project(attn, memory, E, 2 * E), attn.num_heads))
            memory_values.append(_heads(_project(attn, memory, 2 * E, 3 * E), attn.num_heads))
        n_layers = len(memory_keys)
        mask = None
        if src_padding_mask is not None:
            mask = src_padding_mask.data[:, None, None, :]    # (batch, 1, 1, S): per key
        return {"memory_keys": memory_keys, "memory_values": memory_values,
                "memory_mask": mask, "keys": [None] * n_layers, "values": [None] * n_layers,
                "position": 0}

    def decode_step(self, state, tokens):
        """tokens (batch,) int64, the newest token of each row -> (logits (batch, vocab),
        the state with this position's keys and values appended)."""
        model, t = self.model, state["position"]
        if t >= model.positions.max_len:
            raise ValueError(f"CachedTransformerDecoder: position {t} is past the model's "
                             f"max_len={model.positions.max_len}")
        # The embedding of the new token and the position signal of position t alone.
        x = model.tgt_embed(tokens.reshape(tokens.shape[0], 1)) * model.scale   # (batch, 1, d)
        position = model.positions.pe.data[t:t + 1].astype(x.dtype, copy=False)  # (1, d)
        x = model.positions.dropout(x + Tensor(position[None]))
        keys, values = list(state["keys"]), list(state["values"])
        for i, layer in enumerate(model.decoder.layers):
            x, keys[i], values[i] = _layer_step(
                layer, x, keys[i], values[i], state["memory_keys"][i],
                state["memory_values"][i], state["memory_mask"])
        if model.decoder.norm is not None:
            x = model.decoder.norm(x)
        logits = model.output(x) if model.output is not None else x @ model.tgt_embed.weight.T
        return logits[:, 0], dict(state, keys=keys, values=values, position=t + 1)

    def select(self, state, rows):
        """Keep and reorder batch rows (beam search): every cached tensor's axis 0."""
        def pick(x):
            return None if x is None else x[rows]
        return {"memory_keys": [pick(k) for k in state["memory_keys"]],
                "memory_values": [pick(v) for v in state["memory_values"]],
                "memory_mask": pick(state["memory_mask"]),
                "keys": [pick(k) for k in state["keys"]],
                "values": [pick(v) for v in state["values"]],
                "position": state["position"]}


def _layer_step(layer, x, keys, values, memory_keys, memory_values, memory_mask):
    """``TransformerDecoderLayer.forward`` for the newest position only.

    x (batch, 1, d); keys/values (batch, heads, t, head_dim) or None at t = 0.
    Returns (output (batch, 1, d), keys and values with position t appended).
    Same order of sublayers, norms and dropouts as the layer's forward.
    """
    def self_attention(h):
        nonlocal keys, values
        attn = layer.self_attn
        q, k, v = (_heads(part, attn.num_heads)
                   for part in _split3(_project(attn, h, 0, 3 * attn.embed_dim)))
        keys = k if keys is None else F.concat([keys, k], axis=2)
        values = v if values is None else F.concat([values, v], axis=2)
        context, _ = scaled_dot_product_attention(q, keys, values)   # all keys are the past
        return layer.dropout1(attn.out_proj(_merge(context)))

    def cross_attention(h):
        attn = layer.multihead_attn
        q = _heads(_project(attn, h, 0, attn.embed_dim), attn.num_heads)
        context, _ = scaled_dot_product_attention(q, memory_keys, memory_values,
                                                  attn_mask=memory_mask)
        return layer.dropout2(attn.out_proj(_merge(context)))

    if layer.norm_first:     # pre-norm: x + sublayer(norm(x))
        x = x + self_attention(layer.norm1(x))
        x = x + cross_attention(layer.norm2(x))
        x = x + layer._feed_forward(layer.norm3(x))
    else:                    # post-norm: norm(x + sublayer(x))
        x = layer.norm1(x + self_attention(x))
        x = layer.norm2(x + cross_attention(x))
        x = layer.norm3(x + layer._feed_forward(x))
    return x, keys, values


# ---------------------------------------------------------------- small helpers
def _project(attn, x, start, stop):
    """x (batch, L, d) times rows start:stop of the attention's stacked in-projection
    (queries 0:E, keys E:2E, values 2E:3E), plus their bias -> (batch, L, stop - start)."""
    out = x @ attn.in_proj_weight[start:stop].T
    if attn.in_proj_bias is not None:
        out = out + attn.in_proj_bias[start:stop]
    return out


def _split3(projected):
    """(batch, L, 3E) -> three (batch, L, E): queries, keys, values."""
    E = projected.shape[-1] // 3
    return projected[:, :, :E], projected[:, :, E:2 * E], projected[:, :, 2 * E:]


def _heads(x, num_heads):
    """(batch, L, E) -> (batch, heads, L, E / heads)."""
    batch, length, E = x.shape
    return x.reshape(batch, length, num_heads, E // num_heads).transpose(0, 2, 1, 3)


def _merge(context):
    """(batch, heads, L, head_dim) -> (batch, L, heads · head_dim)."""
    batch, heads, length, head_dim = context.shape
    return context.transpose(0, 2, 1, 3).reshape(batch, length, heads * head_dim)

"""Transformer decoding with a cache of keys and values: one new position per step.

``TransformerTranslator.decode_step`` without a cache re-runs the whole decoder over
the prefix at every step: step t costs t positions of work, a sentence of n tokens
1 + 2 + ... + n ~ n²/2. But the causal mask means position i never changes once
computed -- it cannot see the positions after it. So a decoder layer only needs,
from the past, the *keys and values* its self-attention made for earlier positions.
Keep them, and step t runs every layer for the newest position alone:

* self-attention: project the new position to (q, k, v), append k and v to the
  cache, attend q over all cached keys;
* cross-attention: the keys and values of the encoder's output (the memory) do not
  depend on the step at all, so they are projected once, at the first step;
* feed-forward and layer norms act on each position independently anyway.

Work per step is now constant in the matmuls and linear in t in the attention:
n² / 2 positions of decoder work become n. What the cache cannot remove is the
chain of n dependent steps -- token t+1 needs token t -- which is where the
Transformer's parallelism stops, as the LSTM's does (see benchmarks/decoding.py).

The cache lives in the layers themselves (``nn.attention.KeyValueCache``, the
``cache`` argument of ``MultiheadAttention``, ``TransformerDecoderLayer`` and
``TransformerDecoder``), and ``TransformerTranslator.start_decoding(memory, mask,
use_cache=True)`` switches it on. This module only keeps the adapter that gives a
translator with the cache switched on to code that expects a translator::

    decoder = CachedTransformerDecoder(model)      # model: a TransformerTranslator
    ids = greedy_decode(decoder, src, src_padding_mask, bos_id, eos_id, max_len=50)

The results equal the uncached ones to float rounding (tests/translation/
test_cached_decoding.py). Decode in ``eval()`` mode, as one always does.
"""
from .models import TransformerTranslator


class CachedTransformerDecoder:
    """A :class:`~.models.TransformerTranslator` seen through the decoding interface
    (``encode``, ``start_decoding``, ``decode_step``, ``select``) with its key/value
    cache switched on. The state is the model's (see ``start_decoding`` there); its
    ``"cache"`` holds one ``DecoderLayerCache`` per decoder layer."""

    def __init__(self, model):
        if not isinstance(model, TransformerTranslator):
            raise TypeError(f"CachedTransformerDecoder: needs a TransformerTranslator, got "
                            f"{type(model).__name__}")
        self.model = model

    def encode(self, src, src_padding_mask):
        return self.model.encode(src, src_padding_mask)

    def start_decoding(self, memory, src_padding_mask):
        return self.model.start_decoding(memory, src_padding_mask, use_cache=True)

    def decode_step(self, state, tokens):
        return self.model.decode_step(state, tokens)

    def select(self, state, rows):
        return self.model.select(state, rows)

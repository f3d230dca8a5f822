"""The two translators: a Transformer and an RNN/LSTM encoder-decoder with attention.

Both are built only from ``minitransformer.nn`` and share one interface, so one
training loop and one decoder serve both (all tensors batch first):

* ``forward(src, tgt_in, src_padding_mask, tgt_padding_mask) -> logits``
  src (batch, S) and tgt_in (batch, T) int64; masks bool, True at padding;
  logits (batch, T, tgt_vocab). Teacher forcing: the whole target is given.
* ``encode(src, src_padding_mask) -> memory``, then for generation
  ``start_decoding(memory, src_padding_mask) -> state``,
  ``decode_step(state, tokens (batch,)) -> (logits (batch, tgt_vocab), state)`` and
  ``select(state, rows) -> state`` (keep or reorder batch rows, for beam search).

The difference the project is about shows in ``forward``: the Transformer's
decoder reads all T target positions in one pass of matmuls, the LSTM's decoder
walks them one step at a time.
"""
import math

from .. import backend
from .. import functional as F
from .. import nn
from .._tensor import Tensor, zeros_like


class TransformerTranslator(nn.Module):
    """The encoder-decoder Transformer of Vaswani et al. (2017), scaled down.

    Embeddings are scaled by √d_model and summed with sinusoidal positions, as in
    the paper. ``share_embeddings=True`` ties the target embedding to the output
    projection (the paper's weight sharing; fewer parameters for a small corpus).
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=64, nhead=4, num_encoder_layers=2,
                 num_decoder_layers=2, dim_feedforward=128, dropout=0.1, max_len=256,
                 share_embeddings=True, norm_first=False, pad_id=0):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"TransformerTranslator: d_model={d_model} is not divisible by "
                             f"nhead={nhead}")
        self.config = dict(kind="transformer", src_vocab_size=src_vocab_size,
                           tgt_vocab_size=tgt_vocab_size, d_model=d_model, nhead=nhead,
                           num_encoder_layers=num_encoder_layers,
                           num_decoder_layers=num_decoder_layers, dim_feedforward=dim_feedforward,
                           dropout=dropout, max_len=max_len, share_embeddings=share_embeddings,
                           norm_first=norm_first, pad_id=pad_id)
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=pad_id)
        self.positions = nn.PositionalEncoding(d_model, dropout, max_len, batch_first=True)
        encoder_layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                                   batch_first=True, norm_first=norm_first)
        decoder_layer = nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout,
                                                   batch_first=True, norm_first=norm_first)
        final_norm = nn.LayerNorm(d_model) if norm_first else None
        self.encoder = nn.TransformerEncoder(encoder_layer, num_encoder_layers, norm=final_norm)
        self.decoder = nn.TransformerDecoder(decoder_layer, num_decoder_layers,
                                             norm=nn.LayerNorm(d_model) if norm_first else None)
        self.output = None if share_embeddings else nn.Linear(d_model, tgt_vocab_size)
        self.scale = math.sqrt(d_model)
        self._init_weights(d_model, pad_id)

    def _init_weights(self, d_model, pad_id):
        """The initialisation of the reference implementations (tensor2tensor, fairseq).

        Embeddings are drawn N(0, 1/d_model), not N(0, 1) as ``nn.Embedding`` does:
        multiplied by √d_model, each component then has variance 1, the size of the
        sinusoidal positions added to it (with N(0, 1) the word vectors would be √d_model
        times larger and drown word order). The target embedding is also the output
        projection: a layer-normed hidden state (norm √d_model) times rows of norm 1
        gives logits of variance about 1, so the first loss is near ln(vocabulary), the
        loss of a uniform guess. The projections inside the layers are Xavier-uniform,
        as ``torch.nn.Transformer`` initialises them.
        """
        for embedding in (self.src_embed, self.tgt_embed):
            nn.init.normal_(embedding.weight, std=d_model ** -0.5)
            embedding.weight.data[pad_id] = 0
        for stack in (self.encoder, self.decoder):
            for param in stack.parameters():
                if param.ndim == 2:
                    nn.init.xavier_uniform_(param)

    def encode(self, src, src_padding_mask):
        """src (batch, S) -> memory (batch, S, d_model)."""
        x = self.positions(self.src_embed(src) * self.scale)
        return self.encoder(x, src_key_padding_mask=src_padding_mask)

    def decode(self, tgt_in, memory, src_padding_mask, tgt_padding_mask=None, cache=None):
        """tgt_in (batch, T), memory (batch, S, d_model) -> logits (batch, T, tgt_vocab).

        ``cache``: None, or the decoder's key/value cache (``self.decoder.new_cache()``)
        holding the P positions decoded so far: tgt_in is then positions P..P+T-1 alone,
        and the cache grows by T (tgt_padding_mask, if given, covers all P + T).
        """
        start = 0 if cache is None else len(cache[0].self_attn)       # P
        y = self.positions(self.tgt_embed(tgt_in) * self.scale, start=start)
        hidden = self.decoder(y, memory, tgt_key_padding_mask=tgt_padding_mask,
                              memory_key_padding_mask=src_padding_mask, tgt_is_causal=True,
                              cache=cache)                                 # (batch, T, d_model)
        if self.output is not None:
            return self.output(hidden)
        return hidden @ self.tgt_embed.weight.T

    def forward(self, src, tgt_in, src_padding_mask=None, tgt_padding_mask=None):
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt_in, memory, src_padding_mask, tgt_padding_mask)

    def cross_attention(self, src, tgt_in, src_padding_mask=None):
        """Weights (batch, T, S) of the last decoder layer's attention over the source,
        averaged over heads: which source word each target position looked at."""
        memory = self.encode(src, src_padding_mask)
        y = self.positions(self.tgt_embed(tgt_in) * self.scale)
        _, weights = self.decoder(y, memory, memory_key_padding_mask=src_padding_mask,
                                  tgt_is_causal=True, need_weights=True)
        return weights[-1]["multihead_attn"]

    # Generation. Without a cache of keys and values (the default), each step re-runs
    # the decoder over the whole prefix: simple, and honest about the cost -- step t
    # costs t positions. With use_cache=True each step runs the decoder layers for the
    # newest position alone: position t never changes once computed (the causal mask
    # keeps it from seeing later ones), so its keys and values are kept, not recomputed
    # (see KeyValueCache in nn/attention.py). The results are the same to rounding.
    def start_decoding(self, memory, src_padding_mask, use_cache=False):
        return {"memory": memory, "src_padding_mask": src_padding_mask, "prefix": None,
                "cache": self.decoder.new_cache() if use_cache else None}

    def decode_step(self, state, tokens):
        column = tokens.reshape(tokens.shape[0], 1)
        if state["cache"] is not None:
            # The layers update the cache in place: a copy leaves ``state`` as it was.
            cache = [layer_cache.copy() for layer_cache in state["cache"]]
            logits = self.decode(column, state["memory"], state["src_padding_mask"], cache=cache)
            return logits[:, -1], dict(state, cache=cache)
        prefix = column if state["prefix"] is None else F.concat([state["prefix"], column], axis=1)
        logits = self.decode(prefix, state["memory"], state["src_padding_mask"])
        return logits[:, -1], dict(state, prefix=prefix)

    def select(self, state, rows):
        cache = state["cache"]
        return {"memory": state["memory"][rows],
                "src_padding_mask": None if state["src_padding_mask"] is None
                else state["src_padding_mask"][rows],
                "prefix": None if state["prefix"] is None else state["prefix"][rows],
                "cache": None if cache is None else [c.select(rows) for c in cache]}


class RNNTranslator(nn.Module):
    """An RNN or LSTM encoder-decoder with dot-product (Luong) attention.

    The encoder reads the source; the decoder starts from a summary of it (the
    mean of the encoder states, through a small layer -- with right-padded
    batches the last state would have read padding); at each target position
    the decoder state attends over all encoder states, and the attended context
    and the state together predict the next word.
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, cell="lstm", embed_dim=64, hidden_size=128,
                 num_layers=1, dropout=0.1, pad_id=0):
        super().__init__()
        if cell not in ("lstm", "rnn"):
            raise ValueError(f"RNNTranslator: cell must be 'lstm' or 'rnn', got {cell!r}")
        self.config = dict(kind=cell, src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
                           embed_dim=embed_dim, hidden_size=hidden_size, num_layers=num_layers,
                           dropout=dropout, pad_id=pad_id)
        recurrent = nn.LSTM if cell == "lstm" else nn.RNN
        self.cell = cell
        self.src_embed = nn.Embedding(src_vocab_size, embed_dim, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_dim, padding_idx=pad_id)
        self.encoder = recurrent(embed_dim, hidden_size, num_layers, batch_first=True,
                                 dropout=dropout if num_layers > 1 else 0.0)
        self.decoder = recurrent(embed_dim, hidden_size, num_layers, batch_first=True,
                                 dropout=dropout if num_layers > 1 else 0.0)
        self.bridge = nn.Linear(hidden_size, hidden_size)
        self.combine = nn.Linear(2 * hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, tgt_vocab_size)
        self.dropout = nn.Dropout(dropout)
        self.num_layers = num_layers

    def encode(self, src, src_padding_mask):
        """src (batch, S) -> (encoder states (batch, S, hidden), initial decoder state)."""
        states, _ = self.encoder(self.dropout(self.src_embed(src)))      # (batch, S, hidden)
        if src_padding_mask is None:
            summary = states.mean(axis=1)
        else:
            keep = (~src_padding_mask.data)[:, :, None].astype(states.dtype)  # (batch, S, 1)
            # The mean over real tokens; counting at least one keeps an all-padding row finite.
            count = backend.array_module(keep).maximum(keep.sum(axis=1), 1)  # (batch, 1)
            summary = (states * Tensor(keep)).sum(axis=1) / Tensor(count)
        h0 = self.bridge(summary).tanh()                                  # (batch, hidden)
        h0 = F.stack([h0] * self.num_layers, axis=0)                      # (layers, batch, hidden)
        initial = (h0, zeros_like(h0)) if self.cell == "lstm" else h0
        return states, initial

    def _attend(self, decoder_states, encoder_states, src_padding_mask):
        """Luong's dot-product attention: decoder_states (batch, T, hidden) query the
        encoder states (batch, S, hidden) -> (batch, T, hidden)."""
        scores = decoder_states @ encoder_states.transpose(0, 2, 1)      # (batch, T, S)
        weights = nn.masked_softmax(scores, None if src_padding_mask is None
                                    else src_padding_mask.data[:, None, :])
        context = weights @ encoder_states                                # (batch, T, hidden)
        combined = self.combine(F.concat([context, decoder_states], axis=-1)).tanh()
        return self.output(self.dropout(combined)), weights

    def decode(self, tgt_in, memory, src_padding_mask, tgt_padding_mask=None):
        """tgt_in (batch, T) -> logits (batch, T, tgt_vocab); the decoder loops over T."""
        encoder_states, initial = memory
        decoder_states, _ = self.decoder(self.dropout(self.tgt_embed(tgt_in)), initial)
        logits, _ = self._attend(decoder_states, encoder_states, src_padding_mask)
        return logits

    def forward(self, src, tgt_in, src_padding_mask=None, tgt_padding_mask=None):
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt_in, memory, src_padding_mask)

    def cross_attention(self, src, tgt_in, src_padding_mask=None):
        """Attention weights (batch, T, S) of each target position over the source."""
        encoder_states, initial = self.encode(src, src_padding_mask)
        decoder_states, _ = self.decoder(self.tgt_embed(tgt_in), initial)
        _, weights = self._attend(decoder_states, encoder_states, src_padding_mask)
        return weights

    def start_decoding(self, memory, src_padding_mask):
        return {"encoder_states": memory[0], "src_padding_mask": src_padding_mask,
                "hidden": memory[1]}

    def decode_step(self, state, tokens):
        embedded = self.tgt_embed(tokens.reshape(tokens.shape[0], 1))
        decoder_states, hidden = self.decoder(embedded, state["hidden"])   # (batch, 1, hidden)
        logits, _ = self._attend(decoder_states, state["encoder_states"], state["src_padding_mask"])
        return logits[:, 0], dict(state, hidden=hidden)

    def select(self, state, rows):
        hidden = state["hidden"]
        # hidden states are (layers, batch, hidden): batch is axis 1
        if self.cell == "lstm":
            hidden = (hidden[0][:, rows], hidden[1][:, rows])
        else:
            hidden = hidden[:, rows]
        mask = state["src_padding_mask"]
        return {"encoder_states": state["encoder_states"][rows],
                "src_padding_mask": None if mask is None else mask[rows],
                "hidden": hidden}


def build_model(config):
    """A translator from its ``config`` dict (as saved in a checkpoint)."""
    config = dict(config)
    kind = config.pop("kind")
    if kind == "transformer":
        return TransformerTranslator(**config)
    return RNNTranslator(cell=kind, **config)

"""Attention: every query looks at every key at once.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d) V

For a sequence of n tokens this is two large matrix products and a softmax: a
constant number of dependent steps, whatever n is (compare the time loop of
``recurrent.py``), at the price of an n × n matrix of scores.

Masks follow ``torch.nn.MultiheadAttention`` (built in ``masks.py``): a boolean
mask is True where a query may NOT attend to a key; a float mask is added to the
scores (use -inf to hide). A hidden key gets weight exactly 0. A query that may
attend to no key at all gets all-zero weights and a zero output (PyTorch would
give NaN).

Generating text one token at a time, a decoder's self-attention would project the
keys and values of every earlier position again at every step; a
:class:`KeyValueCache` passed to ``MultiheadAttention`` keeps them instead.
"""
import math

from .. import backend
from .. import functional as F
from ..ops.nn import softmax_span
from .._tensor import Function
from .blockwise import blockwise_attention
from .layers import Linear
from .masks import (
    causal_mask, check_query_key_value, key_padding_mask_for_scores, mask_array, merge_masks,
    split_mask,
)
from .module import Module, constant_parameter, uniform_parameter, xavier_bound


# ---------------------------------------------------------------- masked softmax
def exp_shifted(scores, peak):
    """exp(scores - peak), each row shifted by its maximum ``peak`` (…, 1) so that no
    exponential overflows. A row whose keys are all hidden has peak -inf: it is
    shifted by 0 instead, so its weights come out 0, not exp(-inf + inf) = NaN."""
    xp = backend.array_module(scores)
    return xp.exp(scores - xp.where(xp.isfinite(peak), peak, peak.dtype.type(0)))


def normalise(weights, total):
    """weights / total, ``total`` (…, 1) the row sums; a row of zeros stays zeros."""
    xp = backend.array_module(weights)
    return weights / xp.where(total > 0, total, total.dtype.type(1))


def softmax_backward(weights, grad, dot):
    """The gradient of the scores: w · (grad - Σ grad·w), ``dot`` (…, 1) that sum."""
    return weights * (grad - dot)


# On a GPU each of these elementwise steps is one kernel, not the three or four that
# the NumPy expressions above launch (where, subtract, exp, ...): the softmax is a few
# passes over the (batch, heads, L, S) scores, so at large n its launches and memory
# passes are its cost. The functions above are the readable version and what the CPU runs.
_EXP_SHIFTED_KERNEL = backend.ElementwiseKernel(
    "minitransformer_softmax_exp", "T scores, T peak", "T weights",
    "weights = exp(scores - (isfinite(peak) ? peak : (T)0));",
    reference=lambda scores, peak, *outputs: exp_shifted(scores, peak))

_NORMALISE_KERNEL = backend.ElementwiseKernel(
    "minitransformer_softmax_normalise", "T total", "T weights",
    "weights = weights / (total > 0 ? total : (T)1);",    # weights: read, then overwritten
    reference=lambda total, weights: normalise(weights, total))

_SOFTMAX_BACKWARD_KERNEL = backend.ElementwiseKernel(
    "minitransformer_softmax_backward", "T weights, T grad, T dot", "T grad_scores",
    "grad_scores = weights * (grad - dot);",
    reference=lambda weights, grad, dot, *outputs: softmax_backward(weights, grad, dot))


class MaskedSoftmax(Function):
    """Softmax over the last axis, where ``hide`` (a boolean array that broadcasts
    to the scores, True = may not attend) forces a weight of exactly 0.

    One op instead of masked_fill + softmax: a single pass, and a row whose keys
    are all hidden (its maximum is -inf) gives zeros instead of 0/0 = NaN.
    Backward is softmax's: a hidden key has weight 0, so it gets gradient 0.
    """
    hide = None

    def forward(self, scores):
        xp = backend.array_module(scores)
        if self.hide is not None:
            scores = xp.where(self.hide, scores.dtype.type(-math.inf), scores)
        peak = scores.max(axis=-1, keepdims=True)                # (…, L, 1)
        if backend.device_of(scores) == "gpu":
            weights = xp.empty(scores.shape, dtype=scores.dtype)
            _EXP_SHIFTED_KERNEL(scores, peak, weights)
            _NORMALISE_KERNEL(weights.sum(axis=-1, keepdims=True), weights)
        else:
            weights = exp_shifted(scores, peak)
            weights = normalise(weights, weights.sum(axis=-1, keepdims=True))
        self.out = weights
        return weights

    def backward(self, grad):
        weights = self.out
        dot = (grad * weights).sum(axis=-1, keepdims=True)       # (…, L, 1)
        if backend.device_of(weights) == "gpu":
            xp = backend.array_module(weights)
            grad_scores = xp.empty(weights.shape, dtype=weights.dtype)
            _SOFTMAX_BACKWARD_KERNEL(weights, grad, dot, grad_scores)
            return (grad_scores,)
        return (softmax_backward(weights, grad, dot),)

    def flops(self):
        return 4 * self.out.size

    def span(self):
        return softmax_span(self.out.shape[-1])   # as softmax: the mask is one more select

    def depends(self, depths, out):
        # Every weight of a row reads every score of that row (the normalising sum);
        # a hidden key's weight is 0 whatever its score, but it is still an input of
        # the op: counting it over-estimates the path, never under-estimates it.
        return depths[0].max(axis=-1, keepdims=True)


def masked_softmax(scores, hide=None):
    """softmax(scores) over the last axis with the positions where ``hide`` is True
    (a boolean array, Tensor or None) given weight exactly 0."""
    if hide is not None:
        # On the scores' device: a host mask with GPU scores would reach cupy.where,
        # which rejects NumPy arrays with a TypeError that does not name the argument.
        hide = mask_array(hide, "masked_softmax: hide", scores.device)
        if hide.dtype.kind != "b":
            raise TypeError(f"masked_softmax: hide must be boolean (True = weight 0), got "
                            f"dtype {hide.dtype}")
    return MaskedSoftmax.apply(scores, hide=hide)


# ---------------------------------------------------------------- the formula
def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False,
                                 dropout_p=0.0, scale=None):
    """softmax(query keyᵀ · scale + mask) value, for all queries at once.

    query: (..., L, E), key: (..., S, E), value: (..., S, Ev); the leading axes
    (batch, heads) broadcast. attn_mask: boolean (True = may not attend) or float
    (added to the scores), broadcastable to (..., L, S). is_causal: also hide the
    future (key j > query i). scale: default 1/√E. dropout_p: dropout on the weights.
    Returns (output (..., L, Ev), weights (..., L, S)).
    """
    check_query_key_value("scaled_dot_product_attention", query, key, value)
    seq_q, seq_k = query.shape[-2], key.shape[-2]
    mask = None
    if attn_mask is not None:
        mask = mask_array(attn_mask, "attn_mask", query.device)
        if mask.ndim > max(query.ndim, key.ndim) or any(
                m not in (1, n) for m, n in zip(mask.shape[-2:], (seq_q, seq_k))) or mask.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention: attn_mask has shape {mask.shape}, "
                             f"expected one that broadcasts to (..., {seq_q}, {seq_k})")
    if is_causal:
        mask = merge_masks(mask, causal_mask(seq_q, seq_k, query.device).data, query.dtype)
    hide, bias = split_mask(mask, query.dtype)

    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    # Scaling the queries (L·E numbers) is cheaper than scaling the scores (L·S).
    scores = (query * scale) @ key.transpose(*range(key.ndim - 2), -1, -2)  # (..., L, S)
    if bias is not None:
        scores = scores + bias
    weights = masked_softmax(scores, hide)                                   # (..., L, S)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p)
    return weights @ value, weights                                          # (..., L, Ev)


# ---------------------------------------------------------------- the key/value cache
class KeyValueCache:
    """The keys and values a MultiheadAttention layer has projected, kept between
    calls: for generating one position at a time. (Our addition: PyTorch's layer
    has no cache; Hugging Face's models pass a similar ``past_key_values``.)

    ``keys``, ``values``: Tensors (N, num_heads, S, head_dim), or None while empty;
    ``len(cache)`` is S, the positions held. Two kinds:

    * ``static=False`` (a decoder's self-attention): every call projects its own key
      and value inputs (the new positions), appends them along S, and attends over
      all S. Position t's keys never change -- the causal mask keeps it from seeing
      later positions -- so step t projects one position instead of t.
    * ``static=True`` (attention over a fixed memory, the encoder's output): the first
      call projects key and value and keeps them; later calls reuse them and ignore
      their key and value arguments.

    The layer updates the cache in place. ``copy()`` gives a new cache holding the
    same tensors (to keep an earlier state), ``select(rows)`` one with the batch rows
    ``rows`` (beam search reorders hypotheses).
    """

    def __init__(self, static=False, keys=None, values=None):
        self.static, self.keys, self.values = static, keys, values

    def __len__(self):
        return 0 if self.keys is None else self.keys.shape[2]

    def update(self, keys, values):
        """Add the (N, heads, s, head_dim) keys and values of the newest positions
        (static: set them once); return all keys and values held, (N, heads, S, head_dim)."""
        if self.keys is None:
            self.keys, self.values = keys, values
        elif not self.static:
            self.keys = F.concat([self.keys, keys], axis=2)
            self.values = F.concat([self.values, values], axis=2)
        return self.keys, self.values

    def copy(self):
        return KeyValueCache(self.static, self.keys, self.values)

    def select(self, rows):
        """A cache with batch rows ``rows`` (an integer array), in that order."""
        if self.keys is None:
            return self.copy()
        return KeyValueCache(self.static, self.keys[rows], self.values[rows])

    def __repr__(self):
        shape = None if self.keys is None else tuple(self.keys.shape)
        return f"KeyValueCache(static={self.static}, keys={shape})"


# ---------------------------------------------------------------- multi-head attention
class MultiheadAttention(Module):
    """Multi-head attention, as ``torch.nn.MultiheadAttention``.

    Each of ``num_heads`` heads attends in its own ``embed_dim / num_heads``
    dimensional subspace; their outputs are concatenated and projected.

    Parameters: ``in_proj_weight`` (3·embed_dim, embed_dim) holding the query,
    key and value projections stacked (Xavier-uniform), ``in_proj_bias``
    (3·embed_dim,) (zeros), ``out_proj`` a Linear (bias zeros).

    forward(query, key, value, key_padding_mask=None, *, need_weights=True,
            attn_mask=None, average_attn_weights=True, is_causal=False)
      query: (L, N, E), or (N, L, E) if batch_first, or (L, E) unbatched
      key, value: (S, N, E) (or (N, S, E), or (S, E))
      key_padding_mask: (N, S), True where a key is padding (or a float mask to add)
      attn_mask: (L, S) or (N·num_heads, L, S), True where a query may not attend
      is_causal: hide the future (key j > query i)
      cache: a KeyValueCache or None (our addition, for decoding one position at a
        time; see KeyValueCache). With a cache, S counts the cached keys too, and
        key_padding_mask and attn_mask cover all S of them; is_causal then takes the
        queries as the last L positions (query i sees keys up to S - L + i).
    -> (output (L, N, E) in the query's layout,
        weights (N, L, S) averaged over heads, (N, num_heads, L, S) if not
        average_attn_weights, or None if not need_weights)

    ``attention`` (not in PyTorch) picks how the heads attend: "standard"
    (``scaled_dot_product_attention``, the n × n weights materialised) or
    "blockwise" (``blockwise_attention``: ``block_size`` keys at a time, memory
    linear in n, the same result to rounding). A blockwise layer never forms the
    weights, so it returns None for them even with need_weights=True, and it has
    no dropout on the weights: in training mode with dropout > 0 it raises.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False, *,
                 attention="standard", block_size=128):
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim={embed_dim} must be divisible by "
                             f"num_heads={num_heads}")
        if attention not in ("standard", "blockwise"):
            raise ValueError(f"MultiheadAttention: attention must be 'standard' or 'blockwise', "
                             f"got {attention!r}")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"MultiheadAttention: block_size must be an int >= 1, "
                             f"got {block_size!r}")
        self.attention, self.block_size = attention, block_size
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj_weight = uniform_parameter((3 * embed_dim, embed_dim),
                                                xavier_bound(embed_dim, 3 * embed_dim))
        self.in_proj_bias = constant_parameter((3 * embed_dim,), 0.0) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        if bias:
            self.out_proj.bias.data[...] = 0

    def forward(self, query, key, value, key_padding_mask=None, *, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False, cache=None):
        batched = query.ndim == 3
        mask = self._check(query, key, value, key_padding_mask, attn_mask, cache)
        if not batched:  # one sequence: a batch of one, in the layer's layout
            query, key, value = (x.reshape((1,) + x.shape if self.batch_first else
                                           (x.shape[0], 1, x.shape[1])) for x in (query, key, value))
        # Earlier positions held by a growing cache (self-attention while decoding).
        past = 0 if cache is None or cache.static else len(cache)
        if cache is not None and cache.static and len(cache):
            # A fixed memory: its keys and values were projected at the first call.
            (q,) = self._split_heads(self._project(query, 0, self.embed_dim), 1)
            k, v = cache.keys, cache.values
        else:
            q, k, v = self._project_heads(query, key, value)
            if cache is not None:
                k, v = cache.update(k, v)      # the cached positions, then these
        if is_causal and past:
            # The queries are the newest positions: query i sees the cached keys and the
            # new ones up to its own. One query (a decoding step) sees every key.
            L, S = q.shape[2], k.shape[2]
            if L > 1:
                future = causal_mask(L, S, q.device, past=S - L).data
                mask = merge_masks(mask, future, q.dtype)
            is_causal = False
        # q: (N, heads, L, head_dim), k and v: (N, heads, S, head_dim)
        if self.attention == "blockwise":
            if self.training and self.dropout > 0:
                raise RuntimeError(f"MultiheadAttention(attention='blockwise') has no dropout on "
                                   f"the attention weights, got dropout={self.dropout} in "
                                   f"training mode; use dropout=0.0, .eval(), or 'standard'")
            context = blockwise_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                          block_size=self.block_size)
            need_weights, weights = False, None     # never materialised
        else:
            context, weights = scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=is_causal,
                dropout_p=self.dropout if self.training else 0.0)
        output = self.out_proj(self._merge_heads(context))   # (L, N, E) or (N, L, E)
        if not batched:
            output = output.reshape(output.shape[1:] if self.batch_first else
                                    (output.shape[0], self.embed_dim))
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = weights.mean(axis=1)                    # (N, L, S)
        return output, (weights if batched else weights.reshape(weights.shape[1:]))

    # ------------------------------------------------------------ pieces of forward
    def _project_heads(self, query, key, value):
        """Queries (N, heads, L, head_dim), keys and values (N, heads, S, head_dim)."""
        E = self.embed_dim
        if query is key and key is value:
            # Self-attention: queries, keys and values in one (N·L, E) @ (E, 3E) GEMM.
            return self._split_heads(self._project(query, 0, 3 * E), 3)
        (q,) = self._split_heads(self._project(query, 0, E), 1)
        if key is value:
            k, v = self._split_heads(self._project(key, E, 3 * E), 2)
        else:
            (k,) = self._split_heads(self._project(key, E, 2 * E), 1)
            (v,) = self._split_heads(self._project(value, 2 * E, 3 * E), 1)
        return q, k, v

    def _project(self, x, start, stop):
        """x @ rows start:stop of in_proj_weight, plus the bias: (..., stop - start)."""
        whole = start == 0 and stop == 3 * self.embed_dim
        weight = self.in_proj_weight if whole else self.in_proj_weight[start:stop]
        out = x @ weight.T
        if self.in_proj_bias is not None:
            out = out + (self.in_proj_bias if whole else self.in_proj_bias[start:stop])
        return out

    def _split_heads(self, projected, parts):
        """(L, N, parts·E) (or (N, L, parts·E)) -> ``parts`` tensors (N, heads, L, head_dim)."""
        a, b = projected.shape[:2]
        if parts == 1:
            x = projected.reshape(a, b, self.num_heads, self.head_dim)
            return [x.transpose(0, 2, 1, 3) if self.batch_first else x.transpose(1, 2, 0, 3)]
        x = projected.reshape(a, b, parts, self.num_heads, self.head_dim)
        # -> (parts, N, heads, L, head_dim); the transpose is a view, no copy
        x = x.transpose(2, 0, 3, 1, 4) if self.batch_first else x.transpose(2, 1, 3, 0, 4)
        return [x[i] for i in range(parts)]

    def _merge_heads(self, context):
        """(N, heads, L, head_dim) -> (L, N, E) (or (N, L, E) when batch_first)."""
        N, _, L, _ = context.shape
        if self.batch_first:
            return context.transpose(0, 2, 1, 3).reshape(N, L, self.embed_dim)
        return context.transpose(2, 0, 1, 3).reshape(L, N, self.embed_dim)

    def _check(self, query, key, value, key_padding_mask, attn_mask, cache):
        """Validate shapes before any computation; return the combined mask array
        broadcastable to (N, heads, L, S), or None."""
        name, E = "MultiheadAttention", self.embed_dim
        if query.ndim not in (2, 3):
            raise ValueError(f"{name}: query has shape {query.shape}, expected 3 dims "
                             f"({'(N, L, E)' if self.batch_first else '(L, N, E)'}) or 2 (L, E)")
        for arg, x in (("query", query), ("key", key), ("value", value)):
            if x.ndim != query.ndim or x.shape[-1] != E:
                raise ValueError(f"{name}: {arg} has shape {x.shape}, expected {query.ndim} dims "
                                 f"ending in embed_dim={E}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{name}: key has shape {key.shape} and value {value.shape}; they "
                             f"must agree in all but the last axis")
        batched = query.ndim == 3
        seq_axis = 1 if batched and self.batch_first else 0
        L, S = query.shape[seq_axis], key.shape[seq_axis]
        N = query.shape[1 - seq_axis] if batched else 1
        if batched and key.shape[1 - seq_axis] != N:
            raise ValueError(f"{name}: query has shape {query.shape} and key {key.shape}; their "
                             f"batch sizes differ")
        if cache is not None:
            if not isinstance(cache, KeyValueCache):
                raise TypeError(f"{name}: cache must be a KeyValueCache or None, got "
                                f"{type(cache).__name__}")
            if len(cache) and cache.keys.shape[:2] != (N, self.num_heads):
                raise ValueError(f"{name}: the cache holds keys of shape {cache.keys.shape}, "
                                 f"expected (batch={N}, heads={self.num_heads}, positions, "
                                 f"head_dim); select() its rows to follow the batch")
            S = len(cache) if cache.static and len(cache) else len(cache) + S
        mask = None
        if key_padding_mask is not None:
            kpm = mask_array(key_padding_mask, "key_padding_mask", query.device)
            expected = (N, S) if batched else (S,)
            if kpm.shape != expected:
                raise ValueError(f"{name}: key_padding_mask has shape {kpm.shape}, expected "
                                 f"{expected} {'(batch, key length)' if batched else '(key length,)'}")
            mask = key_padding_mask_for_scores(kpm.reshape(N, S), 4)     # (N, 1, 1, S)
        if attn_mask is not None:
            am = mask_array(attn_mask, "attn_mask", query.device)
            if am.shape == (N * self.num_heads, L, S):
                am = am.reshape(N, self.num_heads, L, S)
            elif am.shape != (L, S):
                raise ValueError(f"{name}: attn_mask has shape {am.shape}, expected ({L}, {S}) or "
                                 f"({N * self.num_heads}, {L}, {S}) (batch·heads, L, S)")
            mask = merge_masks(mask, am, query.dtype)
        return mask

    def extra_repr(self):
        blockwise = (f", attention='blockwise', block_size={self.block_size}"
                     if self.attention == "blockwise" else "")
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}{blockwise}")


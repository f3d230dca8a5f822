"""Attention in blocks of keys: the same softmax(Q Kᵀ · scale + mask) V without the n × n matrix.

``scaled_dot_product_attention`` (attention.py) builds every score at once: for n
tokens an n × n matrix of scores, another of weights, and in backward their
gradients. At n = 8192 with 4 heads that is 1 GiB per matrix in float32. Yet
each output row only needs a weighted *sum* over keys, and a sum can be taken a
piece at a time. This module walks over the keys in blocks of ``block_size``
and keeps, for every query, three running quantities:

    running_max   m  the largest score seen so far                (..., L, 1)
    denominator   l  Σ exp(score_j − m) over the keys seen so far (..., L, 1)
    accumulator   a  Σ exp(score_j − m) · value_j                 (..., L, Ev)

After the last block, output = a / l: exactly softmax(scores) @ values. Only one
block of scores, (..., L, block_size), exists at a time, so memory grows as n
(times the block size), not n². This is the "online softmax" of Milakov &
Gimelshein (2018) as used by FlashAttention (Dao et al., 2022).

Backward does not keep the weights either. It saves one number per query, the
log of the softmax's normaliser, lse = m + log l, and recomputes each block's
weights as exp(score − lse) from Q and K: about twice the arithmetic of the
plain version's backward, a fraction of its memory.

Masks follow masks.py: a boolean mask is True where a query may NOT attend;
a float mask is added to the scores. A query that may attend to no key at all
gets a zero output. Dropout on the weights is not supported here.
"""
import math

from .. import backend
from ..ops import dependence
from .._tensor import Function, unbroadcast
from .masks import check_query_key_value, mask_array


def _block_columns(mask, start, stop):
    """Columns start:stop (keys) of a mask that broadcasts to (..., L, S); a mask with
    one column (the same for every key) is that column for every block."""
    return mask if mask.shape[-1] == 1 else mask[..., start:stop]


class BlockwiseAttention(Function):
    """softmax(query keyᵀ · scale + mask) value, one block of keys at a time.

    Inputs: query (..., L, E), key (..., S, E), value (..., S, Ev); leading axes
    broadcast. Parameters (set by ``apply``): ``scale``, ``block_size``, ``mask``
    (None, or a boolean or float array that broadcasts to (..., L, S)) and
    ``is_causal``. Output (..., L, Ev). Saves query, key, value, the output and
    the per-query log-sum-exp (..., L, 1): nothing of size L × S.
    """
    mask = None
    is_causal = False

    def masked_scores(self, scaled_query, key, start, stop):
        """The scores of all queries against keys start:stop, with the hidden ones
        set to -inf (so that exp gives them weight exactly 0): (..., L, block)."""
        xp = backend.array_module(key)
        key_block = key[..., start:stop, :]                                  # (..., block, E)
        scores = scaled_query @ xp.swapaxes(key_block, -1, -2)              # (..., L, block)
        minus_inf = scores.dtype.type(-math.inf)
        if self.mask is not None:
            block_mask = _block_columns(self.mask, start, stop)
            if block_mask.dtype.kind == "b":
                scores = xp.where(block_mask, minus_inf, scores)
            else:
                scores = scores + block_mask.astype(scores.dtype, copy=False)
        if self.is_causal:  # query i may not see key j > i; built per block, never L × S
            future = xp.arange(start, stop) > xp.arange(scores.shape[-2])[:, None]  # (L, block)
            scores = xp.where(future, minus_inf, scores)
        return scores

    def key_blocks(self, num_queries, num_keys):
        """(start, stop) of each block of keys. With a causal mask, blocks that start
        after the last query are hidden from every query and are skipped."""
        for start in range(0, num_keys, self.block_size):
            if self.is_causal and start >= num_queries:
                break
            yield start, min(start + self.block_size, num_keys)

    def forward(self, query, key, value):
        xp = backend.array_module(query)
        dtype = query.dtype
        scaled_query = query * self.scale      # scaling L·E numbers, not L·S scores
        # Start from the empty sum: no key seen, max -inf, sums 0. These (1, 1)
        # arrays broadcast to the full shapes at the first update.
        running_max = xp.full((1, 1), -math.inf, dtype=dtype)              # m  (..., L, 1)
        denominator = xp.zeros((1, 1), dtype=dtype)                         # l  (..., L, 1)
        accumulator = xp.zeros((1, 1), dtype=dtype)                         # a  (..., L, Ev)
        for start, stop in self.key_blocks(query.shape[-2], key.shape[-2]):
            scores = self.masked_scores(scaled_query, key, start, stop)     # (..., L, block)
            new_max = xp.maximum(running_max, scores.max(axis=-1, keepdims=True))
            # Rows that have seen no visible key yet have new_max = -inf; shifting
            # by 0 instead keeps exp(-inf - (-inf)) = NaN out (their exps are all 0).
            shift = xp.where(xp.isfinite(new_max), new_max, dtype.type(0))
            # Why rescaling is exact: l and a are sums of exp(score_j - m). Multiplying
            # by exp(m - m_new) turns each term into exp(score_j - m_new), as if the
            # new max had been subtracted from the start. The max only keeps every
            # exponent <= 0 (no overflow); the final ratio a / l does not depend on it.
            correction = xp.exp(running_max - shift)                        # (..., L, 1), <= 1
            exp_scores = xp.exp(scores - shift)    # unnormalised weights  (..., L, block)
            denominator = denominator * correction + exp_scores.sum(axis=-1, keepdims=True)
            accumulator = accumulator * correction + exp_scores @ value[..., start:stop, :]
            running_max = new_max
        seen_any = denominator > 0             # False for a query that may attend to no key
        output = accumulator / xp.where(seen_any, denominator, dtype.type(1))  # hidden: 0 / 1
        # log Σ_j exp(score_j) = m + log l. For a query with no visible key it is +inf,
        # so that backward's exp(score - lse) = exp(-inf) = 0 there too.
        log_sum_exp = xp.where(seen_any,
                               running_max + xp.log(xp.where(seen_any, denominator, 1)),
                               dtype.type(math.inf))                        # (..., L, 1)
        self.query, self.key, self.value = query, key, value
        self.output, self.log_sum_exp = output, log_sum_exp
        return output

    def backward(self, grad_output):
        # With P the weights, O = P V and P = softmax(S) row by row:
        #   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − D)  where D = rowsum(dP ∘ P),
        # and rowsum(dP ∘ P) = rowsum(dO ∘ (P V)) = rowsum(dO ∘ O): D needs no P.
        xp = backend.array_module(grad_output)
        query, key, value = self.query, self.key, self.value
        scaled_query = query * self.scale
        row_dot = (grad_output * self.output).sum(axis=-1, keepdims=True)    # D  (..., L, 1)
        grad_query = xp.zeros_like(query)
        grad_key, grad_value = xp.zeros_like(key), xp.zeros_like(value)
        for start, stop in self.key_blocks(query.shape[-2], key.shape[-2]):
            scores = self.masked_scores(scaled_query, key, start, stop)     # (..., L, block)
            weights = xp.exp(scores - self.log_sum_exp)                     # P, recomputed
            key_block, value_block = key[..., start:stop, :], value[..., start:stop, :]
            grad_weights = grad_output @ xp.swapaxes(value_block, -1, -2)   # dP (..., L, block)
            grad_scores = weights * (grad_weights - row_dot)                # dS (..., L, block)
            # scores = (query · scale) keyᵀ, so scale appears once in each of dQ and dK.
            grad_query += unbroadcast(grad_scores @ key_block * self.scale, query.shape)
            blocks = key.shape[:-2] + (stop - start, key.shape[-1])
            grad_key[..., start:stop, :] = unbroadcast(
                xp.swapaxes(grad_scores, -1, -2) @ scaled_query, blocks)    # dSᵀ Q · scale
            blocks = value.shape[:-2] + (stop - start, value.shape[-1])
            grad_value[..., start:stop, :] = unbroadcast(
                xp.swapaxes(weights, -1, -2) @ grad_output, blocks)         # Pᵀ dO
        return grad_query, grad_key, grad_value

    def _score_count(self):
        return self.output.size // self.output.shape[-1] * self.key.shape[-2]   # (...)·L·S

    def flops(self):
        # Q Kᵀ and P V (2 flops per multiply-add), plus about 5 per score for the softmax.
        E, Ev = self.query.shape[-1], self.value.shape[-1]
        return self._score_count() * (2 * E + 2 * Ev + 5)

    def backward_flops(self):
        # Recompute Q Kᵀ, then dV, dP, dQ, dK: five products, plus the elementwise work.
        E, Ev = self.query.shape[-1], self.value.shape[-1]
        return self._score_count() * (6 * E + 4 * Ev + 5)

    # ------------------------------------------------------------ instrument data
    # With unlimited processors every block's scores could be computed at once, but
    # the loop carries the running max, the denominator and the accumulator from one
    # block to the next: each block adds steps to that chain. The span follows the
    # data dependences of forward (and backward) line by line, each line's steps
    # counted as the tracer counts the ops it would be written with (an elementwise
    # step 1, a sum or a max of r numbers ⌈log2 r⌉, a matmul over k 1 + ⌈log2 k⌉).
    # ``ready`` numbers are the step at which a quantity is known.
    def _scores_ready(self):
        """Steps to one block's masked scores: scale the queries, Q Kᵀ, the masks."""
        masking = (self.mask is not None) + self.is_causal
        return 1 + (1 + dependence.tree(self.query.shape[-1])) + masking

    def span(self):
        tree = dependence.tree
        scores = self._scores_ready()
        running_max = denominator = accumulator = 0      # the empty sum, known at step 0
        for start, stop in self.key_blocks(self.query.shape[-2], self.key.shape[-2]):
            block = stop - start
            new_max = max(running_max, scores + tree(block)) + 1       # maximum(m, row max)
            shift = new_max + 1                                         # where(isfinite)
            correction = max(running_max, shift) + 2                    # exp(m - shift)
            exp_scores = max(scores, shift) + 2                         # exp(scores - shift)
            denominator = max(max(denominator, correction) + 1,         # l · correction
                              exp_scores + tree(block)) + 1             # + row sum
            accumulator = max(max(accumulator, correction) + 1,         # a · correction
                              exp_scores + 1 + tree(block)) + 1         # + exp_scores @ V
            running_max = new_max
        return max(accumulator, denominator + 2) + 1    # a / where(l > 0, l, 1)

    def backward_span(self):
        tree = dependence.tree
        num_queries = self.query.shape[-2]
        scores = self._scores_ready()
        row_dot = 1 + tree(self.value.shape[-1])          # D = rowsum(dO ∘ O)
        grad_query = finished = 0
        for start, stop in self.key_blocks(num_queries, self.key.shape[-2]):
            block = stop - start
            weights = scores + 2                            # exp(scores - lse)
            grad_weights = 1 + tree(self.value.shape[-1])  # dO Vᵀ
            grad_scores = max(weights, grad_weights, row_dot) + 2      # P ∘ (dP - D)
            # dQ accumulates over the blocks: one addition per block on its chain.
            grad_query = max(grad_query, grad_scores + 1 + tree(block) + 1) + 1
            finished = max(finished, grad_scores + 1 + tree(num_queries),   # dK block
                           weights + 1 + tree(num_queries))                 # dV block
        return max(grad_query, finished)

    def depends(self, depths, out):
        # Output row i reads query row i and every key and value (hidden keys too: an
        # over-estimate of the path where a mask hides them, never an under-estimate).
        query, key, value = depths
        parts = [None if query is None else query.max(axis=-1, keepdims=True)]   # (..., L, 1)
        parts += [None if d is None else d.max(axis=(-2, -1), keepdims=True)      # (..., 1, 1)
                  for d in (key, value)]
        return dependence.elementwise(parts, out)


# ---------------------------------------------------------------- checking the arguments
def _broadcast_shapes(*shapes):
    """The shape that ``shapes`` broadcast to, or None if they do not."""
    ndim = max(len(s) for s in shapes)
    result = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            return None
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def blockwise_attention(query, key, value, attn_mask=None, is_causal=False, block_size=128,
                        scale=None):
    """softmax(query keyᵀ · scale + mask) value, keys taken ``block_size`` at a time.

    The same result as ``scaled_dot_product_attention(...)[0]`` (to rounding), in
    memory that grows linearly with the sequence length: the weights are never
    materialised, so none are returned.

    query: (..., L, E), key: (..., S, E), value: (..., S, Ev); the leading axes
    (batch, heads) broadcast. attn_mask: boolean (True = may not attend) or float
    (added to the scores), broadcastable to (..., L, S). is_causal: also hide the
    future (key j > query i). block_size: keys per block (an int >= 1; the last
    block may be shorter). scale: default 1/√E. Returns the output (..., L, Ev).
    """
    name = "blockwise_attention"
    check_query_key_value(name, query, key, value)
    if _broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2]) is None:
        raise ValueError(f"{name}: the leading (batch, head) axes of query {query.shape}, "
                         f"key {key.shape} and value {value.shape} do not broadcast")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"{name}: block_size must be an int >= 1, got {block_size!r}")
    seq_q, seq_k = query.shape[-2], key.shape[-2]
    mask = None
    if attn_mask is not None:
        mask = mask_array(attn_mask, "attn_mask", query.device)
        scores_shape = _broadcast_shapes(query.shape[:-2], key.shape[:-2]) + (seq_q, seq_k)
        joint = _broadcast_shapes(mask.shape, scores_shape)
        if mask.ndim < 2 or joint is None or joint[-2:] != (seq_q, seq_k):
            raise ValueError(f"{name}: attn_mask has shape {mask.shape}, expected one that "
                             f"broadcasts to (..., {seq_q}, {seq_k}) with the scores' "
                             f"leading axes {scores_shape[:-2]}")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    return BlockwiseAttention.apply(query, key, value, mask=mask, is_causal=bool(is_causal),
                                    block_size=block_size, scale=scale)


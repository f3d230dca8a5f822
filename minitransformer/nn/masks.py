"""Attention masks in one place, and the check of attention's arguments.

Masks follow ``torch.nn.MultiheadAttention``:

* a **boolean** mask is True where a query may NOT attend to a key;
* a **float** mask is added to the scores (-inf hides a key, a finite value biases it).

A mask broadcasts to the scores, (..., L, S): L queries against S keys. Both
attention formulas (``attention.py``, ``blockwise.py``) read their masks
through the helpers below, so that each kind of mask is built in one way:

* :func:`causal_mask` -- the future hidden (a decoder must not see what it is to predict);
* :func:`padding_mask` -- padding hidden, from the sentence lengths (batch, width);
* :func:`key_padding_mask_for_scores` -- a (batch, S) padding mask in the scores'
  layout (batch, 1, ..., 1, S), the same for every query (and head);
* :func:`merge_masks` -- two masks as one;
* :func:`mask_array` and :func:`split_mask` -- a mask argument checked, and cut into
  its boolean part (for ``masked_softmax``) and its float part (added to the scores).
"""
import math

from .. import backend
from .._tensor import Tensor


# ---------------------------------------------------------------- building masks
def causal_mask(query_len, key_len=None, device=None, past=0):
    """A boolean (query_len, key_len) mask, True where key j is in query i's future.

    ``past``: how many keys come before the first query. Without a cache it is 0
    and query i sees keys 0..i (True above the diagonal; PyTorch's
    ``generate_square_subsequent_mask`` gives the same positions as a float -inf
    mask). With a key/value cache holding ``past`` earlier positions, the queries
    are the last ``query_len`` positions: query i sees keys 0..past + i.
    """
    key_len = query_len if key_len is None else key_len
    xp = backend.xp_for(device)
    return Tensor(xp.triu(xp.ones((query_len, key_len), dtype=bool), k=1 + past))


def padding_mask(lengths, width, device=None):
    """A boolean Tensor (len(lengths), width), True at the padding: position >= that
    row's length. ``lengths``: a list or 1-D array of ints."""
    xp = backend.xp_for(device)
    lengths = xp.asarray(lengths)
    return Tensor(xp.arange(width)[None, :] >= lengths[:, None])


def key_padding_mask_for_scores(key_padding_mask, scores_ndim):
    """A key padding mask (batch, S) (array or Tensor) reshaped to broadcast to scores
    of ``scores_ndim`` dims (batch, ..., L, S): (batch, 1, ..., 1, S). A padding key is
    hidden from every query (and every head)."""
    mask = key_padding_mask.data if isinstance(key_padding_mask, Tensor) else key_padding_mask
    batch, keys = mask.shape
    return mask.reshape((batch,) + (1,) * (scores_ndim - 2) + (keys,))


def merge_masks(first, second, dtype):
    """One mask array hiding what either hides (None where both are None).

    Two boolean masks merge with "or"; otherwise both become float masks (a boolean
    True becomes -inf) of ``dtype`` and add up.
    """
    if first is None or second is None:
        return second if first is None else first
    if first.dtype.kind == second.dtype.kind == "b":
        return first | second
    xp = backend.array_module(first)
    as_bias = [m if m.dtype.kind == "f" else xp.where(m, -math.inf, 0.0).astype(dtype)
               for m in (first, second)]
    return as_bias[0] + as_bias[1]


# ---------------------------------------------------------------- reading mask arguments
def mask_array(mask, argument, device):
    """The array of a mask given as a Tensor or an array, checked: boolean or float,
    on ``device``. ``argument`` names it in errors."""
    mask = mask.data if isinstance(mask, Tensor) else mask
    if not backend.is_array(mask):
        raise TypeError(f"{argument} must be a Tensor or an array, got {type(mask).__name__}")
    if mask.dtype.kind not in "bf":
        raise TypeError(f"{argument} must be boolean (True = may not attend) or float "
                        f"(added to the scores), got dtype {mask.dtype}")
    if backend.device_of(mask) != device:
        raise RuntimeError(f"{argument} is on {backend.device_of(mask)}, the inputs on {device}")
    return mask


def split_mask(mask, dtype):
    """A mask array as (hide, bias): the boolean part for masked_softmax and the float
    part (a Tensor of ``dtype``) to add to the scores; None where absent."""
    if mask is None:
        return None, None
    if mask.dtype.kind == "b":
        return mask, None
    return None, Tensor(mask.astype(dtype, copy=False))


# ---------------------------------------------------------------- the formula's arguments
def check_query_key_value(name, query, key, value):
    """Shapes (..., L, E), (..., S, E), (..., S, Ev), or a ValueError naming ``name``."""
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError(f"{name}: query, key and value need at least 2 dims (..., seq, "
                         f"features), got {query.shape}, {key.shape}, {value.shape}")
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(f"{name}: key has shape {key.shape}, expected features "
                         f"{query.shape[-1]} to match query {query.shape}")
    if value.shape[-2] != key.shape[-2]:
        raise ValueError(f"{name}: value has shape {value.shape}, expected {key.shape[-2]} "
                         f"positions to match key {key.shape}")

"""Batches for teacher forcing: padding, masks, and batches of similar length.

A batch stacks sentences of different lengths into one rectangle, filling the short
ones with ``<pad>`` (id 0). Masks then tell attention and the loss which positions
are padding. The target is used twice, shifted by one position (teacher forcing):

    target:   Der Hund schläft .
    tgt_in:   <bos> Der Hund schläft .        what the decoder reads
    tgt_out:  Der Hund schläft . <eos>        what it must predict, position by position

Masks follow PyTorch's boolean convention: **True means "ignore"** (a padding position,
or a future position the decoder may not look at).

Padding is wasted work, so :func:`make_batches` groups sentences of similar length:
it shuffles the data, cuts it into pools of ``pool_batches`` batches, sorts each pool
by length and cuts it into batches, then shuffles the batch order. The seed makes the
whole order reproducible; pass ``seed=base_seed + epoch`` for a new order each epoch.

All arrays are created on the host through :mod:`minitransformer.backend` and returned
as :class:`minitransformer.Tensor` (int64 ids, bool masks) on the requested device.
"""
import random
from dataclasses import dataclass

from .. import backend
from ..nn.attention import causal_mask as nn_causal_mask
from .._tensor import Tensor, tensor
from .vocab import Vocabulary

_np = backend.numpy  # host arrays: batches are built on the CPU, then moved


@dataclass(eq=False)  # Tensors compare elementwise: no == for whole batches
class Batch:
    """One batch of ``B`` sentence pairs; S = longest source, T = longest target + 1.

    * ``src``: Tensor (B, S) int64, source ids, ``<pad>`` after each sentence
    * ``tgt_in``: Tensor (B, T) int64, ``<bos>`` + target ids (decoder input)
    * ``tgt_out``: Tensor (B, T) int64, target ids + ``<eos>`` (what to predict)
    * ``src_padding_mask``: Tensor (B, S) bool, True at padding
    * ``tgt_padding_mask``: Tensor (B, T) bool, True at padding (the same positions in
      ``tgt_in`` and ``tgt_out``)
    * ``n_tokens``: int, the non-padding positions of ``tgt_out`` (the predictions the
      loss counts; use it for tokens/s and to average the loss)
    * ``indices``: list of B ints, where each pair sits in the list given to
      :func:`make_batches` (to put translations back in corpus order)
    """
    src: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    src_padding_mask: Tensor
    tgt_padding_mask: Tensor
    n_tokens: int
    indices: list

    def __len__(self):
        return self.src.shape[0]

    @property
    def device(self):
        return self.src.device

    def to(self, device):
        """This batch with every tensor on ``device``."""
        return Batch(self.src.to(device), self.tgt_in.to(device), self.tgt_out.to(device),
                     self.src_padding_mask.to(device), self.tgt_padding_mask.to(device),
                     self.n_tokens, self.indices)


def causal_mask(n, device=None):
    """Tensor (n, n) bool, True above the diagonal: position i may not attend to the
    later positions j > i (the decoder must not see the words it is to predict)."""
    return nn_causal_mask(n, device=device)


def encode_pairs(pairs, src_vocab, tgt_vocab, src_eos=True):
    """``(source, target)`` strings -> ``(src_ids, tgt_ids)`` lists for
    :func:`make_batches`. The source ends with ``<eos>`` unless ``src_eos=False``;
    the target gets no special tokens (the batch adds ``<bos>``/``<eos>``)."""
    return [(src_vocab.encode(s, add_eos=src_eos), tgt_vocab.encode(t, add_eos=False))
            for s, t in pairs]


def _padded(sequences, width, pad_id):
    """int64 array (len(sequences), width) of the sequences, padded with ``pad_id``."""
    out = _np.full((len(sequences), width), pad_id, dtype=_np.int64)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = seq
    return out


def _padding_mask(lengths, width):
    """bool array (len(lengths), width): True where position >= that row's length."""
    return _np.arange(width)[None, :] >= _np.asarray(lengths)[:, None]


def make_batch(examples, indices=None, device=None, pad_id=Vocabulary.pad_id,
               bos_id=Vocabulary.bos_id, eos_id=Vocabulary.eos_id):
    """One :class:`Batch` from ``examples``, a list of ``(src_ids, tgt_ids)`` (lists
    of ints; see :func:`encode_pairs`). ``indices`` default to 0..B-1."""
    if not examples:
        raise ValueError("make_batch needs at least one example")
    sources = [list(s) for s, _ in examples]
    tgt_in = [[bos_id] + list(t) for _, t in examples]
    tgt_out = [list(t) + [eos_id] for _, t in examples]
    if any(len(s) == 0 for s in sources):
        raise ValueError("make_batch: a source sequence is empty")
    src_len = max(map(len, sources))
    tgt_len = max(map(len, tgt_in))
    tgt_lengths = [len(t) for t in tgt_in]
    arrays = (_padded(sources, src_len, pad_id), _padded(tgt_in, tgt_len, pad_id),
              _padded(tgt_out, tgt_len, pad_id),
              _padding_mask([len(s) for s in sources], src_len),
              _padding_mask(tgt_lengths, tgt_len))
    src, t_in, t_out, src_mask, tgt_mask = (tensor(a, device=device) for a in arrays)
    return Batch(src, t_in, t_out, src_mask, tgt_mask, n_tokens=sum(tgt_lengths),
                 indices=list(range(len(examples))) if indices is None else list(indices))


def make_batches(examples, batch_size=32, max_tokens=None, shuffle=True, seed=0,
                 sort_by_length=True, pool_batches=50, device=None):
    """Cut ``examples`` (``(src_ids, tgt_ids)`` pairs) into a list of :class:`Batch`.

    ``batch_size``: at most this many pairs per batch. ``max_tokens``: when given, a
    batch also stops growing before its padded size, B x max(S, T), would exceed it
    (long sentences then come in smaller batches). ``shuffle``: shuffle the pairs and
    the batch order with ``seed`` (for training); without it the pairs keep their
    order (apart from sorting inside pools) and so do the batches (for evaluation).
    ``sort_by_length``: sort each pool of ``pool_batches * batch_size`` pairs by
    length so a batch holds similar lengths and little padding.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = random.Random(seed)
    order = list(range(len(examples)))
    if shuffle:
        rng.shuffle(order)
    pool_size = batch_size * pool_batches
    groups = []
    for start in range(0, len(order), pool_size):
        pool = order[start:start + pool_size]
        if sort_by_length:
            pool.sort(key=lambda i: (len(examples[i][0]), len(examples[i][1])))
        groups += _cut(pool, examples, batch_size, max_tokens)
    if shuffle:
        rng.shuffle(groups)
    return [make_batch([examples[i] for i in group], indices=group, device=device)
            for group in groups]


def _cut(pool, examples, batch_size, max_tokens):
    """Consecutive groups of ``pool`` with at most ``batch_size`` members and padded
    size within ``max_tokens``; a single pair larger than it still gets a batch."""
    groups, group, width = [], [], 0
    for i in pool:
        src, tgt = examples[i]
        pair_width = max(len(src), len(tgt) + 1)  # +1: the <bos>/<eos> of the target
        new_width = max(width, pair_width)
        too_big = max_tokens is not None and (len(group) + 1) * new_width > max_tokens
        if group and (len(group) == batch_size or too_big):
            groups.append(group)
            group, new_width = [], pair_width
        group.append(i)
        width = new_width
    if group:
        groups.append(group)
    return groups

"""Batches: shapes, dtypes, shifted targets, padding masks, causal mask, length
bucketing, seeded shuffling, devices."""
import numpy as np
import pytest

from minitransformer.translation.batching import (causal_mask, encode_pairs, make_batch,
                                                  make_batches)
from minitransformer.translation.vocab import Vocabulary
from tests.conftest import to_host

PAD, BOS, EOS = 0, 1, 2


def test_make_batch_pads_shifts_and_masks(device):
    examples = [([5, 6, 7, EOS], [8, 9]), ([5, EOS], [8, 9, 10, 11])]
    b = make_batch(examples, device=device)
    assert b.src.device == device and b.src.dtype == np.int64
    assert to_host(b.src).tolist() == [[5, 6, 7, EOS], [5, EOS, PAD, PAD]]
    assert to_host(b.tgt_in).tolist() == [[BOS, 8, 9, PAD, PAD], [BOS, 8, 9, 10, 11]]
    assert to_host(b.tgt_out).tolist() == [[8, 9, EOS, PAD, PAD], [8, 9, 10, 11, EOS]]
    assert b.src_padding_mask.dtype == np.bool_
    assert to_host(b.src_padding_mask).tolist() == [[False] * 4, [False, False, True, True]]
    assert to_host(b.tgt_padding_mask).tolist() == [[False, False, False, True, True],
                                                    [False] * 5]
    # the mask marks exactly the padding of both shifted targets
    assert (to_host(b.tgt_padding_mask) == (to_host(b.tgt_out) == PAD)).all()
    assert b.n_tokens == 3 + 5 and len(b) == 2 and b.indices == [0, 1]


def test_causal_mask(device):
    m = causal_mask(4, device=device)
    assert m.device == device and m.dtype == np.bool_ and m.shape == (4, 4)
    expected = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=bool)
    assert (to_host(m) == expected).all()


def _examples(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(list(rng.integers(4, 50, size=rng.integers(1, 30))) + [EOS],
             list(rng.integers(4, 50, size=rng.integers(1, 30)))) for _ in range(n)]


def test_every_example_appears_once_and_batches_match_indices():
    examples = _examples(103)
    batches = make_batches(examples, batch_size=8, seed=1)
    indices = sorted(i for b in batches for i in b.indices)
    assert indices == list(range(103))
    for b in batches:
        assert len(b) <= 8
        for row, i in enumerate(b.indices):
            src = to_host(b.src)[row]
            assert src[:len(examples[i][0])].tolist() == examples[i][0]


def test_length_bucketing_reduces_padding():
    examples = _examples(400)

    def padding(batches):
        return sum(int(to_host(b.src_padding_mask).sum()) for b in batches)

    sorted_batches = make_batches(examples, batch_size=16, seed=0)
    unsorted = make_batches(examples, batch_size=16, seed=0, sort_by_length=False)
    assert padding(sorted_batches) < padding(unsorted) / 3


def test_shuffling_is_reproducible_by_seed():
    examples = _examples(200)
    order = lambda seed: [b.indices for b in make_batches(examples, batch_size=10, seed=seed)]
    assert order(5) == order(5)
    assert order(5) != order(6)


def test_no_shuffle_keeps_order_without_sorting():
    examples = _examples(25)
    batches = make_batches(examples, batch_size=10, shuffle=False, sort_by_length=False)
    assert [b.indices for b in batches] == [list(range(10)), list(range(10, 20)),
                                            list(range(20, 25))]


def test_max_tokens_caps_padded_batch_size():
    examples = _examples(300)
    for b in make_batches(examples, batch_size=64, max_tokens=200, seed=0):
        assert len(b) == 1 or len(b) * max(b.src.shape[1], b.tgt_in.shape[1]) <= 200


def test_encode_pairs_and_batch_decode_back():
    pairs = [("the dog sleeps .", "der hund schläft ."), ("a cat", "eine katze")]
    src_vocab = Vocabulary.build(s for s, _ in pairs)
    tgt_vocab = Vocabulary.build(t for _, t in pairs)
    examples = encode_pairs(pairs, src_vocab, tgt_vocab)
    assert examples[1][0][-1] == EOS and EOS not in examples[1][1]
    b = make_batches(examples, batch_size=2, shuffle=False)[0]
    for row, i in enumerate(b.indices):
        assert tgt_vocab.decode(b.tgt_out.data[row]) == pairs[i][1].replace(" .", ".")
        assert src_vocab.decode(b.src.data[row]) == pairs[i][0].replace(" .", ".")


def test_batch_to_device(device):
    b = make_batch([([4, EOS], [5])]).to(device)
    assert b.device == device and b.tgt_padding_mask.device == device


def test_bad_arguments():
    with pytest.raises(ValueError):
        make_batch([])
    with pytest.raises(ValueError):
        make_batches([([4], [5])], batch_size=0)

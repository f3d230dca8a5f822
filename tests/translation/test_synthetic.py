"""Synthetic tasks: exact targets, lengths, determinism, vocabulary coverage."""
import pytest

from minitransformer.translation.synthetic import (copy_task, make_task, mirror_dictionary,
                                                   mirror_task, reverse_task, sequence_accuracy,
                                                   task_vocabulary, token_accuracy)


@pytest.mark.parametrize("length", [8, 64, 512])
def test_targets_are_exact(length):
    for (src, tgt) in copy_task(5, length, vocab_size=16, seed=1):
        assert tgt == src and len(src.split()) == length
    for (src, tgt) in reverse_task(5, length, vocab_size=16, seed=1):
        assert tgt.split() == src.split()[::-1]
    mapping = mirror_dictionary(16)
    for (src, tgt) in mirror_task(5, length, vocab_size=16, seed=1):
        assert tgt.split() == [mapping[w] for w in reversed(src.split())]


def test_mirror_dictionary_is_a_fixed_derangement():
    mapping = mirror_dictionary(20)
    assert sorted(mapping.values()) == sorted(mapping)
    assert all(k != v for k, v in mapping.items())
    assert mirror_dictionary(20) == mapping  # the same dictionary for train and test
    # test data drawn with another seed still uses the same dictionary
    src, tgt = mirror_task(1, 10, vocab_size=20, seed=99)[0]
    assert tgt.split() == [mapping[w] for w in reversed(src.split())]


def test_seeded_and_length_ranges():
    assert make_task("reverse", 10, 8, seed=3) == make_task("reverse", 10, 8, seed=3)
    assert make_task("reverse", 10, 8, seed=3) != make_task("reverse", 10, 8, seed=4)
    lengths = {len(s.split()) for s, _ in copy_task(200, (8, 12), seed=0)}
    assert lengths == {8, 9, 10, 11, 12}


def test_vocabulary_covers_every_symbol():
    vocab = task_vocabulary(32)
    assert len(vocab) == 32 + 4
    for src, tgt in mirror_task(20, 50, vocab_size=32):
        assert vocab.unk_id not in vocab.encode(src) + vocab.encode(tgt)
        assert vocab.decode(vocab.encode(tgt)) == tgt


def test_bad_arguments():
    with pytest.raises(ValueError):
        make_task("sort", 1, 8)
    with pytest.raises(ValueError):
        copy_task(1, 0)
    with pytest.raises(ValueError):
        copy_task(1, 8, vocab_size=1)


def test_accuracies():
    refs = ["w1 w2 w3", "w4 w5"]
    assert sequence_accuracy(refs, refs) == 1.0
    assert sequence_accuracy(["w1 w2 w3", "w4 w6"], refs) == 0.5
    assert token_accuracy(["w1 w2 w3", "w4 w6"], refs) == 4 / 5
    assert token_accuracy(["w1 w2", "w4 w5 w9"], refs) == 4 / 6  # too short, too long

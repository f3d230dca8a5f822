"""beam_search against an exhaustive search, on a model small enough to enumerate.

The model is a Markov chain: the next token's log-probabilities depend only on the
sentence (its first source token) and the previous token. With a beam wider than the
number of live hypotheses, beam search must return exactly the best sequence that
brute force finds.
"""
import itertools

import numpy as np
import pytest

from minitransformer import backend
from minitransformer._tensor import Tensor
from minitransformer.translation.decode import beam_search

BOS, EOS, WORDS = 1, 2, (3, 4)
VOCAB = 5


class MarkovTranslator:
    """The decoder interface of translation/models.py over fixed transition tables.

    tables: (sentences, vocab, vocab) log-probabilities; row [s, previous] gives the
    next token's. The state is (sentence of each row, previous token of each row)."""

    def __init__(self, tables, device):
        self.tables = backend.to_device(tables, device)

    def encode(self, src, src_padding_mask):
        return src.data[:, 0]                       # (batch,): the sentence's table

    def start_decoding(self, memory, src_padding_mask):
        return memory

    def decode_step(self, state, tokens):
        return Tensor(self.tables[state, tokens.data]), state   # (rows, vocab)

    def select(self, state, rows):
        return state[rows]


def random_tables(sentences, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(sentences, VOCAB, VOCAB)) * 2
    logits[:, :, [0, BOS]] = -1e9                   # never padding or <bos>
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def brute_force(table, max_len, length_penalty):
    """The best sequence that ends with <eos> within max_len tokens, by enumeration."""
    best, best_score = None, -np.inf
    for length in range(1, max_len + 1):           # tokens, <eos> included
        for words in itertools.product(WORDS, repeat=length - 1):
            previous, score = BOS, 0.0
            for token in (*words, EOS):
                score += table[previous, token]
                previous = token
            score /= length ** length_penalty if length_penalty else 1.0
            if score > best_score:
                best, best_score = list(words), score
    return best


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_wide_beam_finds_the_best_sequence(device, length_penalty):
    tables = random_tables(sentences=6, seed=3)
    model = MarkovTranslator(tables, device)
    src = Tensor(backend.to_device(np.arange(6)[:, None], device))
    mask = Tensor(backend.to_device(np.zeros((6, 1), dtype=bool), device))
    # Live hypotheses never exceed 2**3 = 8 here, so a beam of 64 keeps them all.
    found = beam_search(model, src, mask, BOS, EOS, beam_size=64, max_len=4,
                        length_penalty=length_penalty)
    assert found == [brute_force(tables[s], 4, length_penalty) for s in range(6)]
    # A narrow beam keeps fewer hypotheses; it must still return valid sequences.
    narrow = beam_search(model, src, mask, BOS, EOS, beam_size=2, max_len=4)
    assert all(set(ids) <= set(WORDS) and len(ids) <= 4 for ids in narrow)

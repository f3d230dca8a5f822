"""A freshly built translator guesses uniformly, and its Transformer can see word order.

A model at step 0 knows nothing, so its loss should be that of a uniform guess over the
target vocabulary, ln(V). A loss far above it means the first logits are huge: training
first spends its steps shrinking them (issue: N(0, 1) embeddings, tied to the output and
scaled by √d_model, gave 31.8 where ln(V) was 8.6).
"""
import math
import os

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.translation.batching import encode_pairs, make_batch
from minitransformer.translation.data import find_multi30k, multi30k_not_found
from minitransformer.translation.grammar import load_corpus
from minitransformer.translation.train import PRESETS, new_trainer
from minitransformer.translation.tsv import load_tsv



def first_loss(trainer, pairs):
    """The loss of a batch of ``pairs`` without label smoothing, in eval mode (no dropout)."""
    trainer.settings.label_smoothing = 0.0
    trainer.model.eval()
    examples = encode_pairs(pairs, trainer.src_vocab, trainer.tgt_vocab)
    with mt.no_grad():
        return trainer.loss(make_batch(examples)).item()


def assert_near_uniform(trainer, pairs):
    uniform = math.log(len(trainer.tgt_vocab))
    loss = first_loss(trainer, pairs)
    assert abs(loss - uniform) <= 0.1 * uniform, (loss, uniform)


@pytest.mark.parametrize("kind", ["transformer", "lstm", "rnn"])
@pytest.mark.parametrize("size", ["tiny", pytest.param("small", marks=pytest.mark.slow)])
def test_first_loss_is_near_a_uniform_guess(kind, size):
    pairs = load_corpus(size=600, seed=0)["train"]
    assert_near_uniform(new_trainer(kind, pairs, size=size), pairs[:64])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_first_loss_on_real_sentences_with_subwords(kind):
    folder = find_multi30k()   # $MINITRANSFORMER_DATA, else data/multi30k
    if folder is None:
        pytest.skip(multi30k_not_found())
    pairs = load_tsv(os.path.join(folder, "train.tsv"), reverse=True)[:3000]
    trainer = new_trainer(kind, pairs, size="base", vocab="bpe", vocab_size=4000)
    assert_near_uniform(trainer, pairs[:64])


@pytest.mark.parametrize("size", [pytest.param(size, marks=[] if size == "tiny" else pytest.mark.slow)
                                  for size in sorted(PRESETS["transformer"])])
def test_position_signal_is_not_drowned_by_the_embeddings(size):
    pairs = load_corpus(size=300, seed=0)["train"]
    model = new_trainer("transformer", pairs, size=size).model
    d_model = model.config["d_model"]
    embeddings = model.src_embed.weight.numpy()[1:] * model.scale     # (vocab - 1, d_model)
    positions = model.positions.pe.numpy()[:64]                       # (64, d_model)
    ratio = (np.linalg.norm(positions, axis=1).mean()
             / np.linalg.norm(embeddings, axis=1).mean())
    assert 0.5 <= ratio <= 2, ratio
    assert np.all(model.src_embed.weight.numpy()[0] == 0)             # the padding row
    assert np.std(model.tgt_embed.weight.numpy()[1:]) == pytest.approx(d_model ** -0.5, rel=0.1)

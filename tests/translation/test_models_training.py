"""The translators end to end: they learn, decode, save, load and resume."""
import math
import os

import numpy as np
import pytest

from minitransformer.translation import checkpoint, detokenize, tokenize
from minitransformer.translation.batching import make_batch
from minitransformer.translation.decode import beam_search, greedy_decode
from minitransformer.translation.train import Trainer, TrainingDiverged, new_trainer

PAIRS = [("the dog sees the cat .", "der hund sieht die katze ."),
         ("today the child reads a book .", "heute liest das kind ein buch ."),
         ("does the woman sleep ?", "schläft die frau ?"),
         ("he knows that we work .", "er weiß , dass wir arbeiten .")]
QUIET = dict(log=lambda *a: None, log_every=0, bleu_limit=0)


def tiny_trainer(kind, device="cpu", **extra):
    if kind == "transformer":
        sizes = dict(d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                     dim_feedforward=64, warmup=20)
    else:
        sizes = dict(embed_dim=32, hidden_size=64, lr=1e-2)
    sizes.update(extra)
    return new_trainer(kind, PAIRS, device=device, batch_size=4, seed=0,
                       **{"dropout": 0.0, **sizes})


def normalised(sentence):
    return detokenize(tokenize(sentence))


@pytest.mark.slow   # 120 epochs each: 1-1.5 s
@pytest.mark.parametrize("kind", ["transformer", "lstm", "rnn"])
def test_each_model_overfits_a_few_sentences(device, kind):
    trainer = tiny_trainer(kind, device)
    trainer.fit(PAIRS, PAIRS, epochs=120, **QUIET)
    assert trainer.translate([s for s, _ in PAIRS]) == [normalised(t) for _, t in PAIRS]
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"] / 3


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_both_models_share_one_interface(kind):
    trainer = tiny_trainer(kind)
    batch = make_batch([(trainer.src_vocab.encode(s), trainer.tgt_vocab.encode(t, add_eos=False))
                        for s, t in PAIRS])
    logits = trainer.model(batch.src, batch.tgt_in, batch.src_padding_mask, batch.tgt_padding_mask)
    assert logits.shape == batch.tgt_in.shape + (len(trainer.tgt_vocab),)
    weights = trainer.model.cross_attention(batch.src, batch.tgt_in, batch.src_padding_mask)
    assert weights.shape == (4, batch.tgt_in.shape[1], batch.src.shape[1])
    # attention never looks at source padding
    assert np.all(weights.numpy()[batch.src_padding_mask.numpy()[:, None, :].repeat(
        batch.tgt_in.shape[1], axis=1)] == 0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_beam_search_with_beam_1_equals_greedy(kind):
    trainer = tiny_trainer(kind)
    trainer.fit(PAIRS, PAIRS, epochs=15, **QUIET)   # half-trained: choices are not obvious
    trainer.model.eval()
    batch = make_batch([(trainer.src_vocab.encode(s), []) for s, _ in PAIRS])
    args = (trainer.model, batch.src, batch.src_padding_mask, trainer.tgt_vocab.bos_id,
            trainer.tgt_vocab.eos_id)
    assert beam_search(*args, beam_size=1, max_len=12) == greedy_decode(*args, max_len=12)


@pytest.mark.slow   # 120 epochs: about 1 s
def test_beam_search_finds_the_trained_translations():
    trainer = tiny_trainer("transformer")
    trainer.fit(PAIRS, PAIRS, epochs=120, **QUIET)
    assert trainer.translate([s for s, _ in PAIRS], beam_size=3) == [normalised(t) for _, t in PAIRS]


@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_translations(tmp_path):
    trainer = tiny_trainer("transformer")
    trainer.fit(PAIRS, PAIRS, epochs=10, **QUIET)
    trainer.save(tmp_path)
    loaded = Trainer.load(tmp_path)
    sources = [s for s, _ in PAIRS] + ["the unknown zebra sleeps ."]   # unknown words: <unk>
    assert loaded.translate(sources) == trainer.translate(sources)
    assert loaded.src_vocab == trainer.src_vocab and loaded.step == trainer.step
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(loaded.model.state_dict()[name], value)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_resume_continues_the_same_loss_curve(tmp_path, kind):
    straight = tiny_trainer(kind, dropout=0.1)   # dropout: the random state must resume too
    straight.fit(PAIRS, PAIRS, epochs=6, **QUIET)

    first = tiny_trainer(kind, dropout=0.1)
    first.fit(PAIRS, PAIRS, epochs=3, checkpoint_dir=tmp_path, **QUIET)
    resumed = Trainer.load(tmp_path)
    resumed.fit(PAIRS, PAIRS, epochs=3, **QUIET)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]


@pytest.mark.slow
def test_two_seeded_runs_give_the_same_losses():
    losses = []
    for _ in range(2):
        trainer = tiny_trainer("transformer", dropout=0.1)
        trainer.fit(PAIRS, PAIRS, epochs=3, **QUIET)
        losses.append([h["train_loss"] for h in trainer.history])
    assert losses[0] == losses[1]


def test_nan_loss_stops_training_and_keeps_the_checkpoint(tmp_path):
    trainer = tiny_trainer("lstm")
    trainer.fit(PAIRS, PAIRS, epochs=1, checkpoint_dir=tmp_path, **QUIET)
    before = open(os.path.join(tmp_path, checkpoint.FILENAME), "rb").read()
    trainer.model.output.weight.data[:] = np.nan
    with pytest.raises(TrainingDiverged, match="loss is nan"):
        trainer.fit(PAIRS, PAIRS, epochs=1, checkpoint_dir=tmp_path, **QUIET)
    assert open(os.path.join(tmp_path, checkpoint.FILENAME), "rb").read() == before


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, {"a": np.arange(3), "note": "first"})

    def crash_before_rename(src, dst):   # the new file is fully written, then we "crash"
        raise OSError("disk full")
    monkeypatch.setattr(checkpoint.os, "replace", crash_before_rename)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(tmp_path, {"a": np.arange(5), "note": "second"})
    saved = checkpoint.load(tmp_path)
    assert saved["note"] == "first" and list(saved["a"]) == [0, 1, 2]
    assert os.listdir(tmp_path) == [checkpoint.FILENAME]   # no temporary file left behind


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer.load(tmp_path / "nowhere")


def test_unknown_model_kind_is_refused():
    with pytest.raises(ValueError, match="model must be one of"):
        new_trainer("gru", PAIRS)
    assert math.isfinite(tiny_trainer("rnn").evaluate_loss([]) + 1)


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_lr_is_honoured_by_every_model(kind):
    trainer = new_trainer(kind, PAIRS, lr=0.02, warmup=1)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.02)


def test_unknown_options_are_named():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['d_modle'\]"):
        new_trainer("transformer", PAIRS, d_modle=32)


@pytest.mark.parametrize("kind, default", [("transformer", 0.98), ("lstm", 0.999)])
def test_adam_beta2_has_a_default_per_model_and_can_be_set(kind, default):
    assert new_trainer(kind, PAIRS).optimizer.param_groups[0]["betas"] == (0.9, default)
    trainer = new_trainer(kind, PAIRS, adam_beta2=0.95)
    assert trainer.optimizer.param_groups[0]["betas"] == (0.9, 0.95)


@pytest.mark.parametrize("name, value", [("adam_beta2", 1.0), ("adam_beta2", -0.1),
                                         ("clip", 0.0), ("label_smoothing", 1.0)])
def test_bad_recipe_values_are_named(name, value):
    with pytest.raises(ValueError, match=f"{name} must be"):
        new_trainer("transformer", PAIRS, **{name: value})


def test_max_steps_counts_every_step_a_resumed_run_included(tmp_path):
    trainer = tiny_trainer("transformer")   # one batch of the 4 pairs: one step an epoch
    trainer.fit(PAIRS, PAIRS, epochs=10, max_steps=3, checkpoint_dir=tmp_path, **QUIET)
    assert trainer.step == 3 and trainer.epoch == 3
    resumed = Trainer.load(tmp_path)
    resumed.fit(PAIRS, PAIRS, epochs=10, max_steps=5, **QUIET)
    assert resumed.step == 5

"""Tokenizer and Vocabulary: splitting, special tokens, <unk>, round trips, saving."""
import json

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.translation.vocab import (BOS, EOS, PAD, UNK, Vocabulary, detokenize,
                                               tokenize)


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("Heute sieht der Hund den Ball, weil er groß ist.") == [
        "heute", "sieht", "der", "hund", "den", "ball", ",", "weil", "er", "groß", "ist", "."]


def test_tokenize_keeps_umlauts_eszett_and_inner_apostrophes():
    assert tokenize("Die Mädchen ÄSSEN Straße") == ["die", "mädchen", "ässen", "straße"]
    assert tokenize("I don't know, l'homme!") == ["i", "don't", "know", ",", "l'homme", "!"]
    assert tokenize("Größe", lowercase=False) == ["Größe"]


def test_detokenize_joins_punctuation():
    assert detokenize(["der", "hund", "schläft", ",", "weil", "er", "müde", "ist", "."]) == \
        "der hund schläft, weil er müde ist."
    assert detokenize(["sieht", "er", "(", "heute", ")", "den", "ball", "?"]) == \
        "sieht er (heute) den ball?"
    assert detokenize(["well", "-", "known"]) == "well-known"


@pytest.mark.parametrize("sentence", ["Der große Hund sieht einen kleinen Ball.",
                                      "Wenn der Hund schläft, liest der Mann die Zeitung.",
                                      "Siehst du den Hund?"])
def test_round_trip_is_lowercased_text(sentence):
    assert detokenize(tokenize(sentence)) == sentence.lower()


def test_special_token_ids():
    vocab = Vocabulary.build(["a b"])
    assert [vocab.token_to_id(t) for t in (PAD, BOS, EOS, UNK)] == [0, 1, 2, 3]
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)


def test_build_orders_by_frequency_then_alphabet_and_applies_min_freq():
    vocab = Vocabulary.build(["b a c a", "a b d"], min_freq=2)
    assert vocab.itos[4:] == ["a", "b"]
    assert "c" not in vocab and len(vocab) == 6
    assert Vocabulary.build(["b a c a", "a b d"], max_size=5).itos[4:] == ["a"]


def test_encode_decode_round_trip():
    vocab = Vocabulary.build(["Der Hund schläft.", "Die Katze schläft."])
    ids = vocab.encode("Der Hund schläft.")
    assert ids[-1] == vocab.eos_id and ids[0] != vocab.bos_id
    assert vocab.encode("Der Hund", add_bos=True, add_eos=False)[0] == vocab.bos_id
    assert vocab.decode(ids) == "der hund schläft."
    assert vocab.decode([vocab.bos_id] + ids + [vocab.pad_id] * 3) == "der hund schläft."


def test_unknown_words_map_to_unk_and_never_crash():
    vocab = Vocabulary.build(["der hund"])
    ids = vocab.encode("der Elefant tanzt")
    assert ids == [vocab.token_to_id("der"), vocab.unk_id, vocab.unk_id, vocab.eos_id]
    assert vocab.decode(ids) == "der <unk> <unk>"
    assert vocab.decode([999, -5]) == "<unk> <unk>"  # ids outside the vocabulary too


def test_decode_stops_at_eos_and_accepts_arrays_and_tensors():
    vocab = Vocabulary.build(["a b c"])
    a, b = vocab.token_to_id("a"), vocab.token_to_id("b")
    ids = [a, b, vocab.eos_id, a, a]
    assert vocab.decode(ids) == "a b"
    assert vocab.decode(np.array(ids)) == "a b"
    assert vocab.decode(mt.tensor(ids)) == "a b"
    assert vocab.decode(ids, strip_special=False) == "a b <eos> a a"


def test_save_load_and_dict_round_trip(tmp_path):
    vocab = Vocabulary.build(["Der große Hund schläft.", "Die Straße"], min_freq=1)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert Vocabulary.load(path) == vocab
    assert "straße" in path.read_text(encoding="utf-8")  # readable UTF-8, not \u escapes
    data = json.loads(json.dumps(vocab.to_dict()))  # as it would sit in a checkpoint
    restored = Vocabulary.from_dict(data)
    assert restored == vocab
    assert restored.encode("der hund") == vocab.encode("der hund")


def test_from_dict_rejects_foreign_data():
    with pytest.raises(ValueError):
        Vocabulary.from_dict({"tokens": ["a", "b"]})

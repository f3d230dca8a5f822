"""Byte-pair encoding: exact round trips, hand-checked merges, saving, robust decoding,
and the whole Multi30k corpus (found by ``find_multi30k``: $MINITRANSFORMER_DATA, else
data/multi30k; skipped where absent)."""
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.translation.bpe import BPEVocabulary, vocabulary_from_dict
from minitransformer.translation.data import find_multi30k, multi30k_not_found
from minitransformer.translation.vocab import Vocabulary

BYTE = 4       # id of byte 0: byte b has id BYTE + b
FIRST_MERGE = 260

# A small hand-written corpus (lowercase/uppercase, punctuation, a few umlauts).
CORPUS = [
    "A dog runs in the park.",
    "Two dogs are running in the grass.",
    "The dog is playing with a red ball.",
    "A man is walking his dog in the park.",
    "Ein Hund läuft im Park.",
    "Zwei Hunde spielen mit einem roten Ball.",
    "the the the dog dog park park",
]

TRICKY = [
    "",
    " ",
    "   ",
    "  two leading spaces and two trailing  ",
    "double  space, tab\there, tabs\t\tand a newline\nin the middle",
    "\n",
    "\t \t",
    "Mixed CASE Dog DOG dog",
    "emoji 🐕🦮 and a flag 🇩🇪 and ZWJ 👩‍👩‍👧",
    "CJK 中文字 日本語のテキスト 한국어",
    "combining e\u0301 and precomposed é, ß, Œ, ﬁ ligature",
    "control \x00 \x07 \x1b[0m and \u200b zero width and \ufeff BOM",
    "surrogate-free astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and right-to-left שלום مرحبا",
    "punctuation!!! ...?? «quotes» „deutsch“ — dash – en dash",
    "numbers 3.14, 1,000,000 and 2024-05-06",
    "\r\n windows line end \r",
    "ends with a space ",
]


@pytest.fixture(scope="module")
def vocab():
    return BPEVocabulary.learn(CORPUS, vocab_size=400)


def tokens_of(vocab, ids):
    return [vocab.token_bytes[i] for i in ids]


@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_is_exact(vocab, text):
    ids = vocab.encode(text)
    assert ids[-1] == vocab.eos_id
    assert all(0 <= i < len(vocab) for i in ids)
    assert vocab.unk_id not in ids
    assert vocab.decode(ids) == text


def test_round_trip_of_random_unicode(vocab):
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x20, 0x250)] + [" ", " ", "\t", "\n", "🐕", "中", "\u0301"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert vocab.decode(vocab.encode(text)) == text


def test_learned_merges_hand_checked():
    # words: "ab" x1, " ab" x2, "abc" x1 -> pairs: (a,b) 4, (" ",a) 2, (b,c) 1
    # merge 1: a+b (4); then (" ", ab) 2, (ab, c) 1; merge 2: " "+ab; then only
    # pairs occurring once are left: stop, though vocab_size allows more
    v = BPEVocabulary.learn(["ab ab ab", "abc"], vocab_size=1000)
    assert [(v.token_bytes[a], v.token_bytes[b]) for a, b in v.merges] == \
        [(b"a", b"b"), (b" ", b"ab")]
    assert len(v) == FIRST_MERGE + 2
    assert tokens_of(v, v.encode("abc ab", add_eos=False)) == [b"ab", b"c", b" ab"]


def test_ties_go_to_the_pair_of_smaller_ids():
    # words "ab", " cd", " ab", " cd": (a,b), (" ",c), (c,d) all occur twice.
    # " " (byte 32) has the smallest id, so (" ",c) first; then (a,b) beats (" c",d)
    # because the merged token " c" has a larger id than any byte.
    v = BPEVocabulary.learn(["ab cd ab cd"], vocab_size=1000)
    assert [v.token_bytes[FIRST_MERGE + k] for k in range(len(v.merges))] == \
        [b" c", b"ab", b" cd"]


def test_vocab_size_limits_the_merges():
    v = BPEVocabulary.learn(["ab ab ab", "abc"], vocab_size=FIRST_MERGE + 1)
    assert len(v) == FIRST_MERGE + 1 and v.merges == [(BYTE + ord("a"), BYTE + ord("b"))]
    assert len(BPEVocabulary.learn(CORPUS, vocab_size=FIRST_MERGE)) == FIRST_MERGE
    assert len(BPEVocabulary.learn([], vocab_size=8000)) == FIRST_MERGE


def test_vocab_size_too_small_names_the_argument():
    with pytest.raises(ValueError, match=r"vocab_size .* 260.*got 259"):
        BPEVocabulary.learn(CORPUS, vocab_size=259)


def test_merges_apply_in_learned_order():
    # words "aaa" x1, " aaa" x2: (a,a) occurs 6 times -> merge "aa" (left to
    # right, so "aaa" -> aa+a); then (aa,a) 3 -> merge "aaa"; then (" ",aaa) 2.
    v = BPEVocabulary.learn(["aaa aaa aaa"], vocab_size=1000)
    assert [v.token_bytes[FIRST_MERGE + k] for k in range(3)] == [b"aa", b"aaa", b" aaa"]
    # Encoding replays the merges by rank, not "longest token first":
    # a a a a a -(rank 0)-> aa aa a -(rank 1)-> aa aaa
    assert tokens_of(v, v.encode("aaaaa", add_eos=False)) == [b"aa", b"aaa"]
    assert tokens_of(v, v.encode("aaaa", add_eos=False)) == [b"aa", b"aa"]


def test_frequent_words_become_one_token(vocab):
    assert tokens_of(vocab, vocab.encode(" dog park", add_eos=False)) == [b" dog", b" park"]


def test_specials_and_bos_eos(vocab):
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    ids = vocab.encode("A dog", add_bos=True)
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert vocab.encode("A dog", add_eos=False) == ids[1:-1]
    assert vocab.decode_tokens(ids) == ["A", " dog"]
    assert vocab.decode_tokens(ids, strip_special=False) == ["<bos>", "A", " dog", "<eos>"]
    with pytest.raises(TypeError, match="string"):
        vocab.encode(["A", "dog"])


def test_decode_reads_lists_arrays_and_tensors_up_to_eos(vocab):
    ids = [vocab.bos_id] + vocab.encode("A dog runs.") + vocab.encode("ignored") + [0, 0]
    assert vocab.decode(ids) == "A dog runs."
    assert vocab.decode(np.array(ids)) == "A dog runs."
    assert vocab.decode(mt.Tensor(np.array(ids))) == "A dog runs."
    padded = [vocab.pad_id] + vocab.encode("A dog", add_eos=False) + [vocab.pad_id]
    assert vocab.decode(padded) == "A dog"
    assert vocab.decode(padded, strip_special=False) == "<pad>A dog<pad>"


def test_decoding_garbage_never_crashes(vocab):
    assert vocab.decode([BYTE + 0xC3, BYTE + 0xA9]) == "é"  # a character in two bytes
    assert vocab.decode([BYTE + 0xC3]) == "\ufffd"  # half a character
    assert vocab.decode([BYTE + 0xA9, BYTE + ord("x")]) == "\ufffdx"  # lone continuation
    assert vocab.decode([BYTE + ord("a"), len(vocab), -5, 10**9]) == "a<unk><unk><unk>"
    assert vocab.decode_tokens([BYTE + 0xC3, len(vocab)]) == ["\\xc3", "<unk>"]
    rng = np.random.default_rng(0)
    for _ in range(200):
        ids = rng.integers(-3, len(vocab) + 3, size=rng.integers(0, 30))
        assert isinstance(vocab.decode(ids), str)
        assert isinstance(vocab.decode(ids, strip_special=False), str)
        assert len(vocab.decode_tokens(ids, strip_special=False)) == len(ids)


def test_to_dict_from_dict_round_trip(vocab):
    data = json.loads(json.dumps(vocab.to_dict()))  # JSON-ready
    assert data["kind"] == "bpe"
    again = BPEVocabulary.from_dict(data)
    assert again == vocab and len(again) == len(vocab)
    assert again.encode(CORPUS[0]) == vocab.encode(CORPUS[0])
    assert vocabulary_from_dict(data) == vocab
    assert again != BPEVocabulary.learn(CORPUS, vocab_size=len(vocab) - 1)


def test_vocabulary_from_dict_loads_word_vocabularies(vocab):
    words = Vocabulary.build(CORPUS)
    assert "kind" not in words.to_dict()
    loaded = vocabulary_from_dict(json.loads(json.dumps(words.to_dict())))
    assert isinstance(loaded, Vocabulary) and loaded == words
    with pytest.raises(ValueError, match="unknown vocabulary kind 'wordpiece'"):
        vocabulary_from_dict({"kind": "wordpiece"})
    with pytest.raises(ValueError, match="kind 'bpe'"):
        BPEVocabulary.from_dict(words.to_dict())


def test_from_dict_rejects_merges_of_unknown_ids():
    with pytest.raises(ValueError, match="merge 0"):
        BPEVocabulary.from_dict({"kind": "bpe", "merges": [[BYTE, FIRST_MERGE]]})
    with pytest.raises(ValueError, match="merge 1"):
        BPEVocabulary.from_dict({"kind": "bpe", "merges": [[BYTE, BYTE], [2, BYTE]]})


# ------------------------------------------------------------------ Multi30k
def _read_pairs(name):
    with open(Path(find_multi30k()) / f"{name}.tsv", encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f]


@pytest.mark.slow
@pytest.mark.parametrize("column, language", [(0, "en"), (1, "de")])
def test_multi30k_learns_fast_and_round_trips_every_line(column, language):
    if find_multi30k() is None:
        pytest.skip(multi30k_not_found())
    splits = {name: _read_pairs(name) for name in ("train", "val", "test2016")}
    train = [pair[column] for pair in splits["train"]]
    assert len(train) == 29000

    start = time.perf_counter()
    vocab = BPEVocabulary.learn(train, vocab_size=8000)
    seconds = time.perf_counter() - start
    assert len(vocab) == 8000
    assert seconds < 20, f"learning {language} took {seconds:.1f} s"

    for name, pairs in splits.items():
        for pair in pairs:
            text = pair[column]
            assert vocab.decode(vocab.encode(text)) == text, f"{name}: {text!r}"
    tokens = sum(len(vocab.encode(s, add_eos=False)) for s in train) / len(train)
    print(f"\nMulti30k {language}: learned 7740 merges in {seconds:.2f} s, "
          f"{tokens:.2f} tokens per training sentence")

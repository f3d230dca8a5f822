"""Corpus BLEU and the 13a tokenizer, against hand-computed examples."""
import math

import pytest

from minitransformer.translation.bleu import bleu_score, corpus_bleu, tokenize_13a


@pytest.mark.parametrize("text, tokens", [
    ("Hello, world!", ["Hello", ",", "world", "!"]),
    ("It costs $3.50, or 3,000 yen.", ["It", "costs", "$", "3.50", ",", "or", "3,000", "yen", "."]),
    ("a well-known (x/y) 2024-05", ["a", "well-known", "(", "x", "/", "y", ")", "2024", "-", "05"]),
    ("don't stop", ["don't", "stop"]),
    ("&quot;quoted&quot; &amp; <tag>", ['"', "quoted", '"', "&", "<", "tag", ">"]),
    ("end.Start", ["end", ".", "Start"]),
])
def test_tokenize_13a(text, tokens):
    assert tokenize_13a(text) == tokens


def test_identical_is_100():
    refs = ["Der Hund schläft.", "Heute sieht der Hund den großen Ball."]
    assert corpus_bleu(refs, refs) == 100.0


def test_no_overlap_is_0():
    assert corpus_bleu(["a b c d e"], ["v w x y z"]) == 0.0


def test_a_missing_4gram_match_gives_0_without_smoothing():
    # matches: 1-grams 3/3, 2-grams 2/2, 3-grams 1/1 ... but no 4-gram exists
    assert corpus_bleu(["the cat sat"], ["the cat sat"]) == 0.0


def test_brevity_penalty_hand_computed():
    # hypothesis = the first 6 of 8 reference tokens: all precisions are 1,
    # BP = exp(1 - 8/6)
    hyp, ref = "a b c d e f", "a b c d e f g h"
    result = bleu_score([hyp], [ref])
    assert result.precisions == [100.0] * 4
    assert result.hyp_len == 6 and result.ref_len == 8
    assert result.score == pytest.approx(100 * math.exp(1 - 8 / 6))


def test_partial_match_hand_computed():
    # hyp:  the cat sat on the red mat    (7 tokens)
    # ref:  the cat sat on the mat today  (7 tokens, so BP = 1)
    # 1-grams: the x2 (ref has 2), cat, sat, on, mat match; "red" not: 6/7
    # 2-grams: the cat, cat sat, sat on, on the: 4/6
    # 3-grams: the cat sat, cat sat on, sat on the: 3/5
    # 4-grams: the cat sat on, cat sat on the: 2/4
    score = corpus_bleu(["the cat sat on the red mat"], ["the cat sat on the mat today"])
    expected = 100 * (6 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25
    assert score == pytest.approx(expected)


def test_counts_are_clipped():
    # "the" 4 times in the hypothesis, twice in the reference: 2/4 unigrams, and so on
    result = bleu_score(["the the the the"], ["the cat the mat"])
    assert result.precisions[0] == 50.0


def test_corpus_level_sums_before_dividing():
    hyps = ["a b c d e", "v w x y z"]
    refs = ["a b c d e", "p q r s t"]
    result = bleu_score(hyps, refs)
    assert result.precisions == [50.0] * 4
    assert result.score == pytest.approx(50.0)


def test_multiple_references_clip_to_best_and_length_to_closest():
    result = bleu_score(["a b c d"], [["a b x y", "x y c d e f g"]])
    assert result.precisions[0] == 100.0  # a, b from one reference, c, d from the other
    assert result.ref_len == 4  # the closest reference length


def test_exp_smoothing_replaces_a_zero_count():
    # 4-grams: 0 of 1 match; smoothed to 1/2 of a match: precision 50
    result = bleu_score(["a b c d"], ["a b c e"], smooth="exp")
    assert result.precisions == pytest.approx([75.0, 200 / 3, 50.0, 50.0])
    assert result.score == pytest.approx(100 * (0.75 * 2 / 3 * 0.5 * 0.5) ** 0.25)
    assert corpus_bleu(["a b c d"], ["a b c e"]) == 0.0  # no smoothing: 0
    assert corpus_bleu(["a b c d e"], ["v w x y z"], smooth="exp") == 0.0


def test_lowercase_option_and_argument_errors():
    assert corpus_bleu(["The Dog sleeps here"], ["the dog sleeps here"], lowercase=True) == 100.0
    with pytest.raises(ValueError):
        corpus_bleu(["a"], [])
    with pytest.raises(ValueError):
        corpus_bleu(["a"], ["a"], smooth="add-k")

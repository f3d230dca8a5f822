"""Corpus BLEU and the 13a tokenizer, against hand-computed examples and against
sacrebleu itself (skipped where it is not installed)."""
import math
import pickle
import random

import pytest

import minitransformer as mt
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


def test_a_missing_4gram_gives_0_even_smoothed():
    # matches: 1-grams 3/3, 2-grams 2/2, 3-grams 1/1 ... but no 4-gram exists,
    # so there is nothing to smooth
    assert corpus_bleu(["the cat sat"], ["the cat sat"], smooth="none") == 0.0
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
    assert corpus_bleu(["a b c d"], ["a b c e"]) == pytest.approx(result.score)  # the default
    assert corpus_bleu(["a b c d"], ["a b c e"], smooth="none") == 0.0
    assert corpus_bleu(["a b c d e"], ["v w x y z"], smooth="exp") == 0.0


def test_cased_by_default_and_lowercase_option_and_argument_errors():
    assert corpus_bleu(["The Dog sleeps here"], ["the dog sleeps here"], lowercase=True) == 100.0
    cased = bleu_score(["The Dog sleeps here"], ["the dog sleeps here"])
    assert cased.precisions[0] == 50.0 and cased < 100.0
    with pytest.raises(ValueError):
        corpus_bleu(["a"], [])
    with pytest.raises(ValueError):
        corpus_bleu(["a"], ["a"], smooth="add-k")
    with pytest.raises(ValueError, match="no reference"):
        corpus_bleu(["a"], [[]])


def test_score_is_a_float_with_a_signature():
    score = corpus_bleu(["The cat sat on the mat ."], ["The cat sat on a mat ."])
    assert isinstance(score, float) and score == score.score
    assert str(score) == str(float(score))  # prints (and goes into CSV) as a number
    assert f"{score:.1f}" == f"{float(score):.1f}"
    assert pickle.loads(pickle.dumps(score)).format() == score.format()
    assert score.signature(version=False) == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp"
    assert score.signature().endswith(f"|version:minitransformer-{mt.__version__}")
    lower = bleu_score(["a b"], [["a b", "a c"]], smooth="none", lowercase=True)
    assert lower.signature(version=False) == "nrefs:2|case:lc|eff:no|tok:13a|smooth:none"
    assert bleu_score(["a", "b"], [["a"], ["b", "c"]]).signature().startswith("nrefs:var|")
    line = score.format()
    assert line.startswith(f"BLEU|{score.signature()} = {score:.2f} ")
    assert line.endswith("(BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)")
    assert score.format(signature=False).startswith(f"BLEU = {score:.2f} 85.7/")


# ------------------------------------------------------------ against sacrebleu
WORDS = ["the", "The", "THE", "dog", "Dog", "a", "cat", "runs", "in", "park", "red",
         "ball", ",", ".", "!", "don't", "well-known", "3.5", "1,000", "(x)", "é", "Straße"]


def _random_corpus(rng, size, max_len, nrefs=1):
    def sentence(n):
        return " ".join(rng.choice(WORDS) for _ in range(n))
    hyps = [sentence(rng.randrange(0, max_len + 1)) for _ in range(size)]
    refs = [[sentence(rng.randrange(1, max_len + 1)) for _ in range(nrefs)] for _ in hyps]
    return hyps, refs


def _check_against_sacrebleu(hyps, refs, **options):
    sacrebleu = pytest.importorskip("sacrebleu")
    ours = bleu_score(hyps, refs, **options)
    smooth = options.get("smooth", "exp")
    expected = sacrebleu.corpus_bleu(
        hyps, [list(stream) for stream in zip(*refs)], lowercase=options.get("lowercase", False),
        smooth_method=smooth, tokenize="13a")
    assert ours.score == pytest.approx(expected.score, rel=1e-9, abs=1e-9)
    assert ours.precisions == pytest.approx(expected.precisions, rel=1e-9, abs=1e-9)
    assert ours.bp == pytest.approx(expected.bp, rel=1e-9, abs=1e-9)
    assert (ours.hyp_len, ours.ref_len) == (expected.sys_len, expected.ref_len)
    if not options:  # the defaults are sacrebleu's defaults
        default = sacrebleu.corpus_bleu(hyps, [list(stream) for stream in zip(*refs)])
        assert ours.score == pytest.approx(default.score, rel=1e-9, abs=1e-9)
        assert corpus_bleu(hyps, refs) == ours.score
        metric = sacrebleu.BLEU()
        metric.corpus_score(hyps, [list(stream) for stream in zip(*refs)])
        signature = metric.get_signature().format()
        assert signature.rsplit("|version:", 1)[0] == ours.signature(version=False)
    return ours


OPTIONS = [{}, {"lowercase": True}, {"smooth": "none"}, {"lowercase": True, "smooth": "none"}]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("seed", range(5))
def test_matches_sacrebleu_on_random_corpora(seed, options):
    rng = random.Random(seed)
    hyps, refs = _random_corpus(rng, size=rng.randrange(1, 40), max_len=12)
    _check_against_sacrebleu(hyps, refs, **options)


def _edited(rng, sentence):
    """``sentence`` with some words replaced, re-cased or dropped: a "translation"
    close enough to its reference that all four n-gram orders have matches."""
    words = []
    for word in sentence.split():
        r = rng.random()
        if r < 0.1:
            continue
        words.append(rng.choice(WORDS) if r < 0.2 else word.upper() if r < 0.3 else word)
    return " ".join(words)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("seed", range(3))
def test_matches_sacrebleu_on_close_translations(seed, options):
    rng = random.Random(seed)
    _, refs = _random_corpus(rng, size=50, max_len=20)
    hyps = [_edited(rng, ref[0]) for ref in refs]
    result = _check_against_sacrebleu(hyps, refs, **options)
    assert result.score > 10  # a real score, not one made by smoothing or zeros


@pytest.mark.parametrize("options", OPTIONS)
def test_matches_sacrebleu_in_corner_cases(options):
    rng = random.Random(1)
    # short hypotheses over a small vocabulary: some orders have no match at all
    hyps, refs = _random_corpus(rng, size=3, max_len=4)
    result = _check_against_sacrebleu(hyps, refs, **options)
    # identical text but for case
    _check_against_sacrebleu(["The Dog runs in the Park ."], [["the dog runs in the park ."]],
                             **options)
    # empty hypotheses, and a corpus with no 4-gram at all
    _check_against_sacrebleu(["", "the dog runs"], [["the dog"], ["the dog runs in"]], **options)
    _check_against_sacrebleu(["", ""], [["a b"], ["c"]], **options)
    _check_against_sacrebleu(["a b c"], [["a b c"]], **options)
    # a 4-gram order with no match, which exp smoothing replaces
    _check_against_sacrebleu(["a b c d e"], [["a b c x e"]], **options)
    # trailing whitespace and a hyphen at the end of the line
    _check_against_sacrebleu(["well-\n", "end -\n"], [["well-"], ["end -"]], **options)
    assert len(result.precisions) == 4


@pytest.mark.parametrize("options", [{}, {"lowercase": True, "smooth": "none"}])
def test_matches_sacrebleu_with_two_references(options):
    rng = random.Random(7)
    hyps, refs = _random_corpus(rng, size=30, max_len=10, nrefs=2)
    _check_against_sacrebleu(hyps, refs, **options)


def test_tokenize_13a_matches_sacrebleu_on_random_text():
    pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    theirs = Tokenizer13a()
    rng = random.Random(0)
    pieces = list("aZ09.,-'!?$%&()/:;<>@[]^_`{|}~\"\t ") + [
        "&quot;", "&amp;", "&lt;", "&gt;", "<skipped>", "-\n", "\n", "é", "ß", "3.5", "1,0", "中"]
    for _ in range(500):
        line = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))
        assert tokenize_13a(line) == theirs(line).split(), repr(line)

"""Corpus BLEU, computed the way sacrebleu's ``corpus_bleu`` does, so scores mean what
readers expect.

BLEU compares n-grams (n = 1..4) of the system's translations (*hypotheses*) with
those of human *references*, over the whole corpus at once:

1. Tokenise both sides with the "13a" tokenizer of the WMT evaluation script
   (:func:`tokenize_13a`).
2. For each n, count the hypothesis n-grams that also occur in the reference, each
   *clipped* to the number of times the reference has it ("the the the" earns at
   most two matches against "the cat on the mat"). Precision p_n = matches / n-grams,
   summed over all sentences before dividing.
3. Precision alone rewards saying little, so a *brevity penalty* applies when the
   hypotheses are shorter than the references in total (c < r): BP = exp(1 - r / c).
4. BLEU = 100 * BP * exp(mean of log p_n): a geometric mean, so one p_n of 0 makes
   the score 0 (no smoothing), which is what this module does by default.

Note: sacrebleu's *command-line default* smooths zero counts ("exp" smoothing); this
matters only when some n-gram order has no match at all, typically for tiny test
sets. ``smooth="exp"`` reproduces it.
"""
import math
import re
from collections import Counter
from dataclasses import dataclass

MAX_ORDER = 4

# ASCII punctuation and symbols that 13a always splits off. Left out on purpose:
# the apostrophe and the hyphen (kept inside words: "don't", "well-known") and the
# period and comma, which are split off only where they are not inside a number.
_SYMBOL = re.compile(r"""([!"#$%&()*+/:;<=>?@\[\\\]^_`{|}~])""")
_PERIOD_COMMA_AFTER_NON_DIGIT = re.compile(r"([^0-9])([.,])")
_PERIOD_COMMA_BEFORE_NON_DIGIT = re.compile(r"([.,])([^0-9])")
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")
_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


def tokenize_13a(line):
    """Split ``line`` into tokens as the "13a" tokenizer of mteval-v13a does.

    >>> tokenize_13a("Hello, world! It costs $3.50 (in 2024-05).")
    ['Hello', ',', 'world', '!', 'It', 'costs', '$', '3.50', '(', 'in', '2024', '-', '05', ')', '.']
    """
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:  # undo the four HTML entities the WMT data sometimes contains
        for entity, char in _ENTITIES:
            line = line.replace(entity, char)
    line = f" {line} "  # so that the rules below see a neighbour on both sides
    line = _SYMBOL.sub(r" \1 ", line)
    line = _PERIOD_COMMA_AFTER_NON_DIGIT.sub(r"\1 \2 ", line)  # "end." -> "end ."
    line = _PERIOD_COMMA_BEFORE_NON_DIGIT.sub(r" \1 \2", line)  # ".5" stays, ". x" splits
    line = _DASH_AFTER_DIGIT.sub(r"\1 \2 ", line)  # "2024-05" -> "2024 - 05"
    return line.split()


def _ngrams(tokens, n):
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


@dataclass
class BLEUScore:
    """``score`` (0-100), the n-gram ``precisions`` (0-100, n = 1..4), the brevity
    penalty ``bp``, and the total hypothesis / reference lengths in tokens."""
    score: float
    precisions: list
    bp: float
    hyp_len: int
    ref_len: int

    def __str__(self):
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        return (f"BLEU = {self.score:.2f} {p} (BP = {self.bp:.3f} "
                f"ratio = {self.hyp_len / max(self.ref_len, 1):.3f} "
                f"hyp_len = {self.hyp_len} ref_len = {self.ref_len})")


def bleu_score(hypotheses, references, smooth="none", lowercase=False):
    """Corpus BLEU with its parts, as a :class:`BLEUScore`.

    ``hypotheses``: list of strings. ``references``: one entry per hypothesis, either
    a string or a list of strings (several references for that hypothesis; the
    n-gram clip uses the most generous reference, the brevity penalty the reference
    length closest to the hypothesis, the shorter one on a tie). ``smooth``: "none"
    (a zero precision gives BLEU 0) or "exp" (sacrebleu's smoothing). ``lowercase``:
    compare case-insensitively.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"corpus_bleu: {len(hypotheses)} hypotheses but "
                         f"{len(references)} references")
    if smooth not in ("none", "exp"):
        raise ValueError(f"smooth must be 'none' or 'exp', got {smooth!r}")
    matches = [0] * MAX_ORDER
    totals = [0] * MAX_ORDER
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if lowercase:
            hyp, refs = hyp.lower(), [r.lower() for r in refs]
        hyp_tokens = tokenize_13a(hyp)
        ref_tokens = [tokenize_13a(r) for r in refs]
        hyp_len += len(hyp_tokens)
        ref_len += min((len(r) for r in ref_tokens),
                       key=lambda n: (abs(n - len(hyp_tokens)), n))
        for n in range(1, MAX_ORDER + 1):
            hyp_counts = _ngrams(hyp_tokens, n)
            max_ref_counts = Counter()
            for r in ref_tokens:
                max_ref_counts |= _ngrams(r, n)  # | keeps the maximum of each count
            matches[n - 1] += sum(min(c, max_ref_counts[g]) for g, c in hyp_counts.items())
            totals[n - 1] += max(len(hyp_tokens) - n + 1, 0)

    precisions = [0.0] * MAX_ORDER
    smooth_factor = 1
    for n in range(MAX_ORDER if matches[0] else 0):  # no word in common: 0, even smoothed
        if totals[n] == 0:
            break  # hypotheses shorter than n tokens: this order has precision 0
        if matches[n] == 0 and smooth == "exp":
            smooth_factor *= 2  # 1/2, 1/4, ... of a match for each order with none
            precisions[n] = 100.0 / (smooth_factor * totals[n])
        else:
            precisions[n] = 100.0 * matches[n] / totals[n]

    if hyp_len == 0:
        bp = 0.0
    else:
        bp = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    if min(precisions) == 0.0:
        score = 0.0
    else:
        # Geometric mean of the fractions, then back to the 0-100 scale.
        score = 100.0 * bp * math.exp(sum(math.log(p / 100.0) for p in precisions) / MAX_ORDER)
    return BLEUScore(score, precisions, bp, hyp_len, ref_len)


def corpus_bleu(hypotheses, references, smooth="none", lowercase=False):
    """Corpus BLEU on the 0-100 scale (see :func:`bleu_score` for the arguments).

    >>> corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"])
    100.0
    """
    return bleu_score(hypotheses, references, smooth=smooth, lowercase=lowercase).score

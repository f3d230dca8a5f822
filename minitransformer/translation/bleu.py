"""Corpus BLEU, computed as sacrebleu's ``corpus_bleu`` does with its defaults (the
same numbers, up to rounding in the last bits), so scores mean what readers expect
and can be compared with published ones.

BLEU compares n-grams (n = 1..4) of the system's translations (*hypotheses*) with
those of human *references*, over the whole corpus at once:

1. Tokenise both sides with the "13a" tokenizer of the WMT evaluation script
   (:func:`tokenize_13a`), keeping case ("The" and "the" differ) unless asked
   to lower-case.
2. For each n, count the hypothesis n-grams that also occur in the reference, each
   *clipped* to the number of times the reference has it ("the the the" earns at
   most two matches against "the cat on the mat"). Precision p_n = matches / n-grams,
   summed over all sentences before dividing.
3. Precision alone rewards saying little, so a *brevity penalty* applies when the
   hypotheses are shorter than the references in total (c < r): BP = exp(1 - r / c).
4. BLEU = 100 * BP * exp(mean of log p_n): a geometric mean, so one p_n of 0 would
   make the score 0. By default an order with no match at all is *smoothed* instead
   ("exp" smoothing, sacrebleu's default): the first such order counts as half a
   match, the next as a quarter, and so on. This matters only for tiny test sets
   or very poor systems; ``smooth="none"`` gives the unsmoothed textbook BLEU.
   With no unigram match, or hypotheses too short to have any n-gram of some
   order, BLEU is 0 either way.

The result carries sacrebleu's *signature*, e.g.
``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:minitransformer-0.1.0``,
which says how the number was computed: report it with the score.
"""
import math
import re
from collections import Counter

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


class BLEUScore(float):
    """The score (0-100) as a float, so it works wherever a number does, carrying its
    parts: the n-gram ``precisions`` (0-100, n = 1..4), the brevity penalty ``bp``,
    the total hypothesis / reference lengths in tokens, and the settings that
    :meth:`signature` reports. ``str()`` is the plain number; :meth:`format` gives
    sacrebleu's full line."""

    def __new__(cls, score, precisions, bp, hyp_len, ref_len, nrefs=1, lowercase=False,
                smooth="exp"):
        self = super().__new__(cls, score)
        self.precisions, self.bp = list(precisions), bp
        self.hyp_len, self.ref_len = hyp_len, ref_len
        self.nrefs, self.lowercase, self.smooth = nrefs, lowercase, smooth
        return self

    def __reduce__(self):  # pickling: a float subclass needs the extra arguments
        return (type(self), (float(self), self.precisions, self.bp, self.hyp_len,
                             self.ref_len, self.nrefs, self.lowercase, self.smooth))

    @property
    def score(self):
        return float(self)

    def signature(self, version=True):
        """How the score was computed, in sacrebleu's notation: references per
        hypothesis ("var" when it varies), case, effective order (never used here),
        tokenizer, smoothing, and (with ``version``) which program computed it."""
        from .. import __version__  # here, not at the top: the package imports us
        parts = [f"nrefs:{self.nrefs}", f"case:{'lc' if self.lowercase else 'mixed'}",
                 "eff:no", "tok:13a", f"smooth:{self.smooth}"]
        if version:
            parts.append(f"version:minitransformer-{__version__}")
        return "|".join(parts)

    def format(self, width=2, signature=True):
        """The score line as sacrebleu prints it, e.g. ``BLEU|nrefs:1|...|version:... =
        34.12 65.2/41.0/27.9/19.3 (BP = 1.000 ratio = 1.012 hyp_len = 12345 ref_len =
        12198)``; ``signature=False`` leaves the signature out."""
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        name = f"BLEU|{self.signature()}" if signature else "BLEU"
        ratio = self.hyp_len / self.ref_len if self.ref_len else 0.0
        return (f"{name} = {self.score:.{width}f} {p} (BP = {self.bp:.3f} "
                f"ratio = {ratio:.3f} hyp_len = {self.hyp_len} ref_len = {self.ref_len})")


def bleu_score(hypotheses, references, smooth="exp", lowercase=False):
    """Corpus BLEU with its parts, as a :class:`BLEUScore`; the defaults are
    sacrebleu's (cased, 13a, exp smoothing).

    ``hypotheses``: list of strings. ``references``: one entry per hypothesis, either
    a string or a list of strings (several references for that hypothesis; the
    n-gram clip uses the most generous reference, the brevity penalty the reference
    length closest to the hypothesis, the shorter one on a tie). ``smooth``: "none"
    (a zero precision gives BLEU 0) or "exp" (sacrebleu's smoothing, the default).
    ``lowercase``: compare case-insensitively.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"corpus_bleu: {len(hypotheses)} hypotheses but "
                         f"{len(references)} references")
    if smooth not in ("none", "exp"):
        raise ValueError(f"smooth must be 'none' or 'exp', got {smooth!r}")
    matches = [0] * MAX_ORDER
    totals = [0] * MAX_ORDER
    hyp_len = ref_len = 0
    nrefs = set()
    for hyp, refs in zip(hypotheses, references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise ValueError(f"corpus_bleu: hypothesis {hyp!r} has no reference")
        nrefs.add(len(refs))
        if lowercase:
            hyp, refs = hyp.lower(), [r.lower() for r in refs]
        # sacrebleu strips trailing whitespace before tokenising ("-\n" at the end
        # of a line then stays a hyphen instead of joining nothing)
        hyp_tokens = tokenize_13a(hyp.rstrip())
        ref_tokens = [tokenize_13a(r.rstrip()) for r in refs]
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

    if hyp_len >= ref_len:
        bp = 1.0
    else:
        bp = math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0
    if min(precisions) == 0.0:
        score = 0.0
    else:
        # Geometric mean of the fractions, then back to the 0-100 scale. (sacrebleu
        # averages the logs of the percentages instead: the same up to rounding in
        # the last bits, except that a perfect match here is exactly 100.0.)
        score = 100.0 * bp * math.exp(sum(math.log(p / 100.0) for p in precisions) / MAX_ORDER)
    nrefs = nrefs.pop() if len(nrefs) == 1 else ("var" if nrefs else 0)
    return BLEUScore(score, precisions, bp, hyp_len, ref_len, nrefs, lowercase, smooth)


def corpus_bleu(hypotheses, references, smooth="exp", lowercase=False):
    """Corpus BLEU on the 0-100 scale, with sacrebleu's defaults (see :func:`bleu_score`
    for the arguments). The result is a float (a :class:`BLEUScore`, which also has
    the parts and the signature).

    >>> corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"])
    100.0
    >>> corpus_bleu(["The cat sat"], ["the cat sat on the mat"]).signature(version=False)
    'nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp'
    """
    return bleu_score(hypotheses, references, smooth=smooth, lowercase=lowercase)

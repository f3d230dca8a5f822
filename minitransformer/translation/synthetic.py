"""Synthetic sequence tasks whose answer is known exactly: copy, reverse, mirror.

They control *how far* information must travel, which is what separates a recurrent
model (one step per token) from attention (any distance in one step):

* copy:    target = source                        (distance 0 between aligned tokens)
* reverse: target = source reversed               (first source token -> last target)
* mirror:  target = each source token mapped through a fixed dictionary, then
           reversed (reordering and a lexical mapping together, like translation).

Tokens are the words ``w0 ... w{vocab_size-1}``, so a pair is two space-separated
strings that :class:`~minitransformer.translation.vocab.Vocabulary` encodes with no
``<unk>``: build it with :func:`task_vocabulary`. Lengths are in tokens, typically 8 to
512; a length may be an int or an inclusive ``(low, high)`` range.
"""
import random

from .vocab import Vocabulary

TASKS = ("copy", "reverse", "mirror")


def symbols(vocab_size):
    """The task's tokens: ["w0", "w1", ...]."""
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    return [f"w{i}" for i in range(vocab_size)]


def mirror_dictionary(vocab_size, mapping_seed=0):
    """The fixed token -> token mapping of the mirror task: a random permutation of the
    symbols that moves every symbol (a derangement), the same for a given
    ``(vocab_size, mapping_seed)``, so train and test sets drawn with different seeds
    share it."""
    words = symbols(vocab_size)
    rng = random.Random(f"mirror-{vocab_size}-{mapping_seed}")
    while True:
        image = words[:]
        rng.shuffle(image)
        if all(a != b for a, b in zip(words, image)):
            return dict(zip(words, image))


def task_vocabulary(vocab_size):
    """A Vocabulary holding every symbol (in order), for both sides of any task."""
    return Vocabulary(symbols(vocab_size))


def _length(length, rng):
    low, high = (length, length) if isinstance(length, int) else length
    if not 1 <= low <= high:
        raise ValueError(f"length must be an int >= 1 or a range (low, high) with "
                         f"1 <= low <= high, got {length!r}")
    return low if low == high else rng.randint(low, high)


def make_task(task, n_pairs, length, vocab_size=32, seed=0, mapping_seed=0):
    """``n_pairs`` ``(source, target)`` string pairs of ``task`` ("copy", "reverse" or
    "mirror"). ``length``: tokens per source (int, or inclusive ``(low, high)``);
    targets have the same length. Deterministic for a ``seed``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    words = symbols(vocab_size)
    mapping = mirror_dictionary(vocab_size, mapping_seed) if task == "mirror" else None
    rng = random.Random(seed)
    pairs = []
    for _ in range(n_pairs):
        source = [rng.choice(words) for _ in range(_length(length, rng))]
        if task == "copy":
            target = source
        elif task == "reverse":
            target = source[::-1]
        else:
            target = [mapping[w] for w in reversed(source)]
        pairs.append((" ".join(source), " ".join(target)))
    return pairs


def copy_task(n_pairs, length, vocab_size=32, seed=0):
    """Pairs whose target is the source: see :func:`make_task`."""
    return make_task("copy", n_pairs, length, vocab_size, seed)


def reverse_task(n_pairs, length, vocab_size=32, seed=0):
    """Pairs whose target is the source reversed: see :func:`make_task`."""
    return make_task("reverse", n_pairs, length, vocab_size, seed)


def mirror_task(n_pairs, length, vocab_size=32, seed=0, mapping_seed=0):
    """Pairs whose target is the source mapped through :func:`mirror_dictionary`, reversed."""
    return make_task("mirror", n_pairs, length, vocab_size, seed, mapping_seed)


def sequence_accuracy(hypotheses, references):
    """The fraction of hypotheses equal to their reference, token for token."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not references:
        return 0.0
    return sum(h.split() == r.split() for h, r in zip(hypotheses, references)) / len(references)


def token_accuracy(hypotheses, references):
    """The fraction of reference tokens matched at the same position (a hypothesis
    that is too long or too short loses the positions it misses)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    correct = total = 0
    for h, r in zip(hypotheses, references):
        h, r = h.split(), r.split()
        correct += sum(a == b for a, b in zip(h, r))
        total += max(len(h), len(r))
    return correct / total if total else 0.0

"""Text <-> token ids: a tokenizer and a vocabulary.

A model sees integers. :func:`tokenize` turns a sentence into words and punctuation
marks (lower-cased, so "Der" and "der" share one embedding); :class:`Vocabulary`
numbers them, with four special tokens every translation model needs:

* ``<pad>`` = 0 fills the short sentences of a batch up to the longest one,
* ``<bos>`` starts the decoder's input ("begin of sentence"),
* ``<eos>`` ends a sentence: the decoder learns to emit it, and decoding stops there,
* ``<unk>`` stands for any word the vocabulary does not know, so nothing crashes.
"""
import json
import re
from collections import Counter

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)  # their ids are their positions: <pad> = 0

# A word is a run of letters/digits (Unicode: umlauts, ß and accents included),
# possibly with inner apostrophes ("don't", "l'homme"); anything else that is not a
# space is a token of its own (punctuation).
_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = set(".,;:!?)]}%…»") | {"'", "’"}
_NO_SPACE_AFTER = set("([{¿¡«")
_JOINERS = {"-", "/"}  # "well - known" -> "well-known"


def tokenize(text, lowercase=True):
    """Split ``text`` into a list of word and punctuation tokens.

    >>> tokenize("Heute sieht der Hund den Ball, weil er groß ist.")
    ['heute', 'sieht', 'der', 'hund', 'den', 'ball', ',', 'weil', 'er', 'groß', 'ist', '.']
    """
    if lowercase:
        text = text.lower()  # str.lower keeps ß (casefold would make it "ss")
    return _TOKEN.findall(text)


def detokenize(tokens):
    """Join tokens back into text: spaces between words, none before closing
    punctuation or after opening brackets, none around hyphens.

    >>> detokenize(['heute', 'sieht', 'der', 'hund', 'den', 'ball', '.'])
    'heute sieht der hund den ball.'
    """
    out = []
    for token in tokens:
        if out and not (token in _NO_SPACE_BEFORE or token in _JOINERS
                        or out[-1] in _NO_SPACE_AFTER or out[-1] in _JOINERS):
            out.append(" ")
        out.append(token)
    return "".join(out)


def read_ids(ids, strip_special=True):
    """The ids (a list, array or 1-d Tensor) a vocabulary should turn into text, as
    ints: with ``strip_special``, up to the first ``<eos>`` and without ``<pad>`` and
    ``<bos>`` (the special ids are the same in every vocabulary of this package)."""
    if hasattr(ids, "tolist"):  # Tensor, NumPy or CuPy array
        ids = ids.tolist()
    for i in ids:
        i = int(i)
        if strip_special:
            if i == Vocabulary.eos_id:
                return
            if i in (Vocabulary.pad_id, Vocabulary.bos_id):
                continue
        yield i


class Vocabulary:
    """A numbering of tokens: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3, then
    the corpus tokens (most frequent first, ties in alphabetical order, so the
    numbering is deterministic).

    Build one with :meth:`build`; ``len(vocab)`` counts the special tokens too.
    """

    pad_id, bos_id, eos_id, unk_id = range(4)

    def __init__(self, tokens=(), lowercase=True):
        """``tokens``: the non-special tokens in id order (ids 4, 5, ...);
        ``lowercase``: whether :meth:`encode` lower-cases before looking up."""
        self.lowercase = lowercase
        self.itos = list(SPECIALS)
        for token in tokens:
            if token in SPECIALS:
                continue
            self.itos.append(token)
        self.stoi = {token: i for i, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("Vocabulary tokens must be distinct")

    @classmethod
    def build(cls, sentences, min_freq=1, max_size=None, lowercase=True):
        """A vocabulary of the tokens of ``sentences`` (an iterable of strings) that
        occur at least ``min_freq`` times; at most ``max_size`` tokens in all (specials
        included) when given. Rarer tokens will encode as ``<unk>``."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts = Counter()
        for sentence in sentences:
            counts.update(tokenize(sentence, lowercase))
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max(0, max_size - len(SPECIALS))]
        return cls(kept, lowercase=lowercase)

    # ---------------------------------------------------------------- lookups
    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def __eq__(self, other):
        return (isinstance(other, Vocabulary) and self.itos == other.itos
                and self.lowercase == other.lowercase)

    def __repr__(self):
        return f"Vocabulary({len(self)} tokens)"

    def token_to_id(self, token):
        """The id of ``token``, or ``unk_id`` when unknown."""
        return self.stoi.get(token, self.unk_id)

    def id_to_token(self, i):
        """The token of id ``i``, or ``<unk>`` for an id outside the vocabulary."""
        i = int(i)
        return self.itos[i] if 0 <= i < len(self.itos) else UNK

    # ---------------------------------------------------------------- sentences
    def encode(self, sentence, add_bos=False, add_eos=True):
        """``sentence`` (a string) -> a list of ids, ``<eos>`` appended by default."""
        ids = [self.token_to_id(t) for t in tokenize(sentence, self.lowercase)]
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode_tokens(self, ids, strip_special=True):
        """Ids (a list, array or 1-d Tensor) -> a list of tokens. With
        ``strip_special``, reading stops at the first ``<eos>`` (what a decoder emits
        after it means nothing) and ``<pad>``/``<bos>`` are dropped; ``<unk>`` stays."""
        return [self.id_to_token(i) for i in read_ids(ids, strip_special)]

    def decode(self, ids, strip_special=True):
        """Ids -> a sentence string (see :meth:`decode_tokens` and :func:`detokenize`)."""
        return detokenize(self.decode_tokens(ids, strip_special))

    # ---------------------------------------------------------------- saving
    def to_dict(self):
        """A JSON-ready dict, to embed in a checkpoint."""
        return {"tokens": self.itos, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, data):
        """The vocabulary that :meth:`to_dict` described."""
        tokens = list(data["tokens"])
        if tokens[:len(SPECIALS)] != list(SPECIALS):
            raise ValueError(f"not a Vocabulary dict: it must start with {SPECIALS}")
        return cls(tokens[len(SPECIALS):], lowercase=data.get("lowercase", True))

    def save(self, path):
        """Write the vocabulary to ``path`` as UTF-8 JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path):
        """Read a vocabulary written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

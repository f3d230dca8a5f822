"""Byte-pair encoding (BPE): a subword vocabulary learned from the training text.

A word vocabulary (:mod:`.vocab`) must map every word it has not seen to ``<unk>``,
and it lower-cases and re-spaces the text. BPE instead splits text into pieces
that are learned from the corpus: frequent words become one token, rare words a
few pieces ("Spielhaus" -> "Spiel" "haus"), and nothing is ever unknown.

**Base alphabet: the 256 byte values.** A sentence is encoded as UTF-8, so every
possible string (any script, emoji, control characters) is a sequence of
bytes that the vocabulary already holds; there is no ``<unk>`` and no special
"byte fallback" case to handle. The price is 256 ids for bytes that the corpus may
never use, and a character outside ASCII costs 2-4 base tokens until merges join
them. Decoding joins the tokens' bytes and decodes them as UTF-8; a byte run that
is not valid UTF-8 (a model can emit any ids in any order) becomes the replacement
character U+FFFD instead of an error. Hence ``decode(encode(text)) == text`` for
every string, case and whitespace included.

**Learning** (:meth:`BPEVocabulary.learn`) is the textbook loop: count how often
each pair of adjacent tokens occurs, merge the most frequent pair into a new
token, repeat until the vocabulary has ``vocab_size`` tokens. **Encoding** applies
the learned merges to a new word in the order they were learned (by *rank*).

Ids: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3 (as in :class:`.Vocabulary`;
``<unk>`` is never produced by :meth:`~BPEVocabulary.encode`), bytes 0..255 are ids
4..259, and merge number k makes id 260 + k.
"""
import heapq
import re
from collections import Counter, defaultdict

from .vocab import SPECIALS, UNK, Vocabulary, read_ids

_NUM_BYTES = 256
_FIRST_BYTE_ID = len(SPECIALS)                 # byte b has id 4 + b
_FIRST_MERGE_ID = _FIRST_BYTE_ID + _NUM_BYTES  # the first merged token has id 260

# Pre-tokenisation: BPE runs inside "words", never across them. A word is a run of
# letters/digits or a run of punctuation, each taking *one preceding space* with it
# (" dog", " ,"), as GPT-2 and SentencePiece do; other whitespace stays on its own
# ("\t", and all but the last space of a run). Why:
# * the chunks concatenate back to the sentence exactly (every character falls into
#   one alternative of the pattern), so encoding chunk by chunk loses nothing:
#   spaces, tabs and case all survive, and decoding needs no rules about where
#   spaces go (unlike :func:`.vocab.detokenize`);
# * a merge never glues the end of one word to the start of the next ("s th"), so
#   tokens are word pieces, and a word type encodes the same way wherever it occurs:
#   learning counts each word type once, and encoding caches it;
# * the space at the *start* makes " Hund" one token, so a sentence costs no
#   separate token per space.
_CHUNK = re.compile(r" ?\w+| ?[^\w\s]+|\s+(?!\S)|\s+")


def _chunks(sentence):
    return _CHUNK.findall(sentence)


def _pairs(symbols):
    """The adjacent pairs of a token sequence, with repeats: (a, b, a, b) -> 3 pairs."""
    return zip(symbols, symbols[1:])


def _merge(symbols, pair, new_id):
    """``symbols`` with every occurrence of ``pair`` (left to right) replaced by ``new_id``."""
    (left, right), n = pair, len(symbols)
    out, i = [], 0
    while i < n:
        if symbols[i] == left and i + 1 < n and symbols[i + 1] == right:
            out.append(new_id)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def _word_to_base_ids(word):
    return [_FIRST_BYTE_ID + b for b in word.encode("utf-8")]


class BPEVocabulary:
    """A byte-level BPE vocabulary; a drop-in for :class:`.Vocabulary` in training,
    decoding and checkpoints.

    ``merges``: the learned merges in order, each a pair of ids ``(left, right)``;
    merge k creates id 260 + k. Build one with :meth:`learn`.
    """

    kind = "bpe"
    pad_id, bos_id, eos_id, unk_id = range(4)

    def __init__(self, merges=()):
        self.merges = [tuple(int(i) for i in pair) for pair in merges]
        # token_bytes[i]: the bytes that id i stands for (b"" for the specials)
        self.token_bytes = [b""] * len(SPECIALS) + [bytes([b]) for b in range(_NUM_BYTES)]
        for k, pair in enumerate(self.merges):
            new_id = _FIRST_MERGE_ID + k
            if len(pair) != 2 or not all(_FIRST_BYTE_ID <= i < new_id for i in pair):
                raise ValueError(f"merge {k} must be a pair of existing token ids "
                                 f"{_FIRST_BYTE_ID}..{new_id - 1}, got {pair}")
            self.token_bytes.append(self.token_bytes[pair[0]] + self.token_bytes[pair[1]])
        self.ranks = {pair: k for k, pair in enumerate(self.merges)}
        self._cache = {}  # word -> its ids: each word type is encoded once

    # ---------------------------------------------------------------- learning
    @classmethod
    def learn(cls, sentences, vocab_size=8000):
        """Learn merges from ``sentences`` (strings) until the vocabulary holds
        ``vocab_size`` tokens (4 specials + 256 bytes + merges), or until no pair of
        tokens occurs twice any more. Ties go to the pair of smaller ids."""
        if vocab_size < _FIRST_MERGE_ID:
            raise ValueError(f"vocab_size must be at least {_FIRST_MERGE_ID} (4 special "
                             f"tokens + 256 bytes), got {vocab_size}")
        word_counts = Counter(w for s in sentences for w in _chunks(s))
        words = [_word_to_base_ids(w) for w in word_counts]  # each word type once
        freqs = list(word_counts.values())

        # How often each pair occurs (over the corpus), and in which words.
        pair_counts, where = Counter(), defaultdict(set)
        for w, (symbols, freq) in enumerate(zip(words, freqs)):
            for pair in _pairs(symbols):
                pair_counts[pair] += freq
                where[pair].add(w)
        # A heap finds the most frequent pair fast. Entries go stale when a count
        # changes; a fresh entry is pushed then, and stale ones are skipped on pop.
        heap = [(-count, pair) for pair, count in pair_counts.items()]
        heapq.heapify(heap)

        merges = []
        while _FIRST_MERGE_ID + len(merges) < vocab_size and heap:
            neg_count, pair = heapq.heappop(heap)
            if pair_counts.get(pair, 0) != -neg_count:
                continue  # stale entry
            if -neg_count < 2:
                break  # merging a pair that occurs once would learn nothing general
            new_id = _FIRST_MERGE_ID + len(merges)
            merges.append(pair)
            # Only the words that contain the pair change: merge, then update the
            # counts of the pairs each word gained or lost.
            changed = set()
            for w in where.pop(pair):
                new = _merge(words[w], pair, new_id)
                delta = Counter(_pairs(new))  # pairs gained (> 0) and lost (< 0)
                delta.subtract(_pairs(words[w]))
                for p, d in delta.items():
                    if d:
                        pair_counts[p] += d * freqs[w]
                        changed.add(p)
                        if d > 0:
                            where[p].add(w)
                words[w] = new
            for p in changed:
                if pair_counts[p] > 0:
                    heapq.heappush(heap, (-pair_counts[p], p))
                else:
                    del pair_counts[p]
        return cls(merges)

    # ---------------------------------------------------------------- encoding
    def _encode_word(self, word):
        """Apply the merges to one word, earliest-learned (lowest rank) first."""
        if word not in self._cache:
            symbols = _word_to_base_ids(word)
            while len(symbols) > 1:
                pair = min(_pairs(symbols), key=lambda p: self.ranks.get(p, len(self.ranks)))
                if pair not in self.ranks:
                    break  # no pair left that a merge joins
                symbols = _merge(symbols, pair, _FIRST_MERGE_ID + self.ranks[pair])
            self._cache[word] = symbols
        return self._cache[word]

    def encode(self, sentence, add_bos=False, add_eos=True):
        """``sentence`` (a string) -> a list of ids, ``<eos>`` appended by default."""
        if not isinstance(sentence, str):
            raise TypeError(f"encode expects a string, got {type(sentence).__name__}")
        ids = [self.bos_id] if add_bos else []
        for word in _chunks(sentence):
            ids.extend(self._encode_word(word))
        if add_eos:
            ids.append(self.eos_id)
        return ids

    # ---------------------------------------------------------------- decoding
    def _is_text(self, i):
        return len(SPECIALS) <= i < len(self.token_bytes)

    def id_to_token(self, i):
        """The token of id ``i`` as a string: a special's name, ``<unk>`` for an id
        outside the vocabulary, else its text (bytes that are not valid UTF-8 on
        their own, such as half a character, are shown as ``\\xNN``)."""
        i = int(i)
        if self._is_text(i):
            return self.token_bytes[i].decode("utf-8", errors="backslashreplace")
        return SPECIALS[i] if 0 <= i < len(SPECIALS) else UNK

    def decode_tokens(self, ids, strip_special=True):
        """Ids (a list, array or 1-d Tensor) -> a list of token strings, e.g. to label
        an attention map. With ``strip_special``, reading stops at the first ``<eos>``
        and ``<pad>``/``<bos>`` are dropped."""
        return [self.id_to_token(i) for i in read_ids(ids, strip_special)]

    def decode(self, ids, strip_special=True):
        """Ids -> the sentence: the tokens' bytes joined and decoded as UTF-8 (invalid
        byte runs become U+FFFD). Specials that are kept, and ids outside the
        vocabulary (as ``<unk>``), appear by name."""
        pieces, run = [], bytearray()
        for i in read_ids(ids, strip_special):
            if self._is_text(i):
                run += self.token_bytes[i]
            else:
                pieces.append(run.decode("utf-8", errors="replace"))
                pieces.append(self.id_to_token(i))
                run = bytearray()
        pieces.append(run.decode("utf-8", errors="replace"))
        return "".join(pieces)

    # ---------------------------------------------------------------- the rest
    def __len__(self):
        return len(self.token_bytes)

    def __eq__(self, other):
        return isinstance(other, BPEVocabulary) and self.merges == other.merges

    def __repr__(self):
        return f"BPEVocabulary({len(self)} tokens, {len(self.merges)} merges)"

    def to_dict(self):
        """A JSON-ready dict, to embed in a checkpoint: the merges say everything."""
        return {"kind": self.kind, "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def from_dict(cls, data):
        """The vocabulary that :meth:`to_dict` described."""
        if data.get("kind") != cls.kind:
            raise ValueError(f"not a BPEVocabulary dict: expected kind 'bpe', "
                             f"got {data.get('kind')!r}")
        return cls(data["merges"])


def vocabulary_from_dict(data):
    """The vocabulary a ``to_dict()`` dict describes: a :class:`BPEVocabulary` for
    ``"kind": "bpe"``, a word :class:`.Vocabulary` for a dict with no ``"kind"``
    (as :meth:`.Vocabulary.to_dict` writes them) or ``"kind": "word"``."""
    kind = data.get("kind", "word")
    if kind == BPEVocabulary.kind:
        return BPEVocabulary.from_dict(data)
    if kind == "word":
        return Vocabulary.from_dict(data)
    raise ValueError(f"unknown vocabulary kind {kind!r}: expected 'bpe' or 'word'")

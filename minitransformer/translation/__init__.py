"""The tiny translation task end to end (data side): corpora, vocabulary, batching, BLEU.

* :mod:`.grammar` -- the built-in English -> German corpus, generated from a grammar
* :mod:`.synthetic` -- copy / reverse / mirror tasks with exact answers
* :mod:`.tsv` -- real parallel text in the Tatoeba/Anki TSV format
* :mod:`.splits` -- train / valid / test splits that share no source sentence
* :mod:`.vocab` -- tokenizer and :class:`Vocabulary` with <pad> <bos> <eos> <unk>
* :mod:`.bpe` -- subword vocabulary learned by byte-pair encoding (cased, no unknown words)
* :mod:`.download` -- fetch Multi30k, verify its checksums, write TSV files
* :mod:`.batching` -- padded batches, padding and causal masks
* :mod:`.bleu` -- corpus BLEU as sacrebleu computes it
"""
from .batching import Batch, causal_mask, encode_pairs, make_batch, make_batches
from .bpe import BPEVocabulary, vocabulary_from_dict
from .bleu import BLEUScore, bleu_score, corpus_bleu, tokenize_13a
from .grammar import generate_pairs, load_corpus
from .splits import split_pairs
from .synthetic import (copy_task, make_task, mirror_task, reverse_task, sequence_accuracy,
                        task_vocabulary, token_accuracy)
from .tsv import TSVData, load_tsv, load_tsv_corpus, read_tsv
from .vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocabulary, detokenize, tokenize

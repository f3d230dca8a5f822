"""Translate sentences with a saved checkpoint (greedy, and beam search).

    python examples/translate.py checkpoints/transformer "the big dog sees a small cat ."
"""
import sys

from minitransformer.translation.train import Trainer

directory = sys.argv[1] if len(sys.argv) > 1 else "checkpoints/transformer"
sentences = sys.argv[2:] or ["The dog sees the cat.", "Does the teacher read a book?",
                             "Today the children play in the garden."]
trainer = Trainer.load(directory)
for sentence, greedy, beam in zip(sentences, trainer.translate(sentences),
                                  trainer.translate(sentences, beam_size=4)):
    print(f"{sentence}\n  greedy: {greedy}\n  beam 4: {beam}")

"""Translate sentences with a saved checkpoint (greedy, and beam search).

    python examples/translate.py [CHECKPOINT_DIR] ["The dog sees the cat." ...]

examples/train_translator.py writes checkpoints/transformer. When there is no
checkpoint there (and none is named), this trains a tiny Transformer for 20 seconds
first, so that there is something to translate with.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

from minitransformer.translation.demo import load_or_train  # noqa: E402

parser = argparse.ArgumentParser(description="Translate English sentences into German.")
parser.add_argument("checkpoint", nargs="?", help="directory (default checkpoints/transformer)")
parser.add_argument("sentences", nargs="*", default=[
    "The dog sees the cat.", "Does the teacher read a book?",
    "Today the children play in the garden."])
args = parser.parse_args()

trainer = load_or_train(args.checkpoint, "translate.py")

for sentence, greedy, beam in zip(args.sentences, trainer.translate(args.sentences),
                                  trainer.translate(args.sentences, beam_size=4)):
    print(f"{sentence}\n  greedy: {greedy}\n  beam 4: {beam}")

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

from minitransformer.translation.data import load_data  # noqa: E402
from minitransformer.translation.train import Trainer, new_trainer  # noqa: E402

parser = argparse.ArgumentParser(description="Translate English sentences into German.")
parser.add_argument("checkpoint", nargs="?", help="directory (default checkpoints/transformer)")
parser.add_argument("sentences", nargs="*", default=[
    "The dog sees the cat.", "Does the teacher read a book?",
    "Today the children play in the garden."])
args = parser.parse_args()

directory = args.checkpoint or "checkpoints/transformer"
if os.path.exists(directory) or args.checkpoint:
    try:
        trainer = Trainer.load(directory)
    except FileNotFoundError as error:
        sys.exit(f"translate.py: {error}")
else:
    print(f"No checkpoint in {directory}: training a tiny Transformer for 20 s first.")
    data = load_data(corpus_size=20000, seed=0)
    trainer = new_trainer("transformer", data["train"])
    trainer.fit(data["train"], data["valid"], epochs=100, time_budget=20, log_every=100,
                bleu_limit=0)

for sentence, greedy, beam in zip(args.sentences, trainer.translate(args.sentences),
                                  trainer.translate(args.sentences, beam_size=4)):
    print(f"{sentence}\n  greedy: {greedy}\n  beam 4: {beam}")

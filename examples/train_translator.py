"""Train a translator on the built-in English -> German corpus and save a checkpoint.

    python examples/train_translator.py [transformer|lstm|rnn] [minutes]

Half a minute of training by default, enough to watch it learn; give it 3 minutes or
more for a model worth keeping. The same as
`python -m minitransformer train --model transformer --minutes 3
--checkpoint checkpoints/transformer`, written out so you can see the pieces.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

from minitransformer.translation.data import load_data  # noqa: E402
from minitransformer.translation.train import new_trainer  # noqa: E402

parser = argparse.ArgumentParser(description="Train a translator on the built-in corpus.")
parser.add_argument("kind", nargs="?", default="transformer", choices=["transformer", "lstm", "rnn"])
parser.add_argument("minutes", nargs="?", type=float, default=0.5,
                    help="training time in minutes (default 0.5)")
args = parser.parse_args()

data = load_data(corpus_size=20000, seed=0)              # {"train", "valid", "test"}
trainer = new_trainer(args.kind, data["train"], data=dict(corpus_size=20000, seed=0))
print(f"{args.kind}: {trainer.model.num_parameters():,} parameters, "
      f"{len(data['train'])} training pairs, {args.minutes:g} min of training")
trainer.fit(data["train"], data["valid"], epochs=100, time_budget=args.minutes * 60,
            checkpoint_dir=f"checkpoints/{args.kind}", trace_every=200, bleu_limit=0)
# Case-insensitive BLEU: the word vocabulary lower-cases what the model reads and writes.
bleu = trainer.bleu(data["test"], lowercase=True)
print(f"test BLEU: {bleu:.1f} ({len(data['test'])} sentences never seen in training)")
print(f"saved to checkpoints/{args.kind}; try examples/translate.py checkpoints/{args.kind}")

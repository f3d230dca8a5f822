"""Train on parallel text of your own: lines of `source<TAB>target[<TAB>attribution]`.

    python examples/train_on_tsv.py [path/to/pairs.tsv] [minutes]

Tatoeba/Anki pair files (https://tatoeba.org, https://www.manythings.org/anki/) have
this format. Malformed lines are skipped with a warning that gives their numbers.
Without a path, it first writes 3,000 pairs of the built-in grammar corpus to a TSV
file in your temporary directory and trains on that, so you see the format and a run.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

from minitransformer.translation.data import load_data  # noqa: E402
from minitransformer.translation.grammar import generate_pairs  # noqa: E402
from minitransformer.translation.train import new_trainer  # noqa: E402

parser = argparse.ArgumentParser(description="Train a Transformer translator on a TSV file.")
parser.add_argument("tsv", nargs="?", help="pairs file (default: a sample of the built-in corpus)")
parser.add_argument("minutes", nargs="?", type=float, default=0.5,
                    help="training time in minutes (default 0.5)")
args = parser.parse_args()

path = args.tsv
if path is None:
    path = os.path.join(tempfile.gettempdir(), "minitransformer_sample_pairs.tsv")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{english}\t{german}\n" for english, german in generate_pairs(3000, seed=1))
    print(f"No file given: wrote 3000 built-in English-German pairs to {path}; training on it.")

data_args = dict(tsv=os.path.abspath(path), max_tokens=12, seed=0)   # kept in the checkpoint
try:
    data = load_data(**data_args)
except (OSError, ValueError) as error:      # missing, unreadable or empty file: say which
    sys.exit(f"train_on_tsv.py: {error}")
print(f"{path}: {len(data['train'])} training, {len(data['test'])} test pairs")
trainer = new_trainer("transformer", data["train"], data=data_args)
trainer.fit(data["train"], data["valid"], epochs=100, time_budget=args.minutes * 60,
            checkpoint_dir="checkpoints/tsv", bleu_limit=0)
print(f"test BLEU: {trainer.bleu(data['test'], lowercase=True):.1f} (case-insensitive: "
      f"the word vocabulary lower-cases)")
for (source, reference), output in zip(data["test"][:5], trainer.translate([s for s, _ in data["test"][:5]])):
    print(f"{source}\n  reference: {reference}\n  model:     {output}")

"""Train on parallel text of your own: lines of `source<TAB>target[<TAB>attribution]`.

    python examples/train_on_tsv.py path/to/eng-fra.tsv [minutes]

Tatoeba/Anki pair files (https://tatoeba.org, https://www.manythings.org/anki/) have
this format. Malformed lines are skipped with a warning that gives their numbers.
"""
import sys

from minitransformer.translation.data import load_data
from minitransformer.translation.train import new_trainer

path = sys.argv[1]
minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
data_args = dict(tsv=path, max_tokens=12, seed=0)
data = load_data(**data_args)
print(f"{path}: {len(data['train'])} training, {len(data['test'])} test pairs")
trainer = new_trainer("transformer", data["train"], data=data_args)
trainer.fit(data["train"], data["valid"], epochs=100, time_budget=minutes * 60,
            checkpoint_dir="checkpoints/tsv")
print(f"test BLEU: {trainer.bleu(data['test']):.1f}")
for (source, reference), output in zip(data["test"][:5], trainer.translate([s for s, _ in data["test"][:5]])):
    print(f"{source}\n  reference: {reference}\n  model:     {output}")

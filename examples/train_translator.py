"""Train a translator on the built-in English -> German corpus and save a checkpoint.

    python examples/train_translator.py [transformer|lstm|rnn] [minutes]

The same as `python -m minitransformer train --model transformer --minutes 3
--checkpoint checkpoints/transformer`, written out so you can see the pieces.
"""
import sys

from minitransformer.translation.data import load_data
from minitransformer.translation.train import new_trainer

kind = sys.argv[1] if len(sys.argv) > 1 else "transformer"
minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0

data = load_data(corpus_size=20000, seed=0)              # {"train", "valid", "test"}
trainer = new_trainer(kind, data["train"], data=dict(corpus_size=20000, seed=0))
print(f"{kind}: {trainer.model.num_parameters():,} parameters")
trainer.fit(data["train"], data["valid"], epochs=100, time_budget=minutes * 60,
            checkpoint_dir=f"checkpoints/{kind}", trace_every=200)
print(f"test BLEU: {trainer.bleu(data['test']):.1f}")
print(f"saved to checkpoints/{kind}; try examples/translate.py checkpoints/{kind}")

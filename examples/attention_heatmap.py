"""Where did the model look? The attention of a trained translator over one sentence.

    python examples/attention_heatmap.py [CHECKPOINT_DIR] ["When the dog sleeps, the cat reads."]

Prints the map as text; with matplotlib installed also writes attention.png. German
puts the verb of a subordinate clause last: watch the rows of those verbs look back
at the English verb, far from the diagonal. Without a checkpoint (and none named)
it trains a tiny Transformer for 20 seconds first: its map is rougher than a trained
model's (examples/train_translator.py 3 writes one to checkpoints/transformer).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

from minitransformer.translation.demo import (  # noqa: E402
    attention_map_text, load_or_train, save_attention_png, sentence_attention,
)

parser = argparse.ArgumentParser(description="Show where a translator looks.")
parser.add_argument("checkpoint", nargs="?", help="directory (default checkpoints/transformer)")
parser.add_argument("sentence", nargs="?", default="The woman knows that the child reads a book.")
args = parser.parse_args()

trainer = load_or_train(args.checkpoint, "attention_heatmap.py")

target = trainer.translate([args.sentence])[0]
print(f"\n{args.sentence}\n-> {target}\n")
weights, source_tokens, target_tokens = sentence_attention(trainer, args.sentence, target)
print(attention_map_text(weights, source_tokens, target_tokens))
if save_attention_png(weights, source_tokens, target_tokens, "attention.png", args.sentence):
    print("wrote attention.png")

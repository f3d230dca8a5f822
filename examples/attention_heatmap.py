"""Where did the model look? The attention of a trained translator over one sentence.

    python examples/attention_heatmap.py checkpoints/transformer "when the dog sleeps , the cat reads ."

Prints the map as text; with matplotlib installed also writes attention.png. German
puts the verb of a subordinate clause last: watch the rows of those verbs look back
at the English verb, far from the diagonal.
"""
import sys

from minitransformer.translation.demo import attention_map_text, save_attention_png, sentence_attention
from minitransformer.translation.train import Trainer

directory = sys.argv[1] if len(sys.argv) > 1 else "checkpoints/transformer"
source = sys.argv[2] if len(sys.argv) > 2 else "The woman knows that the child reads a book."
trainer = Trainer.load(directory)
target = trainer.translate([source])[0]
print(f"{source}\n-> {target}\n")
weights, source_tokens, target_tokens = sentence_attention(trainer, source, target)
print(attention_map_text(weights, source_tokens, target_tokens))
if save_attention_png(weights, source_tokens, target_tokens, "attention.png", source):
    print("wrote attention.png")

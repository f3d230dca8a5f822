# %% [markdown]
# # 6. The translator
#
# After this chapter you will be able to train a tiny Transformer translator on the
# built-in English → German corpus, score it with BLEU, translate your own sentences,
# and read an attention map: which English words each German word looked at.
#
# With the default settings it trains for 1,500 steps: about half a minute on a quiet
# 2-core CPU. On a busy machine it stops after 75 seconds, whatever step it reached.

# %%
import os

from minitransformer import analysis
from minitransformer.translation.bleu import corpus_bleu
from minitransformer.translation.data import load_data
from minitransformer.translation.demo import attention_map_text, sequential_ops, sentence_attention
from minitransformer.translation.train import new_trainer

QUICK = os.environ.get("MINITRANSFORMER_TOUR_QUICK") == "1"
STEPS = 30 if QUICK else 1500                 # training steps
SECONDS = 4 if QUICK else 75                  # the most seconds of training
TEST_SENTENCES = 20 if QUICK else 200

# %% [markdown]
# ## The corpus
#
# The sentence pairs come from a small bilingual grammar inside the library: no
# download. It has statements, questions, adjectives, prepositional phrases and
# subordinate clauses, where German moves the verb to the end ("..., weil der Hund
# den Ball sieht"): the model must learn to rearrange words over long distances.

# %%
data = load_data(corpus_size=20000, seed=0)
print({part: len(pairs) for part, pairs in data.items()})
for english, german in data["train"][:4]:
    print(f"  {english}\n  -> {german}")

# %% [markdown]
# ## A tiny Transformer
#
# Two encoder and two decoder layers of width 64 with 4 heads. The vocabularies are the
# words of the training pairs, lower-cased. A high learning rate with a short warm-up
# and small batches let it learn within a minute.

# %%
trainer = new_trainer("transformer", data["train"], lr=3e-3, warmup=50, batch_size=32)
print(f"{trainer.model.num_parameters():,} parameters; vocabularies of "
      f"{len(trainer.src_vocab)} English and {len(trainer.tgt_vocab)} German words")

# %%
valid = data["valid"][:100 if QUICK else 500]   # the validation loss after each epoch
trainer.fit(data["train"], valid, epochs=100, time_budget=SECONDS, max_steps=STEPS,
            log_every=250, bleu_limit=0)
print(f"trained {trainer.step} steps")

# %% [markdown]
# ## BLEU on sentences it never saw
#
# BLEU compares the n-grams (1 to 4 words) of each translation with those of the
# reference, over the whole test set, with a penalty for translations that are too
# short: 100 means word for word the reference. The word vocabulary lower-cases, so
# the score is the case-insensitive one.

# %%
test = data["test"][:TEST_SENTENCES]
hypotheses = trainer.translate([english for english, _ in test])
bleu = corpus_bleu(hypotheses, [german for _, german in test], lowercase=True)
print(f"test BLEU on {len(test)} sentences: {bleu:.1f}")
for (english, german), hypothesis in list(zip(test, hypotheses))[:3]:
    print(f"  {english}\n  reference: {german}\n  model:     {hypothesis}")

# %% [markdown]
# ## Your own sentence
#
# Any sentence made of the corpus's words works. A word the model never saw becomes
# `<unk>`.

# %%
sentence = "The woman knows that the child reads a book."
translation = trainer.translate([sentence])[0]
print(f"{sentence}\n-> {translation}")

# %% [markdown]
# ## Where did it look?
#
# The decoder's cross-attention gives, for every German word it predicts, a weight over
# the English words. Watch the verb at the end of the subordinate clause ("liest"):
# its row looks back at "reads", far from the diagonal.

# %%
weights, source_tokens, target_tokens = sentence_attention(trainer, sentence, translation)
print(attention_map_text(weights, source_tokens, target_tokens))

# %%
plt = analysis.pyplot()                        # None where matplotlib is not installed
if plt is not None:
    os.makedirs("tour_output", exist_ok=True)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(source_tokens), 1 + 0.4 * len(target_tokens)))
    ax.imshow(weights, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60, ha="right")
    ax.set_yticks(range(len(target_tokens)), target_tokens)
    fig.tight_layout()
    fig.savefig(os.path.join("tour_output", "translator_attention.png"))
    plt.close(fig)
    print("saved tour_output/translator_attention.png")

# %% [markdown]
# ## The whole model, traced
#
# The critical path of one forward pass of the translator, for a batch of the
# shortest and a batch of the longest test sentences: for the Transformer it is set
# by its layers, not by the sentence length (compare chapter 3's LSTM).

# %%
by_length = sorted(data["test"], key=lambda pair: len(pair[0].split()))
for label, pairs in (("shortest", by_length[:16]), ("longest", by_length[-16:])):
    words = len(pairs[0][0].split())
    print(f"{label:>8} sentences ({words} words): {sequential_ops(trainer, pairs)} sequential ops")

# %% [markdown]
# ## Exercises
#
# **Exercise 6.1: an alignment from attention.** In `tour/exercises/ex06_1.py` write
# `alignment(weights, source_tokens, target_tokens)`: for each target word, the source
# word it attends to most. The check tries it on small maps whose answer is known:
# `python -m pytest -m exercise_6_1`. Then print the alignment of the sentence above:
# does every German verb point at its English verb?

"""The demo: one corpus, two translators, the same engine, side by side.

A tiny Transformer and a tiny LSTM encoder-decoder learn the built-in English ->
German corpus for the same wall-clock budget. Then the demo prints both models'
test BLEU, a few translations against their references, the measured sequential
steps of one training step of each (the tracer's critical path), and where one
sentence's translation looked in the source (an attention map).
"""
import os
import time

from .. import analysis, backend
from .._tensor import no_grad
from ..trace import trace
from .batching import encode_pairs, make_batch
from .bleu import corpus_bleu
from .data import load_data
from .train import Trainer, new_trainer

SHADES = " .:-=+*#%@"   # attention weight 0 .. 1 as a character


def attention_map_text(weights, source_tokens, target_tokens):
    """An attention matrix (T, S) as text: one row per target word (the word that row
    predicts), a shade per source word."""
    width = max(len(t) for t in target_tokens)
    lines = [" " * (width + 2) + " ".join(f"{i % 10}" for i in range(len(source_tokens)))]
    for token, row in zip(target_tokens, weights):
        shades = " ".join(SHADES[min(int(w * len(SHADES)), len(SHADES) - 1)] for w in row)
        lines.append(f"{token:>{width}}  {shades}")
    lines.append("source: " + "  ".join(f"{i % 10}={t}" for i, t in enumerate(source_tokens)))
    return "\n".join(lines)


def load_or_train(checkpoint, program, seconds=20):
    """The translator saved in ``checkpoint`` (a directory, or None for
    checkpoints/transformer). Where there is none and none was named, a tiny
    Transformer trained for ``seconds`` on the built-in corpus: the examples run on a
    fresh clone. A named checkpoint that cannot be read ends ``program`` with the error."""
    directory = checkpoint or os.path.join("checkpoints", "transformer")
    if os.path.exists(directory) or checkpoint:
        try:
            return Trainer.load(directory)
        except FileNotFoundError as error:
            raise SystemExit(f"{program}: {error}") from None
    print(f"No checkpoint in {directory}: training a tiny Transformer for {seconds} s first.")
    data = load_data(corpus_size=20000, seed=0)
    trainer = new_trainer("transformer", data["train"])
    trainer.fit(data["train"], data["valid"], epochs=100, time_budget=seconds, log_every=100,
                bleu_limit=0)
    return trainer


def save_attention_png(weights, source_tokens, target_tokens, path, title):
    """The same map as a PNG, when matplotlib is installed; returns the path or None."""
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(source_tokens), 1 + 0.4 * len(target_tokens)))
    ax.imshow(weights, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60, ha="right")
    ax.set_yticks(range(len(target_tokens)), target_tokens)
    ax.set_title(title)
    fig.tight_layout()
    analysis.save_png(fig, path)
    return path


def sentence_attention(trainer, source, target):
    """The (T, S) attention of ``trainer``'s model translating ``source`` into ``target``."""
    example = (trainer.src_vocab.encode(source), trainer.tgt_vocab.encode(target, add_eos=False))
    batch = make_batch([example], device=trainer.device)
    trainer.model.eval()
    with no_grad():
        weights = trainer.model.cross_attention(batch.src, batch.tgt_in, batch.src_padding_mask)
    weights = backend.to_numpy(weights.data[0])
    src_tokens = trainer.src_vocab.decode_tokens(example[0], strip_special=False)
    # Row i is the query that predicts target word i (it reads <bos> + the words before).
    predicted = trainer.tgt_vocab.decode_tokens(batch.tgt_out.data[0], strip_special=False)
    return weights, src_tokens, predicted


def _shortest_and_longest(pairs, count=32):
    by_length = sorted(pairs, key=lambda pair: len(pair[0].split()))
    return by_length[:count], by_length[-count:]


def _words(pairs):
    lengths = sorted(len(src.split()) for src, _ in pairs)
    return f"{lengths[0]}" if lengths[0] == lengths[-1] else f"{lengths[0]}-{lengths[-1]}"


def sequential_ops(trainer, pairs):
    """The critical path, in ops, of the model's forward pass over one batch of ``pairs``."""
    batch = make_batch(encode_pairs(pairs, trainer.src_vocab, trainer.tgt_vocab),
                       device=trainer.device)
    trainer.model.eval()
    with no_grad(), trace() as t:
        trainer.model(batch.src, batch.tgt_in, batch.src_padding_mask, batch.tgt_padding_mask)
    return t.summary("forward")["sequential_ops"]


def run(device="cpu", seconds_per_model=100, corpus_size=20000, test_sentences=500,
        examples=5, seed=0, out_dir="demo_output", log=print):
    """Train both translators for ``seconds_per_model`` each and print the comparison."""
    start = time.perf_counter()
    data = load_data(corpus_size=corpus_size, seed=seed)
    log(f"minitransformer demo on {device}: built-in English -> German corpus, "
        f"{len(data['train'])} training pairs, {seconds_per_model:.0f} s of training per model\n")
    test = data["test"][:test_sentences]
    results = {}
    for kind in ("transformer", "lstm"):
        log(f"--- training the {kind} translator")
        trainer = new_trainer(kind, data["train"], device=device, seed=seed)
        log(f"    {trainer.model.num_parameters():,} parameters")
        trainer.fit(data["train"], data["valid"], epochs=1000, time_budget=seconds_per_model,
                    log=log, log_every=100, trace_every=100, bleu_limit=100)
        profile = trainer.profile
        hypotheses = trainer.translate([src for src, _ in test])
        bleu = corpus_bleu(hypotheses, [tgt for _, tgt in test], lowercase=True)
        results[kind] = dict(trainer=trainer, bleu=bleu, hypotheses=hypotheses, profile=profile)
        log(f"    test BLEU ({len(test)} sentences, greedy): {bleu:.1f}\n")

    log("--- translations (test sentences the models never saw)")
    for i in range(examples):
        src, ref = test[i]
        log(f"  source:      {src}")
        log(f"  reference:   {ref}")
        for kind in results:
            log(f"  {kind:<12} {results[kind]['hypotheses'][i]}")
        log("")

    short, long = _shortest_and_longest(data["test"])
    log("--- sequential ops: the longest chain of dependent ops in one forward pass, measured")
    log(f"  {'model':<12}{'test BLEU':>10}{'short sentences':>17}{'long sentences':>16}"
        f"{'matmul share of a step':>24}")
    for kind, r in results.items():
        counts = [sequential_ops(r["trainer"], pairs) for pairs in (short, long)]
        share = f"{r['profile']['matmul_share']:.0%}" if r["profile"] else "(no step traced)"
        log(f"  {kind:<12}{r['bleu']:>10.1f}{counts[0]:>17}{counts[1]:>16}{share:>24}")
    log(f"  (a batch of the {len(short)} shortest test sentences, {_words(short)} words each, and "
        f"of the {len(long)} longest, {_words(long)} words)\n"
        "  The LSTM's chain grows with the sentence: one step per token, in the encoder and the\n"
        "  decoder. The Transformer's is set by its number of layers, whatever the length.\n")

    src, ref = test[0]
    for kind, r in results.items():
        weights, src_tokens, tgt_tokens = sentence_attention(r["trainer"], src, ref)
        log(f"--- {kind}: where each German word looked in the English sentence "
            f"(darker = more attention)")
        log(attention_map_text(weights, src_tokens, tgt_tokens) + "\n")
        png = save_attention_png(weights, src_tokens, tgt_tokens,
                                 os.path.join(out_dir, f"attention_{kind}.png"),
                                 f"{kind}: attention of '{src}'")
        if png:
            log(f"    (saved {png})")
    log(f"demo finished in {time.perf_counter() - start:.0f} s")
    return {kind: r["bleu"] for kind, r in results.items()}

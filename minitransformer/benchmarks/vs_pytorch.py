"""The engine against PyTorch's eager CPU kernels, when PyTorch happens to be installed.

An optional comparison, never a dependency: without ``torch`` this prints that it
skips and returns. Forward + backward, batch 32, d = 256, n = 16..256, of

* ``attention``: ``nn.MultiheadAttention`` vs ``torch.nn.MultiheadAttention`` (self-attention);
* ``encoder``: ``nn.TransformerEncoderLayer`` vs ``torch.nn.TransformerEncoderLayer``
  (post-norm, ReLU, feed-forward 4·d, no dropout);
* ``lstm``: ``nn.LSTM`` vs a Python loop of ``torch.nn.LSTMCell`` steps -- the same
  algorithm, one step at a time, so the ratio compares the engines, not cuDNN-style
  fused kernels;
* ``translator``: one full training step (forward, label-smoothed loss, backward,
  clipping, Adam) of the tiny ``TransformerTranslator`` against the same model built
  from PyTorch's modules, on one batch of the built-in corpus (batch 64; ``n`` is the
  batch's target length);
* ``translator_base_multi30k``: the ``base`` Transformer translator (d_model 256, 3+3
  layers, 8 heads, feed-forward 512, BPE vocabularies of 8,000 learned from Multi30k's
  training set) trained on real German -> English batches: several different batches
  of 128 sentence pairs cut by the project's own batching, the same batches fed to
  both sides, one training step each. It reports training throughput, target tokens
  per second (``Batch.n_tokens``), of each side; the issue's target is the engine at
  least as fast as PyTorch (ratio <= 1). Dropout is OFF on both sides by default
  (``--base-dropout 0.1`` turns it on on both: the two libraries drop at the same
  places, embeddings + positions, attention weights, each sublayer's output and the
  feed-forward's hidden layer, so the work is the same; the random masks differ).
  Multi30k is read from ``--data-dir``, else from the folder named by the environment
  variable ``MINITRANSFORMER_DATA``, else from ``data/multi30k`` (where ``python -m
  minitransformer data multi30k`` writes it); where it is absent this row is skipped
  with a message.

Both sides get the same weights (our layers use PyTorch's names and layouts, so
a state dict copies across) and the same input; runs alternate (see
:func:`compare`) and the medians give ratio = engine / PyTorch.
PyTorch runs on 2 threads, the size of the machine the targets were set on.

Two thread pools share one process here: PyTorch's OpenMP threads and NumPy's
OpenBLAS threads. Each busy-waits for a while after its work, stealing the cores
from the other (measured on 2 cores: the engine's steps ran 10-40x slower when
interleaved with PyTorch's). So OpenMP is told to sleep when idle
(``OMP_WAIT_POLICY=PASSIVE``, unless set already; it must be set before torch is
imported), and each side runs once untimed after the other, before its timed run.
"""
import os
import random
import statistics

from .. import backend
from .._tensor import Tensor
from ..translation.data import DEFAULT_MULTI30K_DIR, find_multi30k
from . import common, seq_scaling

# Largest acceptable ratio engine time / PyTorch time, per comparison.
TARGETS = {"attention": 1.5, "encoder": 1.5, "lstm": 1.2, "translator": 2.0,
           "translator_base_multi30k": 1.0}
COMPARISONS = ("translator", "attention", "encoder", "lstm", "translator_base_multi30k")
TORCH_THREADS = 2


def import_torch():
    """The torch module, or None when it is not installed."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_layer(torch, kind, engine_layer, dim, heads):
    """PyTorch's layer for ``kind`` holding a copy of ``engine_layer``'s weights."""
    if kind == "attention":
        layer = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    elif kind == "encoder":
        layer = torch.nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0,
                                                 batch_first=True)
    else:  # the cell of our one-layer LSTM: parameter names lose their "_l0"
        layer = torch.nn.LSTMCell(dim, dim)
    state = {name.replace("_l0", ""): torch.from_numpy(backend.to_numpy(array))
             for name, array in engine_layer.state_dict().items()}
    layer.load_state_dict(state)
    return layer


def _torch_forward(torch, kind, layer, x):
    if kind == "attention":
        return layer(x, x, x, need_weights=False)[0]
    if kind == "encoder":
        return layer(x)
    hidden = x.new_zeros(x.shape[0], layer.hidden_size)
    cell = hidden
    outputs = []
    for t in range(x.shape[1]):            # the same loop over time as nn.LSTM's
        hidden, cell = layer(x[:, t], (hidden, cell))
        outputs.append(hidden)
    return torch.stack(outputs, dim=1)


def make_pair(torch, kind, batch, seq, dim, heads):
    """(engine step, PyTorch step, max |difference| of their outputs) on shared data."""
    engine_layer = seq_scaling.make_layer(kind, dim, heads, "cpu")
    torch_layer = _torch_layer(torch, kind, engine_layer, dim, heads)
    x_array = backend.random_normal((batch, seq, dim), "float32", "cpu")
    grad_array = backend.random_normal((batch, seq, dim), "float32", "cpu")

    def engine():
        x = Tensor(x_array, requires_grad=True)
        seq_scaling.forward(kind, engine_layer, x).backward(Tensor(grad_array))
        engine_layer.zero_grad()

    grad_t = torch.from_numpy(grad_array)

    def pytorch():
        x = torch.from_numpy(x_array).requires_grad_(True)
        _torch_forward(torch, kind, torch_layer, x).backward(grad_t)
        torch_layer.zero_grad(set_to_none=True)

    ours = seq_scaling.forward(kind, engine_layer, Tensor(x_array)).numpy()
    with torch.no_grad():
        theirs = _torch_forward(torch, kind, torch_layer, torch.from_numpy(x_array)).numpy()
    return engine, pytorch, float(abs(ours - theirs).max())


def _torch_translator(torch, model, dropout=0.0):
    """PyTorch's version of our TransformerTranslator (tied output projection), with a
    copy of its weights: the module names match one to one. ``dropout`` > 0 drops
    where ours does: after embeddings + positions, and inside every layer."""
    config = model.config
    d, pad = config["d_model"], config["pad_id"]

    class Translator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = torch.nn.Embedding(config["src_vocab_size"], d, padding_idx=pad)
            self.tgt_embed = torch.nn.Embedding(config["tgt_vocab_size"], d, padding_idx=pad)
            layer_args = dict(d_model=d, nhead=config["nhead"], dropout=dropout, batch_first=True,
                              dim_feedforward=config["dim_feedforward"])
            self.encoder = torch.nn.TransformerEncoder(
                torch.nn.TransformerEncoderLayer(**layer_args), config["num_encoder_layers"],
                enable_nested_tensor=False)
            self.decoder = torch.nn.TransformerDecoder(
                torch.nn.TransformerDecoderLayer(**layer_args), config["num_decoder_layers"])
            self.register_buffer("pe", torch.from_numpy(backend.to_numpy(model.positions.pe.data)))
            # Without dropout no module at all, so the tiny row times what it always did.
            self.embed_dropout = torch.nn.Dropout(dropout) if dropout > 0 else None

        def embed(self, table, ids):
            """(batch, n) ids -> (batch, n, d): scaled embeddings + positions (+ dropout)."""
            x = table(ids) * d ** 0.5 + self.pe[:ids.shape[1]]
            return x if self.embed_dropout is None else self.embed_dropout(x)

        def forward(self, src, tgt_in, src_mask, tgt_mask):
            memory = self.encoder(self.embed(self.src_embed, src), src_key_padding_mask=src_mask)
            future = torch.triu(torch.ones(tgt_in.shape[1], tgt_in.shape[1], dtype=torch.bool), 1)
            hidden = self.decoder(self.embed(self.tgt_embed, tgt_in), memory, tgt_mask=future,
                                  tgt_key_padding_mask=tgt_mask, memory_key_padding_mask=src_mask)
            return hidden @ self.tgt_embed.weight.T

    translator = Translator()
    state = {k: torch.from_numpy(backend.to_numpy(v)) for k, v in model.state_dict().items()}
    translator.load_state_dict(state, strict=False)   # strict=False: the pe buffer is ours
    return translator


def make_translator_pair(torch, batch_size=64):
    """One full training step of the tiny Transformer translator (forward, label-smoothed
    loss, backward, clipping, Adam) in each library, on the same batch and weights."""
    from ..translation.batching import encode_pairs, make_batches
    from ..translation.grammar import load_corpus
    from ..translation.train import new_trainer
    pairs = load_corpus(size=4000, seed=0)["train"]
    trainer = new_trainer("transformer", pairs)
    batch = make_batches(encode_pairs(pairs, trainer.src_vocab, trainer.tgt_vocab), batch_size,
                         seed=0)[0]
    model = _torch_translator(torch, trainer.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=trainer.optimizer.param_groups[0]["lr"],
                                 betas=(0.9, 0.98), eps=1e-9)
    src, tgt_in, tgt_out, src_mask, tgt_mask = (torch.from_numpy(t.numpy()) for t in (
        batch.src, batch.tgt_in, batch.tgt_out, batch.src_padding_mask, batch.tgt_padding_mask))

    def torch_loss():
        logits = model(src, tgt_in, src_mask, tgt_mask)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 tgt_out.reshape(-1), ignore_index=0,
                                                 label_smoothing=0.1)

    def pytorch():
        optimizer.zero_grad(set_to_none=True)
        torch_loss().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    with torch.no_grad():
        theirs = model(src, tgt_in, src_mask, tgt_mask).numpy()
    ours = trainer.model(batch.src, batch.tgt_in, batch.src_padding_mask,
                         batch.tgt_padding_mask).numpy()
    difference = float(abs(ours - theirs).max())   # of the logits, before any step
    return (lambda: trainer.train_step(batch)), pytorch, difference, tgt_in.shape[1]


# ---------------------------------------------------------------- real batches (Multi30k)
MULTI30K_DIR = find_multi30k() or DEFAULT_MULTI30K_DIR   # $MINITRANSFORMER_DATA, else data/multi30k
MULTI30K_FILES = {"tsv": "train.tsv", "valid": "val.tsv", "test": "test2016.tsv"}


def multi30k_missing(data_dir):
    """Why Multi30k cannot be read from ``data_dir`` (a message), or None when it can."""
    missing = [name for name in MULTI30K_FILES.values()
               if not os.path.exists(os.path.join(data_dir, name))]
    if missing:
        return (f"Multi30k not found in {os.path.abspath(data_dir)} (missing "
                f"{', '.join(missing)}); give --data-dir")
    return None


POOL_BATCHES = 50   # make_batches' default: batches per length-sorted pool


def make_translator_base_pair(torch, data_dir, n_batches=8, batch_size=128, dropout=0.0,
                              vocab_size=8000, vocab_pairs=None):
    """The base Transformer translator of Multi30k German -> English in each library.

    Returns (engine_step(i), pytorch_step(i), batches, max |difference| of the logits):
    ``step(i)`` is one full training step (forward, label-smoothed loss, backward,
    clipping, Adam) on ``batches[i]``, the i-th of ``n_batches`` batches of at most
    ``batch_size`` pairs cut from the training set by :func:`make_batches` as training
    cuts them (a length-sorted pool, shuffled order, seed 0): the same batches for both
    sides. The vocabularies are BPE, ``vocab_size`` each, learned from the whole
    training set as a real run learns them (``vocab_pairs``: from its first that many
    pairs only, for a quick test: learning from all 29,000 takes minutes). The logits
    are compared before any step, in eval mode (no dropout), on the first batch.
    """
    from .._tensor import no_grad
    from ..translation.batching import encode_pairs, make_batches
    from ..translation.data import load_data
    from ..translation.train import new_trainer
    files = {key: os.path.join(data_dir, name) for key, name in MULTI30K_FILES.items()}
    pairs = load_data(**files, reverse=True)["train"]            # German -> English
    trainer = new_trainer("transformer", pairs[:vocab_pairs], size="base", vocab="bpe",
                          vocab_size=vocab_size, batch_size=batch_size, dropout=dropout)
    # Training cuts pools of pool_batches x batch_size pairs drawn at random, sorts each
    # by length, cuts it into batches and shuffles them: one such pool is cut here, and
    # its first n_batches are the sample (encoding all 29,000 pairs would only cost time).
    pool = random.Random(0).sample(pairs, min(len(pairs), POOL_BATCHES * batch_size))
    batches = make_batches(encode_pairs(pool, trainer.src_vocab, trainer.tgt_vocab), batch_size,
                           seed=0, pool_batches=POOL_BATCHES)[:n_batches]
    model = _torch_translator(torch, trainer.model, dropout=dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=trainer.optimizer.param_groups[0]["lr"],
                                 betas=(0.9, 0.98), eps=1e-9)
    torch_batches = [tuple(torch.from_numpy(t.numpy()) for t in (
        b.src, b.tgt_in, b.tgt_out, b.src_padding_mask, b.tgt_padding_mask)) for b in batches]
    pad = trainer.tgt_vocab.pad_id
    smoothing, clip = trainer.settings.label_smoothing, trainer.settings.clip

    def pytorch(i):
        src, tgt_in, tgt_out, src_mask, tgt_mask = torch_batches[i]
        optimizer.zero_grad(set_to_none=True)
        logits = model(src, tgt_in, src_mask, tgt_mask)                # (batch, T, vocab)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 tgt_out.reshape(-1), ignore_index=pad,
                                                 label_smoothing=smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss.item()          # as the engine's train_step reads its loss

    # Logits of the first batch with the copied weights, before any step.
    src, tgt_in, _, src_mask, tgt_mask = torch_batches[0]
    model.eval()
    trainer.model.eval()
    with torch.no_grad():
        theirs = model(src, tgt_in, src_mask, tgt_mask).numpy()
    with no_grad():
        b = batches[0]
        ours = trainer.model(b.src, b.tgt_in, b.src_padding_mask, b.tgt_padding_mask).numpy()
    model.train()                    # the engine's train_step sets train() itself
    difference = float(abs(ours - theirs).max())
    return (lambda i: trainer.train_step(batches[i])), pytorch, batches, difference


def compare_passes(engine_step, pytorch_step, n_batches, repeats):
    """Seconds of one pass over all batches (one step each), medians over ``repeats``
    passes per side, the sides alternating. Each timed pass follows one untimed step
    of the same side, so the other library's idle threads have gone to sleep (see the
    module's docstring)."""
    times = {"engine": [], "torch": []}
    for _ in range(repeats):
        for side, step in (("engine", engine_step), ("torch", pytorch_step)):
            step(0)                                                   # untimed
            start = backend.timer("cpu")
            for i in range(n_batches):
                step(i)
            times[side].append(backend.timer("cpu") - start)
    return statistics.median(times["engine"]), statistics.median(times["torch"])


def translator_base_row(torch, data_dir, n_batches=8, repeats=5, dropout=0.0, vocab_pairs=None):
    """The ``translator_base_multi30k`` row: training tokens/s of each side and ratio =
    engine time / PyTorch time (<= 1: the engine's tokens/s at least PyTorch's)."""
    engine, pytorch, batches, difference = make_translator_base_pair(
        torch, data_dir, n_batches, dropout=dropout, vocab_pairs=vocab_pairs)
    tokens = sum(b.n_tokens for b in batches)                        # target tokens per pass
    engine_s, torch_s = compare_passes(engine, pytorch, len(batches), repeats)
    return {"layer": "translator_base_multi30k", "batches": len(batches),
            "batch": max(len(b) for b in batches),
            "tgt_len_median": statistics.median(b.tgt_in.shape[1] for b in batches),
            "tokens_per_pass": tokens, "dropout": dropout,
            "engine_ms_per_step": engine_s / len(batches) * 1e3,
            "torch_ms_per_step": torch_s / len(batches) * 1e3,
            "engine_tokens_per_s": tokens / engine_s, "torch_tokens_per_s": tokens / torch_s,
            "ratio": engine_s / torch_s, "target": TARGETS["translator_base_multi30k"],
            "max_output_difference": difference}


def compare(engine, pytorch, repeats):
    """Alternate the two sides ``repeats`` times; each side's timed run follows an
    untimed one, so the other library's idle threads have gone to sleep."""
    engine_times, torch_times = [], []
    for _ in range(repeats):
        engine_times += common.measure(engine, "cpu", repeats=1, warmup=1)
        torch_times += common.measure(pytorch, "cpu", repeats=1, warmup=1)
    e, t = statistics.median(engine_times), statistics.median(torch_times)
    return {"engine_ms": e * 1e3, "torch_ms": t * 1e3, "ratio": e / t}


def run(batch=32, dim=256, heads=8, lengths=(16, 32, 64, 128, 256), repeats=7,
        layers=("attention", "encoder", "lstm"), out_dir=None, only=None, data_dir=None,
        base_batches=8, base_repeats=5, base_dropout=0.0, base_vocab_pairs=None, log=print):
    """Rows of medians and ratios; None when PyTorch is not installed.

    ``only``: the names of the comparisons to run (see COMPARISONS; None: all).
    ``data_dir``: Multi30k's folder for ``translator_base_multi30k`` (default
    MULTI30K_DIR); where it is absent that row is skipped with a message to ``log``.
    Its rows go to ``vs_pytorch_multi30k.csv`` (other columns), the rest to
    ``vs_pytorch.csv``; a file is written only when it has rows.
    """
    unknown = sorted(set(only or ()) - set(COMPARISONS))
    if unknown:
        raise ValueError(f"only: unknown comparison(s) {unknown}; known: {list(COMPARISONS)}")
    torch = import_torch()
    if torch is None:
        return None
    chosen = set(only or COMPARISONS)
    torch.set_num_threads(TORCH_THREADS)
    rows = []
    if "translator" in chosen:
        engine, pytorch, difference, seq = make_translator_pair(torch)
        rows.append({"layer": "translator", "n": seq, "batch": 64, "d": 64, "heads": 4,
                     **compare(engine, pytorch, repeats), "target": TARGETS["translator"],
                     "max_output_difference": difference})
    for seq in lengths:
        for kind in layers:
            if kind not in chosen:
                continue
            engine, pytorch, difference = make_pair(torch, kind, batch, seq, dim, heads)
            rows.append({"layer": kind, "n": seq, "batch": batch, "d": dim, "heads": heads,
                         **compare(engine, pytorch, repeats), "target": TARGETS[kind],
                         "max_output_difference": difference})
    base_rows = []
    if "translator_base_multi30k" in chosen:
        data_dir = data_dir or find_multi30k() or MULTI30K_DIR
        missing = multi30k_missing(data_dir)
        if missing:
            log(f"vs_pytorch: skipping translator_base_multi30k: {missing}")
        else:
            base_rows.append(translator_base_row(torch, data_dir, base_batches, base_repeats,
                                                 base_dropout, base_vocab_pairs))
    if out_dir is not None:
        header = (f"torch {torch.__version__} ({TORCH_THREADS} threads, OMP_WAIT_POLICY="
                  f"{os.environ.get('OMP_WAIT_POLICY')})")
        if rows:
            common.finish("vs_pytorch", "cpu", out_dir, {"vs_pytorch": rows}, [
                header, f"batch={batch} d={dim} heads={heads} repeats={repeats} "
                        f"(alternating runs, medians); ratio = engine / torch"])
        if base_rows:
            common.finish("vs_pytorch", "cpu", out_dir, {"vs_pytorch_multi30k": base_rows}, [
                header, f"base Transformer translator (d 256, 3+3 layers, 8 heads, ff 512, "
                             f"BPE 8000), Multi30k de->en training batches of 128 pairs, "
                             f"dropout {base_dropout} on both sides; {base_repeats} alternating "
                        f"passes over the batches, medians; tokens = target tokens; "
                        f"ratio = engine time / torch time"])
    return rows + base_rows


def main(argv=None):
    parser = common.parser("vs_pytorch", __doc__.splitlines()[0],
                           quick_help="n = 64; 3 repeats", default_out="bench/results/cpu/")
    common.add_size_flags(parser, batch=32, d=256, heads=8, repeats=7)
    parser.add_argument("--lengths", type=common.positive_int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--only", nargs="+", choices=COMPARISONS, default=None,
                        help="run only these comparisons (default: all)")
    parser.add_argument("--data-dir", default=None,
                        help=f"Multi30k's folder (default {os.path.relpath(MULTI30K_DIR)})")
    parser.add_argument("--base-batches", type=common.positive_int, default=8,
                        help="translator_base_multi30k: how many different batches a pass takes")
    parser.add_argument("--base-repeats", type=common.positive_int, default=5,
                        help="translator_base_multi30k: timed passes per side (median)")
    parser.add_argument("--base-dropout", type=common.fraction, default=0.0,
                        help="translator_base_multi30k: dropout on both sides (default off)")
    args = common.parse(parser, argv, quick=dict(lengths=[64], repeats=3),
                        default_out_dir=common.results_dir("cpu"))
    if args.device != "cpu":   # PyTorch's eager CPU kernels are the reference
        print(f"vs_pytorch: compares CPU kernels; runs on the cpu, not the {args.device}")
    if import_torch() is None:
        print("vs_pytorch: PyTorch is not installed; skipping (it is an optional comparison)")
        return None
    out_dir = args.out_dir
    rows = run(args.batch, args.d, args.heads, args.lengths, args.repeats, out_dir=out_dir,
               only=args.only, data_dir=args.data_dir, base_batches=args.base_batches,
               base_repeats=args.base_repeats, base_dropout=args.base_dropout)
    layer_rows = [r for r in rows if r["layer"] != "translator_base_multi30k"]
    base_rows = [r for r in rows if r["layer"] == "translator_base_multi30k"]
    if layer_rows:
        print(f"engine vs PyTorch eager CPU ({TORCH_THREADS} threads), forward+backward, "
              f"batch {args.batch}, d {args.d}, on {common.device_description('cpu')}")
        common.print_ratios(layer_rows, "torch_ms", "torch")
    for r in base_rows:
        flag = "" if r["ratio"] <= r["target"] else "  (missed)"
        print(f"base Transformer translator, Multi30k de->en training steps, {r['batches']} "
              f"batches of {r['batch']} pairs ({r['tokens_per_pass']} target tokens), dropout "
              f"{'off' if r['dropout'] == 0 else r['dropout']} on both sides, on "
              f"{common.device_description('cpu')}")
        print(f"  engine {r['engine_tokens_per_s']:8.0f} tok/s ({r['engine_ms_per_step']:.0f} ms/step)"
              f"   torch {r['torch_tokens_per_s']:8.0f} tok/s ({r['torch_ms_per_step']:.0f} ms/step)"
              f"   ratio (engine time / torch time) {r['ratio']:.2f} <= {r['target']}{flag}"
              f"   max |logits difference| {r['max_output_difference']:.2e}")
    return rows

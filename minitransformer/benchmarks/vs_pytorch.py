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
  batch's target length).

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
import argparse
import os
import statistics

from .. import backend
from ..tensor import Tensor
from . import common, seq_scaling

TARGETS = {"attention": 1.5, "encoder": 1.5, "lstm": 1.2, "translator": 2.0}
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


def _torch_translator(torch, model):
    """PyTorch's version of our tiny TransformerTranslator (tied output projection),
    with a copy of its weights: the module names match one to one."""
    config = model.config
    d, pad = config["d_model"], config["pad_id"]

    class Translator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = torch.nn.Embedding(config["src_vocab_size"], d, padding_idx=pad)
            self.tgt_embed = torch.nn.Embedding(config["tgt_vocab_size"], d, padding_idx=pad)
            layer_args = dict(d_model=d, nhead=config["nhead"], dropout=0.0, batch_first=True,
                              dim_feedforward=config["dim_feedforward"])
            self.encoder = torch.nn.TransformerEncoder(
                torch.nn.TransformerEncoderLayer(**layer_args), config["num_encoder_layers"],
                enable_nested_tensor=False)
            self.decoder = torch.nn.TransformerDecoder(
                torch.nn.TransformerDecoderLayer(**layer_args), config["num_decoder_layers"])
            self.register_buffer("pe", torch.from_numpy(backend.to_numpy(model.positions.pe.data)))

        def forward(self, src, tgt_in, src_mask, tgt_mask):
            scale = d ** 0.5
            memory = self.encoder(self.src_embed(src) * scale + self.pe[:src.shape[1]],
                                  src_key_padding_mask=src_mask)
            future = torch.triu(torch.ones(tgt_in.shape[1], tgt_in.shape[1], dtype=torch.bool), 1)
            hidden = self.decoder(self.tgt_embed(tgt_in) * scale + self.pe[:tgt_in.shape[1]],
                                  memory, tgt_mask=future, tgt_key_padding_mask=tgt_mask,
                                  memory_key_padding_mask=src_mask)
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
        layers=("attention", "encoder", "lstm"), out_dir=None):
    """Rows of medians and ratios; None when PyTorch is not installed."""
    torch = import_torch()
    if torch is None:
        return None
    torch.set_num_threads(TORCH_THREADS)
    rows = []
    engine, pytorch, difference, seq = make_translator_pair(torch)
    rows.append({"layer": "translator", "n": seq, "batch": 64, "d": 64, "heads": 4,
                 **compare(engine, pytorch, repeats), "target": TARGETS["translator"],
                 "max_output_difference": difference})
    for seq in lengths:
        for kind in layers:
            engine, pytorch, difference = make_pair(torch, kind, batch, seq, dim, heads)
            rows.append({"layer": kind, "n": seq, "batch": batch, "d": dim, "heads": heads,
                         **compare(engine, pytorch, repeats), "target": TARGETS[kind],
                         "max_output_difference": difference})
    if out_dir is not None:
        common.write_csv(f"{out_dir}/vs_pytorch.csv", rows,
                         f"vs_pytorch on {common.device_description('cpu')}, torch "
                         f"{torch.__version__} ({TORCH_THREADS} threads, OMP_WAIT_POLICY="
                         f"{os.environ.get('OMP_WAIT_POLICY')})\n"
                         f"batch={batch} d={dim} heads={heads} repeats={repeats} "
                         f"(alternating runs, medians); ratio = engine / torch")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out-dir", default=None, help="default bench/results/cpu/")
    args = parser.parse_args(argv)
    if import_torch() is None:
        print("vs_pytorch: PyTorch is not installed; skipping (it is an optional comparison)")
        return None
    out_dir = args.out_dir or common.results_dir("cpu")
    rows = run(args.batch, args.d, args.heads, args.lengths, args.repeats, out_dir=out_dir)
    print(f"engine vs PyTorch eager CPU ({TORCH_THREADS} threads), forward+backward, "
          f"batch {args.batch}, d {args.d}, on {common.device_description('cpu')}")
    print(f"  {'layer':<10}{'n':>5}{'engine ms':>12}{'torch ms':>12}{'ratio':>8}{'target':>9}")
    for r in rows:
        flag = "" if r["ratio"] <= r["target"] else "  (missed)"
        print(f"  {r['layer']:<10}{r['n']:>5}{r['engine_ms']:>12.2f}{r['torch_ms']:>12.2f}"
              f"{r['ratio']:>8.2f}{'<= ' + str(r['target']):>9}{flag}")
    print(f"wrote {out_dir}/vs_pytorch.csv")
    return rows


if __name__ == "__main__":
    main()

"""The engine's cost over the same arithmetic written by hand with no autograd.

For one multi-head self-attention layer and one LSTM layer, forward + backward,
the engine (``nn.MultiheadAttention``, ``nn.LSTM``) is timed against
``reference.py`` (the same maths on bare arrays). Both sides use the same weights
and inputs; their runs alternate, so a burst of noise on a shared machine hits both.
Ratio = engine time / hand-written time: 1.0 would mean the engine costs nothing.

Run with ``OPENBLAS_NUM_THREADS=1`` it writes ``overhead_1thread.csv`` instead of
``overhead.csv``: with one BLAS thread the engine's Python work is no longer hidden
behind a second core's arithmetic, so the two runs are kept side by side.
"""
import os
import statistics

from .. import backend, nn
from .._tensor import Tensor
from . import common, reference

TARGETS = {"attention": 1.15, "lstm": 1.3}


def _attention_pair(batch, seq, dim, heads, device):
    layer = nn.MultiheadAttention(dim, heads, batch_first=True).to(device)
    x_array = backend.random_normal((batch, seq, dim), "float32", device)
    grad_out = backend.random_normal((batch, seq, dim), "float32", device)
    weights = [layer.in_proj_weight.data, layer.in_proj_bias.data,
               layer.out_proj.weight.data, layer.out_proj.bias.data]

    def engine():
        x = Tensor(x_array, requires_grad=True)
        out, _ = layer(x, x, x, need_weights=False)
        out.backward(Tensor(grad_out))
        layer.zero_grad()

    def by_hand():
        reference.attention_forward_backward(x_array, *weights, heads, grad_out)

    return engine, by_hand


def _lstm_pair(batch, seq, dim, device):
    layer = nn.LSTM(dim, dim, batch_first=True).to(device)
    x_array = backend.random_normal((batch, seq, dim), "float32", device)
    grad_out = backend.random_normal((batch, seq, dim), "float32", device)
    weights = [layer.weight_ih_l0.data, layer.weight_hh_l0.data,
               layer.bias_ih_l0.data, layer.bias_hh_l0.data]

    def engine():
        x = Tensor(x_array, requires_grad=True)
        out, _ = layer(x)
        out.backward(Tensor(grad_out))
        layer.zero_grad()

    def by_hand():
        reference.lstm_forward_backward(x_array, *weights, grad_out)

    return engine, by_hand


def compare(engine, by_hand, device, repeats):
    """Alternate the two, ``repeats`` times each after a warm-up; medians and ratio."""
    for _ in range(2):
        engine()
        by_hand()
    engine_times, hand_times = [], []
    for _ in range(repeats):
        engine_times += common.measure(engine, device, repeats=1, warmup=0)
        hand_times += common.measure(by_hand, device, repeats=1, warmup=0)
    e, h = statistics.median(engine_times), statistics.median(hand_times)
    return {"engine_ms": e * 1e3, "by_hand_ms": h * 1e3, "ratio": e / h}


def run(device="cpu", batch=32, dim=256, heads=8, lengths=(16, 32, 64, 128, 256), repeats=7):
    rows = []
    for seq in lengths:
        for layer in ("attention", "lstm"):
            engine, by_hand = (_attention_pair(batch, seq, dim, heads, device) if layer == "attention"
                               else _lstm_pair(batch, seq, dim, device))
            result = compare(engine, by_hand, device, repeats)
            rows.append({"layer": layer, "n": seq, "batch": batch, "d": dim, **result,
                         "target": TARGETS[layer]})
    return rows


def main(argv=None):
    parser = common.parser("overhead", __doc__.splitlines()[0], quick_help="n = 32, 128; 3 repeats")
    common.add_size_flags(parser, batch=32, d=256, heads=8, repeats=7)
    parser.add_argument("--lengths", type=common.positive_int, nargs="+", default=[16, 32, 64, 128, 256])
    args = common.parse(parser, argv, quick=dict(lengths=[32, 128], repeats=3))
    rows = run(args.device, args.batch, args.d, args.heads, args.lengths, args.repeats)
    print(f"engine vs hand-written arrays, forward+backward, batch {args.batch}, d {args.d}, "
          f"on {common.device_description(args.device)}")
    common.print_ratios(rows, "by_hand_ms", "by hand")
    header = [f"batch={args.batch} d={args.d} heads={args.heads} repeats={args.repeats} "
              f"(medians)"]
    name = "overhead"
    if os.environ.get("OPENBLAS_NUM_THREADS") == "1":
        name = "overhead_1thread"
        header.insert(0, "OPENBLAS_NUM_THREADS=1 (one BLAS thread; the default run, "
                         "overhead.csv, uses both cores)")
    common.finish("overhead", args.device, args.out_dir, {name: rows}, header)
    return rows

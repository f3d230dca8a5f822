"""How a training step's time and memory grow with the sequence length n.

One forward + backward pass ("a step") of four layers at batch 32, d = 256:

* ``rnn`` and ``lstm`` (``nn.RNN``, ``nn.LSTM``): a Python loop of n dependent
  steps, each a small (batch, d) @ (d, gates·d) product;
* ``attention`` (``nn.MultiheadAttention``, self-attention) and ``encoder``
  (``nn.TransformerEncoderLayer``, feed-forward 4·d, no dropout): all n tokens in
  a few large products, at the price of (batch, heads, n, n) score matrices.

For every layer and n it reports the median step time with its spread, tokens/s,
achieved GFLOP/s and its fraction of the device's matmul peak (measured in the
same run by ``matmul_peak``), and from a separate, untimed traced step (see
``trace.py``) the FLOPs, the number of ops and the number of *sequential* ops (the
critical path): the recurrent layers' grows with n, attention's does not.

Peak memory is the high-water mark of memory allocated during one step, above
what was alive before it (weights, the input), in its own untimed run:

* CPU: ``tracemalloc``. NumPy reports every array's data buffer to it (since
  NumPy 1.13), so its peak counts the arrays -- activations saved for backward,
  gradients, temporaries -- plus the Python objects of the graph. It slows
  Python down, which is why that run is not timed.
* GPU: CuPy's memory pool. Its blocks are freed first; the pool then only grows,
  so ``total_bytes()`` after the step is its high-water mark.

A ``--max-seconds`` guard keeps the run bounded: repeats shrink for slow steps
(at least ``MIN_REPEATS``), and a step predicted to overrun the budget is skipped
and marked so in the CSV.
"""
import math
import time

from .. import analysis, backend, nn
from .._tensor import Tensor
from ..trace import trace
from . import common, matmul_peak

LAYERS = ("rnn", "lstm", "attention", "encoder")
CPU_LENGTHS = (16, 32, 64, 128, 256, 512)
GPU_LENGTHS = CPU_LENGTHS + (1024, 2048, 4096)
QUICK_LENGTHS = (16, 64, 128)
MIN_REPEATS = 3
SECONDS_PER_POINT = 20.0   # timed seconds one (layer, n) point may take before repeats shrink
UNTIMED_RUNS = 3           # warm-up, traced run, memory run


# ---------------------------------------------------------------- the layers and their step
def make_layer(kind, dim, heads, device):
    """A fresh layer of ``kind`` (one of LAYERS), batch-first, on ``device``."""
    if kind == "rnn":
        layer = nn.RNN(dim, dim, batch_first=True)
    elif kind == "lstm":
        layer = nn.LSTM(dim, dim, batch_first=True)
    elif kind == "attention":
        layer = nn.MultiheadAttention(dim, heads, batch_first=True)
    elif kind == "encoder":
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0,
                                           batch_first=True)
    else:
        raise ValueError(f"make_layer: kind must be one of {LAYERS}, got {kind!r}")
    return layer.to(device)


def forward(kind, layer, x):
    """The layer's output tensor for input ``x`` (batch, n, d)."""
    if kind == "attention":
        return layer(x, x, x, need_weights=False)[0]
    if kind == "encoder":
        return layer(x)
    return layer(x)[0]  # RNN and LSTM return (output, state)


def training_step(kind, layer, batch, seq, dim, device):
    """A function running one forward + backward pass on fixed random data.

    The gradient of the output is a fixed random array, so no loss op is timed;
    the input requires a gradient too, as it would below another layer.
    """
    x_array = backend.random_normal((batch, seq, dim), "float32", device)
    grad_out = Tensor(backend.random_normal((batch, seq, dim), "float32", device))

    def step():
        x = Tensor(x_array, requires_grad=True)
        forward(kind, layer, x).backward(grad_out)
        layer.zero_grad()

    return step


# ---------------------------------------------------------------- what one step costs


def trace_counts(step):
    """FLOPs, ops and sequential ops of one step, from the tracer."""
    with trace() as t:
        step()
    both, fwd = t.summary("all"), t.summary("forward")
    return {"flops": both["work_flops"], "ops": both["ops"],
            "sequential_ops": both["sequential_ops"], "forward_ops": fwd["ops"],
            "forward_sequential_ops": fwd["sequential_ops"]}


def _blank_row(kind, seq, batch, dim, heads, status):
    return {"layer": kind, "n": seq, "batch": batch, "d": dim, "heads": heads,
            "median_ms": "", "min_ms": "", "max_ms": "", "repeats": "", "tokens_per_s": "",
            "gflops": "", "fraction_of_peak": "", "flops": "", "ops": "", "sequential_ops": "",
            "forward_ops": "", "forward_sequential_ops": "", "peak_memory_mb": "",
            "status": status}


def measure_point(kind, seq, batch, dim, heads, device, repeats, peak_gflops, budget_left,
                  min_time=0.5):
    """One CSV row for ``kind`` at length ``seq``, or a 'skipped' row when the
    warm-up step says the point would not fit in ``budget_left`` seconds."""
    layer = make_layer(kind, dim, heads, device)
    step = training_step(kind, layer, batch, seq, dim, device)
    row = _blank_row(kind, seq, batch, dim, heads, "ok")
    step()                                              # warm-up: on a GPU, compiles the kernels
    start = backend.timer(device)                       # synchronised: times the work, not
    step()                                              # the launches
    estimate = backend.timer(device) - start
    repeats = max(MIN_REPEATS, min(repeats, int(SECONDS_PER_POINT / max(estimate, 1e-9))))
    if estimate * (UNTIMED_RUNS - 1 + repeats) > budget_left:
        row["status"] = f"skipped: ~{estimate:.1f} s a step exceeds the time budget"
        return row
    counts = trace_counts(step)                         # untimed: the tracer slows ops down
    memory = common.peak_bytes(step, device)                  # untimed: so does tracemalloc
    times = common.measure(step, device, repeats=repeats, warmup=0, min_time=min_time)
    stats = common.summary(times)
    median = stats["median_s"]
    gflops = counts["flops"] / median / 1e9
    row.update(median_ms=median * 1e3, min_ms=stats["min_s"] * 1e3, max_ms=stats["max_s"] * 1e3,
               repeats=len(times), tokens_per_s=batch * seq / median, gflops=gflops,
               fraction_of_peak=gflops / peak_gflops, peak_memory_mb=memory / 2**20, **counts)
    return row


def predicted_seconds(rows, kind, seq, repeats):
    """A guess at a point's cost from the same layer's largest measured point,
    assuming time grows at least linearly (and at most like n²) with n."""
    done = [r for r in rows if r["layer"] == kind and r["status"] == "ok"]
    if not done:
        return 0.0
    last = done[-1]
    growth = 2.0
    if len(done) >= 2:
        growth = min(2.0, max(1.0, analysis.fit_exponent([r["n"] for r in done[-2:]],
                                                       [r["median_ms"] for r in done[-2:]])))
    step = last["median_ms"] / 1e3 * (seq / last["n"]) ** growth
    return step * (UNTIMED_RUNS + min(repeats, max(MIN_REPEATS, SECONDS_PER_POINT / step)))


# ---------------------------------------------------------------- the whole benchmark
def run(device="cpu", layers=LAYERS, lengths=CPU_LENGTHS, batch=32, dim=256, heads=8,
        repeats=7, max_seconds=None, peak_gflops=None, out_dir=None, quiet=False, min_time=0.5):
    """Measure every (layer, n); returns the rows. With ``out_dir``, writes
    seq_scaling.csv there (and the two PNGs when matplotlib is installed).

    Each point is timed ``repeats`` times (fewer for slow steps, more for fast
    ones: at least ``min_time`` seconds in all). ``peak_gflops``: the matmul peak
    to compare with; measured now when None.
    """
    deadline = time.perf_counter() + (max_seconds if max_seconds else math.inf)
    if peak_gflops is None:
        peak_gflops = matmul_peak.peak_gflops(matmul_peak.run(device, repeats=3, quick=True))
    rows = []
    for seq in lengths:                       # short sequences of every layer first
        for kind in layers:
            left = deadline - time.perf_counter()
            if predicted_seconds(rows, kind, seq, repeats) > left:
                row = _blank_row(kind, seq, batch, dim, heads, "skipped: time budget")
            else:
                backend.free_device_memory(device)   # cuBLAS allocates outside the pool
                try:
                    row = measure_point(kind, seq, batch, dim, heads, device, repeats,
                                        peak_gflops, left, min_time)
                except Exception as err:      # the pool's OutOfMemoryError, or cuBLAS's
                    if not backend.is_out_of_memory(err):
                        raise
                    row = _blank_row(kind, seq, batch, dim, heads, "out of memory")
            rows.append(row)
            if not quiet:
                print(_format_row(row), flush=True)
    if out_dir is not None:
        write_results(rows, device, out_dir, batch, dim, heads, repeats, peak_gflops)
    return rows


def slopes(rows, kind, key):
    """(slope over all n, slope over the largest half of n) of log ``key`` vs log n."""
    points = [(r["n"], r[key]) for r in rows if r["layer"] == kind and r["status"] == "ok"]
    if len(points) < 2:
        return float("nan"), float("nan")
    ns, ys = zip(*points)
    half = len(points) // 2
    return analysis.fit_exponent(ns, ys), analysis.fit_exponent(ns[half:], ys[half:])


def headline(rows):
    """(n, LSTM step time / attention step time) at the largest n where both were
    measured; (None, nan) when there is none."""
    both = [n for n in sorted({r["n"] for r in rows}, reverse=True)
            if {"lstm", "attention"} <= {r["layer"] for r in rows
                                          if r["n"] == n and r["status"] == "ok"}]
    if not both:
        return None, float("nan")
    times = {r["layer"]: r["median_ms"] for r in rows if r["n"] == both[0] and r["status"] == "ok"}
    return both[0], times["lstm"] / times["attention"]


def write_results(rows, device, out_dir, batch, dim, heads, repeats, peak_gflops):
    lines = [f"batch={batch} d={dim} heads={heads} max_repeats={repeats} float32; "
             f"forward+backward per step; matmul peak {peak_gflops:.1f} GFLOP/s",
             "peak_memory_mb: high-water of bytes allocated during one step above those alive "
             "before it (" + ("CuPy memory pool" if device == "gpu" else
                              "tracemalloc, which sees NumPy's array buffers") + ")"]
    for kind in sorted({r["layer"] for r in rows}, key=list(LAYERS).index):
        t_all, t_large = slopes(rows, kind, "median_ms")
        m_all, m_large = slopes(rows, kind, "peak_memory_mb")
        lines.append(f"slope {kind}: time {t_all:.2f} (largest half of n {t_large:.2f}), "
                     f"memory {m_all:.2f} (largest half {m_large:.2f})")
    seq, ratio = headline(rows)
    lines.append(f"lstm / attention step time at n={seq}: {ratio:.2f}")
    return common.finish("seq_scaling", device, out_dir, {"seq_scaling": rows}, lines,
                         plot=lambda _: plot(rows, out_dir, device))


def plot(rows, out_dir, device):
    """Log-log time and memory against n, one line per layer with its fitted slope;
    returns the paths of the two PNGs (none without matplotlib)."""
    plt = analysis.pyplot()
    if plt is None:
        return []
    paths = []
    for key, label, name in (("median_ms", "ms per step (forward + backward)", "time"),
                             ("peak_memory_mb", "peak memory per step (MiB)", "memory")):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for kind in LAYERS:
            points = [(r["n"], r[key]) for r in rows if r["layer"] == kind and r["status"] == "ok"]
            if not points:
                continue
            ns, ys = zip(*points)
            ax.plot(ns, ys, marker="o", label=f"{kind} (slope {slopes(rows, kind, key)[0]:.2f})")
        common.scaling_axes(ax, "sequence length n", label,
                            f"{name} per training step vs n ({device})", legend_size=None)
        paths.append(common.save_figure(fig, f"{out_dir}/seq_scaling_{name}.png"))
    return paths


def _format_row(r):
    if r["status"] != "ok":
        return f"  {r['layer']:<10}{r['n']:>6}  {r['status']}"
    return (f"  {r['layer']:<10}{r['n']:>6}{r['median_ms']:>11.2f} ms"
            f" [{r['min_ms']:.2f}..{r['max_ms']:.2f}]{r['tokens_per_s']:>11.0f} tok/s"
            f"{r['gflops']:>8.1f} GFLOP/s ({r['fraction_of_peak']:.0%}){r['ops']:>8} ops"
            f"{r['sequential_ops']:>7} seq{r['peak_memory_mb']:>9.1f} MiB")


def main(argv=None):
    parser = common.parser("seq_scaling", __doc__.splitlines()[0],
                           quick_help="n = 16, 64, 128; 3 repeats; a 45 s budget")
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    parser.add_argument("--lengths", type=common.positive_int, nargs="+", default=None,
                        help="sequence lengths (default 16..512 on the CPU, ..4096 on a GPU)")
    common.add_size_flags(parser, batch=32, d=256, heads=8, repeats=7)
    parser.add_argument("--max-seconds", type=common.positive_float, default=540.0,
                        help="time budget of the whole run; slower points are skipped")
    args = common.parse(parser, argv, quick=dict(lengths=list(QUICK_LENGTHS), repeats=3,
                                                 max_seconds=45.0))
    lengths = args.lengths or (GPU_LENGTHS if args.device == "gpu" else CPU_LENGTHS)
    print(f"forward+backward per step, batch {args.batch}, d {args.d}, heads {args.heads}, "
          f"on {common.device_description(args.device)}")
    start = time.perf_counter()
    rows = run(args.device, args.layers, lengths, args.batch, args.d, args.heads, args.repeats,
               args.max_seconds, out_dir=args.out_dir)
    for kind in args.layers:
        t_all, t_large = slopes(rows, kind, "median_ms")
        m_all, _ = slopes(rows, kind, "peak_memory_mb")
        print(f"  slope of {kind}: time {t_all:.2f} (largest half of n: {t_large:.2f}), "
              f"memory {m_all:.2f}")
    seq, ratio = headline(rows)
    print(f"  lstm / attention step time at n={seq}: {ratio:.2f}")
    print(f"  measured in {time.perf_counter() - start:.0f} s")
    return rows

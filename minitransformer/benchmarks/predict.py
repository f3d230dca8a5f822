"""Predicted against measured: a training step's time from its trace and a device model.

For RNN, LSTM, multi-head attention and the Transformer encoder layer (forward +
backward, batch 32, d = 256, as ``seq_scaling``) at each n:

1. the step is timed (median of repeats after a warm-up), and traced once, untimed;
2. the cost model (``costmodel.py``) prices the trace on the measured device: on
   the CPU with parameters fitted here, in a few seconds, to this machine (the
   engine's time per op, matmul rates by product size, vector rate, memory
   bandwidth for reading and for writing new arrays); on a GPU with the H200's
   datasheet figures. ``ratio`` = predicted / measured.

Then, with no GPU needed, it predicts for an NVIDIA H200 (datasheet figures, see
``costmodel.h200``): the LSTM ÷ attention step time for n = 16 ... 4096, the
share of the LSTM's time that is launch latency, and the speed-up on P = 1 ...
1024 processors (list scheduling, Brent's bounds) at n = 64 and 512. Points past
the largest measured n are not traced at batch 32 (attention's scores alone
would take 17 GB at n = 4096): the step is traced at batches 1 and 2, and each
op's FLOPs and bytes, affine in the batch, are extrapolated to batch 32
(``costmodel.extrapolate_batch``; exact for these layers, whose graph does not
depend on the batch). Every figure from the model is a prediction, and says so.
"""
import os
import statistics
import time

from .. import analysis, backend, costmodel
from ..trace import trace
from . import common, seq_scaling

LAYERS = seq_scaling.LAYERS
CPU_LENGTHS = (16, 32, 64, 128, 256, 512)
GPU_SWEEP = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
SPEEDUP_LENGTHS = (64, 512)
PROCESSORS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
QUICK = dict(lengths=[16, 64], sweep=[16, 64, 256], speedup_lengths=[16, 64], repeats=3)


# ---------------------------------------------------------------- fitting the CPU
def _median(fn, repeats=5, min_time=0.1):
    return statistics.median(common.measure(fn, "cpu", repeats=repeats, warmup=2,
                                            min_time=min_time))


# Matrix products (m, k, n) from the sizes these layers run: attention's per-head
# products (k = 32), the recurrent step, the projections, and squares.
FIT_PRODUCTS = ((64, 32, 64), (128, 32, 128), (256, 32, 256), (32, 256, 256), (32, 256, 1024),
                (256, 256, 256), (512, 512, 512), (1024, 1024, 1024))


# glibc's malloc maps fresh pages for blocks above its mmap threshold (128 KiB at
# first, rising with the blocks freed, up to 32 MiB): take 1 MiB as the line.
FRESH_WRITE_MIN_BYTES = 2**20


def fit_cpu(repeats=5):
    """A :func:`costmodel.cpu` device fitted to this machine in a few seconds.

    * launch: the time per op of the engine itself -- a step of an RNN on 4
      features, batch 1, where the arithmetic is nothing, over its traced op count;
    * matmul curve: GFLOP/s of the products in :data:`FIT_PRODUCTS`;
    * vector rate: ``tanh`` of a (32, 1024) array, one FLOP per element;
    * read bandwidth: adding two 64 MB arrays into a third that exists already;
    * write bandwidth: sixteen new 8 MB arrays kept alive, as a step keeps its
      activations: each page is mapped and zeroed on first touch. Outputs under
      :data:`FRESH_WRITE_MIN_BYTES` are taken to reuse memory the allocator holds.
    """
    xp = backend.numpy
    layer = seq_scaling.make_layer("rnn", 4, 1, "cpu")
    step = seq_scaling.training_step("rnn", layer, 1, 64, 4, "cpu")
    with trace() as t:
        step()
    launch = _median(step, repeats) / len(t.nodes)
    curve = []
    for m, k, n in FIT_PRODUCTS:
        a = backend.random_normal((m, k), "float32", "cpu")
        b = backend.random_normal((k, n), "float32", "cpu")
        curve.append((2 * m * k * n, 2 * m * k * n / _median(lambda: a @ b, repeats)))
    curve.sort()
    small = backend.random_normal((32, 1024), "float32", "cpu")
    vector = small.size / _median(lambda: xp.tanh(small), repeats)
    big = backend.random_normal((16 * 2**20,), "float32", "cpu")
    other, into = big.copy(), xp.empty_like(big)
    read = 3 * big.nbytes / _median(lambda: xp.add(big, other, out=into), repeats)
    piece = big[: 2 * 2**20]
    write = 16 * piece.nbytes / _median(lambda: [piece * 2.0 for _ in range(16)], repeats)
    return costmodel.cpu(launch, max(r for _, r in curve), vector, read, curve, write,
                         FRESH_WRITE_MIN_BYTES,
                         name=f"{backend.device_name('cpu')} (fitted)")


def device_rows(device):
    """The device's parameters as CSV rows (name, value, unit)."""
    rows = [{"parameter": "launch_s", "value": device.launch_s, "unit": "s per op"},
            {"parameter": "matmul_flops_per_s", "value": device.matmul_flops_per_s, "unit": "FLOP/s"},
            {"parameter": "vector_flops_per_s", "value": device.vector_flops_per_s, "unit": "FLOP/s"},
            {"parameter": "bytes_per_s", "value": device.bytes_per_s, "unit": "bytes/s read"},
            {"parameter": "write_bytes_per_s", "value": device.write_bytes_per_s or device.bytes_per_s,
             "unit": "bytes/s written"}]
    rows += [{"parameter": f"matmul_curve {flops}", "value": rate, "unit": "FLOP/s"}
             for flops, rate in device.matmul_curve]
    return rows


# ---------------------------------------------------------------- one step
def traced_step(kind, n, batch, d, heads, device):
    """(step function, its trace's nodes) for ``kind`` over n tokens."""
    layer = seq_scaling.make_layer(kind, d, heads, device)
    step = seq_scaling.training_step(kind, layer, batch, n, d, device)
    step()                                   # warm-up: on a GPU, compiles the kernels
    with trace() as t:
        step()
    return step, t.nodes


def gpu_graph(kind, n, batch, d, heads, known):
    """The nodes of a batch-``batch`` step for the GPU model: a trace from ``known``
    ({(kind, n): nodes}) when there is one, else extrapolated from batches 1 and 2."""
    if (kind, n) in known:
        return known[kind, n], f"traced at batch {batch}"
    _, one = traced_step(kind, n, 1, d, heads, "cpu")
    _, two = traced_step(kind, n, 2, d, heads, "cpu")
    return costmodel.extrapolate_batch(one, two, 1, 2, batch), "extrapolated from batches 1, 2"


# ---------------------------------------------------------------- the benchmark
def measure_and_predict(args, model, gpu_model):
    """Rows of measured and predicted step time on ``args.device``; and the traces."""
    rows, traces, deadline = [], {}, time.perf_counter() + args.max_seconds
    for n in args.lengths:
        for kind in args.layers:
            if time.perf_counter() > deadline:
                rows.append({"layer": kind, "n": n, "status": "skipped: time budget"})
                continue
            backend.free_device_memory(args.device)
            step, nodes = traced_step(kind, n, args.batch, args.d, args.heads, args.device)
            times = common.measure(step, args.device, repeats=args.repeats, warmup=1,
                                   min_time=args.min_time)
            measured = statistics.median(times)
            predicted = costmodel.predict(nodes, model)
            traces[kind, n] = nodes
            row = {"layer": kind, "n": n, "batch": args.batch, "d": args.d,
                   "measured_ms": measured * 1e3, "min_ms": min(times) * 1e3,
                   "predicted_ms": predicted["time_s"] * 1e3,
                   "ratio": predicted["time_s"] / measured,
                   "predicted_launch_fraction": predicted["launch_fraction"],
                   "ops": len(nodes), "repeats": len(times), "status": "ok"}
            if args.device == "cpu":
                row["predicted_h200_ms"] = costmodel.predict(nodes, gpu_model)["time_s"] * 1e3
            rows.append(row)
            # Written as it goes, so a run stopped by a time limit still leaves its points.
            common.write_csv(os.path.join(args.out_dir, "predict.csv"), rows,
                             "predict (partial: the run was still going)")
            print(f"  {kind:<10}{n:>6}  measured {measured * 1e3:9.2f} ms  predicted "
                  f"{predicted['time_s'] * 1e3:9.2f} ms  ratio {row['ratio']:.2f}", flush=True)
    return rows, traces


def gpu_sweep(args, gpu_model, traces):
    """Predicted H200 step time of LSTM and attention for each n of ``args.sweep``."""
    rows = []
    for n in args.sweep:
        row = {"n": n, "batch": args.batch, "d": args.d}
        for kind in ("lstm", "attention"):
            nodes, how = gpu_graph(kind, n, args.batch, args.d, args.heads, traces)
            p = costmodel.predict(nodes, gpu_model)
            row[f"{kind}_predicted_ms"] = p["time_s"] * 1e3
            row[f"{kind}_launch_fraction"] = p["launch_fraction"]
            row[f"{kind}_ops"] = p["ops"]
            row["graph"] = how
        row["lstm_over_attention"] = row["lstm_predicted_ms"] / row["attention_predicted_ms"]
        rows.append(row)
        print(f"  H200 prediction n={n:<5} lstm {row['lstm_predicted_ms']:9.3f} ms "
              f"({row['lstm_launch_fraction']:.0%} launch)  attention "
              f"{row['attention_predicted_ms']:9.3f} ms  ratio {row['lstm_over_attention']:.1f}",
              flush=True)
    return rows


def speedups(args, gpu_model, traces):
    """Predicted H200 time on P processors (list schedule, Brent's bounds)."""
    rows = []
    for n in args.speedup_lengths:
        for kind in ("lstm", "attention"):
            nodes, how = gpu_graph(kind, n, args.batch, args.d, args.heads, traces)
            for r in costmodel.speedup_table(nodes, costmodel.op_times(nodes, gpu_model),
                                             PROCESSORS):
                rows.append({"layer": kind, "n": n, "processors": r["processors"],
                             "predicted_ms": r["time_s"] * 1e3,
                             "brent_lower_ms": r["brent_lower_s"] * 1e3,
                             "brent_upper_ms": r["brent_upper_s"] * 1e3,
                             "speedup": r["speedup"], "parallelism": r["parallelism"],
                             "graph": how})
            top = rows[-1]
            print(f"  H200 prediction {kind} n={n}: speed-up {top['speedup']:.2f} at P=1024 "
                  f"(parallelism W/S {top['parallelism']:.2f})", flush=True)
    return rows


def plot(path, rows, sweep, speedup_rows, device):
    """Step time against n (measured, predicted on this device, predicted H200) and
    speed-up against P; returns the path, or None without matplotlib."""
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = dict(zip(LAYERS, ("tab:green", "tab:red", "tab:blue", "tab:purple")))
    ok = [r for r in rows if r["status"] == "ok"]
    for kind in LAYERS:
        mine = [r for r in ok if r["layer"] == kind]
        if not mine:
            continue
        ns = [r["n"] for r in mine]
        left.plot(ns, [r["measured_ms"] for r in mine], "o-", color=colours[kind],
                  label=f"{kind}: measured ({device})")
        left.plot(ns, [r["predicted_ms"] for r in mine], "s--", color=colours[kind], alpha=0.7,
                  label=f"{kind}: predicted ({device}, prediction)")
    for kind in ("lstm", "attention"):
        left.plot([r["n"] for r in sweep], [r[f"{kind}_predicted_ms"] for r in sweep], "^:",
                  color=colours[kind], label=f"{kind}: predicted H200 (prediction)")
    common.scaling_axes(left, "sequence length n", "ms per step (forward + backward)",
                        "step time: measured and predicted", legend_size=6)
    for kind, style in (("lstm", "-"), ("attention", "--")):
        for n in sorted({r["n"] for r in speedup_rows}):
            mine = [r for r in speedup_rows if r["layer"] == kind and r["n"] == n]
            right.plot([r["processors"] for r in mine], [r["speedup"] for r in mine], style,
                       marker="o", color=colours[kind], alpha=0.5 + 0.5 * (n == max(
                           r["n"] for r in speedup_rows)), label=f"{kind}, n = {n}")
    common.scaling_axes(right, "processors P (ops run one per processor)", "speed-up T_1 / T_P",
                        "predicted H200 speed-up (list schedule; prediction)", legend_size=7)
    return common.save_figure(fig, path)


def main(argv=None):
    parser = common.parser("predict", __doc__.splitlines()[0],
                           quick_help="n = 16, 64 measured; GPU sweep to 256; 3 repeats")
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    parser.add_argument("--lengths", type=common.positive_int, nargs="+", default=list(CPU_LENGTHS),
                        help="sequence lengths measured and predicted (default 16..512)")
    parser.add_argument("--sweep", type=common.positive_int, nargs="+", default=list(GPU_SWEEP),
                        help="sequence lengths of the H200 prediction (default 16..4096)")
    parser.add_argument("--speedup-lengths", type=common.positive_int, nargs="+", default=list(SPEEDUP_LENGTHS))
    common.add_size_flags(parser, batch=32, d=256, heads=8, repeats=7)
    parser.add_argument("--min-time", type=common.nonnegative_float, default=0.5,
                        help="timed seconds per point at least (default 0.5)")
    parser.add_argument("--max-seconds", type=common.positive_float, default=900.0,
                        help="after this many seconds, later measured points are skipped")
    parser.add_argument("--tf32", action="store_true",
                        help="the H200 model runs matmuls on TF32 tensor cores (default FP32)")
    args = common.parse(parser, argv, quick=dict(QUICK, min_time=0.0))
    start = time.perf_counter()
    on_gpu = args.device == "gpu"
    tf32 = args.tf32 or (on_gpu and backend.tf32_setting() == "on")
    gpu_model = costmodel.h200(tf32=tf32)
    if on_gpu and "h100" in backend.device_name("gpu").lower():
        gpu_model = costmodel.h100_sxm(tf32=tf32)     # measured on an H100: its datasheet
    model = gpu_model if on_gpu else fit_cpu()
    print(f"predict on {common.device_description(args.device)}; model: {model}")
    rows, traces = measure_and_predict(args, model, gpu_model)
    cpu_traces = {} if on_gpu else traces     # the sweep's graphs come from CPU traces
    sweep = gpu_sweep(args, gpu_model, cpu_traces) if not on_gpu else []
    speedup_rows = speedups(args, gpu_model, cpu_traces) if not on_gpu else []
    ratios = [r["ratio"] for r in rows if r["status"] == "ok"]
    notes = [f"batch={args.batch} d={args.d} heads={args.heads} repeats={args.repeats} "
             f"min_time={args.min_time}; forward+backward per step; predicted = cost model "
             f"(minitransformer/costmodel.py) applied to one traced step",
             f"model: {model.name}; ratio = predicted / measured, "
             f"{min(ratios):.2f} .. {max(ratios):.2f}" if ratios else "no point measured",
             f"H200 figures are predictions from datasheet parameters: {gpu_model}",
             "command: python -m minitransformer bench predict " + " ".join(argv or [])]
    tables = {"predict": rows, "predict_device": device_rows(model)}
    if sweep:
        tables["predict_h200_sweep"] = sweep
        tables["predict_h200_speedup"] = speedup_rows
    common.finish("predict", args.device, args.out_dir, tables, notes,
                  plot=lambda path: plot(path, rows, sweep, speedup_rows, args.device),
                  started=start)
    return rows

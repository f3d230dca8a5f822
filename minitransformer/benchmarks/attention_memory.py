"""Peak memory of attention against the sequence length n: plain versus blockwise.

One call of attention on (batch, heads, n, head_dim) queries, keys and values,
forward and backward, for growing n, done two ways:

* standard: ``nn.scaled_dot_product_attention``: the (batch, heads, n, n) scores
  and weights exist at once, and backward holds their gradients, so the peak
  grows as n²;
* blockwise: ``nn.blockwise_attention``: ``block_size`` keys at a time with a
  running softmax, weights recomputed in backward, so the peak grows as n.

Peak memory is what the call allocates above what was alive before it (the
inputs): on the CPU measured by ``tracemalloc``, which sees NumPy's array
buffers (NumPy reports them to it; checked before measuring), on the GPU by
CuPy's default memory pool, whose held bytes after the call are its high-water
mark. Each variant goes up in n until the next point would exceed the memory
budget or the time budget, extrapolating from the last point (n² for the
standard's memory, n for the blockwise one's, n² for both one's time). The
seconds column is the measured call's wall time with the meter running: it
steers the time budget and is no benchmark of speed.

Writes bench/results/<device>/attention_memory.csv (and .png with matplotlib)
and prints the table and the fitted slopes of log(peak) against log(n).
"""
import math
import tracemalloc

from .. import analysis, backend, nn
from .._tensor import Tensor
from . import common

VARIANTS = ("standard", "blockwise")
LENGTHS = {"cpu": [2 ** k for k in range(8, 15)],     # 256 ... 16384
           "gpu": [2 ** k for k in range(8, 18)]}     # 256 ... 131072
CPU_MEMORY_BUDGET_GIB = 4.0
FIT_FROM_N = 1024   # slopes are fitted from here up: below, fixed costs blur the exponent
MIB = 2 ** 20


# ---------------------------------------------------------------- measuring
def check_tracemalloc_sees_arrays():
    """Raise if tracemalloc does not count NumPy's array buffers (then the CPU
    figures would measure Python objects only)."""
    size = 8 * MIB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        array = backend.numpy.empty(size, dtype="uint8")
        _, peak = tracemalloc.get_traced_memory()
        del array
    finally:
        tracemalloc.stop()
    if peak < size:
        raise RuntimeError(f"tracemalloc saw {peak} bytes for an array of {size} bytes: this "
                           f"NumPy does not report its allocations, so CPU peaks would be wrong")


def memory_budget(device, gib=None):
    """Bytes a variant may use: ``gib`` when given; else 4 GiB on the CPU and 80% of
    the GPU's free memory."""
    if gib is not None:
        return int(gib * 2 ** 30)
    if device == "gpu":
        free, _ = backend.cupy.cuda.Device().mem_info
        return int(0.8 * free)
    return int(CPU_MEMORY_BUDGET_GIB * 2 ** 30)


def attention_step(variant, batch, heads, n, head_dim, block_size, device):
    """One forward + backward of ``variant`` attention on fresh random inputs."""
    def tensor(*shape, grad=True):
        return Tensor(backend.random_normal(shape, "float32", device), requires_grad=grad)
    query, key, value = (tensor(batch, heads, n, head_dim) for _ in range(3))
    grad_output = tensor(batch, heads, n, head_dim, grad=False)

    def step():
        if variant == "standard":
            output, _ = nn.scaled_dot_product_attention(query, key, value)
        else:
            output = nn.blockwise_attention(query, key, value, block_size=block_size)
        output.backward(grad_output)
        for t in (query, key, value):   # the gradients count in the peak, then go
            t.grad = None

    inputs_bytes = 4 * query.data.nbytes  # query, key, value, grad_output
    return step, inputs_bytes


# ---------------------------------------------------------------- the sweep
def run(device="cpu", lengths=None, batch=1, heads=4, head_dim=64, block_size=128,
        memory_budget_gib=None, max_seconds=60.0, quiet=False):
    """Measure every variant at every n that its budgets allow; one row per (variant, n)."""
    if device == "cpu":
        check_tracemalloc_sees_arrays()
    lengths = LENGTHS[device] if lengths is None else list(lengths)
    budget = memory_budget(device, memory_budget_gib)
    # Warm up (BLAS threads, CuPy kernel compilation) outside the measurements.
    for variant in VARIANTS:
        attention_step(variant, 1, 1, 64, head_dim, 16, device)[0]()
    rows = []
    for variant in VARIANTS:
        memory_exponent = 2 if variant == "standard" else 1
        last = None   # (n, peak bytes, seconds) of the last measured point
        out_of_memory = False
        for n in lengths:
            row = {"variant": variant, "n": n, "batch": batch, "heads": heads,
                   "head_dim": head_dim, "block_size": block_size if variant == "blockwise" else "",
                   "peak_mib": "", "seconds": "",
                   "scores_mib": round(batch * heads * n * n * 4 / MIB, 3),   # one (B, H, n, n) float32
                   "inputs_mib": round(4 * batch * heads * n * head_dim * 4 / MIB, 3), "status": "ok"}
            if out_of_memory:
                row["status"] = "skipped: a shorter n ran out of memory"
            elif last is not None:
                grow = n / last[0]
                expected_bytes = last[1] * grow ** memory_exponent
                expected_seconds = last[2] * grow ** 2
                if expected_bytes > budget:
                    row["status"] = (f"skipped: expected {expected_bytes / MIB:.0f} MiB > "
                                     f"budget {budget / MIB:.0f} MiB")
                elif expected_seconds > max_seconds:
                    row["status"] = (f"skipped: expected {expected_seconds:.0f} s > "
                                     f"{max_seconds:.0f} s")
            if row["status"] == "ok":
                try:
                    step, _ = attention_step(variant, batch, heads, n, head_dim, block_size,
                                             device)
                    backend.free_device_memory(device)   # room for cuBLAS too
                    start = backend.timer(device)        # synchronised clock reads
                    peak = common.peak_bytes(step, device)
                    seconds = backend.timer(device) - start
                    row.update(peak_mib=round(peak / MIB, 3), seconds=round(seconds, 4))
                    last = (n, peak, seconds)
                except Exception as err:   # the pool's OutOfMemoryError, or cuBLAS's
                    if not backend.is_out_of_memory(err):
                        raise
                    row["status"] = "out of memory"
                    out_of_memory = True
            rows.append(row)
            if not quiet:
                peak_text = f"{row['peak_mib']:10.1f} MiB" if row["status"] == "ok" else ""
                print(f"{variant:>9}  n={n:<7d} {peak_text:>14}  {row['status']}", flush=True)
    return rows


def slopes(rows, fit_from=FIT_FROM_N):
    """The fitted exponent k of peak ~ n^k for each variant, from the points with
    n >= fit_from (all points when fewer than two are that long)."""
    result = {}
    for variant in VARIANTS:
        points = [(r["n"], r["peak_mib"]) for r in rows
                  if r["variant"] == variant and r["status"] == "ok"]
        if len([p for p in points if p[0] >= fit_from]) >= 2:
            points = [p for p in points if p[0] >= fit_from]
        result[variant] = analysis.fit_exponent(*zip(*points)) if len(points) >= 2 else math.nan
    return result


# ---------------------------------------------------------------- output
def plot(rows, fitted, budget, device, path):
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for variant, marker in zip(VARIANTS, "os"):
        points = [(r["n"], r["peak_mib"]) for r in rows
                  if r["variant"] == variant and r["status"] == "ok"]
        if points:
            ax.plot(*zip(*points), marker=marker,
                    label=f"{variant} (peak ~ n^{fitted[variant]:.2f})")
    ax.axhline(budget / MIB, color="grey", linestyle="--", linewidth=1,
               label=f"memory budget ({budget / 2 ** 30:.1f} GiB)")
    first = rows[0]
    common.scaling_axes(ax, "sequence length n", "peak memory of forward + backward (MiB)",
                        f"one attention call, batch {first['batch']}, {first['heads']} heads, "
                        f"head dim {first['head_dim']}\n{common.device_description(device)}",
                        title_size=8)
    return common.save_figure(fig, path)


def main(argv=None):
    parser = common.parser("attention_memory", __doc__.split("\n\n")[0],
                           quick_help="n = 256 ... 2048, 10 s per point at most")
    parser.add_argument("--lengths", type=common.positive_int, nargs="+",
                        help="sequence lengths (default: powers of 2 from 256 to the device's cap)")
    parser.add_argument("--batch", type=common.positive_int, default=1)
    parser.add_argument("--heads", type=common.positive_int, default=4)
    parser.add_argument("--head-dim", type=common.positive_int, default=64)
    parser.add_argument("--block-size", type=common.positive_int, default=128)
    parser.add_argument("--memory-budget-gib", type=common.positive_float,
                        help=f"per variant (default: {CPU_MEMORY_BUDGET_GIB:g} on the CPU, 80%% "
                             f"of free GPU memory)")
    parser.add_argument("--max-seconds", type=common.positive_float, default=60.0,
                        help="skip a point expected to take longer than this")
    args = common.parse(parser, argv, quick=dict(lengths=[256, 512, 1024, 2048], max_seconds=10.0))

    budget = memory_budget(args.device, args.memory_budget_gib)
    rows = run(args.device, args.lengths, args.batch, args.heads, args.head_dim,
               args.block_size, args.memory_budget_gib, args.max_seconds)
    fitted = slopes(rows)
    print("\nfitted slope of log(peak memory) against log(n), n >= %d:" % FIT_FROM_N)
    for variant, k in fitted.items():
        print(f"  {variant:>9}: {k:.2f}   (expected {'2' if variant == 'standard' else '1'})")
    meter = "tracemalloc" if args.device == "cpu" else "CuPy memory pool high-water mark"
    common.finish("attention_memory", args.device, args.out_dir, {"attention_memory": rows}, [
        "peak memory of one attention forward + backward (float32), standard vs blockwise",
        f"batch={args.batch} heads={args.heads} head_dim={args.head_dim} "
        f"block_size={args.block_size} memory budget {budget / 2 ** 30:.2f} GiB, "
        f"time budget {args.max_seconds:g} s per point; measured with {meter}",
        "fitted slopes of log(peak) vs log(n), n >= %d: %s" % (
            FIT_FROM_N, ", ".join(f"{v} {k:.2f}" for v, k in fitted.items()))],
        plot=lambda path: plot(rows, fitted, budget, args.device, path))
    return rows

"""Memory over time and against n: does a training loop hold its memory, and how
does attention's grow with the sequence length?

Part 1, a training loop: a one-layer Transformer encoder and a linear head,
trained with Adam on fixed random data for 1,000 steps. After every step it
records

* the step's peak of allocated bytes (CPU: ``tracemalloc``, which sees every
  NumPy array buffer -- NumPy registers its allocations with it since 1.13 --
  and every Python object; GPU: CuPy's memory pool, freed before the step);
* the memory still allocated after the step (should stay flat: the graph is
  freed when the loss goes out of scope);
* the process's resident set size from ``/proc/self/statm`` (what the operating
  system sees, including the allocator's caches; Linux only);
* the step's wall time (recorded, not judged: tracemalloc slows Python down).

A graph that leaked -- a reference cycle, a tensor kept in a list -- shows as a
line that climbs; a healthy loop is flat after the first steps (Adam's moment
buffers appear at step 1).

Part 2, attention's memory against n: the peak of one forward + backward of a
multi-head self-attention layer for growing n. Plain attention stores
(batch, heads, n, n) weights, so its curve bends towards n². When
``nn.MultiheadAttention`` offers a memory-efficient (blockwise) mode, its curve
is measured beside it (``attention="blockwise"``: keys in blocks with a running
softmax, the n × n weights never stored), if this version of ``nn`` has it.
"""
import array
import inspect
import os
import time

from .. import analysis, backend, nn, optim
from .._tensor import Tensor
from . import common, seq_scaling

ATTENTION_LENGTHS = (64, 128, 256, 512, 1024, 2048)
BLOCK_SIZE = 128  # keys per block of the blockwise variant


# ---------------------------------------------------------------- measuring memory
def resident_bytes():
    """The process's resident set size in bytes, or 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# ---------------------------------------------------------------- part 1: a training loop
class TinyTagger(nn.Module):
    """A one-layer Transformer encoder with a linear head: a class per token."""

    def __init__(self, dim, heads, classes):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim,
                                                  dropout=0.1, batch_first=True)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.encoder(x))


def training_loop(steps=1000, batch=16, seq=32, dim=64, heads=4, classes=10, device="cpu"):
    """Train TinyTagger for ``steps`` steps; one row of memory and time per step.

    The model and data are made inside the meter, so every figure includes them.
    The records go into arrays allocated before the meter starts: a list of dicts
    growing by a row a step would itself look like a leak to tracemalloc.
    """
    columns = ("loss", "step_ms", "peak_allocated_mb", "allocated_after_mb", "resident_mb")
    record = {key: array.array("d", bytes(8 * steps)) for key in columns}
    with common.AllocationMeter(device) as meter:
        model = TinyTagger(dim, heads, classes).to(device)
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        x = Tensor(backend.random_normal((batch, seq, dim), "float32", device))
        labels = backend.random_permutation(batch * seq, device) % classes
        targets = Tensor(labels.reshape(batch, seq))
        for step in range(steps):
            meter.reset_peak()
            start = backend.timer(device)
            optimizer.zero_grad()
            logits = model(x)                                     # (batch, seq, classes)
            loss = loss_fn(logits.reshape(batch * seq, classes), targets.reshape(batch * seq))
            loss.backward()
            optimizer.step()
            record["loss"][step] = loss.item()
            del logits, loss          # the graph goes with its last tensor
            record["step_ms"][step] = (backend.timer(device) - start) * 1e3
            current, peak = meter.current_and_peak()
            record["peak_allocated_mb"][step] = peak / 2**20
            record["allocated_after_mb"][step] = current / 2**20
            record["resident_mb"][step] = resident_bytes() / 2**20
    return [{"step": step + 1, **{key: record[key][step] for key in columns}}
            for step in range(steps)]


def flatness(rows, key):
    """(median of ``key`` over the first tenth of the steps after step 10, over the last tenth):
    equal when memory holds."""
    import statistics
    tenth = max(1, len(rows) // 10)
    early = [r[key] for r in rows[10:10 + tenth]] or [rows[0][key]]
    late = [r[key] for r in rows[-tenth:]]
    return statistics.median(early), statistics.median(late)


# ---------------------------------------------------------------- part 2: attention vs n
def has_blockwise():
    """True when nn.MultiheadAttention takes ``attention="blockwise"``."""
    return "attention" in inspect.signature(nn.MultiheadAttention.__init__).parameters


def _attention_layer(dim, heads, device, variant):
    if variant == "plain":
        layer = nn.MultiheadAttention(dim, heads, batch_first=True)
    else:
        layer = nn.MultiheadAttention(dim, heads, batch_first=True, attention="blockwise",
                                      block_size=BLOCK_SIZE)
    return layer.to(device)


def attention_memory(lengths=ATTENTION_LENGTHS, batch=8, dim=256, heads=8, device="cpu"):
    """Peak bytes of one forward + backward of self-attention, for each n and variant."""
    variants = ["plain"] + (["blockwise"] if has_blockwise() else [])
    rows = []
    for seq in lengths:
        for variant in variants:
            layer = _attention_layer(dim, heads, device, variant)
            step = seq_scaling.training_step("attention", layer, batch, seq, dim, device)
            backend.free_device_memory(device)   # room for cuBLAS too
            start = backend.timer(device)        # synchronised clock reads
            try:
                peak = common.peak_bytes(step, device) / 2**20
            except Exception as err:  # the largest n may not fit: record, go on
                if not backend.is_out_of_memory(err):
                    raise
                peak = float("nan")
            rows.append({"variant": variant, "n": seq, "batch": batch, "d": dim, "heads": heads,
                         "peak_memory_mb": peak, "seconds": backend.timer(device) - start,
                         "scores_mb": batch * heads * seq * seq * 4 / 2**20})
    return rows


# ---------------------------------------------------------------- output
def plot(loop_rows, attention_rows, out_dir):
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    steps = [r["step"] for r in loop_rows]
    for key, label in (("peak_allocated_mb", "peak allocated in the step"),
                       ("allocated_after_mb", "allocated after the step"),
                       ("resident_mb", "resident set size")):
        left.plot(steps, [r[key] for r in loop_rows], label=label)
    left.set_xlabel("training step")
    left.set_ylabel("MiB")
    left.set_ylim(bottom=0)
    left.set_title("memory over a training loop", fontsize=10)
    left.legend(fontsize=8)
    for variant in sorted({r["variant"] for r in attention_rows}):
        points = [(r["n"], r["peak_memory_mb"]) for r in attention_rows if r["variant"] == variant]
        ns, ys = zip(*points)
        right.plot(ns, ys, marker="o",
                   label=f"{variant} attention (slope {analysis.fit_exponent(ns, ys):.2f})")
    if attention_rows:
        ns = sorted({r["n"] for r in attention_rows})
        scores = [next(r["scores_mb"] for r in attention_rows if r["n"] == n) for n in ns]
        right.plot(ns, scores, linestyle="--", color="grey", label="one n×n score matrix")
    common.scaling_axes(right, "sequence length n", "peak MiB, forward + backward",
                        "self-attention memory vs n")
    return common.save_figure(fig, f"{out_dir}/memory.png")


def run(device="cpu", steps=1000, batch=16, seq=32, dim=64, heads=4,
        attention_lengths=ATTENTION_LENGTHS, attention_batch=8, attention_dim=256,
        attention_heads=8, out_dir=None):
    """Both parts; returns (loop rows, attention rows) and, with ``out_dir``, writes
    memory_loop.csv, memory_attention.csv and memory.png there."""
    loop_rows = training_loop(steps, batch, seq, dim, heads, device=device)
    attention_rows = attention_memory(attention_lengths, attention_batch, attention_dim,
                                      attention_heads, device)
    if out_dir is not None:
        method = ("CuPy memory pool" if device == "gpu" else
                  "tracemalloc (NumPy array buffers and Python objects)")
        early, late = flatness(loop_rows, "peak_allocated_mb")
        common.finish("memory", device, out_dir,
                      {"memory_loop": loop_rows, "memory_attention": attention_rows}, [
            f"memory_loop: TinyTagger: encoder layer d={dim} heads={heads} ff={2 * dim} + "
            f"linear head, Adam, batch={batch} seq={seq}, {steps} steps; resident from "
            f"/proc/self/statm; step_ms includes the meter's overhead; peak allocated per "
            f"step: median {early:.2f} MiB early, {late:.2f} MiB over the last tenth of the steps",
            f"memory_attention: self-attention forward+backward peak memory, "
            f"batch={attention_batch} d={attention_dim} heads={attention_heads}; blockwise: "
            + (f"attention='blockwise', block_size={BLOCK_SIZE}" if has_blockwise()
               else "not in this nn"),
            f"allocations by {method}"],
            plot=lambda _: plot(loop_rows, attention_rows, out_dir))
    return loop_rows, attention_rows


def main(argv=None):
    parser = common.parser("memory", __doc__.splitlines()[0], quick_help="50 steps, n up to 256")
    parser.add_argument("--steps", type=common.positive_int, default=1000)
    parser.add_argument("--lengths", type=common.positive_int, nargs="+", default=list(ATTENTION_LENGTHS),
                        help="sequence lengths of the attention memory curve")
    args = common.parse(parser, argv, quick=dict(
        steps=50, lengths=[n for n in ATTENTION_LENGTHS if n <= 256]))
    steps = args.steps
    start = time.perf_counter()
    loop_rows, attention_rows = run(args.device, steps, attention_lengths=args.lengths,
                                    out_dir=args.out_dir)
    early, late = flatness(loop_rows, "peak_allocated_mb")
    after_early, after_late = flatness(loop_rows, "allocated_after_mb")
    rss_early, rss_late = flatness(loop_rows, "resident_mb")
    times = sorted(r["step_ms"] for r in loop_rows)
    print(f"training loop, {steps} steps on {common.device_description(args.device)}:")
    print(f"  peak allocated per step  {early:8.2f} MiB early -> {late:8.2f} MiB at the end")
    print(f"  allocated between steps  {after_early:8.2f} MiB early -> {after_late:8.2f} MiB")
    print(f"  resident set size        {rss_early:8.1f} MiB early -> {rss_late:8.1f} MiB")
    print(f"  step time median {times[len(times) // 2]:.2f} ms (with the meter on)")
    print("attention forward+backward peak memory:")
    for r in attention_rows:
        print(f"  {r['variant']:<10} n={r['n']:<5} {r['peak_memory_mb']:9.1f} MiB "
              f"(one score matrix {r['scores_mb']:.1f} MiB)")
    for variant in sorted({r["variant"] for r in attention_rows}):
        ns = [r["n"] for r in attention_rows if r["variant"] == variant]
        ys = [r["peak_memory_mb"] for r in attention_rows if r["variant"] == variant]
        print(f"  slope of {variant} memory vs n: {analysis.fit_exponent(ns, ys):.2f}")
    print(f"  measured in {time.perf_counter() - start:.0f} s")
    return loop_rows, attention_rows

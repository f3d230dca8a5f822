"""Cost models: what a traced graph would cost on a device, and on P processors.

A cost model reads a trace (a list of :class:`~minitransformer.trace.TraceNode`,
each with its FLOPs, bytes and dependences) and predicts a time. It never runs an
op: the same trace, taken once on the CPU, can be priced on a GPU it never saw.

The device model
----------------
Each op costs one of three things, whichever is largest::

    time(op) = max(launch latency,  FLOPs / compute rate,  bytes / memory bandwidth)

* **launch latency** -- the fixed price of starting an op at all: on a GPU the
  kernel launch from Python (CuPy, PyTorch eager: ~5-10 µs); on the CPU the
  engine's own Python work per op (building the Tensor, recording the graph,
  walking it backward).
* **compute** -- FLOPs over the rate; matmuls run at the matrix-product rate
  (tensor cores, BLAS), every other op at the vector rate.
* **memory** -- bytes read plus written over the bandwidth. Ops that NumPy and
  CuPy answer with a *view* (reshape, transpose, slicing: :data:`VIEW_OPS`) move
  no bytes and cost only their launch.

The ``max`` says that the three overlap perfectly: on a GPU the CPU queues the
next kernel while the current one runs, so a kernel longer than a launch hides
the launch. On the CPU one thread does the Python work *and then* the maths, so
nothing overlaps: a :class:`Device` with ``launch_overlaps=False`` (the CPU)
charges ``launch + max(compute, memory)`` instead. The ops of one stream run one
after another, so a graph's time on one device is the sum of its ops' times.

What is not modelled: caches (every byte is charged at main-memory bandwidth,
so an op whose arrays fit in cache is predicted too slow when memory-bound),
a matmul's efficiency at the exact shape beyond its size in FLOPs (see
:attr:`Device.matmul_curve`), copies between host and device, the memory
allocator, several streams sharing the launch thread, the GPU's clock changes.

P processors
------------
:func:`list_schedule` runs the graph on P identical processors: each op takes
one processor for its whole time, starts as soon as every op it reads has
finished and a processor is free, and ready ops are taken greedily, the one with
the longest chain of work still behind it first. With W the total work (the sum
of the op times: the time on one processor) and S the critical path (the longest
chain of dependent ops, in time: the time with unlimited processors), every
greedy schedule satisfies Brent's (Graham's) bounds::

    max(W / P, S)  <=  T_P  <=  W / P + S

so the time falls like W/P while P is small and stops falling at S, once P
passes the parallelism W/S. The parallelism here is *between ops* (streams);
the parallelism inside one op is already in the device's rate.
"""
import dataclasses
import heapq
import math

from . import analysis

# Ops whose forward and backward return a view of their input: no bytes move.
VIEW_OPS = frozenset({"reshape", "transpose", "getitem"})


# ---------------------------------------------------------------- devices
@dataclasses.dataclass(frozen=True)
class Device:
    """A device as the cost model sees it (rates in FLOP/s and bytes/s, times in s).

    ``matmul_curve``: optional ``((flops, flop_per_s), ...)``, rates measured for
    matmuls of growing size; a matmul's rate is then interpolated on log FLOPs
    between those points (a small product cannot fill the machine), and
    ``matmul_flops_per_s`` is used only when the curve is empty. A batched matmul
    is a loop of products, each as fast as a product of its own size.
    ``write_bytes_per_s``: the rate of writing an op's *new* output arrays, when it
    differs from reading (on the CPU fresh pages are mapped and zeroed by the
    operating system on first touch); None: ``bytes_per_s``. It applies to ops
    writing at least ``fresh_write_min_bytes``: smaller arrays are served from
    memory the allocator already holds (glibc maps fresh pages only for large ones).
    """
    name: str
    launch_s: float
    matmul_flops_per_s: float
    vector_flops_per_s: float
    bytes_per_s: float
    launch_overlaps: bool = True
    matmul_curve: tuple = ()
    write_bytes_per_s: float = None
    fresh_write_min_bytes: int = 0

    def matmul_rate(self, flops):
        """FLOP/s of one matrix product of ``flops`` FLOPs (2·m·k·n)."""
        curve = self.matmul_curve
        if not curve:
            return self.matmul_flops_per_s
        if flops <= curve[0][0]:
            return curve[0][1]
        for (f0, r0), (f1, r1) in zip(curve, curve[1:]):
            if flops <= f1:
                share = math.log(flops / f0) / math.log(f1 / f0)
                return r0 + share * (r1 - r0)
        return curve[-1][1]

    def with_(self, **changes):
        """A copy with some parameters changed: ``h200().with_(launch_s=10e-6)``."""
        return dataclasses.replace(self, **changes)


# Published figures (NVIDIA H100 and H200 Tensor Core GPU datasheets, SXM form):
# FP32 67 TFLOP/s (non-tensor), TF32 tensor core 495 TFLOP/s dense (989 with 2:4
# sparsity, which dense layers never use); HBM3 3.35 TB/s (H100 SXM), HBM3e
# 4.8 TB/s (H200). A datasheet rate is a peak: real kernels reach a fraction.
FP32_FLOPS = 67e12
TF32_DENSE_FLOPS = 495e12
H100_SXM_BYTES_PER_S = 3.35e12
H200_BYTES_PER_S = 4.8e12
# Launch overhead per op of an eager framework: an assumption, not a datasheet
# figure. A kernel launch from Python through CuPy (an ElementwiseKernel call) or
# PyTorch eager is commonly measured at about 5-10 µs; we take the middle.
GPU_LAUNCH_S = 7e-6


def h100_sxm(tf32=False, launch_s=GPU_LAUNCH_S):
    """NVIDIA H100 SXM from its datasheet. ``tf32``: matmuls on TF32 tensor cores
    (CuPy with ``CUPY_TF32=1``); otherwise float32 matmuls run at the FP32 rate."""
    return Device("NVIDIA H100 SXM (datasheet)", launch_s,
                  TF32_DENSE_FLOPS if tf32 else FP32_FLOPS, FP32_FLOPS, H100_SXM_BYTES_PER_S)


def h200(tf32=False, launch_s=GPU_LAUNCH_S):
    """NVIDIA H200 from its datasheet: the H100's compute with HBM3e at 4.8 TB/s."""
    return Device("NVIDIA H200 (datasheet)", launch_s,
                  TF32_DENSE_FLOPS if tf32 else FP32_FLOPS, FP32_FLOPS, H200_BYTES_PER_S)


def cpu(launch_s, matmul_flops_per_s, vector_flops_per_s, bytes_per_s, matmul_curve=(),
        write_bytes_per_s=None, fresh_write_min_bytes=0, name="CPU (fitted)"):
    """A CPU from its own measurements (see ``benchmarks/predict.py``, which fits them):
    the engine's time per op, matmul and vector rates, memory bandwidth for reading
    and for writing new arrays. One thread runs Python, arithmetic and memory stalls
    in turn, so the three add up (``launch_overlaps=False``)."""
    return Device(name, launch_s, matmul_flops_per_s, vector_flops_per_s, bytes_per_s,
                  launch_overlaps=False, matmul_curve=tuple(matmul_curve),
                  write_bytes_per_s=write_bytes_per_s,
                  fresh_write_min_bytes=fresh_write_min_bytes)


# ---------------------------------------------------------------- one op
@dataclasses.dataclass(frozen=True)
class OpCost:
    """What one op costs on a device: its three parts and the time charged (s)."""
    launch: float
    compute: float
    memory: float
    time: float

    @property
    def bound(self):
        """'launch', 'compute' or 'memory': the part that sets the time."""
        parts = {"launch": self.launch, "compute": self.compute, "memory": self.memory}
        return max(parts, key=parts.get)


def traffic(node):
    """(bytes read, bytes written) by an op; none for a view."""
    if node.name in VIEW_OPS:
        return 0, 0
    return node.bytes_read, node.bytes_written


def product_flops(node):
    """FLOPs of one matrix product inside matmul ``node`` (2·m·k·n of its last two
    axes): a batched matmul runs as a loop of those. Forward: A (..., m, k) and
    B (..., k, n); backward: the output's gradient (..., m, n) and A's (..., m, k)."""
    if node.phase == "forward":
        a, b = node.input_shapes[:2]
        if len(a) < 2 or len(b) < 2:
            return node.flops
        m, k, n = a[-2], a[-1], b[-1]
    else:
        grad, first = node.input_shapes[0], node.output_shapes[0]
        if len(grad) < 2 or len(first) < 2:
            return node.flops
        m, n, k = grad[-2], grad[-1], first[-1]
    return 2 * m * k * n


def op_cost(node, device):
    """The :class:`OpCost` of ``node`` on ``device`` (see the module docstring)."""
    if node.is_matmul:
        compute = node.flops / device.matmul_rate(product_flops(node))
    else:
        compute = node.flops / device.vector_flops_per_s
    read, written = traffic(node)
    fresh = device.write_bytes_per_s and written >= device.fresh_write_min_bytes
    memory = read / device.bytes_per_s + written / (device.write_bytes_per_s if fresh
                                                    else device.bytes_per_s)
    if device.launch_overlaps:
        time = max(device.launch_s, compute, memory)
    else:
        time = device.launch_s + compute + memory
    return OpCost(device.launch_s, compute, memory, time)


def op_times(nodes, device):
    """``{node id: seconds}`` for every node on ``device``."""
    return {n.id: op_cost(n, device).time for n in nodes}


# ---------------------------------------------------------------- one stream
def predict(nodes, device, phase="all"):
    """The graph's time on one stream of ``device``: the sum of its ops' times.

    Returns a dict: ``time_s``; ``ops``; ``launch_s``, the launch latency inside
    that time (every op's launch when launches add up; with overlap, the whole
    time of the ops whose launch is their largest part, since their work hides
    behind it); ``launch_fraction`` = launch_s / time_s; and the seconds of the ops
    bound by each part (``launch_bound_s``, ``compute_bound_s``, ``memory_bound_s``).
    """
    chosen = analysis.select(nodes, phase)
    costs = [op_cost(n, device) for n in chosen]
    total = sum(c.time for c in costs)
    by_bound = {"launch": 0.0, "compute": 0.0, "memory": 0.0}
    for c in costs:
        by_bound[c.bound] += c.time
    if device.launch_overlaps:
        launch = by_bound["launch"]
    else:
        launch = sum(c.launch for c in costs)
    return {"time_s": total, "ops": len(costs), "launch_s": launch,
            "launch_fraction": launch / total if total else 0.0,
            **{f"{k}_bound_s": v for k, v in by_bound.items()}}


# ---------------------------------------------------------------- P processors
def predecessors(nodes, phase="all"):
    """``{node id: [ids it waits for]}`` within the chosen nodes: its data
    dependences and, in phase "all", a backward op's forward op."""
    present = {n.id for n in nodes}
    waits = {}
    for n in nodes:
        deps = [d for d in n.deps if d in present]
        if phase == "all" and n.forward_node in present and n.forward_node not in deps:
            deps.append(n.forward_node)
        waits[n.id] = deps
    return waits


def work_and_span(nodes, times, phase="all"):
    """(W, S): the sum of the op times and the longest chain of them.

    ``times``: ``{node id: seconds}`` (from :func:`op_times`, or measured)."""
    chosen = analysis.select(nodes, phase)
    waits = predecessors(chosen, phase)
    finish = {}
    for n in chosen:  # recording order is topological
        finish[n.id] = max((finish[d] for d in waits[n.id]), default=0.0) + times[n.id]
    return sum(times[n.id] for n in chosen), max(finish.values(), default=0.0)


@dataclasses.dataclass
class Schedule:
    """A list schedule: ``makespan`` (s), and per node id its ``start`` and ``processor``."""
    processors: int
    makespan: float
    start: dict
    processor: dict


def list_schedule(nodes, times, processors, phase="all"):
    """Greedy list scheduling of the graph on ``processors`` identical processors.

    Each op runs on one processor for ``times[id]`` seconds, once all the ops it
    waits for have finished. Whenever a processor is free and ops are ready, the
    ready op with the longest chain of work behind it (its *bottom level*) starts;
    ties go to the op recorded first. Returns a :class:`Schedule`.
    """
    if processors < 1:
        raise ValueError(f"list_schedule: processors must be >= 1, got {processors}")
    chosen = analysis.select(nodes, phase)
    waits = predecessors(chosen, phase)
    followers = {n.id: [] for n in chosen}
    for n in chosen:
        for d in waits[n.id]:
            followers[d].append(n.id)
    # Bottom level: the op's time plus the longest chain after it (reverse topological).
    bottom = {}
    for n in reversed(chosen):
        bottom[n.id] = times[n.id] + max((bottom[f] for f in followers[n.id]), default=0.0)
    order = {n.id: i for i, n in enumerate(chosen)}
    waiting = {n.id: len(waits[n.id]) for n in chosen}
    ready = [(-bottom[i], order[i], i) for i in waiting if waiting[i] == 0]
    heapq.heapify(ready)
    free = list(range(processors))          # processor numbers, lowest first
    running = []                            # (finish time, order, node id, processor)
    start, where, now, makespan = {}, {}, 0.0, 0.0
    while ready or running:
        while ready and free:
            _, _, node_id = heapq.heappop(ready)
            proc = heapq.heappop(free)
            start[node_id], where[node_id] = now, proc
            heapq.heappush(running, (now + times[node_id], order[node_id], node_id, proc))
        # Advance to the next finish; release every op finishing then.
        now = running[0][0]
        while running and running[0][0] <= now:
            end, _, node_id, proc = heapq.heappop(running)
            makespan = max(makespan, end)
            heapq.heappush(free, proc)
            for f in followers[node_id]:
                waiting[f] -= 1
                if waiting[f] == 0:
                    heapq.heappush(ready, (-bottom[f], order[f], f))
    return Schedule(processors, makespan, start, where)


def brent_bounds(work, span, processors):
    """(lower, upper) on T_P: max(W/P, S) and W/P + S."""
    return max(work / processors, span), work / processors + span


def speedup_table(nodes, times, processors=(1, 2, 4, 8, 16, 64, 256, 1024), phase="all"):
    """One row per P: the list-scheduled time, Brent's bounds and the speed-up T_1/T_P."""
    work, span = work_and_span(nodes, times, phase)
    rows = []
    for p in processors:
        t_p = list_schedule(nodes, times, p, phase).makespan
        lower, upper = brent_bounds(work, span, p)
        rows.append({"processors": p, "time_s": t_p, "brent_lower_s": lower,
                     "brent_upper_s": upper, "speedup": work / t_p if t_p else 0.0,
                     "work_s": work, "span_s": span,
                     "parallelism": work / span if span else 0.0})
    return rows


# ---------------------------------------------------------------- a larger batch
def extrapolate_batch(small, larger, b_small, b_larger, batch):
    """The trace of a step at ``batch`` from traces of the same step at two smaller
    batches, without running it.

    Every op of these layers either reads arrays that carry the batch (activations:
    FLOPs and bytes grow in proportion) or batch-free ones (weights, biases: fixed),
    so each node's FLOPs and bytes are ``a + b·batch``; two traces give a and b.
    The two traces must hold the same ops in the same order (a layer's graph does
    not depend on its batch). Returns new nodes (ids and dependences of ``larger``);
    shapes, times and steps are those of ``larger``.
    """
    if len(small) != len(larger):
        raise ValueError(f"extrapolate_batch: the traces differ ({len(small)} and "
                         f"{len(larger)} ops); trace the same step at both batches")
    scale = (batch - b_larger) / (b_larger - b_small)
    out = []
    for s, g in zip(small, larger):
        if (s.name, s.phase) != (g.name, g.phase):
            raise ValueError(f"extrapolate_batch: op {g.index} is {g.name} at one batch and "
                             f"{s.name} at the other")
        fields = g.as_dict()
        for key in ("flops", "bytes_read", "bytes_written"):
            fields[key] = round(fields[key] + (fields[key] - getattr(s, key)) * scale)
        out.append(type(g)(**fields))
    return out

"""Data-parallel training over MPI: measured for P = 1, 2 ranks here, predicted for P up to 64.

What is measured (``mpiexec -n P`` for P = 1 and 2, started by this script, one BLAS
thread per rank so that each rank has one of the machine's cores):

* the step time of the tiny Transformer and the tiny LSTM translator (forward, backward,
  the gradient allreduce, Adam) on one fixed global batch of G sentence pairs from the
  built-in corpus, split over the P ranks (``distributed.shard_batch``), for several G;
  tokens/s; the allreduce's time and its share of the step;
* the allreduce alone on buffers of 1 KB ... 16 MB (after a barrier, so that no rank
  waits for a slower one): its latency α and bandwidth β, fitted;
* from the tracer, one step's ops and FLOPs on each global batch (P = 1).

The model fitted to those figures:

* compute time of one rank's step: ``t_c(b) = ops · c_op + flops(b) / R``, with the
  step's op count (the Python cost per op, which dominates small models) and FLOPs for a
  per-rank batch of b pairs (FLOPs grow linearly in b, ops do not); c_op and R fitted by
  least squares to the P = 1 step times;
* communication: a ring allreduce of the gradient's n bytes,
  ``t_a(P) = 2(P-1) α + 2(P-1)/P · n / β`` (each of the 2(P-1) ring steps pays the
  latency once and moves n/P bytes), zero for P = 1;
* a step at P ranks and per-rank batch b takes ``t_c(b) + t_a(P)`` (no overlap of
  communication with backward). Weak scaling (each rank keeps batch b, the global batch
  grows with P): tokens/s of P ranks over one rank's, ``P t_c(b) / (t_c(b) + t_a(P))``.
  Strong scaling (the global batch G stays, cut P ways -- the same optimisation as one
  rank): ``t_c(G) / (t_c(G/P) + t_a(P))``; the ops' fixed cost does not shrink with P
  (every rank runs every op of the model, on fewer rows), so it bounds this speedup;
* communication dominates below the per-rank batch b* where ``t_c(b*) = t_a(P)``.

Two platforms: this CPU (c_op, R fitted here; α, β measured between two ranks on this
machine through shared memory, so "P ranks like these" assumes links as fast as that),
and a GPU cluster with stated, *assumed* figures (:data:`GPU_CLUSTER`): NVLink within
a node of 8 GPUs, InfiniBand between nodes.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from .. import analysis, backend, distributed, optim
from ..functional import cross_entropy
from ..trace import trace
from ..translation.batching import encode_pairs, make_batches
from ..translation.grammar import load_corpus
from ..translation.models import RNNTranslator, TransformerTranslator
from ..translation.train import PRESETS
from ..translation.vocab import Vocabulary
from . import common

MODELS = ("transformer", "lstm")
BATCHES = (8, 16, 32, 64, 128)            # global batches (pairs) timed at P = 1
PARALLEL_BATCHES = (16, 64, 128)          # ... and at P = 2
QUICK_BATCHES, QUICK_PARALLEL = (8, 32), (32,)
BUFFER_BYTES = tuple(2 ** k for k in range(10, 25, 2))   # 1 KB ... 16 MB
RANKS = tuple(range(1, 65))

# The GPU cluster of the prediction. None of these is measured here: they are
# assumptions, stated so that a reader can replace them with their own machine's.
GPU_CLUSTER = {
    "name": "H100 SXM nodes of 8 GPUs (assumed figures)",
    # float32 FLOP rate our engine's large matmuls could reach (H100 SXM: 67 TFLOP/s
    # FP32 peak without tensor cores; we assume about half).
    "flop_rate": 30e12,
    # Python dispatch + kernel launch per op (a CuPy op costs tens of µs of host time).
    "op_seconds": 20e-6,
    # NVLink 4 through NVSwitch: ~450 GB/s per direction per GPU; NCCL's allreduce
    # bus bandwidth on 8 GPUs is of the order of 350-450 GB/s. Ring step latency ~10 µs.
    "nvlink": {"bandwidth": 350e9, "latency": 10e-6, "ranks": 8},
    # Between nodes: one 400 Gb/s InfiniBand NDR adapter per GPU (50 GB/s); a ring over
    # nodes runs at the slowest link's speed. Latency per ring step ~15 µs.
    "infiniband": {"bandwidth": 50e9, "latency": 15e-6},
}


# ---------------------------------------------------------------- models and batches
def build(kind, vocab_src, vocab_tgt, device):
    """The tiny ``kind`` translator (train.PRESETS) and its Adam optimizer, seeded."""
    backend.manual_seed(0)
    params = dict(PRESETS[kind]["tiny"])
    if kind == "transformer":
        model = TransformerTranslator(len(vocab_src), len(vocab_tgt), **params)
    else:
        model = RNNTranslator(len(vocab_src), len(vocab_tgt), cell=kind, **params)
    model = model.to(device).train()
    return model, optim.Adam(model.parameters(), lr=1e-4)


def corpus(device, size=3000):
    """Vocabularies and encoded pairs of the built-in corpus."""
    pairs = load_corpus(size=size, seed=0)["train"]
    src = Vocabulary.build([s for s, _ in pairs])
    tgt = Vocabulary.build([t for _, t in pairs])
    return src, tgt, encode_pairs(pairs, src, tgt)


def global_batch(examples, size, device):
    """One training batch of exactly ``size`` pairs of similar length (as training
    batches are: sorted within a pool), the same on every rank."""
    for batch in make_batches(examples, size, shuffle=True, seed=0, device=device):
        if len(batch) == size:
            return batch
    raise ValueError(f"no batch of {size} pairs in {len(examples)} examples")


def loss_of(model, batch, pad_id):
    logits = model(batch.src, batch.tgt_in, batch.src_padding_mask, batch.tgt_padding_mask)
    vocab = logits.shape[-1]                                             # (batch, T, vocab)
    return cross_entropy(logits.reshape(-1, vocab), batch.tgt_out.reshape(-1),
                         ignore_index=pad_id, label_smoothing=0.1)


# ---------------------------------------------------------------- one rank's work (under mpiexec)
def timed_steps(comm, model, optimizer, batch, pad_id, repeats, warmup):
    """Median step time, compute time and allreduce time (seconds) of this rank's share of
    ``batch``, the slowest rank's figure for each repeat. Each step starts after a
    barrier, so a step's time is the time from all ranks starting to this rank finishing."""
    mine = comm.shard_batch(batch)
    params = list(model.parameters())
    device = backend.device_of(params[0].data)
    totals, reduces = [], []
    for i in range(warmup + repeats):
        comm.barrier()
        start = backend.timer(device)
        loss = loss_of(model, mine, pad_id)
        optimizer.zero_grad()
        loss.backward()
        before = backend.timer(device)
        comm.allreduce_gradients(params, weight=mine.n_tokens)
        after = backend.timer(device)
        optim.clip_grad_norm_(params, 1.0)
        optimizer.step()
        end = backend.timer(device)
        if i >= warmup:
            totals.append(end - start)
            reduces.append(after - before)
    # The job's step time is its slowest rank's.
    totals = [max(ts) for ts in zip(*comm.comm.allgather(totals))]
    reduces = [max(rs) for rs in zip(*comm.comm.allgather(reduces))]
    return {"step_s": statistics.median(totals), "step_min_s": min(totals),
            "step_max_s": max(totals), "allreduce_in_step_s": statistics.median(reduces)}


def pure_allreduce(comm, params, repeats):
    """Median time of ``allreduce_gradients`` alone (after a barrier: no waiting for a
    slower rank), on the model's real gradients."""
    for p in params:
        p.grad = backend.xp_for(backend.device_of(p.data)).zeros_like(p.data)
    times = []
    for _ in range(repeats + 1):
        comm.barrier()
        start = time.perf_counter()
        comm.allreduce_gradients(params, weight=1.0)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def buffer_sweep(comm, device, repeats):
    """Median allreduce time of float32 buffers of :data:`BUFFER_BYTES` bytes."""
    xp = backend.xp_for(device)
    rows = []
    for nbytes in BUFFER_BYTES:
        buffer = xp.ones(nbytes // 4, dtype="float32")
        times = []
        for _ in range(repeats + 1):
            comm.barrier()
            start = backend.timer(device)
            comm._allreduce(buffer)
            times.append(backend.timer(device) - start)
        rows.append({"bytes": nbytes, "seconds": statistics.median(times[1:])})
    return rows


def traced_work(model, optimizer, batch, pad_id):
    """Ops and FLOPs of one whole training step (forward, backward, optimizer) on
    ``batch``, from the tracer, and the forward pass's sequential ops."""
    with trace() as t:
        loss = loss_of(model, batch, pad_id)
        optimizer.zero_grad()
        loss.backward()
    nodes = t.nodes
    return {"ops": len(nodes), "flops": sum(n.flops for n in nodes),
            "sequential_ops": analysis.summary(nodes, "forward")["sequential_ops"]}


def worker(args):
    """Everything one job of P ranks measures; rank 0 writes it as JSON to ``args.worker``."""
    backend.set_default_device(args.device)
    if args.device == "gpu":
        # One GPU per rank: the launcher says which rank this is on its node.
        local = os.environ.get("MPI_LOCALRANKID") or os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0")
        backend.cupy.cuda.Device(int(local) % backend.cupy.cuda.runtime.getDeviceCount()).use()
    comm = distributed.init(True, timeout=300)
    src, tgt, examples = corpus(args.device)
    result = {"ranks": comm.size, "steps": [], "buffers": buffer_sweep(comm, args.device,
                                                                        args.repeats * 4)}
    for kind in args.models:
        model, optimizer = build(kind, src, tgt, args.device)
        params = list(model.parameters())
        comm.broadcast_parameters(params)
        grad_bytes = sum(int(p.data.nbytes) for p in params)
        allreduce_s = pure_allreduce(comm, params, args.repeats * 4)
        for size in (args.batches if comm.size == 1 else args.parallel_batches):
            batch = global_batch(examples, size, args.device)
            row = {"model": kind, "ranks": comm.size, "global_batch": size,
                   "per_rank_batch": size / comm.size, "tokens": batch.n_tokens,
                   "parameters": sum(int(p.data.size) for p in params),
                   "gradient_bytes": grad_bytes, "allreduce_s": allreduce_s}
            row.update(timed_steps(comm, model, optimizer, batch, tgt.pad_id, args.repeats, 2))
            if comm.size == 1:
                row.update(traced_work(model, optimizer, batch, tgt.pad_id))
            result["steps"].append(row)
            if comm.is_root:
                print(f"  P={comm.size} {kind:<11} G={size:<4} step {row['step_s'] * 1e3:7.1f} ms, "
                      f"allreduce {row['allreduce_in_step_s'] * 1e3:6.2f} ms", flush=True)
    if comm.is_root:
        with open(args.worker, "w") as f:
            json.dump(result, f)


# ---------------------------------------------------------------- the model of the figures
def least_squares(columns, ys):
    """Coefficients x minimising |A x - y| for A with the given columns (2 columns)."""
    (a1, a2) = columns
    s11 = sum(u * u for u in a1)
    s12 = sum(u * v for u, v in zip(a1, a2))
    s22 = sum(v * v for v in a2)
    t1 = sum(u * y for u, y in zip(a1, ys))
    t2 = sum(v * y for v, y in zip(a2, ys))
    det = s11 * s22 - s12 * s12
    return (t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det


def fit_link(buffer_rows):
    """(α, β) of a two-rank allreduce, t = 2α + n/β (the ring formula at P = 2)."""
    two, per_byte = least_squares(([2.0] * len(buffer_rows), [r["bytes"] for r in buffer_rows]),
                                  [r["seconds"] for r in buffer_rows])
    return two, 1.0 / per_byte


def fit_compute(rows):
    """(seconds per op, FLOP/s) fitted to one model's P = 1 steps: t = ops·c + flops/R.
    The allreduce (a no-op at P = 1) is subtracted first. With a single batch size the
    two cannot be told apart: then all the time is put on the FLOPs (c = 0)."""
    ys = [r["step_s"] - r["allreduce_in_step_s"] for r in rows]
    if len({r["global_batch"] for r in rows}) < 2:
        return 0.0, sum(r["flops"] for r in rows) / sum(ys)
    per_op, per_flop = least_squares(([r["ops"] for r in rows], [r["flops"] for r in rows]), ys)
    return per_op, 1.0 / per_flop


def ring_allreduce_seconds(ranks, nbytes, latency, bandwidth):
    """The ring allreduce of ``nbytes``: 2(P-1) steps, each a latency and n/P bytes."""
    if ranks == 1:
        return 0.0
    return 2 * (ranks - 1) * latency + 2 * (ranks - 1) / ranks * nbytes / bandwidth


def gpu_link(ranks):
    """The assumed link of a ring over ``ranks`` GPUs: NVLink within one node, else
    InfiniBand (the ring is as fast as its slowest link)."""
    link = GPU_CLUSTER["nvlink"] if ranks <= GPU_CLUSTER["nvlink"]["ranks"] else GPU_CLUSTER["infiniband"]
    return link["latency"], link["bandwidth"]


def platforms(fits, link):
    """Per platform and model: compute(b) and allreduce(P) functions."""
    out = {}
    for kind, fit in fits.items():
        ops, flops_per_pair, nbytes = fit["ops"], fit["flops_per_pair"], fit["gradient_bytes"]
        cpu_op, cpu_rate = fit["seconds_per_op"], fit["flop_rate"]
        out[("cpu", kind)] = (
            lambda b, o=ops, f=flops_per_pair, c=cpu_op, r=cpu_rate: o * c + f * b / r,
            lambda p, n=nbytes: ring_allreduce_seconds(p, n, *link))
        out[("gpu cluster", kind)] = (
            lambda b, o=ops, f=flops_per_pair: (o * GPU_CLUSTER["op_seconds"]
                                                + f * b / GPU_CLUSTER["flop_rate"]),
            lambda p, n=nbytes: ring_allreduce_seconds(p, n, *gpu_link(p)))
    return out


def crossover_batch(compute, allreduce_s):
    """The per-rank batch b at which compute(b) = allreduce_s (communication dominates
    below it); 0 when even b = 0 computes longer, inf if never."""
    fixed, slope = compute(0.0), compute(1.0) - compute(0.0)
    if fixed >= allreduce_s:
        return 0.0
    return (allreduce_s - fixed) / slope if slope > 0 else float("inf")


def predict(fits, link, per_rank_batch, global_batch):
    """Predicted rows for P in :data:`RANKS`, both platforms, both models, two ways of
    growing: "weak" (each rank keeps ``per_rank_batch`` pairs: the global batch grows
    with P) and "strong" (the global batch stays ``global_batch`` pairs, cut P ways)."""
    rows = []
    for (platform, kind), (compute, allreduce) in platforms(fits, link).items():
        for scaling in ("weak", "strong"):
            for p in RANKS:
                b = per_rank_batch if scaling == "weak" else global_batch / p
                work, comm_s = compute(b), allreduce(p)
                # weak: tokens/s of P ranks over one rank's at the same per-rank batch;
                # strong: one rank's time for the global batch over P ranks' time.
                speedup = (p * work if scaling == "weak" else compute(global_batch)) / (work + comm_s)
                rows.append({"platform": platform, "model": kind, "scaling": scaling,
                             "ranks": p, "per_rank_batch": b, "compute_ms": work * 1e3,
                             "allreduce_ms": comm_s * 1e3, "step_ms": (work + comm_s) * 1e3,
                             "speedup": speedup,
                             "crossover_batch": crossover_batch(compute, comm_s)})
    return rows


# ---------------------------------------------------------------- driver
def launch(ranks, args, path):
    """Run :func:`worker` under ``mpiexec -n ranks``, one BLAS thread per rank."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [_repo_root(), os.environ.get("PYTHONPATH")])))
    command = ["mpiexec", "-n", str(ranks), sys.executable, "-m", "minitransformer", "bench",
               "data_parallel", "--worker", path,
               "--device", args.device, "--repeats", str(args.repeats),
               "--models", *args.models, "--batches", *map(str, args.batches),
               "--parallel-batches", *map(str, args.parallel_batches)]
    subprocess.run(command, env=env, check=True, timeout=args.timeout)
    with open(path) as f:
        return json.load(f)


def _repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measured_rows(jobs):
    """The measured rows of both jobs, with tokens/s, the allreduce's share and the
    speedup over P = 1 at the same global batch (strong scaling)."""
    single = {(r["model"], r["global_batch"]): r for r in jobs[1]["steps"]}
    rows = []
    for ranks in sorted(jobs):
        for r in jobs[ranks]["steps"]:
            base = single.get((r["model"], r["global_batch"]))
            rows.append({"model": r["model"], "ranks": ranks, "global_batch": r["global_batch"],
                         "per_rank_batch": r["per_rank_batch"], "tokens": r["tokens"],
                         "step_ms": r["step_s"] * 1e3, "step_min_ms": r["step_min_s"] * 1e3,
                         "step_max_ms": r["step_max_s"] * 1e3,
                         "tokens_per_s": r["tokens"] / r["step_s"],
                         "allreduce_in_step_ms": r["allreduce_in_step_s"] * 1e3,
                         "allreduce_alone_ms": r["allreduce_s"] * 1e3,
                         "allreduce_share": r["allreduce_in_step_s"] / r["step_s"],
                         "speedup_same_global_batch": (base["step_s"] / r["step_s"]) if base else "",
                         "gradient_bytes": r["gradient_bytes"], "ops": r.get("ops", ""),
                         "flops": r.get("flops", ""),
                         "sequential_ops": r.get("sequential_ops", "")})
    return rows


def fit_all(jobs):
    """The fitted link (α, β) and per-model compute figures."""
    link = fit_link(jobs[2]["buffers"]) if 2 in jobs else (float("nan"), float("nan"))
    fits = {}
    for kind in {r["model"] for r in jobs[1]["steps"]}:
        rows = [r for r in jobs[1]["steps"] if r["model"] == kind]
        per_op, rate = fit_compute(rows)
        fits[kind] = {"seconds_per_op": per_op, "flop_rate": rate,
                      "ops": statistics.mean(r["ops"] for r in rows),
                      "flops_per_pair": statistics.mean(r["flops"] / r["global_batch"] for r in rows),
                      "gradient_bytes": rows[0]["gradient_bytes"]}
    return link, fits


def plot(measured, predicted, fits, link, path):
    """Predicted speedups (weak, strong) with the measured points, and compute against
    communication as the per-rank batch shrinks."""
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    colors = {"transformer": "tab:blue", "lstm": "tab:orange"}
    lines = {"cpu": "-", "gpu cluster": "--"}
    for ax, scaling in zip(axes[:2], ("weak", "strong")):
        chosen = [r for r in predicted if r["scaling"] == scaling]
        for platform, kind in sorted({(r["platform"], r["model"]) for r in chosen}):
            rows = [r for r in chosen if r["platform"] == platform and r["model"] == kind]
            ax.plot([r["ranks"] for r in rows], [r["speedup"] for r in rows], color=colors[kind],
                    linestyle=lines[platform], label=f"{kind}, {platform} (model)")
        for kind in colors:
            point = (weak_speedups(measured, kind) if scaling == "weak"
                     else strong_speedups(measured, kind))
            if point:
                ax.plot([1, 2], [1.0, point], "o", color=colors[kind], label=f"{kind}, measured here")
        ax.plot(RANKS, RANKS, color="grey", linewidth=0.8, label="ideal (P)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("ranks P")
        what = (f"per-rank batch {chosen[0]['per_rank_batch']:g} pairs" if scaling == "weak"
                else f"global batch {chosen[0]['per_rank_batch']:g} pairs")
        ax.set_title(f"{scaling} scaling ({what})", fontsize=10)
        ax.set_ylabel("speedup over one rank")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    right = axes[2]
    batches = [2 ** k for k in range(0, 11)]
    for (platform, kind), (compute, allreduce) in platforms(fits, link).items():
        right.plot(batches, [compute(b) * 1e3 for b in batches], color=colors[kind],
                   linestyle=lines[platform], label=f"{kind} compute, {platform}")
        right.axhline(allreduce(64) * 1e3, color=colors[kind], linewidth=0.8,
                      linestyle=":" if platform == "cpu" else "-.",
                      label=f"{kind} allreduce P=64, {platform}")
    common.scaling_axes(right, "per-rank batch b (pairs)", "ms per step",
                        "compute vs allreduce at P = 64 (communication dominates where\n"
                        "the horizontal line is above its model's compute line)",
                        title_size=9, legend_size=6)
    return common.save_figure(fig, path)


def strong_speedups(measured, kind):
    """Measured speedup of 2 ranks over 1 on the same global batch (the largest measured
    both ways); None if none."""
    points = [r for r in measured if r["model"] == kind and r["ranks"] == 2
              and r["speedup_same_global_batch"] != ""]
    if not points:
        return None
    return max(points, key=lambda r: r["global_batch"])["speedup_same_global_batch"]


def weak_speedups(measured, kind):
    """Measured speedup of 2 ranks over 1 at the same *per-rank* batch (weak scaling):
    2 · t1(b) / t2(2b), for the largest b measured both ways; None if none."""
    one = {r["global_batch"]: r for r in measured if r["model"] == kind and r["ranks"] == 1}
    two = {r["per_rank_batch"]: r for r in measured if r["model"] == kind and r["ranks"] == 2}
    common_b = [b for b in two if b in one]
    if not common_b:
        return None
    b = max(common_b)
    return 2 * one[b]["step_ms"] / two[b]["step_ms"]


def main(argv=None):
    parser = common.parser("data_parallel", __doc__.splitlines()[0],
                           quick_help="G = 8, 32; 2 repeats")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batches", type=common.positive_int, nargs="+", default=None,
                        help=f"global batches timed with 1 rank (default {BATCHES})")
    parser.add_argument("--parallel-batches", type=common.positive_int, nargs="+", default=None,
                        help=f"global batches timed with 2 ranks (default {PARALLEL_BATCHES})")
    parser.add_argument("--per-rank-batch", type=common.positive_float, default=64,
                        help="per-rank batch of the predicted weak scaling")
    parser.add_argument("--global-batch", type=common.positive_float, default=64,
                        help="global batch of the predicted strong scaling (training's default)")
    parser.add_argument("--repeats", type=common.positive_int, default=7)
    parser.add_argument("--timeout", type=common.positive_float, default=900, help="seconds per mpiexec job")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = common.parse(parser, argv)
    args.batches = args.batches or (QUICK_BATCHES if args.quick else BATCHES)
    args.parallel_batches = args.parallel_batches or (QUICK_PARALLEL if args.quick else PARALLEL_BATCHES)
    if args.quick:
        args.repeats = min(args.repeats, 2)
    if args.worker:
        return worker(args)
    try:
        distributed.mpi()
    except distributed.DistributedError as error:
        raise SystemExit(f"data_parallel: {error}")
    out_dir = args.out_dir
    where = common.device_description(args.device)
    print(f"data parallelism on {where}: P = 1, 2 ranks (mpiexec), one BLAS thread per rank")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = {p: launch(p, args, os.path.join(tmp, f"p{p}.json")) for p in (1, 2)}
    measured = measured_rows(jobs)
    link, fits = fit_all(jobs)
    predicted = predict(fits, link, args.per_rank_batch, args.global_batch)
    comment = "\n".join([
        f"data_parallel on {where}; OPENBLAS_NUM_THREADS=1 per rank; repeats={args.repeats} "
        f"(medians; each step starts after a barrier; the slowest rank's time)",
        "tiny presets, float32, Adam; global batches of the built-in corpus, split over the ranks",
        f"fitted link (two ranks, shared memory): alpha={link[0] * 1e6:.1f} us per ring step, "
        f"beta={link[1] / 1e9:.2f} GB/s",
    ] + [f"fitted compute {k}: {f['seconds_per_op'] * 1e6:.1f} us per op, "
         f"{f['flop_rate'] / 1e9:.2f} GFLOP/s, {f['ops']:.0f} ops per step, "
         f"{f['flops_per_pair'] / 1e6:.2f} MFLOP per pair, {f['gradient_bytes']} gradient bytes"
         for k, f in sorted(fits.items())])
    paths = [common.write_csv(f"{out_dir}/data_parallel.csv", measured, comment),
             common.write_csv(f"{out_dir}/data_parallel_allreduce.csv",
                              [dict(ranks=p, **r) for p in sorted(jobs) for r in jobs[p]["buffers"]],
                              comment),
             common.write_csv(f"{out_dir}/data_parallel_predicted.csv", predicted,
                              comment + "\nGPU cluster (assumed, not measured): "
                              + json.dumps(GPU_CLUSTER))]
    png = plot(measured, predicted, fits, link, f"{out_dir}/data_parallel.png")
    report(measured, predicted, fits, link)
    print(f"wrote {', '.join(paths)}{' and ' + png if png else ''} in "
          f"{time.perf_counter() - start:.0f} s")
    return measured, predicted


def report(measured, predicted, fits, link):
    print(f"  link between two ranks: alpha {link[0] * 1e6:.1f} us, beta {link[1] / 1e9:.2f} GB/s")
    for r in measured:
        speedup = r["speedup_same_global_batch"]
        print(f"  measured {r['model']:<11} P={r['ranks']} G={r['global_batch']:<4} "
              f"{r['step_ms']:7.1f} ms  {r['tokens_per_s']:8.0f} tok/s  allreduce "
              f"{r['allreduce_share']:.1%}" + (f"  speedup {speedup:.2f}" if speedup != "" else ""))
    for kind, f in sorted(fits.items()):
        print(f"  fit {kind}: {f['seconds_per_op'] * 1e6:.1f} us/op, {f['flop_rate'] / 1e9:.2f} GFLOP/s")
    for r in predicted:
        if r["ranks"] in (2, 8, 64):
            print(f"  predicted {r['scaling']:<6} {r['platform']:<11} {r['model']:<11} P={r['ranks']:<3} speedup "
                  f"{r['speedup']:6.1f}  communication dominates below b = {r['crossover_batch']:.0f}")


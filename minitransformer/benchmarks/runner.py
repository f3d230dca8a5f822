"""``python -m minitransformer bench``: one benchmark by name, or the suite of them.

    python -m minitransformer bench seq_scaling --quick      # one benchmark, its own flags
    python bench/seq_scaling.py --quick                      # the same thing
    python -m minitransformer bench seq_scaling --help       # its flags
    python -m minitransformer bench --quick                  # the suite, reduced: < 5 min on 2 cores
    python -m minitransformer bench --only decoding memory   # part of the suite, full size
    python -m minitransformer bench --device gpu             # the whole suite, full size, on a GPU

Every benchmark is one module of this package with a ``main(argv)`` whose command line
starts with the same three flags (``--device``, ``--out-dir``, ``--quick``; see
``common.parser``); ``bench NAME`` and ``bench/NAME.py`` both hand their flags to it.

The suite runs the benchmarks of :data:`SUITE` one after the other with
``--device D --out-dir DIR`` (and ``--quick``), and prints one line per result. Full
results go to ``bench/results/<device>/``, quick ones to ``bench/results/<device>/quick/``
(so a quick run never overwrites a full one). A benchmark that fails is reported in the
summary and the others still run. Four are left out of the suite and run by name only:
``data_parallel`` (needs MPI), ``real_translation`` (needs Multi30k and trains for an hour),
``gpu_compare`` (the GPU's numbers against the CPU's; ``bench/gpu_check.sh`` runs it) and
``table1`` (counts, not timings: ``python -m minitransformer table1``).
"""
import importlib
import os
import sys
import time
import traceback

from .. import analysis, backend
from . import common


# ---------------------------------------------------------------- one line per result
def _matmul_peak(rows):
    return f"peak {max(r['gflops'] for r in rows):.0f} GFLOP/s"


def _seq_scaling(rows):
    from .seq_scaling import headline
    n, ratio = headline(rows)
    return f"lstm / attention step time at n={n}: {ratio:.2f}"


def _ratios(rows):
    if rows is None:
        return "skipped (PyTorch not installed)"
    ratios = [r["ratio"] for r in rows]
    return f"engine / reference time {min(ratios):.2f} .. {max(ratios):.2f}"


def _memory(result):
    _, attention_rows = result
    parts = []
    for variant in sorted({r["variant"] for r in attention_rows}):
        points = [(r["n"], r["peak_memory_mb"]) for r in attention_rows if r["variant"] == variant]
        parts.append(f"{variant} ~ n^{analysis.fit_exponent(*zip(*points)):.2f}")
    return "attention memory " + ", ".join(parts)


def _tracer_cost(row):
    return f"traced step x{row['traced_ratio']:.2f}, {row['ops']} ops"


def _attention_memory(rows):
    from .attention_memory import slopes
    return "peak memory " + ", ".join(f"{v} ~ n^{k:.2f}" for v, k in slopes(rows).items())


def _decoding(rows):
    n = max(r["n"] for r in rows if r["status"] == "ok" and r["method"] == "transformer, no cache")
    rate = {r["method"]: r["tokens_per_s"] for r in rows if r["n"] == n and r["status"] == "ok"}
    return (f"n={n}: kv cache {rate['transformer, kv cache']:.0f}, no cache "
            f"{rate['transformer, no cache']:.0f}, lstm {rate['lstm']:.0f} tok/s")


def _time_to_bleu(result):
    rows, _ = result
    corpus = [r for r in rows if r["task"] == "corpus"]
    if not corpus:
        return "mirror only"
    best = {r["model"]: r["best"] for r in corpus}
    return "best corpus BLEU " + ", ".join(f"{m} {b:.1f}" for m, b in best.items())


def _predict(rows):
    ratios = [r["ratio"] for r in rows if r["status"] == "ok"]
    return f"predicted / measured {min(ratios):.2f} .. {max(ratios):.2f}" if ratios else "skipped"


def _done(result):
    return "done" if result not in (None, 1) else "skipped"


# ---------------------------------------------------------------- the registry
# Every benchmark (a module of this package of the same name) and how its result is told
# in one line of the suite's summary.
BENCHMARKS = {
    "matmul_peak": _matmul_peak,
    "seq_scaling": _seq_scaling,
    "overhead": _ratios,
    "vs_pytorch": _ratios,
    "memory": _memory,
    "attention_memory": _attention_memory,
    "tracer_cost": _tracer_cost,
    "decoding": _decoding,
    "time_to_bleu": _time_to_bleu,
    "data_parallel": _done,
    "real_translation": _done,
    "table1": _done,
    "gpu_compare": _done,
    "predict": _predict,
}
# What `bench` runs when no name is given.
SUITE = ("matmul_peak", "seq_scaling", "overhead", "vs_pytorch", "memory", "attention_memory",
         "tracer_cost", "decoding", "time_to_bleu")


def run(name, argv=()):
    """Run benchmark ``name`` with command-line flags ``argv``; returns what its main returns."""
    if name not in BENCHMARKS:
        raise common.CommandError("no such benchmark", "NAME", name,
                                  f"one of {', '.join(BENCHMARKS)}")
    module = importlib.import_module(f"{__package__}.{name}")
    return module.main(list(argv))


def run_in_suite(name, argv):
    """Run one benchmark of the suite; returns a summary row (never raises: a failure
    is a row too)."""
    print(f"\n=== {name} {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    try:
        status, line = "ok", BENCHMARKS[name](run(name, argv))
    except (Exception, SystemExit) as error:   # argparse exits with SystemExit
        traceback.print_exc()
        status, line = "failed", f"{type(error).__name__}: {error}"
    return {"benchmark": name, "status": status, "seconds": time.perf_counter() - start,
            "result": line}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and not argv[0].startswith("-"):
        return run(argv[0], argv[1:])
    parser = common.CommandParser(
        prog="python -m minitransformer bench", usage="%(prog)s [NAME] [flags]",
        description="Run one benchmark by NAME, or the suite of them. Benchmarks: "
        + ", ".join(BENCHMARKS) + ". With a NAME the flags are that benchmark's (see "
        "NAME --help); without one the suite (" + ", ".join(SUITE) + ") runs with the "
        "flags below.")
    parser.add_argument("--quick", action="store_true",
                        help="each benchmark's --quick: the suite in < 5 min on 2 cores")
    parser.add_argument("--device", default=None, choices=backend.DEVICES,
                        help="cpu or gpu (default: $MINITRANSFORMER_DEVICE, else cpu)")
    parser.add_argument("--out-dir", default=None,
                        help="default bench/results/<device>/, with /quick under --quick")
    parser.add_argument("--only", nargs="+", choices=SUITE, metavar="NAME",
                        help="run only these of the suite")
    args = parser.parse_args(argv)
    device = backend.resolve_device(args.device)
    # Quick results go to a folder of their own, so they never overwrite full ones.
    out_dir = args.out_dir or common.results_dir(device) + ("/quick" if args.quick else "")
    os.makedirs(out_dir, exist_ok=True)
    shared = ["--device", device, "--out-dir", out_dir] + (["--quick"] if args.quick else [])
    start = time.perf_counter()
    summary = [run_in_suite(name, shared) for name in args.only or SUITE]
    total = time.perf_counter() - start
    print(f"\n=== summary ({'quick' if args.quick else 'full'}, {device}: "
          f"{common.device_description(device)}), results in {out_dir}/")
    for row in summary:
        print(f"  {row['benchmark']:<17}{row['status']:<8}{row['seconds']:>7.1f} s  "
              f"{row['result']}")
    print(f"  {'total':<25}{total:>7.1f} s")
    return summary

"""``python -m minitransformer bench``: every benchmark, one after the other, and a summary.

    python -m minitransformer bench --quick                 # all of them, < 5 min on 2 cores
    python -m minitransformer bench --only decoding seq_scaling
    python -m minitransformer bench --device gpu            # the full versions, on the GPU

Each benchmark is its own module with a ``main(argv)`` (also run by ``bench/<name>.py``);
this runner calls them with reduced arguments under ``--quick`` and with their
defaults otherwise. Full results go to ``bench/results/<device>/``, quick ones to
``bench/results/<device>/quick/`` (so a quick run never overwrites a full one). A
benchmark that fails is reported in the summary and the others still run.
"""
import argparse
import importlib
import os
import time
import traceback

from .. import backend
from . import common


# ---------------------------------------------------------------- one line per result
def _matmul_peak(rows):
    return f"peak {max(r['gflops'] for r in rows):.0f} GFLOP/s"


def _seq_scaling(rows):
    from .seq_scaling import headline
    n, ratio = headline(rows)
    return f"lstm / attention step time at n={n}: {ratio:.2f}"


def _ratios(key):
    def describe(rows):
        if rows is None:
            return "skipped (PyTorch not installed)"
        ratios = [r[key] for r in rows]
        return f"engine / reference time {min(ratios):.2f} .. {max(ratios):.2f}"
    return describe


def _memory(result):
    _, attention_rows = result
    parts = []
    for variant in sorted({r["variant"] for r in attention_rows}):
        points = [(r["n"], r["peak_memory_mb"]) for r in attention_rows if r["variant"] == variant]
        parts.append(f"{variant} ~ n^{common.fitted_slope(*zip(*points)):.2f}")
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


# ---------------------------------------------------------------- the registry
# name: (module, quick arguments, takes --device, how it is told where to write,
#        one-line summary of what its main returns). Output: "--out-dir DIR", or
#        "--out DIR/<name>.csv" for the two that take a file, or None (no choice).
BENCHMARKS = {
    "matmul_peak": ("matmul_peak", ["--quick", "--repeats", "3"], True, "--out",
                    _matmul_peak),
    "seq_scaling": ("seq_scaling", ["--quick", "--max-seconds", "45"], True, "--out-dir",
                    _seq_scaling),
    "overhead": ("overhead", ["--lengths", "32", "128", "--repeats", "3"], True, "--out",
                 _ratios("ratio")),
    "vs_pytorch": ("vs_pytorch", ["--lengths", "64", "--repeats", "3"], False,
                   "--out-dir", _ratios("ratio")),
    "memory": ("memory", ["--quick", "--steps", "50", "--lengths", "64", "128", "256"], True,
               "--out-dir", _memory),
    "attention_memory": ("attention_memory", ["--lengths", "256", "512", "1024", "2048",
                                              "--max-seconds", "10"], True, "--out-dir",
                         _attention_memory),
    "tracer_cost": ("tracer_cost", ["--repeats", "5"], True, "--out-dir", _tracer_cost),
    "decoding": ("decoding", ["--quick"], True, "--out-dir", _decoding),
    "time_to_bleu": ("time_to_bleu", ["--quick", "--budget", "15", "--mirror-budget", "8",
                                      "--lengths", "16"], True, "--out-dir", _time_to_bleu),
}


def run_one(name, quick, device, out_dir):
    """Run one benchmark's main, writing under ``out_dir``; returns a summary row
    (never raises: a failure is a row too)."""
    module_name, quick_args, takes_device, out_flag, describe = BENCHMARKS[name]
    argv = list(quick_args) if quick else []
    argv += ["--device", device] if takes_device else []
    argv += [out_flag, f"{out_dir}/{name}.csv" if out_flag == "--out" else out_dir]
    print(f"\n=== {name} {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
        result = module.main(argv)
        status, line = "ok", describe(result)
    except (Exception, SystemExit) as error:   # argparse exits with SystemExit
        traceback.print_exc()
        status, line = "failed", f"{type(error).__name__}: {error}"
    return {"benchmark": name, "status": status, "seconds": time.perf_counter() - start,
            "result": line}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="minitransformer bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes and budgets: all benchmarks in < 5 min on 2 cores")
    parser.add_argument("--device", default=None, choices=backend.DEVICES,
                        help="cpu or gpu (default: $MINITRANSFORMER_DEVICE, else cpu)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                        help="run only these: " + ", ".join(BENCHMARKS))
    args = parser.parse_args(argv)
    args.device = backend.resolve_device(args.device)
    device = backend.resolve_device(args.device)
    backend.set_default_device(device)
    # Quick results go to a folder of their own, so they never overwrite full ones.
    out_dir = common.results_dir(device) + ("/quick" if args.quick else "")
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    summary = [run_one(name, args.quick, device, out_dir) for name in args.only or BENCHMARKS]
    total = time.perf_counter() - start
    print(f"\n=== summary ({'quick' if args.quick else 'full'}, {device}: "
          f"{common.device_description(device)}), results in {out_dir}/")
    for row in summary:
        print(f"  {row['benchmark']:<17}{row['status']:<8}{row['seconds']:>7.1f} s  "
              f"{row['result']}")
    print(f"  {'total':<25}{total:>7.1f} s")
    return summary


if __name__ == "__main__":
    main()

"""The ceiling: how many float32 GFLOP/s a plain matrix product reaches on this device.

Every other figure is read against this one. A layer that reaches 30% of it is
doing well in a framework built from many small ops; a recurrent step whose
matmul is (batch, d) @ (d, 4d) reaches far less, because such a small product
cannot fill the machine -- the heart of the argument.
"""
import argparse

from .. import backend
from . import common

# (m, k, n): the products the layers run at batch 32, d = 256, and large squares.
SHAPES = [
    ("lstm step (B,d)@(d,4d)", 32, 256, 1024),
    ("rnn step (B,d)@(d,d)", 32, 256, 256),
    ("projection (B·n,d)@(d,3d), n=128", 4096, 256, 768),
    ("feed-forward (B·n,d)@(d,4d), n=128", 4096, 256, 1024),
    ("square 512", 512, 512, 512),
    ("square 1024", 1024, 1024, 1024),
    ("square 2048", 2048, 2048, 2048),
]
GPU_EXTRA = [("square 4096", 4096, 4096, 4096), ("square 8192", 8192, 8192, 8192)]


def run(device="cpu", repeats=5, quick=False, min_time=0.2):
    """Time each product (``repeats`` times, and for at least ``min_time`` seconds);
    returns rows with GFLOP/s."""
    xp = backend.xp_for(device)
    shapes = SHAPES + (GPU_EXTRA if device == "gpu" else [])
    if quick:
        shapes = [s for s in shapes if "2048" not in s[0] and "8192" not in s[0]]
    rows = []
    for label, m, k, n in shapes:
        a = backend.random_normal((m, k), "float32", device)
        b = backend.random_normal((k, n), "float32", device)
        times = common.measure(lambda: xp.matmul(a, b), device, repeats=repeats, min_time=min_time)
        stats = common.summary(times)
        flops = 2 * m * k * n
        rows.append({"shape": label, "m": m, "k": k, "n": n, **stats,
                     "gflops": flops / stats["median_s"] / 1e9})
    return rows


def peak_gflops(rows):
    """The best throughput measured: the denominator of 'fraction of peak'."""
    return max(r["gflops"] for r in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=backend.DEVICES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="CSV path (default bench/results/<device>/)")
    args = parser.parse_args(argv)
    rows = run(args.device, args.repeats, args.quick)
    where = common.device_description(args.device)
    print(f"matmul throughput, float32, on {where}")
    for r in rows:
        print(f"  {r['shape']:<38} {r['median_s'] * 1e3:9.3f} ms  {r['gflops']:8.1f} GFLOP/s")
    path = args.out or f"{common.results_dir(args.device)}/matmul_peak.csv"
    common.write_csv(path, rows, f"matmul_peak on {where}\nrepeats={args.repeats}")
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()

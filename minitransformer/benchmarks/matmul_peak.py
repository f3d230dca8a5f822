"""The ceiling: how many float32 GFLOP/s a plain matrix product reaches on this device.

Every other figure is read against this one. A layer that reaches 30% of it is
doing well in a framework built from many small ops; a recurrent step whose
matmul is (batch, d) @ (d, 4d) reaches far less, because such a small product
cannot fill the machine -- the heart of the argument.
"""
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
    parser = common.parser("matmul_peak", __doc__.splitlines()[0],
                           quick_help="leave out the squares of 2048 and up; 3 repeats")
    common.add_size_flags(parser, repeats=5)
    args = common.parse(parser, argv, quick=dict(repeats=3))
    rows = run(args.device, args.repeats, args.quick)
    print(f"matmul throughput, float32, on {common.device_description(args.device)}")
    for r in rows:
        print(f"  {r['shape']:<38} {r['median_s'] * 1e3:9.3f} ms  {r['gflops']:8.1f} GFLOP/s")
    common.finish("matmul_peak", args.device, args.out_dir, {"matmul_peak": rows}, [f"repeats={args.repeats}"])
    return rows

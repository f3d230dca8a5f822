"""What every benchmark shares: honest timing, a description of the machine, CSV output.

Timing rules: warm up first (the first calls pay for allocation, BLAS thread start-up
and, on the GPU, kernel compilation), synchronise the device before every clock
read, repeat, and report the median with the spread (min and max), because a
shared machine's noise is one-sided: it only ever makes a run slower.
"""
import csv
import os
import platform
import statistics

from .. import backend


def device_description(device):
    """One line naming the hardware and the library versions that produced a figure."""
    versions = f"numpy {backend.numpy.__version__}, Python {platform.python_version()}"
    if device == "gpu":
        cupy = backend.cupy
        cuda = cupy.cuda.runtime.runtimeGetVersion()
        return (f"{backend.device_name('gpu')} (CuPy {cupy.__version__}, CUDA runtime {cuda // 1000}.{cuda % 1000 // 10}, "
                f"{versions})")
    return f"{backend.device_name('cpu')}, {os.cpu_count()} cores ({versions})"


def results_dir(device, root="bench/results"):
    """``bench/results/cpu`` or ``bench/results/gpu-<model>`` (e.g. gpu-h100)."""
    if device == "gpu":
        name = backend.device_name("gpu").lower()
        model = next((w for w in name.replace("nvidia", "").split() if any(c.isdigit() for c in w)),
                     "cuda")
        sub = f"gpu-{model}"
    else:
        sub = "cpu"
    path = os.path.join(root, sub)
    os.makedirs(path, exist_ok=True)
    return path


def measure(fn, device, repeats=5, warmup=2, min_time=0.0):
    """Run ``fn()`` ``warmup`` times, then time ``repeats`` runs (at least until
    ``min_time`` seconds have passed). Returns a list of seconds per run."""
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < repeats or sum(times) < min_time:
        start = backend.timer(device)
        fn()
        times.append(backend.timer(device) - start)
    return times


def peak_bytes(step, device):
    """Bytes allocated at the high-water mark of ``step()``, above those alive before it.

    CPU: ``tracemalloc``, which sees NumPy's array buffers (NumPy reports them to it),
    so this counts activations, gradients and temporaries; it slows Python down, so
    never time the same run. GPU: CuPy's memory pool, emptied of free blocks first;
    blocks freed during the step stay held, so its size afterwards is the high-water mark.
    """
    if device == "gpu":
        pool = backend.cupy.get_default_memory_pool()
        backend.synchronize(device)
        pool.free_all_blocks()
        before = pool.total_bytes()
        step()
        backend.synchronize(device)
        return pool.total_bytes() - before
    import tracemalloc
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def summary(times):
    """Median, minimum and maximum of a list of timings (seconds)."""
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def write_csv(path, rows, comment=None):
    """Write ``rows`` (a list of dicts with the same keys) to ``path``.

    ``comment`` lines (the machine, the versions, the parameters) go first, each
    starting with '#', so the file says where its numbers come from.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        for line in (comment or "").splitlines():
            f.write(f"# {line}\n")
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, path)
    return path


def fitted_slope(xs, ys):
    """The least-squares slope of log(y) against log(x): the exponent in y ~ x^k."""
    import math
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(points) < 2:
        return float("nan")
    mean_x = sum(p[0] for p in points) / len(points)
    mean_y = sum(p[1] for p in points) / len(points)
    var = sum((p[0] - mean_x) ** 2 for p in points)
    return sum((p[0] - mean_x) * (p[1] - mean_y) for p in points) / var if var else float("nan")

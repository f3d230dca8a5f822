"""What the tracer costs: nothing measurable when it is off, a price per op when on.

The engine's hook is one global, ``tensor._tracer``: ``Function.apply`` and
``run_backward`` test ``_tracer is None`` before each op and, when it is, run the
op directly. We cannot time the engine *without* that test short of editing it,
so instead we time three things on a workload made of many small ops (a small
LSTM's forward + backward, where per-op costs show most):

a. the workload as it runs normally (no trace active);
b. the ``is None`` test itself, by a micro-benchmark (a function with the test
   against the same function without it), times the number of tests the
   workload makes (at most one per forward op, and one per backward op plus one
   per gradient it passes on): the cost of having the hook;
c. the same workload inside ``with trace()``: the cost of recording, per op.
"""
import statistics
import timeit

from ..trace import trace
from . import common, seq_scaling

_tracer = None  # stands in for tensor._tracer in the micro-benchmark


def _with_check():
    if _tracer is None:
        return 1
    return 2


def _without_check():
    return 1


def check_seconds(calls=1_000_000, repeats=7):
    """Seconds one ``_tracer is None`` test costs (best of ``repeats``)."""
    with_check = min(timeit.repeat(_with_check, number=calls, repeat=repeats))
    without = min(timeit.repeat(_without_check, number=calls, repeat=repeats))
    return max(0.0, with_check - without) / calls


def count_checks(step):
    """(ops, forward ops, hook tests) of one ``step()``, from a trace of it."""
    with trace() as t:
        step()
    forward = len(t.forward_nodes())
    backward = t.backward_nodes()
    tests = forward + sum(1 + len(n.output_shapes) for n in backward)
    return len(t.nodes), forward, tests


def _traced(step):
    def run():
        with trace():
            step()
    return run


def run(batch=4, seq=64, dim=32, repeats=15, device="cpu", out_dir=None, check_calls=1_000_000):
    """The three measurements for an LSTM of ``dim`` units over ``seq`` steps; one row.
    ``check_calls``: calls per repeat of the ``is None`` micro-benchmark."""
    layer = seq_scaling.make_layer("lstm", dim, 1, device)
    step = seq_scaling.training_step("lstm", layer, batch, seq, dim, device)
    ops, forward_ops, tests = count_checks(step)
    # Alternate plain and traced runs so that machine noise hits both alike.
    plain, traced = [], []
    traced_step = _traced(step)
    for _ in range(repeats):
        plain += common.measure(step, device, repeats=1, warmup=1 if not plain else 0)
        traced += common.measure(traced_step, device, repeats=1, warmup=1 if not traced else 0)
    plain_s, traced_s = statistics.median(plain), statistics.median(traced)
    check_s = check_seconds(check_calls)
    row = {"workload": f"lstm fwd+bwd B={batch} n={seq} d={dim}", "ops": ops,
           "forward_ops": forward_ops, "hook_tests": tests, "plain_ms": plain_s * 1e3,
           "per_op_us": plain_s / ops * 1e6, "check_ns": check_s * 1e9,
           "checks_ms": tests * check_s * 1e3, "checks_fraction": tests * check_s / plain_s,
           "traced_ms": traced_s * 1e3, "tracing_per_op_us": (traced_s - plain_s) / ops * 1e6,
           "traced_ratio": traced_s / plain_s}
    if out_dir is not None:
        common.finish("tracer_cost", device, out_dir, {"tracer_cost": [row]},
                      [f"repeats={repeats} alternating, medians; check_ns from timeit "
                       f"(best of 7 x {check_calls} calls)"])
    return row


def main(argv=None):
    parser = common.parser("tracer_cost", __doc__.splitlines()[0], quick_help="5 repeats")
    common.add_size_flags(parser, batch=4, d=32, repeats=15)
    parser.add_argument("--n", type=common.positive_int, default=64, help="sequence length (default 64)")
    args = common.parse(parser, argv, quick=dict(repeats=5))
    r = run(args.batch, args.n, args.d, args.repeats, args.device, args.out_dir)
    print(f"tracer cost on {common.device_description(args.device)}: {r['workload']}, "
          f"{r['ops']} ops ({r['forward_ops']} forward)")
    print(f"  a. no trace active:     {r['plain_ms']:8.2f} ms  ({r['per_op_us']:.1f} µs per op)")
    print(f"  b. the hook's tests:    {r['hook_tests']} x {r['check_ns']:.1f} ns = "
          f"{r['checks_ms'] * 1e3:.1f} µs, {r['checks_fraction']:.3%} of (a)")
    print(f"  c. inside a trace:      {r['traced_ms']:8.2f} ms  (x{r['traced_ratio']:.2f}: "
          f"{r['tracing_per_op_us']:.1f} µs more per op)")
    return r

"""Table 1 of "Attention Is All You Need", measured instead of asserted.

Vaswani et al. (2017), Table 1, compares layer types for a sequence of n vectors
of dimension d:

    layer           complexity per layer   sequential operations   maximum path length
    self-attention  O(n²·d)                O(1)                    O(1)
    recurrent       O(n·d²)                O(n)                    O(n)

Here one RNN layer, one LSTM layer and one self-attention layer (the library's
``nn`` layers, batch 1, forward pass) are run under the tracer for
n = 8, 16, ..., 512, and for each the three columns are *measured* from the graph
of ops that actually ran:

* ``flops`` -- the work W of the forward pass (every op's ``flops()``), the
  input projections included. Attention pays 8·n·d² for its four projections
  and about 4·n²·d for scores and weighted sum: the n² term overtakes the n term
  only once n passes about 2d, which is why the fitted exponent lies between 1
  and 2 and the local slope at the largest n is reported too.
* ``sequential_ops`` -- the critical path of the forward graph: the most ops on
  any chain in which each op waits for the one before it (backward excluded).
* ``max_path_length`` -- the most ops on any chain from the *first input token*
  to the *last output token*, measured by following token 0 through every op
  (see :meth:`minitransformer.trace.Trace.watch_position`).

Each column's exponent of n is fitted by least squares on log n, log value, and
printed beside the paper's entry. Run ``python -m minitransformer table1`` (or
``python bench/table1.py``, or ``python -m minitransformer bench table1``: the same
flags); ``--help`` lists the options. Its figures are counts, the same on every device,
so it writes to ``bench/results/`` itself rather than a folder per device.
"""
import os
import time

from .. import analysis, backend
from .._tensor import no_grad, randn
from ..trace import trace
from . import common

LAYERS = ("rnn", "lstm", "attention")
DEFAULT_NS = (8, 16, 32, 64, 128, 256, 512)
QUICK_NS = (8, 16, 32, 64)
CSV_COLUMNS = ("layer", "n", "d", "flops", "sequential_ops", "max_path_length")
DEFAULT_OUT_DIR = os.path.join("bench", "results")

# The paper's entries, and the exponent of n each implies (attention's O(n²·d)
# is the exponent for n much larger than d).
PAPER = {
    "rnn": {"flops": ("O(n·d²)", 1), "sequential_ops": ("O(n)", 1), "max_path_length": ("O(n)", 1)},
    "lstm": {"flops": ("O(n·d²)", 1), "sequential_ops": ("O(n)", 1), "max_path_length": ("O(n)", 1)},
    "attention": {"flops": ("O(n²·d)", 2), "sequential_ops": ("O(1)", 0),
                  "max_path_length": ("O(1)", 0)},
}


def build_layer(layer, d, heads=1, device="cpu"):
    """A function x (1, n, d) -> output (1, n, d) running one layer of kind ``layer``."""
    from ..nn.attention import MultiheadAttention
    from ..nn.recurrent import LSTM, RNN
    if layer == "rnn":
        module = RNN(d, d, batch_first=True).to(device)
        return lambda x: module(x)[0]
    if layer == "lstm":
        module = LSTM(d, d, batch_first=True).to(device)
        return lambda x: module(x)[0]
    if layer == "attention":
        module = MultiheadAttention(d, heads, batch_first=True).to(device)
        return lambda x: module(x, x, x, need_weights=False)[0]
    raise ValueError(f"table1: layer must be one of {LAYERS}, got {layer!r}")


def measure(layer, n, d=64, heads=1, device="cpu", seed=0):
    """Trace one forward pass of ``layer`` over n tokens; returns a row (dict).

    Keys: the CSV columns, plus ``sequential_matmuls`` (matmuls on the critical
    path), ``path_matmuls`` (the most matmuls between the first input token and the
    last output token), ``span_steps``, ``parallelism``, ``ops`` (how many ops ran)
    and ``time_s`` (the ops' summed wall time, tracing excluded).
    """
    backend.manual_seed(seed)
    run = build_layer(layer, d, heads, device)
    x = randn(1, n, d, device=device)          # (batch 1, n tokens, d features)
    with no_grad():
        run(x)      # untimed warm-up: on a GPU the first pass compiles every kernel (seconds)
    with no_grad(), trace() as t:               # forward only: no graph kept for backward
        t.watch_position(x, axis=1, position=0)
        output = run(x)
    s = t.summary("forward")
    path = t.path_length(output, axis=1, position=-1)
    if path is None:
        raise RuntimeError(f"table1: the last output token of {layer} does not depend on the "
                           f"first input token")
    return {"layer": layer, "n": n, "d": d, "flops": s["work_flops"],
            "sequential_ops": s["sequential_ops"], "max_path_length": path["ops"],
            "sequential_matmuls": s["sequential_matmuls"], "path_matmuls": path["matmuls"],
            "span_steps": s["span_steps"], "parallelism": s["parallelism"],
            "ops": s["ops"], "time_s": s["time_s"]}


def run(ns=DEFAULT_NS, d=64, heads=1, layers=LAYERS, device="cpu"):
    """Measure every layer at every n: a list of rows."""
    return [measure(layer, n, d, heads, device) for layer in layers for n in ns]


def fit(rows):
    """Per layer and column: the exponent of n (least squares over all n) and the
    local one between the two largest n. Also, per layer, FLOPs fitted as
    a·n + b·n² (``flops_linear``, ``flops_quadratic``)."""
    fits = {}
    for layer in dict.fromkeys(r["layer"] for r in rows):
        mine = sorted((r for r in rows if r["layer"] == layer), key=lambda r: r["n"])
        ns = [r["n"] for r in mine]
        entry = {}
        for column in ("flops", "sequential_ops", "max_path_length"):
            values = [r[column] for r in mine]
            entry[column] = (analysis.fit_exponent(ns, values), analysis.local_exponent(ns, values))
        entry["flops_linear"], entry["flops_quadratic"] = _linear_quadratic(
            ns, [r["flops"] for r in mine])
        fits[layer] = entry
    return fits


def _linear_quadratic(ns, values):
    """(a, b) of values ≈ a·n + b·n², least squares relative to each value.

    Dividing by n turns it into a straight line, values/n ≈ a + b·n, each point
    weighted by n/value so that small n count as much as large ones.
    """
    rows = [(1.0, float(n), v / n, n / v) for n, v in zip(ns, values)]
    s11 = sum(w * w for _, _, _, w in rows)
    s12 = sum(w * w * n for _, n, _, w in rows)
    s22 = sum(w * w * n * n for _, n, _, w in rows)
    t1 = sum(w * w * y for _, _, y, w in rows)
    t2 = sum(w * w * n * y for _, n, y, w in rows)
    det = s11 * s22 - s12 * s12
    return (t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det


def format_rows(rows):
    columns = [("layer", "layer", "{}"), ("n", "n", "{:d}"), ("flops", "FLOPs", "{:,d}"),
               ("sequential_ops", "sequential ops", "{:d}"),
               ("sequential_matmuls", "(matmuls)", "{:d}"),
               ("max_path_length", "max path length", "{:d}"),
               ("path_matmuls", "(matmuls)", "{:d}"),
               ("parallelism", "parallelism W/S", "{:,.0f}")]
    return analysis.format_table(rows, columns)


def format_fits(fits, ns, d):
    lines = [f"Fitted exponent k of n (value ~ n^k): least squares on log-log over n = "
             f"{min(ns)}..{max(ns)}; in brackets the local slope between n = {sorted(ns)[-2]} "
             f"and {max(ns)}."]
    table = []
    for layer, entry in fits.items():
        row = {"layer": layer}
        for column in ("flops", "sequential_ops", "max_path_length"):
            whole, local = entry[column]
            paper, _ = PAPER.get(layer, {}).get(column, ("?", None))
            row[column] = f"{whole:5.2f} ({local:4.2f})"
            row[column + "_paper"] = paper
        table.append(row)
    columns = [("layer", "layer", "{}")]
    for column, heading in (("flops", "FLOPs"), ("sequential_ops", "sequential ops"),
                            ("max_path_length", "max path length")):
        columns += [(column, heading, "{}"), (column + "_paper", "paper", "{}")]
    lines.append(analysis.format_table(table, columns))
    for layer, entry in fits.items():
        a, b = entry["flops_linear"], entry["flops_quadratic"]
        if b > 1e-9 * a:
            lines.append(f"{layer} FLOPs ≈ {a:,.0f}·n + {b:,.1f}·n²: the n² term overtakes the "
                         f"n term at n ≈ {a / b:,.0f} (d = {d})")
        else:
            lines.append(f"{layer} FLOPs ≈ {a:,.0f}·n: linear in n")
    return "\n".join(lines)


def plot(rows, path, d):
    """Three log-log panels (FLOPs, sequential ops, max path length) against n, with
    the paper's slopes drawn as dashed guides. Returns the path, or None without matplotlib."""
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    titles = {"flops": "FLOPs per layer", "sequential_ops": "sequential ops (critical path)",
              "max_path_length": "max path length (token 0 -> token n-1)"}
    for ax, column in zip(axes, titles):
        for layer in dict.fromkeys(r["layer"] for r in rows):
            mine = sorted((r for r in rows if r["layer"] == layer), key=lambda r: r["n"])
            ns, values = [r["n"] for r in mine], [r[column] for r in mine]
            (line,) = ax.loglog(ns, values, "o-", label=layer, base=2)
            paper, k = PAPER.get(layer, {}).get(column, (None, None))
            if k is not None:  # the paper's slope, through the last point
                ax.loglog(ns, [values[-1] * (n / ns[-1]) ** k for n in ns], "--",
                          color=line.get_color(), alpha=0.5, base=2, label=f"{paper} slope")
        ax.set_title(titles[column])
        ax.set_xlabel("sequence length n")
        ax.legend(fontsize=7)
    fig.suptitle(f"Table 1 measured: one layer, d = {d}, forward pass")
    return common.save_figure(fig, path)


def _traced_forward(layer, n, d, seed=0):
    """(trace, output) of one forward pass of ``layer`` over n tokens, token 0 watched."""
    backend.manual_seed(seed)
    run_layer = build_layer(layer, d)
    x = randn(1, n, d)
    with no_grad(), trace() as t:
        t.watch_position(x, axis=1, position=0)
        output = run_layer(x)
    return t, output


def readme_snippet(n=3, d=8):
    """The README section "A traced LSTM and attention layer side by side" (markdown),
    generated from traces of the two layers over ``n`` tokens of dimension ``d``."""
    traces = {layer: _traced_forward(layer, n, d) for layer in ("lstm", "attention")}
    per_token = (measure("lstm", n + 1, d)["sequential_ops"] - measure("lstm", n, d)["sequential_ops"])
    numbers = []
    for layer, (t, out) in traces.items():
        s = t.summary()
        numbers.append(f"| {layer}, n = {n} | {s['ops']} | {s['sequential_ops']} | {s['sequential_matmuls']} "
                       f"| {t.path_length(out, axis=1)['ops']} | {s['work_flops']:,} | "
                       f"{s['span_steps']} | {s['parallelism']:.0f} |")
    big = {layer: measure(layer, 64, d) for layer in ("lstm", "attention")}
    for layer, r in big.items():
        numbers.append(f"| {layer}, n = 64 | {r['ops']} | {r['sequential_ops']} | {r['sequential_matmuls']} | "
                       f"{r['max_path_length']} | {r['flops']:,} | {r['span_steps']} | "
                       f"{r['parallelism']:.0f} |")
    table = analysis.levels_side_by_side({f"LSTM (n = {n}, d = {d})": traces["lstm"][0].nodes,
                                          f"self-attention (n = {n}, d = {d})":
                                              traces["attention"][0].nodes})
    lstm_steps = len(traces["lstm"][0].levels())
    chain = ", ".join(_describe_chain_op(node) for node in _token_chain(traces["lstm"][0]))
    attention_steps = len(traces["attention"][0].levels())
    return f"""## A traced LSTM and attention layer side by side

The tracer records every op that runs inside `with trace() as t:` -- its shapes, FLOPs,
bytes, wall time and the ops it waits for -- so the difference between the two layers can
be read off the computation itself:

```python
import minitransformer as mt
from minitransformer import nn
from minitransformer.trace import trace

lstm = nn.LSTM({d}, {d}, batch_first=True)
x = mt.randn(1, {n}, {d})                      # (batch, n tokens, d)
with mt.no_grad(), trace() as t:
    t.watch_position(x, axis=1)            # follow token 0 through every op
    out, _ = lstm(x)
print(t.listing())                         # one line per op: step, shapes, FLOPs, µs, waits for
print(t.report())                          # per-op-kind table, work W, span S, critical path
print(t.path_length(out, axis=1))          # ops from token 0 to the last output token
```

Below, the forward pass of one LSTM layer and of one self-attention layer over the same
{n} tokens, op by op. Row *k* holds the ops that could run at step *k* if we had as many
processors as we liked (each op waits only for the ops whose outputs it reads); the ops on
the **critical path**, the longest chain of ops each waiting for the one before, are in bold.

{table}

How to read it:

* **LSTM.** Step 2 is the input projection of *all* tokens in one matmul
  (`{n}x1x{4 * d}`: every token's four gates) -- the only part of a recurrent layer that does not
  wait for the hidden state. Then each token costs the same chain of {per_token} ops: {chain}
  -- and the next token's `matmul` reads that hidden state, so it must wait. {n} tokens: {lstm_steps} steps; every
  extra token adds {per_token}.
* **Self-attention.** One matmul projects queries, keys and values of every token at once;
  one matmul scores every query against every key (`1x1x{n}x{n}`); a softmax; one matmul
  takes the weighted sum of the values; one matmul projects the output. {attention_steps} steps,
  whatever n is: a longer sequence makes each matmul bigger, not the chain longer.

| layer | ops | sequential ops | matmuls on it | max path length | work W (FLOPs) | span S (steps) | parallelism W/S |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(numbers)}

*Sequential ops* is the critical path's length in ops; *max path length* the longest chain
from input token 0 to the last output token; the *span* counts each op's own parallel depth
(a matmul over k terms takes 1 + ⌈log₂ k⌉ steps), so W/S is how many processors the layer can
keep busy. Going from {n} to 64 tokens multiplies the LSTM's chain and leaves attention's
unchanged, while attention's parallelism grows. `python -m minitransformer table1` measures
this for n = 8 ... 512 and fits the exponents (Table 1 of the paper, measured); this section
is generated by `python -m minitransformer table1 --readme-snippet FILE`.
"""


# What each op on one token's stretch of the LSTM's critical path does.
_CHAIN_OPS = {
    "matmul": "h W_hhᵀ",
    "add": "the projected input added",
    "lstmcellupdate": "(the projected input added, the gates and the cell update: one "
                      "fused op, yet {steps} parallel steps, those of its equations; see "
                      "`nn/recurrent.py`)",
    "getitem": "the new hidden state",
}


def _token_chain(t):
    """The ops one token adds to an LSTM's critical path: from one recurrent matmul on
    the path to the op before the next."""
    path = t.critical_path().nodes
    matmuls = [i for i, node in enumerate(path) if node.is_matmul]
    return path[matmuls[-2]:matmuls[-1]]


def _describe_chain_op(node):
    what = _CHAIN_OPS.get(node.name)
    return f"`{node.name}` {what.format(steps=node.steps)}" if what else f"`{node.name}`"


def trace_training_step(layer, n=64, d=64, heads=1, device="cpu", directory=None):
    """Trace one training step (forward, a loss, backward) of ``layer``; returns the Trace.

    With ``directory``, writes ``trace_<layer>_<device>.csv`` and ``.json`` there
    (every op with its synchronised time), and a timeline PNG when matplotlib is
    installed.
    """
    backend.manual_seed(0)
    run_layer = build_layer(layer, d, heads, device)
    x = randn(1, n, d, device=device)
    run_layer(x).sum().backward()          # warm-up: first calls pay for allocation
    with trace() as t:
        loss = (run_layer(x) ** 2).mean()
        loss.backward()
    if directory:
        stem = os.path.join(directory, f"trace_{layer}_{device}")
        t.to_csv(stem + ".csv")
        t.to_json(stem + ".json")
        t.plot_timeline(stem + ".png", f"{layer}: one training step, n = {n}, d = {d}, {device}")
    return t


def parse_args(argv=None, command="bench table1"):
    """Read table1's flags; ``command`` names it in --help and error lines, as the
    user typed it (``table1`` or ``bench table1``)."""
    parser = common.parser(
        "table1", "Measure Table 1 of 'Attention Is All You Need' (FLOPs per layer, "
        "sequential operations, maximum path length) for an RNN, an LSTM and a "
        "self-attention layer, and fit the exponent of n.",
        quick_help=f"n = {' '.join(map(str, QUICK_NS))}", default_out=DEFAULT_OUT_DIR)
    parser.prog = f"python -m minitransformer {command}"
    parser.add_argument("--d", type=common.positive_int, default=64, help="model dimension d (default 64)")
    parser.add_argument("--heads", type=common.positive_int, default=1, help="attention heads (default 1)")
    parser.add_argument("--ns", type=common.positive_int, nargs="+", default=list(DEFAULT_NS),
                        help="sequence lengths (default 8 16 ... 512)")
    parser.add_argument("--layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    parser.add_argument("--readme-snippet", metavar="FILE", default=None,
                        help="write the README section 'A traced LSTM and attention layer "
                             "side by side' to FILE and stop")
    parser.add_argument("--trace-step", metavar="DIR", default=None,
                        help="instead: trace one training step of an LSTM and an attention "
                             "layer (n = the largest --ns, capped at 64) and write each op with "
                             "its synchronised time to DIR/trace_<layer>_<device>.csv/.json/.png")
    return common.parse(parser, argv, quick=dict(ns=list(QUICK_NS)),
                        default_out_dir=DEFAULT_OUT_DIR, check=_check)


def _check(args):
    """What table1's options must be before it measures or writes anything."""
    if args.readme_snippet:
        common.check_writable_file(args.readme_snippet, "--readme-snippet")
    elif args.trace_step:
        common.check_writable_folder(args.trace_step, "--trace-step")
    elif len(args.ns) < 2:
        raise common.CommandError("too few sequence lengths to fit an exponent", "--ns",
                                  " ".join(map(str, args.ns)), "at least two")


def main(argv=None, command="bench table1"):
    """Entry point of ``python -m minitransformer table1`` (and ``bench table1``); returns 0."""
    args = parse_args(argv, command)
    if args.readme_snippet:
        with open(args.readme_snippet, "w") as f:
            f.write(readme_snippet())
        print(f"wrote {args.readme_snippet}")
        return 0
    if args.trace_step:
        device = args.device
        n = min(max(args.ns), 64)
        for layer in ("lstm", "attention"):
            t = trace_training_step(layer, n, args.d, args.heads, device, args.trace_step)
            print(f"== {layer}: one training step, n = {n}, d = {args.d}, on the {device} "
                  f"({backend.device_name(device)})")
            print(t.report("all"), end="\n\n")
        print(f"wrote trace_<layer>_{device}.csv/.json/.png to {args.trace_step}")
        return 0
    device = args.device
    started = time.perf_counter()
    rows = run(args.ns, args.d, args.heads, args.layers, device)
    elapsed = time.perf_counter() - started
    print(f"Table 1 of 'Attention Is All You Need', measured: one layer, d = {args.d}, "
          f"batch 1, forward pass on the {device}")
    print("(the paper: self-attention O(n²·d) FLOPs, O(1) sequential ops, O(1) path; "
          "recurrent O(n·d²), O(n), O(n))\n")
    print(format_rows(rows))
    print()
    print(format_fits(fit(rows), args.ns, args.d))
    print()
    common.finish("table1", device, args.out_dir,
                  {"table1": [{c: r[c] for c in CSV_COLUMNS} for r in rows]},
                  ["one layer, batch 1, forward pass; traced op counts (the same on every device)",
                   f"d = {args.d}, heads = {args.heads}, n = {', '.join(map(str, args.ns))}"],
                  plot=lambda path: plot(rows, path, args.d))
    print(f"measured in {elapsed:.1f} s")
    return 0

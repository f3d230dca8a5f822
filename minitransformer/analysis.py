"""What a trace says: work, span, the critical path, tables, exports and plots.

The input everywhere is a list of :class:`~minitransformer.trace.TraceNode` in the
order the ops ran (a topological order: an op runs after the ops it reads), so one
pass over the list computes any longest path.

The quantities, for the graph of one phase (or both):

* **work W** -- the total FLOPs of all ops: the time one processor needs.
* **critical path** -- the longest chain of ops each of which waits for the one
  before it. Its length in ops is the number of **sequential ops** (no number of
  processors can run them at once); the matmuls on it are the *sequential
  matmuls*. Ties are broken towards more matmuls, then more FLOPs, and the FLOPs
  on the path are reported too (``critical_path_flops``).
* **span S** -- the time with unlimited processors, in parallel steps: the
  longest chain counting each op's own parallel depth (``TraceNode.steps``: a
  matmul over k terms is 1 + ⌈log2 k⌉ steps, an elementwise op 1; each op says
  its own in ``span()``, see ``ops/dependence.py``). Counting an op as its FLOPs
  instead would call a 512x512 matmul sequential work, which it is not.
* **parallelism W/S** -- how many processors the graph can keep busy on average.
* **Brent bounds** -- with p processors doing one FLOP per step, the time T_p
  satisfies max(W/p, S) <= T_p (work law, span law), and a greedy scheduler
  achieves T_p <= (W - S)/p + S (Brent's theorem).

In the forward phase dependencies are data dependencies; a backward op depends
on the backward ops that sent it its gradient and, in phase "all", also on its
forward op (it reads what forward saved). Gradient sums where a tensor feeds
several ops, and leaf accumulation, are not ops and are not counted.
"""
import csv
import heapq
import io
import json
import math
import os

PHASES = ("forward", "backward", "all")


def select(nodes, phase="all"):
    """The nodes of ``phase`` ("forward", "backward" or "all")."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    return list(nodes) if phase == "all" else [n for n in nodes if n.phase == phase]


def _predecessors(node, phase, present):
    deps = [d for d in node.deps if d in present]
    if phase == "all" and node.forward_node in present:
        deps.append(node.forward_node)
    return deps


def _longest(nodes, phase, weight):
    """Longest path ending at each node: ``{id: (total, predecessor id)}``.

    ``weight(node)`` may be a number or a tuple (compared lexicographically).
    """
    present = {n.id for n in nodes}
    best = {}
    for node in nodes:  # recording order is topological
        w = weight(node)
        top, parent = None, None
        for d in _predecessors(node, phase, present):
            if top is None or best[d][0] > top:
                top, parent = best[d][0], d
        total = w if top is None else (tuple(a + b for a, b in zip(top, w))
                                       if isinstance(w, tuple) else top + w)
        best[node.id] = (total, parent)
    return best


class CriticalPath:
    """The longest chain of dependent ops: ``nodes`` (first to last), ``ops``,
    ``matmuls`` and ``flops`` along it."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.ops = len(nodes)
        self.matmuls = sum(n.is_matmul for n in nodes)
        self.flops = sum(n.flops for n in nodes)

    def __repr__(self):
        return f"<CriticalPath {self.ops} ops, {self.matmuls} matmuls, {self.flops} FLOPs>"


def critical_path(nodes, phase="forward"):
    """The longest chain in ops (ties: more matmuls, then more FLOPs)."""
    nodes = select(nodes, phase)
    if not nodes:
        return CriticalPath([])
    best = _longest(nodes, phase, lambda n: (1, int(n.is_matmul), n.flops))
    end = max(best, key=lambda i: best[i][0])
    by_id = {n.id: n for n in nodes}
    chain = []
    while end is not None:
        chain.append(by_id[end])
        end = best[end][1]
    return CriticalPath(chain[::-1])


def span_steps(nodes, phase="forward"):
    """S: the longest chain counting each op's parallel depth ``steps``."""
    nodes = select(nodes, phase)
    if not nodes:
        return 0
    return max(total for total, _ in _longest(nodes, phase, lambda n: n.steps).values())


def levels(nodes, phase="forward"):
    """The ops grouped by step in the schedule with unlimited processors.

    An op's level is the length in ops of the longest chain ending at it: level 1
    holds the ops that read only inputs and parameters, level 2 those that wait
    for level 1, and so on. The ops of one level could all run at once; an RNN
    over n tokens has a few levels per token, attention a handful in all.
    """
    nodes = select(nodes, phase)
    best = _longest(nodes, phase, lambda n: 1)
    groups = {}
    for n in nodes:
        groups.setdefault(best[n.id][0], []).append(n)
    return [groups[k] for k in sorted(groups)]


def brent_bounds(work, span, processors):
    """(lower, upper) bound on the steps with ``processors`` processors."""
    return max(work / processors, span), (work - span) / processors + span


def summary(nodes, phase="forward", processors=(1, 8, 64, 1024)):
    """The headline numbers of one phase as a dict (see the module docstring)."""
    chosen = select(nodes, phase)
    work = sum(n.flops for n in chosen)
    path = critical_path(chosen, phase)
    span = span_steps(chosen, phase)
    return {
        "phase": phase,
        "ops": len(chosen),
        "matmuls": sum(n.is_matmul for n in chosen),
        "work_flops": work,
        "bytes": sum(n.bytes_read + n.bytes_written for n in chosen),
        "time_s": sum(n.time for n in chosen),
        "sequential_ops": path.ops,
        "sequential_matmuls": path.matmuls,
        "critical_path_flops": path.flops,
        "span_steps": span,
        "parallelism": work / span if span else 0.0,
        "brent": {p: brent_bounds(work, span, p) for p in processors},
    }


def op_table(nodes, phase="all"):
    """One row per op kind and phase: count, FLOPs, bytes, time, share of time.

    Matmuls come first (that is where the work is), then the rest by time.
    """
    chosen = select(nodes, phase)
    total_time = sum(n.time for n in chosen) or 1.0
    rows = {}
    for n in chosen:
        key = n.name if n.phase == "forward" else f"{n.name} (backward)"
        row = rows.setdefault(key, {"op": key, "name": n.name, "phase": n.phase, "count": 0,
                                    "flops": 0, "bytes": 0, "time_s": 0.0})
        row["count"] += 1
        row["flops"] += n.flops
        row["bytes"] += n.bytes_read + n.bytes_written
        row["time_s"] += n.time
    for row in rows.values():
        row["time_share"] = row["time_s"] / total_time
    return sorted(rows.values(), key=lambda r: (r["name"] != "matmul",
                                                r["name"] == "matmul" and r["phase"] != "forward",
                                                -r["time_s"]))


def format_table(rows, columns):
    """Rows of dicts as an aligned text table; ``columns`` = [(key, heading, format)]."""
    cells = [[heading for _, heading, _ in columns]]
    for row in rows:
        cells.append([fmt.format(row[key]) for key, _, fmt in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_OP_COLUMNS = [("op", "op", "{}"), ("count", "count", "{:d}"), ("flops", "FLOPs", "{:,d}"),
               ("bytes", "bytes", "{:,d}"), ("time_s", "time ms", "{:.3f}"),
               ("time_share", "time %", "{:.1%}")]


def report(nodes, phase="forward"):
    """The op-kind table of ``phase`` and its summary, as printable text."""
    rows = op_table(nodes, phase)
    shown = [dict(r, time_s=r["time_s"] * 1e3) for r in rows]
    s = summary(nodes, phase)
    lines = [format_table(shown, _OP_COLUMNS), "",
             f"{phase}: {s['ops']} ops ({s['matmuls']} matmuls), work W = {s['work_flops']:,} FLOPs, "
             f"time {s['time_s'] * 1e3:.3f} ms",
             f"critical path: {s['sequential_ops']} sequential ops, {s['sequential_matmuls']} of them "
             f"matmuls, {s['critical_path_flops']:,} FLOPs",
             f"span S = {s['span_steps']} parallel steps; parallelism W/S = {s['parallelism']:,.1f}"]
    bounds = ", ".join(f"p={p}: {lo:,.0f}..{hi:,.0f}" for p, (lo, hi) in s["brent"].items())
    lines.append(f"steps with p processors, max(W/p, S) .. (W-S)/p + S: {bounds}")
    return "\n".join(lines)


def _shape(shape):
    return "x".join(map(str, shape)) if shape else "()"


def listing(nodes, phase="all", limit=None):
    """One line per op: index, level (step in the unlimited-processor schedule),
    name, input -> output shapes, FLOPs, time and the ops it waits for."""
    chosen = select(nodes, phase)
    level = {}
    for step, group in enumerate(levels(chosen, phase), start=1):
        for n in group:
            level[n.id] = step
    index = {n.id: n.index for n in nodes}
    lines = [f"{'#':>4} {'step':>4}  {'op':<22} {'shapes':<34} {'FLOPs':>11} {'µs':>8}  waits for"]
    shown = chosen if limit is None else chosen[:limit]
    for n in shown:
        name = n.name if n.phase == "forward" else f"{n.name}.backward"
        shapes = f"{', '.join(map(_shape, n.input_shapes))} -> {', '.join(map(_shape, n.output_shapes))}"
        waits = [f"#{index[d]}" for d in n.deps if d in index]
        if n.forward_node in index:
            waits.append(f"fwd #{index[n.forward_node]}")
        lines.append(f"{n.index:>4} {level[n.id]:>4}  {name:<22} {shapes:<34} {n.flops:>11,} "
                     f"{n.time * 1e6:>8.1f}  {' '.join(waits)}")
    if limit is not None and len(chosen) > limit:
        lines.append(f"     ... {len(chosen) - limit} more ops")
    return "\n".join(lines)


# ---------------------------------------------------------------- export
_CSV_FIELDS = ("index", "id", "name", "phase", "input_shapes", "output_shapes", "dtype", "device",
               "flops", "bytes_read", "bytes_written", "start", "time", "steps", "deps",
               "forward_node")


def nodes_to_csv(nodes, path):
    """One row per op; shapes as ``2x3;3x4``, deps as space-separated node ids."""
    _make_parent(path)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_CSV_FIELDS)
        for n in nodes:
            row = n.as_dict()
            row["input_shapes"] = ";".join(map(_shape, n.input_shapes))
            row["output_shapes"] = ";".join(map(_shape, n.output_shapes))
            row["deps"] = " ".join(map(str, n.deps))
            writer.writerow([row[k] if row[k] is not None else "" for k in _CSV_FIELDS])
    return path


def trace_to_json(nodes, path):
    """The nodes and the summaries of both phases as JSON."""
    _make_parent(path)
    data = {"summary": {p: summary(nodes, p) for p in PHASES if select(nodes, p)},
            "nodes": [n.as_dict() for n in nodes]}
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=_jsonable)
    return path


# ---------------------------------------------------------------- Chrome / Perfetto
def earliest_starts(nodes):
    """``{id: (start, finish)}`` in parallel steps with unlimited processors: each op
    starts as soon as every op it waits for has finished (forward and backward
    together: a backward op also waits for its forward op) and lasts its ``steps``."""
    present = {n.id for n in nodes}
    times = {}
    for node in nodes:  # recording order is topological
        start = max((times[d][1] for d in _predecessors(node, "all", present)), default=0)
        times[node.id] = (start, start + node.steps)
    return times


def _lanes(intervals):
    """``{key: lane}`` for ``(start, end, key)`` intervals: intervals that overlap get
    different lanes, and as few lanes as the most intervals overlapping at one time."""
    lane_of, free, busy, opened = {}, [], [], 0   # free: lane numbers; busy: (end, lane)
    for start, end, key in sorted(intervals):
        while busy and busy[0][0] <= start:           # lanes whose interval has ended
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, opened = opened, opened + 1
        lane_of[key] = lane
        heapq.heappush(busy, (end, lane))
    return lane_of


def _event(name, category, ts, dur, pid, tid, args):
    return {"name": name, "cat": category, "ph": "X", "ts": ts, "dur": dur, "pid": pid,
            "tid": tid, "args": args}


def _metadata(kind, pid, name, tid=None):
    event = {"name": kind, "ph": "M", "pid": pid, "args": {"name": name}}
    if tid is not None:
        event["tid"] = tid
    return event


def _op_args(node):
    return {"index": node.index, "phase": node.phase,
            "shapes": f"{', '.join(map(_shape, node.input_shapes))} -> "
                      f"{', '.join(map(_shape, node.output_shapes))}",
            "flops": node.flops, "steps": node.steps}


MEASURED_PID, IDEAL_PID = 1, 2


def chrome_trace_events(nodes):
    """The Trace Event Format events of the two views (see :func:`export_chrome_trace`)."""
    events = [_metadata("process_name", MEASURED_PID, "measured: the ops as they ran (µs)"),
              _metadata("thread_name", MEASURED_PID, "engine (one Python thread)", tid=1),
              _metadata("process_name", IDEAL_PID,
                        "ideal schedule, unlimited processors (1 µs = 1 parallel step)")]
    # Measured: clock readings on a 1 ns grid, so that an op never starts before the
    # one before it ended (ops run one after another) and nesting is exact.
    phase_runs, last_end = [], 0
    for node in nodes:
        begin = max(round(node.start * 1e9), last_end)
        end = max(begin, round((node.start + node.time) * 1e9))
        last_end = end
        name = node.name if node.phase == "forward" else f"{node.name} (backward)"
        events.append(_event(name, node.phase, begin / 1e3, (end - begin) / 1e3,
                             MEASURED_PID, 1, _op_args(node)))
        if phase_runs and phase_runs[-1][0] == node.phase:
            phase_runs[-1][2] = end
        else:
            phase_runs.append([node.phase, begin, end])
    # Each run of consecutive forward (or backward) ops, as one enclosing event.
    for phase, begin, end in phase_runs:
        events.append(_event(phase, "phase", begin / 1e3, (end - begin) / 1e3,
                             MEASURED_PID, 1, {}))
    # Ideal: every op at its earliest step, on a lane of its own while it overlaps others.
    times = earliest_starts(nodes)
    lanes = _lanes([(start, finish, node_id) for node_id, (start, finish) in times.items()])
    for node in nodes:
        start, finish = times[node.id]
        name = node.name if node.phase == "forward" else f"{node.name} (backward)"
        events.append(_event(name, node.phase, start, finish - start, IDEAL_PID,
                             lanes[node.id] + 1, _op_args(node)))
    for lane in sorted(set(lanes.values())):
        events.append(_metadata("thread_name", IDEAL_PID, f"lane {lane + 1}", tid=lane + 1))
    events += _busy_processors(nodes, times)
    return events


def _busy_processors(nodes, times):
    """Counter events ("ph": "C") of the ideal schedule: how many processors are busy
    at each step, each op keeping FLOPs / steps of them busy while it runs. The lanes
    show how many *ops* run at once; this shows how much *work*: an attention layer's
    few ops are each thousands of processors wide."""
    changes = {}
    for node in nodes:
        start, finish = times[node.id]
        width = node.flops / node.steps if node.steps else 0.0
        changes[start] = changes.get(start, 0.0) + width
        changes[finish] = changes.get(finish, 0.0) - width
    events, busy = [], 0.0
    for step in sorted(changes):
        busy += changes[step]
        events.append({"name": "processors busy (FLOPs per step)", "ph": "C", "ts": step,
                       "pid": IDEAL_PID, "args": {"processors": max(0, round(busy))}})
    return events


def export_chrome_trace(nodes, path):
    """Write the trace as Trace Event Format JSON, the format chrome://tracing and
    Perfetto (ui.perfetto.dev, "Open trace file") read; the name is torch.profiler's.

    Two views, one process each:

    * **measured** (pid 1): the ops as they ran, one complete event ("ph": "X") per
      op with its start and duration in µs since the trace began; every run of
      consecutive forward (or backward) ops is nested in one "forward" ("backward")
      event. Gaps between ops are Python, engine and tracer time.
    * **ideal schedule** (pid 2): the same ops with unlimited processors. Each op
      starts at its earliest step -- when the last op it waits for has finished --
      and lasts its parallel steps (1 µs on the time axis = 1 step). Ops that run
      at the same time get lanes (tid) of their own, as few as possible, so the
      height of the picture is how many ops can run at once: an LSTM is a long thin
      chain, an attention layer a short wide block.

    Each event's ``args`` hold the op's index, shapes, FLOPs and steps.
    """
    _make_parent(path)
    data = {"traceEvents": chrome_trace_events(nodes), "displayTimeUnit": "ms",
            "otherData": {"producer": "minitransformer",
                          "views": "pid 1: measured (µs); pid 2: ideal schedule "
                                   "(1 µs = 1 parallel step)"}}
    with open(path, "w") as f:
        json.dump(data, f)
    return path


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _make_parent(path):
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)


# ---------------------------------------------------------------- fitting
def fit_exponent(ns, values):
    """The exponent a of ``value ≈ c · n^a``: least squares on log n, log value."""
    points = [(math.log(n), math.log(v)) for n, v in zip(ns, values) if v > 0]
    if len(points) < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx


def local_exponent(ns, values):
    """The slope on log-log between the two largest n: the exponent there."""
    (n1, v1), (n2, v2) = sorted(zip(ns, values))[-2:]
    return math.log(v2 / v1) / math.log(n2 / n1)


# ---------------------------------------------------------------- plots (optional)
def pyplot():
    """matplotlib.pyplot with a file-only backend, or None when not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_png(fig, path, dpi=120):
    """Write matplotlib figure ``fig`` to ``path`` as a PNG of at most 256 colours, and
    close it. A plot has few colours, so the palette loses nothing visible and the file
    is about a third of the full-colour one (the PNGs of bench/results/ are committed)."""
    from PIL import Image            # installed with matplotlib, which made ``fig``
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    _make_parent(path)
    image = Image.open(buffer).convert("RGB").quantize(colors=256)
    image.save(path, format="PNG", optimize=True)
    return path


def plot_timeline(nodes, path, title=None):
    """A timeline of the ops (one lane per op kind, matmuls at the top) as a PNG.

    Returns False, writing nothing, when matplotlib is not installed.
    """
    plt = pyplot()
    if plt is None:
        return False
    kinds = [r["op"] for r in op_table(nodes, "all")]
    lane = {k: i for i, k in enumerate(kinds)}
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(kinds) + 1.5))
    for n in nodes:
        key = n.name if n.phase == "forward" else f"{n.name} (backward)"
        color = "tab:blue" if n.phase == "forward" else "tab:orange"
        ax.barh(lane[key], n.time * 1e3, left=n.start * 1e3, height=0.8, color=color)
    ax.set_yticks(range(len(kinds)), kinds)
    ax.invert_yaxis()
    ax.set_xlabel("time since trace start (ms); blue forward, orange backward; "
                  "gaps are Python, engine and tracer time between ops")
    ax.set_title(title or "ops over time")
    fig.tight_layout()
    save_png(fig, path)
    return True


def levels_side_by_side(traces, phase="forward"):
    """A markdown table: one row per step of the unlimited-processor schedule, one
    column per trace (``traces``: {title: nodes}), listing the ops that can run at
    that step as ``name output-shape``; ops on the critical path in bold.
    """
    columns = {}
    for title, nodes in traces.items():
        on_path = {n.id for n in critical_path(nodes, phase).nodes}
        columns[title] = [", ".join((f"**{n.name} {_shape(n.output_shapes[0])}**" if n.id in on_path
                                     else f"{n.name} {_shape(n.output_shapes[0])}") for n in group)
                          for group in levels(nodes, phase)]
    rows = max(len(c) for c in columns.values())
    lines = ["| step | " + " | ".join(columns) + " |", "|---:|" + "---|" * len(columns)]
    for i in range(rows):
        cells = [c[i] if i < len(c) else "" for c in columns.values()]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

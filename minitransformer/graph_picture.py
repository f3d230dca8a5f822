"""Pictures of a traced graph: SVG written by hand (nothing to install) and Graphviz DOT.

The picture is the ideal schedule of the graph: an op's *level* is 1 + the largest
level of the ops it waits for (see :func:`analysis.levels`), and each level is one
row, top to bottom. Everything on one row could run at the same time with enough
processors, so the height of the picture is the number of sequential ops. The
critical path -- the longest chain of ops each waiting for the one before -- holds
exactly one op per row; it is drawn first in its row, bold and red, so it reads as
one straight line down the left edge.

::

    with trace() as t:
        out, _ = lstm(x)
    t.to_svg("lstm.svg")                 # the forward pass; phase="backward" or "all"
    print(t.to_dot())                    # for `dot -Tpng` where Graphviz is installed

The SVG is deterministic: no times, no process-wide node ids, ops in a fixed order,
so a committed picture can be regenerated and compared byte for byte.
"""
import sys
from xml.sax.saxutils import escape

from . import analysis

# Box sizes in pixels. Large graphs get small boxes without text (the label is
# still there, as a tooltip), so hundreds of ops stay on a readable page.
FULL = {"width": 118, "height": 30, "gap": 10, "pitch": 46, "text": True}
SMALL = {"width": 18, "height": 12, "gap": 4, "pitch": 26, "text": False}
SMALL_ABOVE_OPS = 300         # more ops than this: small boxes
MARGIN = 12
STEP_COLUMN = 30              # the step numbers on the left

STYLE = """
.op rect { fill: #eef2f8; stroke: #8593a8; stroke-width: 1; }
.op.matmul rect { fill: #dbe8d4; }
.op.critical rect { stroke: #c0392b; stroke-width: 2.5; }
.op text { font-size: 9.5px; fill: #1d2533; }
.op text.name { font-weight: bold; }
.dep { fill: none; stroke: #9aa6b8; stroke-width: 0.8; stroke-opacity: 0.7; }
.dep.critical { stroke: #c0392b; stroke-width: 2.5; stroke-opacity: 1; }
.step { font-size: 9px; fill: #8593a8; text-anchor: end; }
.title { font-size: 13px; font-weight: bold; fill: #1d2533; }
.caption { font-size: 12px; fill: #1d2533; }
.legend { font-size: 10px; fill: #55607a; }
"""


# ---------------------------------------------------------------- the labels
def compact_number(value):
    """1234 -> "1.2k", 3400000 -> "3.4M": a FLOP count that fits in a small box."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return str(value)


def shape_text(node):
    """The output shape(s) as ``3x1x32`` (a backward op has one per input gradient)."""
    shapes = node.output_shapes or [()]
    return ",".join("x".join(map(str, shape)) or "scalar" for shape in shapes)


def op_name(node):
    return node.name if node.phase == "forward" else f"{node.name}.backward"


def label_lines(node):
    """The two lines in a box: the op's name; its output shape and FLOPs."""
    return op_name(node), f"{shape_text(node)} · {compact_number(node.flops)} FLOPs"


# ---------------------------------------------------------------- the layout
class GraphLayout:
    """Where every op of one phase goes.

    ``rows``: the levels, each a list of ops in drawing order; ``position``: node id
    -> (column, row); ``edges``: (from id, to id) for every dependence; ``critical``:
    the ids on the critical path; ``size``: the box sizes (FULL or SMALL).
    """

    def __init__(self, nodes, phase="forward"):
        chosen = analysis.select(nodes, phase)
        present = {n.id for n in chosen}
        self.phase = phase
        self.nodes = chosen
        path = analysis.critical_path(chosen, phase).nodes
        self.critical = {n.id for n in path}
        # Consecutive ops of the critical path: the dependences drawn bold.
        self.critical_edges = {(a.id, b.id) for a, b in zip(path, path[1:])}
        self.edges = [(dep, n.id) for n in chosen
                      for dep in analysis._predecessors(n, phase, present)]
        self.rows = self._order_rows(analysis.levels(chosen, phase))
        self.position = {n.id: (column, row) for row, ops in enumerate(self.rows)
                         for column, n in enumerate(ops)}
        self.size = SMALL if len(chosen) > SMALL_ABOVE_OPS else FULL

    def _order_rows(self, levels):
        """Each row: the critical op first, then the others by the mean column of the
        ops they wait for (so edges cross less), ties broken by recording order."""
        column = {}
        waits_for = {}
        for source, target in self.edges:
            waits_for.setdefault(target, []).append(source)
        rows = []
        for ops in levels:
            def key(n):
                above = [column[d] for d in waits_for.get(n.id, []) if d in column]
                mean = sum(above) / len(above) if above else 0.0
                return (n.id not in self.critical, mean, n.index)
            row = sorted(ops, key=key)
            column.update((n.id, i) for i, n in enumerate(row))
            rows.append(row)
        return rows

    @property
    def sequential_ops(self):
        return len(self.critical)

    def box(self, node_id):
        """(x, y) of the top left corner of an op's box, inside the panel."""
        column, row = self.position[node_id]
        size = self.size
        return (STEP_COLUMN + column * (size["width"] + size["gap"]), row * size["pitch"])

    @property
    def width(self):
        widest = max((len(row) for row in self.rows), default=0)
        return STEP_COLUMN + widest * (self.size["width"] + self.size["gap"])

    @property
    def height(self):
        return len(self.rows) * self.size["pitch"]


# ---------------------------------------------------------------- drawing SVG
def _number(value):
    """Coordinates with at most one decimal, always written the same way."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _edge(layout, source, target, dx, dy):
    size = layout.size
    x1, y1 = layout.box(source)
    x2, y2 = layout.box(target)
    x1, y1 = x1 + size["width"] / 2 + dx, y1 + size["height"] + dy
    x2, y2 = x2 + size["width"] / 2 + dx, y2 + dy
    bend = (y2 - y1) / 2                   # a smooth S from the bottom of one box to the top of the next
    critical = " critical" if (source, target) in layout.critical_edges else ""
    start = f"{_number(x1)} {_number(y1)}"
    controls = f"{_number(x1)} {_number(y1 + bend)} {_number(x2)} {_number(y2 - bend)}"
    end = f"{_number(x2)} {_number(y2)}"
    return f'<path class="dep{critical}" d="M{start} C{controls} {end}"/>'


def _op_box(layout, node, dx, dy):
    size = layout.size
    x, y = layout.box(node.id)
    x, y = x + dx, y + dy
    classes = "op" + (" matmul" if node.is_matmul else "") + \
        (" critical" if node.id in layout.critical else "")
    name, detail = label_lines(node)
    parts = [f'<g class="{classes}" id="op{node.index}">',
             f"<title>{escape(f'#{node.index} {name}: {detail}')}</title>",
             f'<rect x="{_number(x)}" y="{_number(y)}" width="{size["width"]}" '
             f'height="{size["height"]}" rx="3"/>']
    if size["text"]:
        fits = size["width"] // 5          # about 5 px a character at this font size
        for line, (css, baseline) in zip((name, detail), (("name", 12), ("detail", 24))):
            if len(line) > fits:
                line = line[:fits - 1] + "…"
            parts.append(f'<text class="{css}" x="{_number(x + 5)}" '
                         f'y="{_number(y + baseline)}">{escape(line)}</text>')
    parts.append("</g>")
    return "".join(parts)


def panel_svg(layout, dx, dy):
    """The SVG elements of one graph, its top left corner at (dx, dy): step numbers,
    then edges (under the boxes), then boxes."""
    size = layout.size
    out = []
    for row in range(len(layout.rows)):
        y = dy + row * size["pitch"] + size["height"] / 2 + 3
        out.append(f'<text class="step" x="{_number(dx + STEP_COLUMN - 6)}" '
                   f'y="{_number(y)}">{row + 1}</text>')
    # Bold edges last among the edges, so no grey line is drawn over the red one.
    edges = sorted(layout.edges, key=lambda e: e in layout.critical_edges)
    out += [_edge(layout, source, target, dx, dy) for source, target in edges]
    out += [_op_box(layout, n, dx, dy) for row in layout.rows for n in row]
    return out


def _document(width, height, body):
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_number(width)}" '
        f'height="{_number(height)}" viewBox="0 0 {_number(width)} {_number(height)}" '
        'font-family="Helvetica, Arial, sans-serif">',
        f"<style>{STYLE}</style>",
        f'<rect width="{_number(width)}" height="{_number(height)}" fill="white"/>',
        *body, "</svg>", ""])


LEGEND = ("row k: the ops that can run at step k with unlimited processors; "
          "bold red: the critical path (one op per step)")


def trace_to_svg(nodes, phase="forward", path=None, title=None):
    """The SVG text of the graph of ``phase``; also written to ``path`` when given."""
    layout = GraphLayout(nodes, phase)
    title = title or f"{phase}: {len(layout.nodes)} ops, {layout.sequential_ops} sequential ops"
    top = MARGIN + 18
    body = [f'<text class="title" x="{MARGIN}" y="{MARGIN + 10}">{escape(title)}</text>']
    body += panel_svg(layout, MARGIN, top)
    body.append(f'<text class="legend" x="{MARGIN}" y="{_number(top + layout.height + 6)}">'
                f"{escape(LEGEND)}</text>")
    text = _document(max(layout.width, 560) + 2 * MARGIN, top + layout.height + 14, body)
    _write(text, path)
    return text


def _write(text, path):
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)


# ---------------------------------------------------------------- Graphviz DOT
def _dot_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def trace_to_dot(nodes, phase="forward"):
    """Graphviz DOT text of the same picture: one node per op, ranks by level."""
    layout = GraphLayout(nodes, phase)
    lines = ["digraph trace {", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor="#eef2f8", '
             'fontname="Helvetica", fontsize=9];']
    for row in layout.rows:
        for n in row:
            name, detail = label_lines(n)
            extra = ', color="#c0392b", penwidth=2.5' if n.id in layout.critical else ""
            lines.append(f"  op{n.index} [label={_dot_string(name + chr(10) + detail)}{extra}];"
                         .replace(chr(10), "\\n"))
        lines.append("  { rank=same; " + " ".join(f"op{n.index};" for n in row) + " }")
    index = {n.id: n.index for n in layout.nodes}
    for source, target in layout.edges:
        extra = ' [color="#c0392b", penwidth=2.5]' if (source, target) in layout.critical_edges \
            else ""
        lines.append(f"  op{index[source]} -> op{index[target]}{extra};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the front page's picture
def trace_lstm_and_attention(n=8, d=8, heads=2, seed=0):
    """(LSTM trace, attention trace): the forward pass of one real LSTM layer and of
    one real multi-head self-attention layer over the same n tokens."""
    # This demo runs the layers, which come later in the reading order than the
    # drawing code above (that needs the analysis only), so it imports them here.
    from .backend import manual_seed
    from ._tensor import no_grad, randn
    from .nn.attention import MultiheadAttention
    from .nn.recurrent import LSTM
    from .trace import trace
    manual_seed(seed)
    lstm = LSTM(d, d, batch_first=True)
    attention = MultiheadAttention(d, heads, batch_first=True)
    x = randn(1, n, d)                                    # (batch, n tokens, d)
    with no_grad(), trace() as lstm_trace:
        lstm(x)
    with no_grad(), trace() as attention_trace:
        attention(x, x, x, need_weights=False)
    return lstm_trace, attention_trace


def lstm_beside_attention_svg(n=8, d=8, heads=2, seed=0, path=None):
    """One SVG: the traced LSTM layer (left) and self-attention layer (right) over the
    same n tokens, rows at the same scale, each with its count of sequential ops
    under it. Written to ``path`` when given."""
    traces = trace_lstm_and_attention(n, d, heads, seed)
    layouts = [GraphLayout(t.nodes, "forward") for t in traces]
    captions = [f"LSTM: {layouts[0].sequential_ops} sequential ops for {n} tokens",
                f"attention: {layouts[1].sequential_ops} sequential ops"]
    titles = [f"LSTM layer, n = {n}, d = {d}",
              f"multi-head self-attention, n = {n}, d = {d}, {heads} heads"]
    top = MARGIN + 40
    body = [f'<text class="legend" x="{MARGIN}" y="{MARGIN + 10}">{escape(LEGEND)}</text>']
    x = MARGIN
    for layout, title, caption in zip(layouts, titles, captions):
        width = max(layout.width, 300)
        body.append(f'<text class="title" x="{x}" y="{top - 10}">{escape(title)}</text>')
        body += panel_svg(layout, x, top)
        body.append(f'<text class="caption" x="{x + STEP_COLUMN}" '
                    f'y="{_number(top + layout.height + 6)}">{escape(caption)}</text>')
        x += width + 3 * MARGIN
    height = top + max(layout.height for layout in layouts) + 20
    text = _document(x - 2 * MARGIN, height, body)
    _write(text, path)
    return text


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m minitransformer.graph_picture OUT.svg")
    lstm_beside_attention_svg(path=sys.argv[1])
    print(f"wrote {sys.argv[1]}")

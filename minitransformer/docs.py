"""The results pages, generated from the measurements under ``bench/results/``.

``python -m minitransformer.docs`` (also ``python -m minitransformer docs``) writes

* ``docs/results.md``: one section per benchmark, each naming its file(s), the command
  that wrote them and the machine they were measured on, with tables computed from
  the files and the plots that exist beside them;
* in ``README.md``, the block between ``<!-- results:begin -->`` and
  ``<!-- results:end -->``: the results at a glance (skipped where the markers are absent);
* ``docs/images/lstm_vs_attention.svg``: the front page picture, drawn from a trace.

``--check`` writes everything into a temporary folder instead and fails (exit status 1)
naming the first file and line that differ from the committed text, so CI notices when
a CSV was re-measured but the docs were not regenerated. ``--root DIR`` points at another
copy of the repository (the tests use it).

Why generated: a figure typed by hand goes stale the day its benchmark is re-run. Here
every number in a table is read from a committed file, columns by name, and the prose
around the tables is fixed text that holds no figures of its own.
"""
import argparse
import ast
import csv
import math
import os
import re
import statistics
import sys
import tempfile

RESULTS = os.path.join("bench", "results")
RESULTS_PAGE = os.path.join("docs", "results.md")
PICTURE = os.path.join("docs", "images", "lstm_vs_attention.svg")
README = "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
DEFAULT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Targets the benchmarks are held against where the file itself does not carry one.
MIRROR_TARGET = 0.99                        # token accuracy on the mirror task
TRANSLATION_TARGETS = {"transformer": 36.5, "lstm": 28.0}   # Multi30k de->en test2016,
# lower-cased, greedy: the published figure for the base Transformer and the bar set
# for the LSTM translator.


# ================================================================ reading the files
class ResultFile:
    """One CSV file of a benchmark: its ``#`` header lines and its rows (dicts by column)."""

    def __init__(self, root, relative):
        self.relative = relative.replace(os.sep, "/")
        with open(os.path.join(root, relative), encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.header = [line[1:].strip() for line in lines if line.startswith("#")]
        self.rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))

    def where(self, **match):
        """The rows whose columns equal ``match`` (compared as text)."""
        return [row for row in self.rows
                if all(row.get(key) == str(value) for key, value in match.items())]

    def values(self, column):
        """The distinct values of ``column``, in the order they first appear."""
        return list(dict.fromkeys(row[column] for row in self.rows))


class LogFile:
    """A training log as ``train`` prints it, with ``#`` lines saying how it was run."""

    EPOCH = re.compile(r"^epoch (\d+): train loss ([\d.]+), valid loss ([\d.]+), "
                       r"valid BLEU ([\d.]+) \((\d+) s\)")
    STEP = re.compile(r"^\s+step\s+(\d+)\s+loss ([\d.]+)\s+(\d+) tok/s")
    TEST = re.compile(r"^\s+BLEU\s+([\d.]+)\s+(\S*case:(\w+)\S*)")

    def __init__(self, root, relative):
        self.relative = relative.replace(os.sep, "/")
        with open(os.path.join(root, relative), encoding="utf-8") as f:
            self.lines = f.read().splitlines()
        self.header = [line[1:].strip() for line in self.lines if line.startswith("#")]

    def command(self):
        for line in self.header:
            if line.startswith("command:"):
                return data_folder_as_users_have_it(line[len("command:"):].strip())
        raise ValueError(f"{self.relative}: no '# command:' line")

    def epochs(self):
        """[(epoch, train loss, valid loss, valid BLEU, seconds)] in order."""
        found = [self.EPOCH.match(line) for line in self.lines]
        return [(int(m[1]), float(m[2]), float(m[3]), float(m[4]), int(m[5]))
                for m in found if m]

    def steps(self):
        """[(step, loss, tokens per second)] of the progress lines."""
        found = [self.STEP.match(line) for line in self.lines]
        return [(int(m[1]), float(m[2]), int(m[3])) for m in found if m]

    def test_bleu(self):
        """{"mixed": cased BLEU, "lc": lower-cased BLEU} of the final test lines."""
        found = [self.TEST.match(line) for line in self.lines]
        scores = {m[3]: float(m[1]) for m in found if m}
        if set(scores) != {"mixed", "lc"}:
            raise ValueError(f"{self.relative}: no cased and lower-cased test BLEU lines")
        return scores


def data_folder_as_users_have_it(text):
    """A recorded command with its Multi30k folder written as the default one
    (``data/multi30k``): where the run found it is nobody else's business."""
    return re.sub(r"\S*data/multi30k", "data/multi30k", text)


def machine_of(header):
    """The machine a file was measured on, as its header states it."""
    for line in header:
        found = re.search(r"[A-Z][^;#]*?\d+ cores? \([^)]*\)", line)
        if found:
            return found[0]
    return "(not stated in the file)"


def bench_command(result, benchmark, *flags):
    """``python -m minitransformer bench BENCHMARK ...`` as it writes ``result`` where it
    is: the folder given as --out-dir unless it is the default one, and the one BLAS
    thread the header records."""
    folder = os.path.dirname(result.relative)
    words = ["python", "-m", "minitransformer", "bench", benchmark, *flags]
    if folder != f"{RESULTS}/cpu".replace(os.sep, "/"):
        words += ["--out-dir", folder]
    if any(line.startswith("OPENBLAS_NUM_THREADS=1") for line in result.header):
        words.insert(0, "OPENBLAS_NUM_THREADS=1")
    return " ".join(words)


# ================================================================ formatting
def number(value, digits=2):
    """``value`` with ``digits`` decimals and thousands separators; '' for None."""
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def percent(fraction, digits=1):
    return "" if fraction is None else f"{100 * fraction:.{digits}f}%"


def as_float(text):
    return float(text) if text not in (None, "") else None


def table(headers, rows, right=None):
    """A Markdown table; columns named in ``right`` (all but the first by default) are
    right-aligned."""
    right = set(headers[1:]) if right is None else set(right)
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if h in right else "---" for h in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def slope(xs, ys):
    """The least-squares slope of log(y) against log(x): the k of y ~ x^k."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return (sum((a - mx) * (b - my) for a, b in zip(lx, ly))
            / sum((a - mx) ** 2 for a in lx))


def source(files, command, machine):
    """The provenance line every section opens with; ``command`` None: the table shows it."""
    names = ", ".join(f"`{f}`" for f in files)
    said = "Commands: in the table's first row" if command is None else f"Command: `{command}`"
    return f"File{'s' if len(files) > 1 else ''}: {names}. {said}. Machine: {machine}."


def settings(result):
    """The file's own header, quoted: the settings the run used, in its words."""
    lines = [data_folder_as_users_have_it(line) for line in result.header]
    return "Header of `" + result.relative + "`:\n\n" + "\n".join("    " + l for l in lines)


def images(root, *relatives):
    """Image links (relative to docs/) for the plots among ``relatives`` that exist."""
    found = [r for r in relatives if os.path.exists(os.path.join(root, r))]
    return "\n\n".join(f"![{os.path.basename(r)}](../{r.replace(os.sep, '/')})" for r in found)


def cpu(*parts):
    return "/".join([RESULTS.replace(os.sep, "/"), "cpu", *parts])


# ================================================================ the sections
def section_table1(root):
    result = ResultFile(root, f"{RESULTS}/table1.csv")
    fits = []
    for layer in result.values("layer"):
        rows = result.where(layer=layer)
        ns = [float(r["n"]) for r in rows]
        fit = [slope(ns, [float(r[c]) for r in rows])
               for c in ("flops", "sequential_ops", "max_path_length")]
        last = [slope(ns[-2:], [float(r[c]) for r in rows[-2:]])
                for c in ("flops", "sequential_ops", "max_path_length")]
        fits.append([layer] + [f"{number(a)} ({number(b)})" for a, b in zip(fit, last)])
    full = [[r["layer"], r["n"], r["d"], number(float(r["flops"]), 0), r["sequential_ops"],
             r["max_path_length"]] for r in result.rows]
    return "\n\n".join([
        "## Table 1 of the paper, measured",
        source([result.relative], "python -m minitransformer table1", machine_of(result.header)),
        "One layer, one forward pass, traced: FLOPs are the ops' own counts, sequential ops "
        "the length of the critical path of the traced graph, the maximum path length the "
        "longest chain from input token 0 to the last output token. The exponent k of "
        "y ~ n^k is fitted over all n (in brackets: between the two largest n).",
        table(["layer", "FLOPs k", "sequential ops k", "max path length k"], fits),
        table(["layer", "n", "d", "FLOPs", "sequential ops", "max path length"], full),
        images(root, f"{RESULTS}/table1.png")])


def section_seq_scaling(root):
    result = ResultFile(root, cpu("seq_scaling.csv"))
    layers = result.values("layer")
    rows = []
    for n in result.values("n"):
        times = {r["layer"]: as_float(r["median_ms"]) for r in result.where(n=n)}
        ratio = (times["lstm"] / times["attention"]
                 if times.get("lstm") and times.get("attention") else None)
        rows.append([n] + [number(times.get(layer), 1) for layer in layers] + [number(ratio)])
    fits = []
    for layer in layers:
        ok = [r for r in result.where(layer=layer) if r["status"] == "ok"]
        ns = [float(r["n"]) for r in ok]
        ops = "–".join(dict.fromkeys([ok[0]["sequential_ops"], ok[-1]["sequential_ops"]]))
        fits.append([layer, number(slope(ns, [float(r["median_ms"]) for r in ok])),
                     number(slope(ns, [float(r["peak_memory_mb"]) for r in ok])), ops,
                     f"{number(float(ok[-1]['peak_memory_mb']), 1)} MiB",
                     percent(max(float(r["fraction_of_peak"]) for r in ok), 0)])
    return "\n\n".join([
        "## Training step time against sequence length",
        source([result.relative], bench_command(result, "seq_scaling"), machine_of(result.header)),
        "One layer, forward and backward, median milliseconds per step. The last column is "
        "the LSTM's step time divided by self-attention's: above 1, attention is faster.",
        table(["n"] + [f"{layer} (ms)" for layer in layers] + ["lstm ÷ attention"], rows),
        "Fitted exponents of n, sequential ops per step (tracer, forward and backward; "
        "smallest to largest n), peak memory at the largest n, and the best fraction of "
        "the matmul peak any n reached:",
        table(["layer", "time k", "peak memory k", "sequential ops", "peak memory",
               "best fraction of peak"], fits),
        images(root, cpu("seq_scaling_time.png"), cpu("seq_scaling_memory.png"))])


def overhead_rows(result):
    """One row per layer: the ratio at every n, the target, and the worst miss."""
    rows = []
    for layer in result.values("layer"):
        found = result.where(layer=layer)
        target = float(found[0]["target"])
        ratios = [float(r["ratio"]) for r in found]
        worst = max(ratios)
        verdict = ("met at every n" if worst <= target else
                   f"missed by up to {number(worst - target)} ({percent(worst / target - 1, 0)})")
        rows.append([layer] + [number(r) for r in ratios] + [f"≤ {number(target)}", verdict])
    return rows


def section_overhead(root):
    default = ResultFile(root, cpu("overhead.csv"))
    one_thread = ResultFile(root, cpu("overhead_1thread.csv"))
    parts = ["## The engine's own cost",
             "The same forward and backward pass written by hand on bare arrays (no autograd, "
             "the same weights), against the engine: ratio = engine time ÷ hand-written time."]
    for result, what in ((default, "As many BLAS threads as the machine gives"),
                         (one_thread, "One BLAS thread")):
        headers = ["layer"] + [f"n = {n}" for n in result.values("n")] + ["target", "verdict"]
        parts += [f"### {what}",
                  source([result.relative], bench_command(result, "overhead"),
                         machine_of(result.header)),
                  table(headers, overhead_rows(result), right=headers[1:-1])]
    parts.append("The engine adds a nearly fixed time to every op (building the graph, "
                 "recording the backward pass, the Python calls), so its share is largest "
                 "where the arithmetic of each op is smallest: at short n, in the LSTM, whose "
                 "time steps are small products, and with several BLAS threads, which shorten "
                 "the hand-written arithmetic but not the engine's Python work.")
    return "\n\n".join(parts)


def section_vs_pytorch(root):
    layers = ResultFile(root, cpu("vs_pytorch.csv"))
    base = ResultFile(root, cpu("vs_pytorch_multi30k.csv"))
    ns = [n for n in layers.values("n") if layers.where(layer="attention", n=n)]
    rows = []
    for layer in ("attention", "encoder", "lstm"):
        found = {r["n"]: r for r in layers.where(layer=layer)}
        target = float(next(iter(found.values()))["target"])
        worst = max(float(r["ratio"]) for r in found.values())
        verdict = "met" if worst <= target else f"missed by up to {number(worst - target)}"
        rows.append([layer] + [number(as_float(found[n]["ratio"])) if n in found else ""
                               for n in ns] + [f"≤ {number(target)}", verdict])
    translator = layers.where(layer="translator")
    translator_rows = [[f"translator training step (n = {r['n']}, batch {r['batch']})",
                        number(float(r["ratio"])), f"≤ {number(float(r['target']))}",
                        "met" if float(r["ratio"]) <= float(r["target"]) else "missed"]
                       for r in translator]
    base_rows = [[r["layer"], number(float(r["engine_tokens_per_s"]), 0),
                  number(float(r["torch_tokens_per_s"]), 0), number(float(r["ratio"])),
                  f"≤ {number(float(r['target']))}",
                  "met" if float(r["ratio"]) <= float(r["target"]) else
                  f"missed by {number(float(r['ratio']) - float(r['target']))}",
                  f"{float(r['max_output_difference']):.1e}"] for r in base.rows]
    headers = ["layer"] + [f"n = {n}" for n in ns] + ["target", "verdict"]
    return "\n\n".join([
        "## Against PyTorch",
        source([layers.relative], bench_command(layers, "vs_pytorch"), machine_of(layers.header)),
        "The same weights and inputs on both sides, runs alternated, medians: "
        "ratio = engine time ÷ PyTorch time (below 1, the engine is faster).",
        table(headers, rows, right=headers[1:-1]),
        table(["comparison", "ratio", "target", "verdict"], translator_rows),
        "### The base translator on real Multi30k batches",
        source([base.relative], bench_command(base, "vs_pytorch", "--only translator_base_multi30k"),
               machine_of(base.header)),
        table(["comparison", "engine tokens/s", "PyTorch tokens/s", "ratio", "target",
               "verdict", "largest logit difference"], base_rows)])


def section_decoding(root):
    result = ResultFile(root, cpu("decoding.csv"))
    methods = result.values("method")
    rows = [[n] + [number(as_float(next(iter(result.where(method=m, n=n)), {}).get(
        "tokens_per_s")), 0) for m in methods] for n in result.values("n")]
    fits = []
    for method in methods:
        ok = [r for r in result.where(method=method) if r["status"] == "ok"]
        fits.append([method, number(slope([float(r["n"]) for r in ok],
                                          [float(r["median_s"]) for r in ok])),
                     ok[-1]["sequential_steps"]])
    largest = result.values("n")[-1]
    time_of = {r["method"]: float(r["median_s"]) for r in result.where(n=largest)}
    cache_gain = time_of["transformer, no cache"] / time_of["transformer, kv cache"]
    return "\n\n".join([
        "## Decoding",
        source([result.relative], bench_command(result, "decoding"), machine_of(result.header)),
        "Greedy decoding of a batch, every sentence forced to n output tokens, target tokens "
        "per second. Generating token t+1 needs token t, so decoding is sequential for both "
        "models; the teacher-forcing rows are one training-style forward pass for comparison.",
        table(["n"] + methods, rows),
        "Fitted exponent of time against n, and sequential steps at the largest n:",
        table(["method", "time k", "sequential steps"], fits),
        f"At n = {largest} the key/value cache makes the Transformer's decoding "
        f"{number(cache_gain, 1)}× faster than recomputing the whole prefix every step.",
        images(root, cpu("decoding.png"))])


def section_tracer_cost(root):
    result = ResultFile(root, cpu("tracer_cost.csv"))
    rows = [[r["workload"], r["ops"], number(float(r["check_ns"]), 1),
             percent(float(r["checks_fraction"]), 2), number(float(r["plain_ms"]), 1),
             number(float(r["traced_ms"]), 1), f"{number(float(r['traced_ratio']), 1)}×"]
            for r in result.rows]
    return "\n\n".join([
        "## What the tracer costs",
        source([result.relative], bench_command(result, "tracer_cost"), machine_of(result.header)),
        "With no trace active, each op pays one test of the hook; with a trace, every op is "
        "timed and recorded.",
        table(["workload", "ops", "hook test (ns)", "hook tests' share of a step",
               "step, no trace (ms)", "step, traced (ms)", "traced ÷ plain"], rows)])


def section_memory(root):
    loop = ResultFile(root, cpu("memory_loop.csv"))
    attention = ResultFile(root, cpu("memory_attention.csv"))
    peaks = [float(r["peak_allocated_mb"]) for r in loop.rows]
    tenth = max(1, len(peaks) // 10)
    loop_rows = [[f"steps 1–{tenth}", number(statistics.median(peaks[:tenth]))],
                 [f"steps {len(peaks) - tenth + 1}–{len(peaks)}",
                  number(statistics.median(peaks[-tenth:]))],
                 ["largest of any step", number(max(peaks))]]
    variants = attention.values("variant")
    attention_rows = [[n] + [number(as_float(attention.where(variant=v, n=n)[0]["peak_memory_mb"]), 1)
                             for v in variants] for n in attention.values("n")]
    return "\n\n".join([
        "## Memory over a training loop",
        source([loop.relative], bench_command(loop, "memory"), machine_of(loop.header)),
        "Peak memory allocated during each step of a long training loop (median MiB): a graph "
        "is freed as soon as its loss is dropped, so the peak stays flat.",
        table(["steps", "peak allocated per step (MiB)"], loop_rows),
        "### Self-attention, plain and blockwise",
        source([attention.relative], bench_command(attention, "memory"),
               machine_of(attention.header)),
        table(["n"] + [f"{v} peak (MiB)" for v in variants], attention_rows),
        images(root, cpu("memory.png"))])


def section_attention_memory(root):
    result = ResultFile(root, cpu("attention_memory.csv"))
    variants = result.values("variant")
    rows = []
    for n in result.values("n"):
        cells = []
        for variant in variants:
            row = result.where(variant=variant, n=n)[0]
            cells.append(f"{number(as_float(row['peak_mib']), 1)} MiB" if row["status"] == "ok"
                         else row["status"])
        rows.append([n] + cells)
    fits = []
    for variant in variants:
        ok = [r for r in result.where(variant=variant) if r["status"] == "ok"
              and float(r["n"]) >= 1024]
        fits.append([variant, number(slope([float(r["n"]) for r in ok],
                                           [float(r["peak_mib"]) for r in ok]))])
    return "\n\n".join([
        "## Memory-efficient attention",
        source([result.relative], bench_command(result, "attention_memory"), machine_of(result.header)),
        "Peak memory of one attention call, forward and backward: the plain version holds "
        "the n × n scores, the blockwise version visits the keys in blocks with an online "
        "softmax and recomputes them in backward. A point whose expected peak exceeds the "
        "memory budget is skipped, not run.",
        table(["n"] + variants, rows),
        "Fitted exponent of peak memory against n (n ≥ 1024):",
        table(["variant", "peak memory k"], fits),
        images(root, cpu("attention_memory.png"))])


def section_matmul_peak(root):
    result = ResultFile(root, cpu("matmul_peak.csv"))
    rows = [[r["shape"], f"{r['m']} × {r['k']} × {r['n']}", number(float(r["gflops"]), 1)]
            for r in result.rows]
    return "\n\n".join([
        "## The machine's matmul peak",
        source([result.relative], bench_command(result, "matmul_peak"), machine_of(result.header)),
        "float32 matrix products of the shapes the layers use, and square ones: the best "
        "rate the BLAS reaches on this machine, against which the layers' rates are read.",
        table(["product", "m × k × n", "GFLOP/s"], rows)])


def section_data_parallel(root):
    measured = ResultFile(root, cpu("data_parallel.csv"))
    predicted = ResultFile(root, cpu("data_parallel_predicted.csv"))
    rows = [[r["model"], r["ranks"], r["global_batch"], number(float(r["step_ms"]), 1),
             number(float(r["tokens_per_s"]), 0), percent(float(r["allreduce_share"]), 0),
             f"{number(float(r['speedup_same_global_batch']))}×"]
            for r in measured.rows if int(r["ranks"]) > 1 or
            measured.where(model=r["model"], ranks=2, global_batch=r["global_batch"])]
    predicted_rows = []
    for platform in predicted.values("platform"):
        for model in predicted.values("model"):
            for scaling in predicted.values("scaling"):
                found = predicted.where(platform=platform, model=model, scaling=scaling)
                if not found:
                    continue
                best = max(found, key=lambda r: float(r["speedup"]))
                last = found[-1]
                predicted_rows.append([platform, model, scaling,
                                       f"{number(float(last['speedup']))}× at P = {last['ranks']}",
                                       f"{number(float(best['speedup']))}× at P = {best['ranks']}"])
    return "\n\n".join([
        "## Data parallelism over MPI",
        source([measured.relative], bench_command(measured, "data_parallel"),
               machine_of(measured.header)),
        "Measured: one training step of the tiny presets, the same global batch split over "
        "the ranks (median step time of the slowest rank). The speed-up is against one rank "
        "with the same global batch.",
        table(["model", "ranks", "global batch", "step (ms)", "tokens/s",
               "allreduce share of the step", "speed-up"], rows),
        "### Predicted",
        source([predicted.relative], bench_command(predicted, "data_parallel"),
               machine_of(predicted.header)),
        "Compute per rank from the traced op and FLOP counts with the rates fitted on one "
        "rank; communication as a ring allreduce with the link fitted between two ranks "
        "(the GPU cluster's figures are assumed, as the header says). Weak scaling keeps "
        "the batch per rank, strong scaling cuts one batch over more ranks; the speed-up at "
        "the largest P and the best over all P:",
        table(["platform", "model", "scaling", "at the largest P", "best"], predicted_rows),
        settings(predicted),
        images(root, cpu("data_parallel.png"))])


def translation_rows(result):
    """The rows of a real_translation.csv table: one column per model."""
    models = result.values("model")
    by = {m: result.where(model=m)[0] for m in models}
    buckets = [c[len("bleu_lowercase_"):] for c in result.rows[0] if c.startswith("bleu_lowercase_")]

    def each(fn):
        return [fn(by[m]) for m in models]
    rows = [["parameters"] + each(lambda r: f"{number(int(r['parameters']) / 1e6)} M"),
            ["training target tokens per second"] + each(lambda r: number(float(r["tokens_per_s"]), 0)),
            ["steps / epochs"] + each(lambda r: f"{number(int(r['steps']), 0)} / {r['epochs']}"),
            ["minutes trained"] + each(lambda r: number(float(r["minutes"]), 1)),
            ["**test2016 BLEU, lower-cased** (cased)"]
            + each(lambda r: f"**{number(float(r['test_bleu_lowercase']))}** ({number(float(r['test_bleu']))})")]
    rows.append([f"test2016 BLEU by source length, {' / '.join(buckets)} words (lower-cased)"]
                + each(lambda r: " / ".join(number(float(r[f"bleu_lowercase_{b}"]), 1) for b in buckets)))
    rows.append([f"sentences per bucket, {' / '.join(buckets)} words"]
                + each(lambda r: " / ".join(r[f"sentences_{b}"] for b in buckets)))
    rows.append([f"sequential ops of one forward pass, {' / '.join(buckets)} words"]
                + each(lambda r: " / ".join(r[f"sequential_ops_{b}"] for b in buckets)))
    return models, rows


def curve_rows(curves, models):
    """Validation BLEU at the end of the budget and at its best point, per model."""
    def describe(row):
        return f"{number(float(row['valid_bleu']))} (epoch {row['epoch']}, {number(float(row['minutes']), 0)} min)"
    last = [describe(curves.where(model=m)[-1]) for m in models]
    best = [describe(max(curves.where(model=m), key=lambda r: float(r["valid_bleu"])))
            for m in models]
    return [["validation BLEU at the end (cased, first 200 sentences)"] + last,
            ["validation BLEU, best epoch"] + best]


def real_translation_command(result):
    """The command line that writes ``result``, with the budget and direction its header states."""
    found = re.search(r"(\w+) models, ([\d.]+) minutes", " ".join(result.header))
    flags = [f"--minutes {found[2]}"] if found else []
    if found and found[1] != "base":
        flags.append(f"--size {found[1]}")
    if "English -> German" in " ".join(result.header):
        flags.append("--english-to-german")
    return bench_command(result, "real_translation", *flags)


def translation_section(root, title, csv_name, curves_name, png_name, prose):
    result = ResultFile(root, csv_name)
    curves = ResultFile(root, curves_name)
    models, rows = translation_rows(result)
    rows += curve_rows(curves, models)
    return "\n\n".join([
        title,
        source([result.relative, curves.relative], real_translation_command(result),
               machine_of(result.header)),
        prose,
        table([""] + models, rows),
        images(root, png_name)])


def section_real_translation(root):
    return translation_section(
        root, "## Real sentences: Multi30k, German -> English, 60 minutes",
        cpu("real_translation.csv"), cpu("real_translation_curves.csv"), cpu("real_translation.png"),
        "Both base models trained for the same wall-clock budget at the same time, one core "
        "each, then test2016 decoded greedily; the test figures are for the weights the run "
        "kept. BLEU is sacrebleu's, with its signature in the file.")


def section_en_de(root):
    return translation_section(
        root, "## Multi30k, English -> German",
        cpu("en-de", "real_translation_en_de.csv"), cpu("en-de", "real_translation_en_de_curves.csv"),
        cpu("en-de", "real_translation_en_de.png"),
        "The same protocol in the other direction: German output, harder to score.")


def log_summary(log):
    """A column of the both-cores table: what one training log says about its run."""
    epochs, steps, test = log.epochs(), log.steps(), log.test_bleu()
    best = max(epochs, key=lambda e: e[3])
    return {"command": f"`{log.command()}`",
            "median training tokens per second (progress lines)":
                number(statistics.median(s[2] for s in steps), 0),
            "last step logged / epochs": f"{number(steps[-1][0], 0)} / {epochs[-1][0]}",
            "validation BLEU at the end (cased, first 200 sentences)":
                f"{number(epochs[-1][3])} ({number(epochs[-1][4] / 60, 0)} min)",
            "validation BLEU, best epoch": f"{number(best[3])} (epoch {best[0]}, {number(best[4] / 60, 0)} min)",
            "**test2016 BLEU, lower-cased** (cased), greedy":
                f"**{number(test['lc'])}** ({number(test['mixed'])})",
            "against the target": verdict(test["lc"], TRANSLATION_TARGETS["transformer"])}


def verdict(score, target):
    if score >= target:
        return f"met: {number(score)} ≥ {number(target, 1)} (by {number(score - target)})"
    return f"missed by {number(target - score)} ({number(score)} < {number(target, 1)})"


def section_both_cores(root):
    logs = [LogFile(root, cpu("multi30k_transformer_both_cores.log")),
            LogFile(root, cpu("multi30k_transformer_two_ranks.log"))]
    summaries = [log_summary(log) for log in logs]
    rows = [[key] + [s[key] for s in summaries] for key in summaries[0]]
    single = ResultFile(root, cpu("real_translation.csv"))
    one_core = {r["model"]: float(r["test_bleu_lowercase"]) for r in single.rows}
    target_rows = [[model, number(target, 1), verdict(one_core[model], target)]
                   for model, target in TRANSLATION_TARGETS.items() if model in one_core]
    return "\n\n".join([
        "## The Transformer alone on both cores, 60 minutes",
        source([log.relative for log in logs], None, machine_of(logs[0].header)),
        "The base Transformer, German -> English, the same recipe, batches and seed in both "
        "columns: one process with two BLAS threads, or two MPI ranks of one thread each "
        "that split every batch and sum their gradients.",
        table(["", "one process, 2 BLAS threads", "two MPI ranks, 1 BLAS thread each"], rows,
              right=[]),
        "The one-core runs of the first Multi30k section, against the same targets "
        "(test2016, lower-cased, greedy):",
        table(["model", "target", "one core, beside the other model"], target_rows, right=["target"])])


def option_groups(command):
    """A command's options, each with the values that follow it: ["--lr 2e-3", ...]."""
    groups = []
    for word in command.split():
        if word.startswith("--") or not groups:
            groups.append(word)
        else:
            groups[-1] += " " + word
    return groups


def ablation_options(command, baseline):
    """The options of ``command`` (with their values) that the baseline's command lacks."""
    base = set(option_groups(baseline))
    extra = [group for group in option_groups(command) if group not in base]
    return " ".join(extra) or "(none)"


def section_ablations(root):
    folder = cpu("ablations")
    names = sorted(n for n in os.listdir(os.path.join(root, folder)) if n.endswith(".log"))
    logs = {n[:-4]: LogFile(root, f"{folder}/{n}") for n in names}
    baseline = logs.get("baseline")
    reference = baseline.test_bleu()["lc"] if baseline else None
    rows = []
    for name, log in logs.items():
        test = log.test_bleu()
        change = (ablation_options(log.command(), baseline.command()) if baseline else "")
        difference = "" if reference is None or name == "baseline" else \
            f"{test['lc'] - reference:+.2f}"
        rows.append([name, f"`{change}`" if change != "(none)" else change, number(test["lc"]),
                     number(test["mixed"]), difference])
    command = baseline.command() if baseline else "see each log"
    return "\n\n".join([
        "## Ablations of the training recipe",
        source([f"{folder}/"], command + " [the option of the row]",
               machine_of(next(iter(logs.values())).header)),
        "The base Transformer, German -> English, the recipe with one choice changed, the "
        "same batches, stopped after a fixed number of steps, then test2016 decoded greedily. "
        "Fixed steps, not a time budget: nothing here is a timing. The last column is the "
        "difference from the baseline; the two baseline seeds show how large a difference "
        "noise alone makes.",
        table(["run", "options beyond the baseline", "test BLEU, lower-cased", "cased",
               "vs baseline"], rows, right=["test BLEU, lower-cased", "cased", "vs baseline"])])


MIRROR_RUNS = (("time_to_bleu.csv", "time_to_bleu_curves.csv"),
               ("mirror_300s/mirror_n64.csv", "mirror_300s/mirror_n64_curves.csv"),
               ("mirror_300s/mirror_n128.csv", "mirror_300s/mirror_n128_curves.csv"),
               ("mirror_480s_lr3e-3/time_to_bleu.csv", "mirror_480s_lr3e-3/time_to_bleu_curves.csv"),
               ("mirror_480s_lr4e-3/time_to_bleu.csv", "mirror_480s_lr4e-3/time_to_bleu_curves.csv"),
               ("mirror_n128/time_to_bleu.csv", "mirror_n128/time_to_bleu_curves.csv"))
TIME_TO_BLEU_FLAGS = ("budget", "mirror_budget", "lengths", "mirror_lr", "models")


def header_settings(result):
    """``key=value`` pairs of the header's settings line, values as Python literals."""
    for line in result.header:
        if line.startswith("budget="):
            pairs = re.findall(r"(\w+)=(\[[^\]]*\]|[^,]+)", line)
            return {key: ast.literal_eval(value.strip()) for key, value in pairs}
    return {}


def time_to_bleu_command(result):
    flags = []
    for key, value in header_settings(result).items():
        if key in TIME_TO_BLEU_FLAGS:
            shown = " ".join(map(str, value)) if isinstance(value, list) else f"{value:g}" \
                if isinstance(value, float) else str(value)
            flags.append(f"--{key.replace('_', '-')} {shown}")
    return bench_command(result, "time_to_bleu", *flags)


def mirror_rows(summary, curves):
    """One row per (n, model) of a run: the end of the budget, the best point, the target."""
    rows = []
    for row in summary.where(task="mirror", threshold=MIRROR_TARGET):
        points = curves.where(task="mirror", n=row["n"], model=row["model"])
        last = points[-1]
        best = max(points, key=lambda p: float(p["token_accuracy"]))
        end, top = float(last["token_accuracy"]), float(best["token_accuracy"])
        reached = (f"reached at {number(float(row['seconds']), 0)} s" if row["seconds"] else
                   f"missed by {number(100 * (MIRROR_TARGET - end), 1)} points at the last "
                   f"evaluation, {number(100 * (MIRROR_TARGET - top), 1)} at the best")
        rows.append([row["n"], row["model"], number(float(row["budget_s"]), 0),
                     f"{percent(end)} (step {last['step']})",
                     f"{percent(top)} (step {best['step']}, {number(float(best['train_seconds']), 0)} s)",
                     reached])
    return rows


def section_mirror(root):
    parts = ["## The mirror task: long-distance dependencies",
             "Each token is mapped through a dictionary and the sequence reversed, so information "
             "must travel the whole length n. Token accuracy of greedy outputs on fresh pairs, "
             f"against the target of {percent(MIRROR_TARGET, 0)}: the last evaluation (at the end "
             "of the training budget, or where a model stopped on reaching the target), the "
             "best evaluation (a noisy curve's best point is not the result), and when the "
             "target was first reached (training seconds) or by how much it was missed."]
    for summary_name, curves_name in MIRROR_RUNS:
        summary, curves = ResultFile(root, cpu(summary_name)), ResultFile(root, cpu(curves_name))
        folder = os.path.dirname(summary.relative)
        parts += [f"### `{summary.relative}`",
                  source([summary.relative, curves.relative], time_to_bleu_command(summary),
                         machine_of(summary.header)),
                  table(["n", "model", "budget (s)", "last evaluation", "best", f"target {percent(MIRROR_TARGET, 0)}"],
                        mirror_rows(summary, curves), right=["n", "budget (s)"])]
        if folder != cpu().rstrip("/"):
            parts.append(images(root, f"{folder}/time_to_bleu.png"))
    return "\n\n".join(p for p in parts if p)


def section_time_to_bleu(root):
    summary = ResultFile(root, cpu("time_to_bleu.csv"))
    curves = ResultFile(root, cpu("time_to_bleu_curves.csv"))
    models = summary.values("model")
    thresholds = [t for t in summary.values("threshold") if summary.where(task="corpus", threshold=t)]
    rows = []
    for threshold in thresholds:
        cells = []
        for model in models:
            found = summary.where(task="corpus", model=model, threshold=threshold)
            cells.append(f"{number(float(found[0]['seconds']), 1)} s" if found and found[0]["seconds"]
                         else "not reached")
        rows.append([f"time to BLEU {threshold}"] + cells)
    for label, pick in (("BLEU at the last evaluation", lambda ps: ps[-1]),
                        ("best BLEU", lambda ps: max(ps, key=lambda p: float(p["bleu"])))):
        cells = []
        for model in models:
            point = pick(curves.where(task="corpus", model=model))
            cells.append(f"{number(float(point['bleu']), 1)} (step {point['step']}, "
                         f"{number(float(point['train_seconds']), 0)} s)")
        rows.append([label] + cells)
    budget = summary.where(task="corpus")[0]["budget_s"]
    return "\n\n".join([
        "## Time to BLEU on the built-in corpus",
        source([summary.relative, curves.relative], time_to_bleu_command(summary),
               machine_of(summary.header)),
        f"The tiny models on the generated English -> German corpus, a training budget of "
        f"{number(float(budget), 0)} s each: training seconds (evaluation excluded) until the "
        "validation BLEU first reached each threshold. A model stops at its budget or once it "
        "reaches the highest threshold.",
        table([""] + models, rows),
        images(root, cpu("time_to_bleu.png"))])


PREDICTION_TOLERANCE = 0.25     # predicted / measured within 1 +- this counts as a hit


def prediction_rows(measured):
    """Rows of the CPU check: measured and predicted step time, and by how much it misses."""
    rows, misses = [], []
    for r in measured.rows:
        if r["status"] != "ok":
            rows.append([r["layer"], r["n"], "", "", "", r["status"]])
            continue
        ratio = float(r["ratio"])
        verdict = "within 25%" if abs(ratio - 1) <= PREDICTION_TOLERANCE else \
            f"misses by {percent(abs(ratio - 1) - PREDICTION_TOLERANCE, 0)} beyond 25%"
        if abs(ratio - 1) > PREDICTION_TOLERANCE:
            misses.append(f"{r['layer']} at n = {r['n']} ({number(ratio)})")
        rows.append([r["layer"], r["n"], number(float(r["measured_ms"]), 1),
                     number(float(r["predicted_ms"]), 1), number(ratio), verdict])
    return rows, misses


def section_predict(root):
    measured = ResultFile(root, cpu("predict.csv"))
    sweep = ResultFile(root, cpu("predict_h200_sweep.csv"))
    speedup = ResultFile(root, cpu("predict_h200_speedup.csv"))
    rows, misses = prediction_rows(measured)
    ok = [r for r in measured.rows if r["status"] == "ok"]
    sweep_rows = [[r["n"], number(float(r["lstm_predicted_ms"]), 3),
                   number(float(r["attention_predicted_ms"]), 3),
                   number(float(r["lstm_over_attention"]), 1),
                   percent(float(r["lstm_launch_fraction"]), 0), r["graph"]]
                  for r in sweep.rows]
    speedup_rows = []
    for layer in speedup.values("layer"):
        for n in speedup.values("n"):
            found = speedup.where(layer=layer, n=n)
            if not found:
                continue
            last = found[-1]
            # Where adding processors stops paying: the first P within 5% of the last time.
            enough = next(r for r in found
                          if float(r["predicted_ms"]) <= 1.05 * float(last["predicted_ms"]))
            speedup_rows.append([layer, n, f"{number(float(last['speedup']))}× at P = "
                                 f"{last['processors']}", enough["processors"],
                                 number(float(last["parallelism"]), 1)])
    missed = (f"{len(ok) - len(misses)} of {len(ok)} points are within 25%; the others: "
              + ", ".join(misses) + "." if misses else
              f"All {len(ok)} points are within 25%.")
    too_long = sum(float(r["ratio"]) > 1 + PREDICTION_TOLERANCE for r in ok)
    too_short = sum(float(r["ratio"]) < 1 - PREDICTION_TOLERANCE for r in ok)
    if misses and not too_short:
        missed += f" All {too_long} predict a longer step than measured."
    elif misses and not too_long:
        missed += f" All {too_short} predict a shorter step than measured."
    elif misses:
        missed += (f" Of the misses, {too_long} predict too long a step and {too_short} too "
                   f"short a one.")
    return "\n\n".join([
        "## Predicted on a GPU",
        source([measured.relative, sweep.relative, speedup.relative],
               bench_command(measured, "predict"), machine_of(measured.header)),
        "The cost model (`minitransformer/costmodel.py`) prices a traced training step "
        "(forward + backward) op by op: each op costs the largest of its launch latency, its "
        "FLOPs over the compute rate and its bytes over the memory bandwidth, and the ops of "
        "one stream run one after another. On this CPU its parameters are fitted in a few "
        "seconds by the benchmark itself; for the GPU they are an NVIDIA H200's datasheet "
        "figures, which the file's header lists. Every GPU figure on this page is a "
        "prediction: no GPU ran it.",
        "### Checked on this CPU",
        "The same model with this CPU's fitted parameters, against the measured median step "
        "time (batch 32, d = 256). " + missed + " The model knows one cost per op and one "
        "rate per kind of work, fitted in seconds on other shapes; a step's time also depends "
        "on what it cannot see: the engine's Python overhead, which varies with the op, which "
        "arrays are still in the caches, and how much memory the allocator reuses. The "
        "fitted parameters move from one run to the next as the machine's speed does, so "
        "the points near the line can fall on either side of it in another run.",
        table(["layer", "n", "measured (ms)", "predicted (ms)", "predicted ÷ measured",
               ""], rows, right=["n", "measured (ms)", "predicted (ms)",
                                 "predicted ÷ measured"]),
        "### LSTM ÷ attention on an H200, predicted",
        "Step time of one layer, forward + backward, batch 32, d = 256. On the GPU the "
        "LSTM's n dependent steps are nearly all launch latency, while attention's few "
        "large products keep the device busy until n² work takes over.",
        table(["n", "LSTM (ms)", "attention (ms)", "LSTM ÷ attention",
               "LSTM time that is launch latency", "graph"], sweep_rows, right=[
                   "n", "LSTM (ms)", "attention (ms)", "LSTM ÷ attention",
                   "LSTM time that is launch latency"]),
        "### On P processors, predicted",
        "The traced graph list-scheduled on P streams, each running whole ops at the H200 "
        "model's speed, within Brent's bounds W/P ≤ T_P ≤ W/P + S, where W is the sum of the "
        "ops' times and S the time of the critical path. More streams pay only where "
        "independent ops stand side by side, so the speed-up stops at W/S: a few streams "
        "for the LSTM, whose weight gradients can be computed beside its chain of hidden "
        "states, and almost "
        "none for attention, whose ops each wait for the one before. Attention's "
        "parallelism is inside its ops, the thousands of multiply-adds of each product that "
        "the GPU model already runs at once (the span of Table 1).",
        table(["layer", "n", "speed-up at the largest P", "P within 5% of that time",
               "parallelism of the ops (W/S)"], speedup_rows),
        settings(measured),
        images(root, cpu("predict.png"))])


SECTIONS = (section_table1, section_seq_scaling, section_overhead, section_vs_pytorch,
            section_decoding, section_tracer_cost, section_memory, section_attention_memory,
            section_matmul_peak, section_data_parallel, section_predict,
            section_real_translation,
            section_both_cores, section_en_de, section_ablations, section_mirror,
            section_time_to_bleu)


# ================================================================ the pages
def linked_images(text):
    return set(re.findall(r"!\[[^\]]*\]\(\.\./([^)]+)\)", text))


def other_figures(root, already):
    """Image links for every PNG under bench/results that no section showed."""
    found = []
    for folder, _, files in os.walk(os.path.join(root, RESULTS)):
        for name in files:
            relative = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            if name.endswith(".png") and relative not in already:
                found.append(relative)
    if not found:
        return ""
    return "## Other figures\n\n" + "\n\n".join(
        f"![{os.path.basename(r)}](../{r})" for r in sorted(found))


def results_page(root):
    sections = [section(root) for section in SECTIONS]
    body = "\n\n".join(sections)
    contents = "\n".join(f"- [{s.splitlines()[0][3:]}](#{anchor(s.splitlines()[0][3:])})"
                         for s in sections)
    parts = ["# Results",
             "<!-- generated by `python -m minitransformer docs` from the files under "
             "bench/results/: edit the generator (minitransformer/docs.py), not this page -->",
             "Every table below is computed from a file committed under `bench/results/`; each "
             "section names the file, the command that wrote it and the machine it was measured "
             "on. Times are medians over repeats after warm-up unless the section says otherwise. "
             "To measure on your own machine, run the section's command and then "
             "`python -m minitransformer docs`.",
             contents, body, other_figures(root, linked_images(body))]
    return "\n\n".join(p for p in parts if p) + "\n"


def anchor(title):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    kept = re.sub(r"[^\w\- ]", "", title.lower())
    return kept.replace(" ", "-")


def glance_rows(root):
    """The few figures of the README's table, each linking to its section."""
    table1 = ResultFile(root, f"{RESULTS}/table1.csv")
    largest = table1.values("n")[-1]
    ops = {r["layer"]: r["sequential_ops"] for r in table1.where(n=largest)}
    seq = ResultFile(root, cpu("seq_scaling.csv"))
    ns = seq.values("n")
    ratio = {n: float(seq.where(n=n, layer="lstm")[0]["median_ms"])
             / float(seq.where(n=n, layer="attention")[0]["median_ms"]) for n in (ns[0], ns[-1])}
    real = ResultFile(root, cpu("real_translation.csv"))
    bleu = {r["model"]: number(float(r["test_bleu_lowercase"])) for r in real.rows}
    ranks = LogFile(root, cpu("multi30k_transformer_two_ranks.log")).test_bleu()["lc"]
    base = ResultFile(root, cpu("vs_pytorch_multi30k.csv")).rows[0]
    return [
        [f"sequential ops of one layer's forward pass, n = {largest}",
         " / ".join(f"{layer} {count}" for layer, count in ops.items()), "table-1-of-the-paper-measured"],
        [f"training step time, LSTM ÷ self-attention, n = {ns[0]} and n = {ns[-1]}",
         f"{number(ratio[ns[0]])} and {number(ratio[ns[-1]])}",
         "training-step-time-against-sequence-length"],
        ["Multi30k de→en test2016 BLEU after 60 minutes on one core (lower-cased)",
         " / ".join(f"{m} {b}" for m, b in bleu.items()),
         anchor("Real sentences: Multi30k, German -> English, 60 minutes")],
        ["the Transformer on both cores as two MPI ranks, 60 minutes", f"{number(ranks)}",
         anchor("The Transformer alone on both cores, 60 minutes")],
        ["training step of the base translator, engine ÷ PyTorch", number(float(base["ratio"])),
         "against-pytorch"],
        predicted_gpu_glance(root),
    ] + [mirror_glance(root, run) for run in GLANCE_MIRROR_RUNS]


def predicted_gpu_glance(root):
    """The H200 prediction's row: LSTM ÷ attention at n = 64, 512 and the longest n."""
    sweep = ResultFile(root, cpu("predict_h200_sweep.csv"))
    shown = [r for r in sweep.rows[:-1] if r["n"] in ("64", "512")] + sweep.rows[-1:]
    return [f"training step time, LSTM ÷ self-attention, on an H200 (predicted by the cost "
            f"model), n = {' / '.join(r['n'] for r in shown)}",
            " / ".join(number(float(r["lstm_over_attention"]), 1) for r in shown),
            "predicted-on-a-gpu"]


GLANCE_MIRROR_RUNS = ("mirror_480s_lr4e-3", "mirror_n128")


def mirror_glance(root, folder):
    """The Transformer's row of one mirror run: last and best token accuracy, the target."""
    summary = ResultFile(root, cpu(folder, "time_to_bleu.csv"))
    curves = ResultFile(root, cpu(folder, "time_to_bleu_curves.csv"))
    [row] = [r for r in mirror_rows(summary, curves) if r[1] == "transformer"]
    n, _, budget, last, best, target = row
    return [f"mirror task, n = {n}, Transformer, {budget} s: token accuracy at the last "
            f"evaluation / best (target {percent(MIRROR_TARGET, 0)})",
            f"{last.split(' (')[0]} / {best.split(' (')[0]}; target {target}",
            anchor("The mirror task: long-distance dependencies")]


def readme_block(root):
    rows = [[what, value, f"[results](docs/results.md#{link})"] for what, value, link in glance_rows(root)]
    machine = machine_of(ResultFile(root, cpu("seq_scaling.csv")).header)
    return "\n".join([
        BEGIN,
        f"Measured on {machine}; every figure with its command and file in "
        "[docs/results.md](docs/results.md).",
        "",
        table(["result", "measured", "where"], rows, right=[]),
        END])


def readme_text(root):
    """README.md with its results block regenerated; None where it has no markers."""
    path = os.path.join(root, README)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        return None
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    return before + readme_block(root) + after


def front_picture():
    try:
        from .graph_picture import lstm_beside_attention_svg
    except ImportError as error:
        raise SystemExit(f"docs: cannot draw {PICTURE}: minitransformer.graph_picture is not "
                         f"importable ({error})")
    return lstm_beside_attention_svg()


def generated(root):
    """{path relative to the root: text} of every file this command writes."""
    files = {RESULTS_PAGE: results_page(root), PICTURE: front_picture()}
    readme = readme_text(root)
    if readme is not None:
        files[README] = readme
    return files


def write(files, into):
    for relative, text in files.items():
        path = os.path.join(into, relative)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)


def first_difference(relative, expected, committed):
    """'FILE:LINE: expected ... , committed ...' for the first line that differs, or None."""
    if expected == committed:
        return None
    want, have = expected.splitlines(), committed.splitlines()
    for number_, (a, b) in enumerate(zip(want, have), start=1):
        if a != b:
            return f"{relative}:{number_}: expected {a!r}, committed {b!r}"
    line = min(len(want), len(have)) + 1
    a = want[line - 1] if line <= len(want) else "(end of file)"
    b = have[line - 1] if line <= len(have) else "(end of file)"
    return f"{relative}:{line}: expected {a!r}, committed {b!r}"


def check(root):
    """Regenerate into a temporary folder; the differences from the committed files."""
    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        write(generated(root), scratch)
        for folder, _, names in os.walk(scratch):
            for name in names:
                relative = os.path.relpath(os.path.join(folder, name), scratch)
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    expected = f.read()
                committed_path = os.path.join(root, relative)
                if not os.path.exists(committed_path):
                    problems.append(f"{relative}: missing (run python -m minitransformer docs)")
                    continue
                with open(committed_path, encoding="utf-8") as f:
                    found = first_difference(relative, expected, f.read())
                if found:
                    problems.append(found)
    return sorted(problems)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minitransformer docs",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if the committed docs differ from what would be generated")
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="the repository's folder (default: the one holding this package)")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.root)
        for problem in problems:
            print(f"docs --check: {problem}", file=sys.stderr)
        if problems:
            print("docs --check: regenerate with: python -m minitransformer docs", file=sys.stderr)
            return 1
        print("docs --check: the committed docs match bench/results/")
        return 0
    files = generated(args.root)
    write(files, args.root)
    for relative in files:
        print(f"docs: wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

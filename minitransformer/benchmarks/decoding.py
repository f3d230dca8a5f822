"""Where attention's parallelism stops: greedy decoding is n sequential steps for both models.

Training a Transformer decoder reads all n target positions in one pass (teacher
forcing). Generating cannot: token t+1 depends on the token chosen at step t, so a
Transformer decodes in n steps, like the LSTM. This benchmark times greedy
decoding of a batch as the output length n grows, for

* ``transformer, no cache``: ``TransformerTranslator.decode_step`` re-runs the decoder
  over the whole prefix each step -- n²/2 positions of work per sentence;
* ``transformer, kv cache``: :class:`~..translation.cached_decoding.CachedTransformerDecoder`
  runs each decoder layer for the newest position only -- n positions of work;
* ``lstm``: the LSTM translator, one recurrent step per token;

and, for scale, the same models reading all n positions at once (``teacher
forcing``: one forward pass, as in training, no decoding).

How the number of steps is fixed: the models have random weights (their output is
noise, which does not change the arithmetic), and ``greedy_decode`` is called with
``eos_id=-1``, an id no argmax can produce, so every sentence runs exactly
``max_len = n`` steps. The source is as long as the output (n tokens), as in
translation; the timed call includes encoding the source, which is one parallel
pass. Tokens/s counts batch · n generated tokens per decode.

On a machine shared with other jobs, a multi-threaded BLAS can make these small
products 10-50 times slower (each product waits for all its threads to be
scheduled); ``OPENBLAS_NUM_THREADS=1`` avoids that, and the CSV records the setting.
"""
import os
import time

from .. import analysis, backend
from .._tensor import Tensor, no_grad
from ..translation.cached_decoding import CachedTransformerDecoder
from ..translation.decode import greedy_decode
from ..translation.models import RNNTranslator, TransformerTranslator
from ..translation.train import PRESETS
from . import common

LENGTHS = (8, 16, 32, 64, 128, 256)
QUICK_LENGTHS = (8, 32, 64)
METHODS = ("transformer, no cache", "transformer, kv cache", "lstm",
           "transformer, teacher forcing", "lstm, teacher forcing")
NEVER = -1   # an eos id no argmax can produce: decoding runs exactly max_len steps


def make_models(vocab_size, max_len, size, device):
    """The two translators of preset ``size`` with random weights, in eval mode."""
    backend.manual_seed(0)
    params = {k: v for k, v in PRESETS["transformer"][size].items() if k != "dropout"}
    transformer = TransformerTranslator(vocab_size, vocab_size, max_len=max_len + 1, **params)
    params = {k: v for k, v in PRESETS["lstm"][size].items() if k != "dropout"}
    lstm = RNNTranslator(vocab_size, vocab_size, cell="lstm", **params)
    return transformer.to(device).eval(), lstm.to(device).eval()


def method_call(method, transformer, lstm, src, n):
    """A function of no arguments that runs ``method`` once on the source batch."""
    model = lstm if method.startswith("lstm") else transformer
    if method.endswith("teacher forcing"):
        target = src   # any n tokens: the arithmetic does not depend on their values

        def forward():
            with no_grad():
                model(src, target)
        return forward
    decoder = CachedTransformerDecoder(transformer) if method.endswith("kv cache") else model
    return lambda: greedy_decode(decoder, src, None, bos_id=1, eos_id=NEVER, max_len=n)


def run(device="cpu", lengths=LENGTHS, batch=64, size="tiny", vocab_size=1000, repeats=3,
        max_seconds=20.0, log=print):
    """Time every method at every n; returns one row per (method, n).

    A method whose decode took longer than ``max_seconds`` is skipped at larger n
    (row status "skipped"), which keeps the O(n²) uncached decoder bounded.
    """
    transformer, lstm = make_models(vocab_size, max(lengths), size, device)
    rows, too_slow = [], set()
    for n in lengths:
        ids = backend.generator("cpu").integers(4, vocab_size, size=(batch, n))
        src = Tensor(backend.to_device(ids.astype("int64"), device))
        for method in METHODS:
            row = {"method": method, "n": n, "batch": batch, "size": size,
                   "sequential_steps": 1 if method.endswith("teacher forcing") else n}
            if method in too_slow:
                rows.append({**row, "status": "skipped"})
                continue
            times = common.measure(method_call(method, transformer, lstm, src, n), device,
                                   repeats=repeats, warmup=1)
            stats = common.summary(times)
            rows.append({**row, "status": "ok", **stats,
                         "tokens_per_s": batch * n / stats["median_s"],
                         "ms_per_step": stats["median_s"] * 1e3 / row["sequential_steps"]})
            if stats["median_s"] > max_seconds:
                too_slow.add(method)
            log(format_row(rows[-1]))
    return rows


def format_row(r):
    if r["status"] != "ok":
        return f"  {r['method']:<30}{r['n']:>5}  {r['status']}"
    return (f"  {r['method']:<30}{r['n']:>5}{r['median_s'] * 1e3:>11.1f} ms"
            f"{r['tokens_per_s']:>11.0f} tok/s{r['ms_per_step']:>9.2f} ms/step")


def slope(rows, method):
    """Exponent k of decode time ~ n^k for ``method`` (2: quadratic, 1: linear)."""
    points = [(r["n"], r["median_s"]) for r in rows
              if r["method"] == method and r["status"] == "ok"]
    return analysis.fit_exponent([p[0] for p in points], [p[1] for p in points])


def plot(rows, path, device):
    """Tokens/s against n (log-log), one line per method; returns the path or None."""
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for method in METHODS:
        points = [(r["n"], r["tokens_per_s"]) for r in rows
                  if r["method"] == method and r["status"] == "ok"]
        if points:
            ns, ys = zip(*points)
            style = "--" if method.endswith("teacher forcing") else "-"
            ax.plot(ns, ys, style, marker="o",
                    label=f"{method} (time ~ n^{slope(rows, method):.2f})")
    common.scaling_axes(ax, "output length n (tokens)",
                        "tokens / s (batch of %d)" % rows[0]["batch"],
                        f"greedy decoding vs one teacher-forced pass ({device})")
    return common.save_figure(fig, path)


def main(argv=None):
    parser = common.parser("decoding", __doc__.splitlines()[0],
                           quick_help=f"n = {' '.join(map(str, QUICK_LENGTHS))}, batch 32, 2 repeats")
    parser.add_argument("--lengths", type=common.positive_int, nargs="+", default=list(LENGTHS),
                        help=f"output lengths n (default {' '.join(map(str, LENGTHS))})")
    common.add_size_flags(parser, batch=64, repeats=3)
    parser.add_argument("--size", default="tiny", choices=sorted(PRESETS["transformer"]))
    parser.add_argument("--max-seconds", type=common.positive_float, default=20.0,
                        help="a method slower than this per decode is skipped at larger n")
    args = common.parse(parser, argv, quick=dict(lengths=list(QUICK_LENGTHS), batch=32, repeats=2))
    where = common.device_description(args.device)
    print(f"greedy decoding, batch {args.batch}, {args.size} models with random weights, on {where}")
    start = time.perf_counter()
    rows = run(args.device, args.lengths, args.batch, args.size, repeats=args.repeats,
               max_seconds=args.max_seconds)
    slopes = {m: slope(rows, m) for m in METHODS}
    for method, k in slopes.items():
        print(f"  {method}: decode time ~ n^{k:.2f}")
    common.finish("decoding", args.device, args.out_dir, {"decoding": rows}, [
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
        f"batch={args.batch} size={args.size} repeats={args.repeats} float32, random weights, "
        f"eos disabled (every row decodes exactly n steps); source length = n; times include "
        f"encoding the source",
        "slopes of time vs n: " + ", ".join(f"{m} {k:.2f}" for m, k in slopes.items())],
        plot=lambda path: plot(rows, path, args.device), started=start)
    return rows

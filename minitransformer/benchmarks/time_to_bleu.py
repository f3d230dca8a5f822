"""Time to quality: how many seconds of training each translator needs to reach a score.

Step time alone does not decide which model is faster to *train*: a model with
cheaper steps may need more of them. This benchmark trains the tiny Transformer
and the tiny LSTM translator (``train.PRESETS``, the same device, the same
budget) and records when each first reaches fixed scores:

* **corpus**: the built-in English -> German corpus; corpus BLEU of greedy
  translations of a fixed subset of the test split (thresholds 30, 50, 70, 90).
  Nothing is tuned on that subset: it only says when a model got there.
* **mirror**: the synthetic task of ``synthetic.py`` (each token mapped through a
  fixed dictionary, the sequence reversed) for lengths n = 16 .. 128. The first
  source token decides the last target token: the distance information must
  travel grows with n. The score is **token accuracy** (thresholds 50%, 90%,
  99%), not sequence accuracy: one wrong token of 128 makes a whole sequence wrong,
  so sequence accuracy stays at 0 long after a model has learned most of the task
  (the CSV of curves records both).

The clock is the *training* clock: the time inside training steps (forward,
backward, optimizer; the GPU synchronised before each reading), started after one
untimed warm-up pass (:func:`warm_up`). Evaluation every
``eval_every`` steps (greedy decoding, with the key/value cache for the
Transformer) and batching are excluded. A model stops at its budget of training
seconds, or once it reaches the highest threshold.
"""
import os
import time

from .. import analysis, backend
from ..translation.batching import encode_pairs, make_batches
from ..translation.bleu import corpus_bleu
from ..translation.cached_decoding import CachedTransformerDecoder
from ..translation.data import load_data
from ..translation.decode import greedy_decode
from ..translation.synthetic import make_task, sequence_accuracy, token_accuracy
from ..translation.train import new_trainer
from . import common

MODELS = ("transformer", "lstm")
BLEU_THRESHOLDS = (30, 50, 70, 90)
ACCURACY_THRESHOLDS = (0.5, 0.9, 0.99)
MIRROR_LENGTHS = (16, 32, 64, 128)
FULL = dict(budget=600.0, mirror_budget=120.0, lengths=MIRROR_LENGTHS, eval_every=100,
            mirror_eval_every=50, eval_sentences=200)
QUICK = dict(budget=15.0, mirror_budget=8.0, lengths=(16,), eval_every=50,
             mirror_eval_every=25, eval_sentences=100)


# ---------------------------------------------------------------- evaluation
def greedy_translations(trainer, sources, max_len=None):
    """Greedy translations of ``sources`` (strings), the Transformer with its cache.
    ``max_len`` default: twice the source length plus 10, as Trainer.translate."""
    model = trainer.model.eval()
    decoder = CachedTransformerDecoder(model) if model.config["kind"] == "transformer" else model
    examples = [(trainer.src_vocab.encode(s), []) for s in sources]
    out = [None] * len(examples)
    for batch in make_batches(examples, batch_size=128, shuffle=False, device=trainer.device):
        ids = greedy_decode(decoder, batch.src, batch.src_padding_mask, trainer.tgt_vocab.bos_id,
                            trainer.tgt_vocab.eos_id, max_len or batch.src.shape[1] * 2 + 10)
        for index, hyp in zip(batch.indices, ids):
            out[index] = trainer.tgt_vocab.decode(hyp)
    return out


def bleu_of(trainer, pairs):
    hypotheses = greedy_translations(trainer, [s for s, _ in pairs])
    return {"bleu": corpus_bleu(hypotheses, [t for _, t in pairs], lowercase=True)}


def accuracy_of(trainer, pairs, length):
    hypotheses = greedy_translations(trainer, [s for s, _ in pairs], max_len=length + 2)
    references = [t for _, t in pairs]
    return {"token_accuracy": token_accuracy(hypotheses, references),
            "sequence_accuracy": sequence_accuracy(hypotheses, references)}


# ---------------------------------------------------------------- the race
def train_until(trainer, train_pairs, evaluate, metric, target, budget, eval_every, log):
    """Train ``trainer`` until ``evaluate()[metric] >= target`` or ``budget`` seconds of
    training. Returns the curve: one dict per evaluation (step, train_seconds, scores)."""
    device = trainer.device
    examples = encode_pairs(train_pairs, trainer.src_vocab, trainer.tgt_vocab)
    clock, epoch, curve = 0.0, 0, []
    warm_up(trainer, make_batches(examples[:trainer.settings.batch_size], device=device)[0])
    while True:
        for batch in make_batches(examples, trainer.settings.batch_size, shuffle=True,
                                  seed=trainer.settings.seed + epoch, device=device):
            start = backend.timer(device)
            trainer.train_step(batch)
            clock += backend.timer(device) - start
            out_of_time = clock >= budget
            if trainer.step % eval_every == 0 or out_of_time:
                scores = evaluate()
                curve.append({"step": trainer.step, "train_seconds": clock, **scores})
                log(f"    step {trainer.step:6d}  {clock:7.1f} s  " +
                    "  ".join(f"{k} {v:.3f}" for k, v in scores.items()))
                if scores[metric] >= target or out_of_time:
                    return curve
        epoch += 1


def warm_up(trainer, batch):
    """One forward and backward pass, untimed, its gradients dropped (no optimizer
    step, so the model is unchanged). On a GPU the first pass compiles every kernel,
    which takes seconds: charged to the first timed step, it would bias the race by
    whichever model happens to use more kernels."""
    trainer.model.train()
    trainer.loss(batch).backward()
    trainer.optimizer.zero_grad()


def first_crossings(curve, metric, thresholds):
    """For each threshold, the first evaluation at or above it (or None)."""
    return {t: next((p for p in curve if p[metric] >= t), None) for t in thresholds}


def race(task, n, train_pairs, eval_pairs, metric, thresholds, budget, eval_every, device,
         log, transformer_lr=None, transformer_warmup=None, models=MODELS, **settings):
    """Train each of ``models`` (default both) on one task; returns (threshold rows, curve rows).
    ``transformer_lr``, ``transformer_warmup``: the Transformer's peak rate and warm-up
    steps (default: the paper's peak d^-0.5 · warmup^-0.5 after 400 steps); the LSTM
    keeps its own recipe."""
    rows, curves = [], []
    for kind in models:
        schedule = (dict(lr=transformer_lr, warmup=transformer_warmup)
                    if kind == "transformer" else {})
        trainer = new_trainer(kind, train_pairs, device=device, **schedule, **settings)
        log(f"  {task}{'' if n is None else f' n={n}'}: {kind}, "
            f"{trainer.model.num_parameters():,} parameters, budget {budget:.0f} s")
        if metric == "bleu":
            evaluate = lambda: bleu_of(trainer, eval_pairs)                  # noqa: E731
        else:
            evaluate = lambda: accuracy_of(trainer, eval_pairs, n)           # noqa: E731
        curve = train_until(trainer, train_pairs, evaluate, metric, max(thresholds), budget,
                            eval_every, log)
        base = {"task": task, "n": n or "", "model": kind}
        no_scores = {"bleu": "", "token_accuracy": "", "sequence_accuracy": ""}  # one CSV header
        curves += [{**base, **no_scores, **point} for point in curve]
        for threshold, point in first_crossings(curve, metric, thresholds).items():
            rows.append({**base, "metric": metric, "threshold": threshold,
                         "seconds": round(point["train_seconds"], 2) if point else "",
                         "step": point["step"] if point else "",
                         "best": round(max(p[metric] for p in curve), 4),
                         "trained_seconds": round(curve[-1]["train_seconds"], 2),
                         "budget_s": budget})
    return rows, curves


def run(device="cpu", budget=600.0, mirror_budget=120.0, lengths=MIRROR_LENGTHS,
        eval_every=100, mirror_eval_every=50, eval_sentences=200, corpus_size=20000,
        mirror_pairs=20000, batch_size=64, mirror_lr=None, mirror_warmup=None,
        models=MODELS, log=print):
    """Both races: the corpus, then the mirror task at every length. Returns
    (threshold rows, curve rows). ``mirror_lr``, ``mirror_warmup``: the Transformer's
    peak rate and warm-up on the mirror task (see :func:`race`). ``models``: which
    of the two run (one alone: a long budget for the one that needs it)."""
    rows, curves = [], []
    if budget > 0:
        data = load_data(corpus_size=corpus_size, seed=0)
        r, c = race("corpus", None, data["train"], data["test"][:eval_sentences], "bleu",
                    BLEU_THRESHOLDS, budget, eval_every, device, log, models=models,
                    batch_size=batch_size)
        rows, curves = rows + r, curves + c
    for n in lengths if mirror_budget > 0 else ():
        train = make_task("mirror", mirror_pairs, n, seed=1)
        test = make_task("mirror", eval_sentences, n, seed=2)
        r, c = race("mirror", n, train, test, "token_accuracy", ACCURACY_THRESHOLDS,
                    mirror_budget, mirror_eval_every, device, log, batch_size=batch_size,
                    transformer_lr=mirror_lr, transformer_warmup=mirror_warmup, models=models)
        rows, curves = rows + r, curves + c
    return rows, curves


# ---------------------------------------------------------------- reporting
def print_table(rows, log=print):
    log(f"  {'task':<8}{'n':>5}  {'model':<12}{'metric':<16}{'threshold':>9}{'seconds':>9}"
        f"{'step':>7}{'best':>8}")
    for r in rows:
        seconds = f"{r['seconds']:.1f}" if r["seconds"] != "" else "—"
        log(f"  {r['task']:<8}{r['n']:>5}  {r['model']:<12}{r['metric']:<16}{r['threshold']:>9}"
            f"{seconds:>9}{r['step']:>7}{r['best']:>8.3g}")


def plot(rows, curves, path, device):
    """Left: corpus BLEU against training seconds. Right: mirror, seconds to each
    token-accuracy threshold against n (missing points: not reached)."""
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for kind in MODELS:
        points = [(p["train_seconds"], p["bleu"]) for p in curves
                  if p["task"] == "corpus" and p["model"] == kind]
        if points:
            left.plot(*zip(*points), marker=".", label=kind)
    for threshold in BLEU_THRESHOLDS:
        left.axhline(threshold, color="grey", lw=0.5, ls=":")
    left.set_xlabel("training seconds (evaluation excluded)")
    left.set_ylabel("test BLEU (greedy, fixed subset)")
    left.set_title("built-in English -> German corpus", fontsize=10)
    left.legend()
    for kind, style in zip(MODELS, ("-", "--")):
        for threshold in ACCURACY_THRESHOLDS:
            points = [(r["n"], r["seconds"]) for r in rows if r["task"] == "mirror"
                      and r["model"] == kind and r["threshold"] == threshold and r["seconds"] != ""]
            if points:
                right.plot(*zip(*points), style, marker="o", label=f"{kind}, {threshold:.0%}")
    common.scaling_axes(right, "sequence length n", "training seconds to token accuracy",
                        "mirror task (missing point: not reached in budget)")
    left.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"time to quality, tiny models ({device})", fontsize=11)
    return common.save_figure(fig, path)


def main(argv=None):
    parser = common.parser("time_to_bleu", __doc__.splitlines()[0],
                           quick_help=f"short budgets ({QUICK['budget']:g} s, mirror "
                                      f"{QUICK['mirror_budget']:g} s), n = 16")
    parser.add_argument("--budget", type=common.nonnegative_float, default=None,
                        help=f"training seconds per model on the corpus (default "
                             f"{FULL['budget']:.0f}, quick {QUICK['budget']:.0f}; 0 skips it)")
    parser.add_argument("--mirror-budget", type=common.nonnegative_float, default=None,
                        help=f"training seconds per model and length on the mirror task "
                             f"(default {FULL['mirror_budget']:.0f}, quick "
                             f"{QUICK['mirror_budget']:.0f}; 0 skips it)")
    parser.add_argument("--lengths", type=common.positive_int, nargs="+", default=None,
                        help="mirror lengths (default 16 32 64 128, quick 16)")
    parser.add_argument("--eval-every", type=common.positive_int, default=None, help="steps between evaluations")
    parser.add_argument("--eval-sentences", type=common.positive_int, default=None)
    parser.add_argument("--mirror-lr", type=common.positive_float, default=None,
                        help="the Transformer's peak learning rate on the mirror task "
                             "(default: the paper's, d^-0.5 · warmup^-0.5 = 6.25e-3 for the "
                             "tiny model)")
    parser.add_argument("--mirror-warmup", type=common.positive_int, default=None,
                        help="the Transformer's warm-up steps on the mirror task (default 400)")
    parser.add_argument("--models", choices=MODELS, nargs="+", default=None,
                        help="which models race (default both)")
    args = common.parse(parser, argv)
    preset = dict(QUICK if args.quick else FULL)
    for key in ("budget", "mirror_budget", "lengths", "eval_sentences", "mirror_lr",
                "mirror_warmup", "models"):
        if getattr(args, key) is not None:
            preset[key] = getattr(args, key)
    if args.eval_every is not None:
        preset["eval_every"] = preset["mirror_eval_every"] = args.eval_every
    print(f"time to quality, tiny Transformer vs tiny LSTM, on "
          f"{common.device_description(args.device)}")
    start = time.perf_counter()
    rows, curves = run(args.device, **preset)
    print_table(rows)
    common.finish("time_to_bleu", args.device, args.out_dir,
                  {"time_to_bleu": rows, "time_to_bleu_curves": curves}, [
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
        ", ".join(f"{k}={v}" for k, v in preset.items()),
        "seconds: training clock (train steps only; evaluation and batching excluded) at the "
        "first evaluation at or above the threshold; empty: not reached within the budget",
        "corpus: BLEU of greedy translations of the first eval_sentences test pairs; mirror: "
        "token accuracy of greedy outputs on eval_sentences fresh pairs"],
        plot=lambda path: plot(rows, curves, path, args.device), started=start)
    return rows, curves

"""Real sentences: the Transformer and the LSTM translator on Multi30k, same wall-clock budget.

The built-in corpus is too easy to separate the two models (both reach BLEU 99). On
Multi30k (29,000 image captions, German -> English by default) this benchmark trains both
translators with ``python -m minitransformer train`` for the same number of minutes --
at the same time, one core each, so that both see the same machine -- and then reads
their checkpoints to record:

* the learning curves: validation BLEU against wall-clock minutes (one point an epoch);
* training throughput, target tokens per second;
* test2016 BLEU (cased and lower-cased, sacrebleu's signature), overall and by source
  length (1-10, 11-20, 21+ words): long sentences are where a recurrent model must carry
  information over many steps;
* sequential ops of one forward pass (the tracer's critical path) for a batch of each
  length bucket: the LSTM's grows with the sentence, the Transformer's does not.

Multi30k is for non-commercial research and education only and is never part of the
project: it is read from ``--data-dir``, else from the folder named by the environment
variable ``MINITRANSFORMER_DATA``, else from ``data/multi30k`` (where
``python -m minitransformer data multi30k`` writes it); without it the benchmark says so
and stops.
"""
import argparse
import os
import subprocess
import sys
import time

from .. import analysis
from ..translation.bleu import bleu_score
from ..translation.data import find_multi30k, multi30k_not_found
from ..translation.demo import sequential_ops
from ..translation.train import Trainer
from ..translation.tsv import load_tsv
from . import common

MODELS = ("transformer", "lstm")
BUCKETS = ((1, 10), (11, 20), (21, None))   # source length in words
FILES = {"train": "train.tsv", "valid": "val.tsv", "test": "test2016.tsv"}
FULL = dict(minutes=60.0, size="base")
QUICK = dict(minutes=2.0, size="tiny")


def find_data(data_dir=None):
    """The folder holding Multi30k's three TSV files, or None."""
    if data_dir is None:
        return find_multi30k()
    if all(os.path.exists(os.path.join(data_dir, name)) for name in FILES.values()):
        return data_dir
    return None


def train_both(data_dir, out_dir, minutes, size, reverse, device, train_options=(), log=print):
    """Start one ``train`` process per model, at the same time, one BLAS thread each;
    wait for both. Returns {model: checkpoint directory}."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    runs = {}
    for kind in MODELS:
        checkpoint = os.path.join(out_dir, "runs", kind)
        command = [sys.executable, "-m", "minitransformer", "train", "--model", kind,
                   "--size", size, "--minutes", str(minutes), "--epochs", "1000",
                   "--data", os.path.join(data_dir, FILES["train"]),
                   "--valid", os.path.join(data_dir, FILES["valid"]),
                   "--test", os.path.join(data_dir, FILES["test"]),  # logs last vs averaged
                   "--checkpoint", checkpoint, "--device", device, *train_options]
        if reverse:
            command.append("--reverse")
        log_path = os.path.join(out_dir, "runs", f"{kind}.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        log(f"  {' '.join(command[1:])}\n    (log: {log_path})")
        log_file = open(log_path, "w", encoding="utf-8")
        runs[kind] = (subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env),
                      log_file, checkpoint, log_path)
    for kind, (process, log_file, _, log_path) in runs.items():
        process.wait()
        log_file.close()
        if process.returncode:
            raise RuntimeError(f"training the {kind} failed (exit {process.returncode}); "
                               f"see {log_path}")
    return {kind: checkpoint for kind, (_, _, checkpoint, _) in runs.items()}


def bucket_name(low, high):
    return f"{low}-{high}" if high else f"{low}+"


def in_bucket(source, low, high):
    words = len(source.split())
    return words >= low and (high is None or words <= high)


def analyse(kind, checkpoint, test_pairs, device, log=print):
    """Curves, throughput, BLEU by length and sequential ops of one trained model."""
    trainer = Trainer.load(checkpoint, device=device)
    curve = [{"model": kind, "epoch": r["epoch"], "step": r["step"],
              "minutes": round(r["seconds"] / 60, 3), "train_loss": round(r["train_loss"], 4),
              "valid_loss": round(r.get("valid_loss", float("nan")), 4),
              "valid_bleu": round(r.get("valid_bleu", float("nan")), 2),
              "tokens_per_s": round(r["tokens_per_s"], 1)} for r in trainer.history]
    hypotheses = trainer.translate([source for source, _ in test_pairs])
    references = [target for _, target in test_pairs]
    cased = bleu_score(hypotheses, references)
    lowered = bleu_score(hypotheses, references, lowercase=True)
    row = {"model": kind, "parameters": trainer.model.num_parameters(), "epochs": trainer.epoch,
           "steps": trainer.step, "minutes": curve[-1]["minutes"] if curve else 0,
           "tokens_per_s": round(sum(p["tokens_per_s"] for p in curve) / max(len(curve), 1), 1),
           "test_bleu": round(cased.score, 2), "test_bleu_lowercase": round(lowered.score, 2),
           "signature": cased.signature(), "signature_lowercase": lowered.signature()}
    for low, high in BUCKETS:
        name = bucket_name(low, high)
        chosen = [i for i, (source, _) in enumerate(test_pairs) if in_bucket(source, low, high)]
        row[f"sentences_{name}"] = len(chosen)
        row[f"bleu_lowercase_{name}"] = row[f"sequential_ops_{name}"] = ""   # an empty bucket
        if chosen:
            score = bleu_score([hypotheses[i] for i in chosen],
                               [references[i] for i in chosen], lowercase=True)
            row[f"bleu_lowercase_{name}"] = round(score.score, 2)
            # A batch of up to 32 sentences of the bucket, traced once.
            row[f"sequential_ops_{name}"] = sequential_ops(
                trainer, [test_pairs[i] for i in chosen[:32]])
    log(f"  {kind}: {row['epochs']} epochs, {row['steps']} steps, {row['tokens_per_s']:.0f} "
        f"target tokens/s; test BLEU {row['test_bleu']:.2f} ({row['signature']}), "
        f"{row['test_bleu_lowercase']:.2f} ({row['signature_lowercase']})")
    return row, curve, hypotheses


def plot(rows, curves, path, title):
    """Left: validation BLEU against minutes. Middle: test BLEU by source length.
    Right: sequential ops of a forward pass by source length."""
    plt = analysis.pyplot()
    if plt is None:
        return None
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 4.2))
    names = [bucket_name(low, high) for low, high in BUCKETS]
    width = 0.38
    for i, row in enumerate(rows):
        kind = row["model"]
        points = [(p["minutes"], p["valid_bleu"]) for p in curves if p["model"] == kind]
        left.plot(*zip(*points), marker="o", label=kind)
        offsets = [j + (i - 0.5) * width for j in range(len(names))]
        middle.bar(offsets, [row[f"bleu_lowercase_{n}"] or 0 for n in names], width, label=kind)
        right.plot(names, [row[f"sequential_ops_{n}"] or float("nan") for n in names],
                   marker="o", label=kind)
    left.set_xlabel("wall-clock minutes")
    left.set_ylabel("validation BLEU (cased, 200 sentences)")
    middle.set_xticks(range(len(names)), [f"{n} words" for n in names])
    middle.set_ylabel("test2016 BLEU (lower-cased)")
    right.set_xlabel("source length bucket")
    right.set_ylabel("sequential ops, one forward pass")
    right.set_yscale("log")
    for ax in (left, middle, right):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    return common.save_figure(fig, path)


def main(argv=None):
    parser = common.parser("real_translation", __doc__.splitlines()[0],
                           quick_help=f"{QUICK['minutes']:g} minutes of the tiny models (a smoke test)")
    parser.add_argument("--minutes", type=common.positive_float, default=None,
                        help=f"training minutes per model (default {FULL['minutes']:g})")
    parser.add_argument("--size", default=None, help="model preset (default base)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with train.tsv, val.tsv, test2016.tsv")
    parser.add_argument("--english-to-german", action="store_true",
                        help="translate English -> German (default: German -> English)")
    parser.add_argument("--test-sentences", type=common.positive_int, default=None,
                        help="score only the first N test sentences")
    parser.add_argument("train_options", nargs=argparse.REMAINDER,
                        help="after '--': more options for train (e.g. -- --lr 1e-3)")
    args = common.parse(parser, argv)
    data_dir = find_data(args.data_dir)
    if data_dir is None:
        reason = (f"Multi30k not found in {args.data_dir}" if args.data_dir
                  else multi30k_not_found())
        print(f"real_translation: skipped: {reason}")
        return None
    preset = dict(QUICK if args.quick else FULL)
    preset["minutes"] = args.minutes or preset["minutes"]
    preset["size"] = args.size or preset["size"]
    options = [o for o in args.train_options if o != "--"]
    out_dir = args.out_dir
    where = common.device_description(args.device)
    direction = "English -> German" if args.english_to_german else "German -> English"
    print(f"real_translation: Multi30k {direction}, {preset['size']} models, "
          f"{preset['minutes']:g} minutes each, both at once on one core each, on {where}")
    start = time.perf_counter()
    checkpoints = train_both(data_dir, out_dir, preset["minutes"], preset["size"],
                             not args.english_to_german, args.device, options)
    test = load_tsv(os.path.join(data_dir, FILES["test"]), reverse=not args.english_to_german)
    test = test[:args.test_sentences] if args.test_sentences else test
    rows, curves = [], []
    suffix = "" if not args.english_to_german else "_en_de"
    for kind, checkpoint in checkpoints.items():
        row, curve, hypotheses = analyse(kind, checkpoint, test, args.device)
        rows.append(row)
        curves += curve
        with open(os.path.join(out_dir, "runs", f"{kind}{suffix}.hyp.txt"), "w",
                  encoding="utf-8") as f:
            f.writelines(h + "\n" for h in hypotheses)
    stem = f"real_translation{suffix}"
    common.finish("real_translation", args.device, out_dir,
                  {stem: rows, f"{stem}_curves": curves}, [
        f"Multi30k {direction} from {data_dir}; {preset['size']} models, {preset['minutes']:g} "
        f"minutes each, trained at the same time with OPENBLAS_NUM_THREADS=1 each; extra train "
        f"options: {' '.join(options) or 'none'}",
        "test BLEU: greedy decoding of test2016, sacrebleu defaults (cased) and lower-cased; "
        "by bucket: lower-cased, source length in words; sequential_ops: the forward pass's "
        "critical path for a batch of up to 32 test sentences of the bucket"],
        plot=lambda path: plot(rows, curves, path, f"Multi30k {direction}, {preset['size']} "
                               f"models, {preset['minutes']:g} min each ({where})"),
        started=start)
    return rows, curves

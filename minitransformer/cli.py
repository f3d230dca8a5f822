"""``python -m minitransformer <command>`` (also the installed ``minitransformer`` command).

Commands: demo, train, translate, evaluate, data, table1, bench. ``--help`` on each.
A mistake in what a command is given (a missing file, a malformed corpus, a damaged
checkpoint) is reported on one line, ``minitransformer <command>: error: ...``, with exit
status 2; ``--debug`` shows the Python traceback instead.
"""
import argparse
import os
import sys

from . import backend, distributed

# Options that decide the model, its vocabulary, its data or its training: a resumed run
# takes all of them from its checkpoint, so giving one with --resume is an error.
_FIXED_BY_CHECKPOINT = ("model", "size", "data", "valid", "test", "reverse", "max_tokens",
                        "corpus_size", "vocab", "vocab_size", "min_freq", "batch_size",
                        "batch_tokens", "lr", "warmup", "seed", "average_last", "average_every",
                        "label_smoothing", "clip", "adam_beta2", "dropout")


class CommandError(Exception):
    """A mistake in what the user asked for, reported without a traceback."""


def _checked(kind, accept, expected):
    """An argparse type: ``text`` read as ``kind``, refused unless ``accept(value)``."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value
    return parse


positive_int = _checked(int, lambda value: value > 0, "a positive int")
positive_float = _checked(float, lambda value: value > 0, "a positive float")
# a probability to spread or drop, a decay rate
fraction = _checked(float, lambda value: 0 <= value < 1, "a number in [0, 1)")


def _add_common(parser):
    parser.add_argument("--device", choices=backend.DEVICES, default=None,
                        help="cpu (NumPy) or gpu (CuPy); default: $MINITRANSFORMER_DEVICE or cpu")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error")


def _device(args):
    device = backend.resolve_device(args.device)
    backend.set_default_device(device)   # parameters are created there too
    return device


def _decoding(args):
    return "greedy" if args.beam == 1 else f"beam {args.beam}, length penalty {args.length_penalty}"


def _print_bleu(label, hypotheses, pairs, args):
    """The cased score (sacrebleu's default) and the lower-cased one, each with its
    signature, so a reader knows which number is which."""
    from .translation.bleu import bleu_score
    references = [target for _, target in pairs]
    print(f"{label} ({len(pairs)} sentences, {_decoding(args)}):")
    for lowercase in (False, True):
        score = bleu_score(hypotheses, references, smooth="exp", lowercase=lowercase)
        print(f"  BLEU {score.score:6.2f}  {score.signature()}")


def cmd_demo(args):
    from .translation.demo import run
    run(device=_device(args), seconds_per_model=args.seconds, corpus_size=args.corpus_size,
        test_sentences=args.test_sentences, seed=args.seed, out_dir=args.out)


def cmd_train(args):
    from .translation.data import load_data
    from .translation.train import Trainer, data_paths, new_trainer
    device = _device(args)
    try:
        comm = distributed.init(True if args.distributed else None)   # None: one process
    except distributed.DistributedError as error:
        raise CommandError(str(error)) from None
    if comm is not None and not comm.is_root:
        sys.stdout = open(os.devnull, "w")   # rank 0 speaks for all ranks
    if args.resume:
        given = [f"--{name.replace('_', '-')}" for name in _FIXED_BY_CHECKPOINT
                 if getattr(args, name) is not None]
        if given:
            raise CommandError(f"--resume continues the run in {args.checkpoint} with its own "
                               f"model, data and settings; these options cannot change them: "
                               f"{', '.join(given)}")
        trainer = Trainer.load(args.checkpoint, device=device, comm=comm)
        data_args = trainer.settings.data
        print(f"resuming {trainer.model.config['kind']} from {args.checkpoint} at epoch "
              f"{trainer.epoch}, step {trainer.step}")
        data = load_data(**data_args)
    else:
        data_args = data_paths(dict(corpus_size=args.corpus_size or 20000, seed=args.seed or 0,
                                    tsv=args.data, valid=args.valid, test=args.test,
                                    max_tokens=args.max_tokens, reverse=bool(args.reverse)))
        data = load_data(**data_args)
        vocab = args.vocab or ("bpe" if args.data else "word")
        trainer = new_trainer(args.model or "transformer", data["train"], size=args.size or "tiny",
                              device=device, vocab=vocab, vocab_size=args.vocab_size or 8000,
                              min_freq=args.min_freq or 1, data=data_args, comm=comm,
                              batch_size=args.batch_size, batch_tokens=args.batch_tokens,
                              lr=args.lr, warmup=args.warmup, seed=args.seed,
                              average_last=args.average_last, average_every=args.average_every,
                              label_smoothing=args.label_smoothing, clip=args.clip,
                              adam_beta2=args.adam_beta2, dropout=args.dropout)
    print(f"{trainer.model.config['kind']}: {trainer.model.num_parameters():,} parameters, "
          f"{len(data['train'])} training pairs, vocabularies {len(trainer.src_vocab)} / "
          f"{len(trainer.tgt_vocab)} ({type(trainer.src_vocab).__name__}), device {device}")
    if comm is not None:
        print(f"data parallel over {comm.size} ranks: each takes 1/{comm.size} of every batch "
              f"of {trainer.settings.batch_size} pairs")
    trainer.fit(data["train"], data["valid"], epochs=args.epochs,
                time_budget=args.minutes * 60 if args.minutes else None,
                max_steps=args.max_steps, checkpoint_dir=args.checkpoint,
                log_every=args.log_every, trace_every=args.trace_every)
    if comm is not None and not comm.is_root:
        return   # rank 0 tests and writes the final checkpoint
    test = data["test"]
    sources = [source for source, _ in test]
    if test and len(trainer.snapshots) > 1:
        _print_bleu("test BLEU, last weights", trainer.translate(
            sources, beam_size=args.beam, length_penalty=args.length_penalty), test, args)
    averaged = trainer.average_snapshots()
    if averaged > 1:
        print(f"weights: the average of the last {averaged} snapshots")
        if args.checkpoint:
            trainer.save(args.checkpoint)
    if test:
        _print_bleu("test BLEU" + (", averaged weights" if averaged > 1 else ""),
                    trainer.translate(sources, beam_size=args.beam,
                                      length_penalty=args.length_penalty), test, args)
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint}")


def _read_lines(path=None):
    """Lines of ``path`` (or of stdin), without their line ends; empty lines kept."""
    if path is None:
        return sys.stdin.read().splitlines()
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def cmd_translate(args):
    from .translation.train import Trainer
    trainer = Trainer.load(args.checkpoint, device=_device(args))
    sentences = args.sentences or _read_lines()
    for line in trainer.translate(sentences, beam_size=args.beam,
                                  length_penalty=args.length_penalty):
        print(line)


def cmd_evaluate(args):
    from .translation.data import load_data
    from .translation.train import Trainer
    from .translation.tsv import load_tsv
    trainer = Trainer.load(args.checkpoint, device=_device(args))
    if args.data:
        test = load_tsv(args.data, reverse=trainer.settings.data.get("reverse", False))
    else:
        test = load_data(**trainer.settings.data)["test"]
        if not test:
            raise CommandError(f"the run in {args.checkpoint} had no test set: give one with "
                               f"--data TEST.tsv")
    hypotheses = trainer.translate([source for source, _ in test], beam_size=args.beam,
                                   length_penalty=args.length_penalty)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in hypotheses)
        print(f"translations: {args.output}")
    _print_bleu("test BLEU", hypotheses, test, args)


def cmd_data(args):
    from .translation import download
    download.run(args)


def cmd_table1(args):
    from .benchmarks.runner import main
    main(["table1", *args.rest])


def cmd_bench(args):
    from .benchmarks.runner import main
    main(args.rest)


def _add_decoding(parser):
    parser.add_argument("--beam", type=positive_int, default=1, help="beam size (1: greedy)")
    parser.add_argument("--length-penalty", type=float, default=1.0,
                        help="beam search: scores divided by length ** this (0: none)")


def build_parser():
    parser = argparse.ArgumentParser(prog="minitransformer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train a tiny Transformer and a tiny LSTM and compare them")
    _add_common(demo)
    demo.add_argument("--seconds", type=positive_float, default=100, help="training time per model")
    demo.add_argument("--corpus-size", type=positive_int, default=20000)
    demo.add_argument("--test-sentences", type=positive_int, default=500)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="demo_output", help="folder for the attention PNGs")
    demo.set_defaults(run=cmd_demo)

    train = sub.add_parser(
        "train", help="train a translator and save a checkpoint",
        description="Train a translator. With --resume, training continues from --checkpoint "
                    "with the checkpoint's model, data and settings: only the budget (--epochs, "
                    "--minutes), logging and final decoding options may be given.")
    _add_common(train)
    train.add_argument("--model", choices=["transformer", "lstm", "rnn"], default=None,
                       help="default: transformer")
    train.add_argument("--size", choices=["tiny", "small", "base"], default=None,
                       help="model preset (default: tiny)")
    train.add_argument("--data", default=None, help="TSV file of source<TAB>target training "
                       "pairs (default: the built-in corpus); split 80/10/10 when given alone")
    train.add_argument("--valid", default=None, help="validation TSV file, used whole")
    train.add_argument("--test", default=None, help="test TSV file, used whole")
    train.add_argument("--reverse", action="store_const", const=True, default=None,
                       help="with --data: translate column 2 -> column 1")
    train.add_argument("--max-tokens", type=positive_int, default=None,
                       help="drop training pairs with more words than this")
    train.add_argument("--corpus-size", type=positive_int, default=None,
                       help="pairs of the built-in corpus (default 20000)")
    train.add_argument("--vocab", choices=["word", "bpe"], default=None,
                       help="word: lower-cased words; bpe: cased subwords (default: bpe with "
                            "--data, word for the built-in corpus)")
    train.add_argument("--vocab-size", type=positive_int, default=None,
                       help="bpe: subwords per language (default 8000)")
    train.add_argument("--min-freq", type=positive_int, default=None,
                       help="word: drop rarer words (default 1)")
    train.add_argument("--epochs", type=positive_int, default=20)
    train.add_argument("--minutes", type=positive_float, default=None,
                       help="stop after this many minutes")
    train.add_argument("--max-steps", type=positive_int, default=None,
                       help="stop when this many training steps are done in all")
    train.add_argument("--batch-size", type=positive_int, default=None,
                       help="at most this many pairs per batch (default 64; 128 with --size base)")
    train.add_argument("--batch-tokens", type=positive_int, default=None,
                       help="at most this many padded tokens per batch")
    train.add_argument("--lr", type=positive_float, default=None,
                       help="Adam's rate; the warm-up peak for the Transformer")
    train.add_argument("--warmup", type=positive_int, default=None,
                       help="warm-up steps (Transformer, default 400)")
    # The recipe's other choices, each settable so that what it buys can be measured.
    train.add_argument("--label-smoothing", type=fraction, default=None,
                       help="probability spread over the vocabulary (default 0.1)")
    train.add_argument("--clip", type=positive_float, default=None,
                       help="largest gradient norm (default 1.0)")
    train.add_argument("--adam-beta2", type=fraction, default=None,
                       help="Adam's β2 (default 0.98 Transformer, 0.999 recurrent)")
    train.add_argument("--dropout", type=fraction, default=None,
                       help="dropout rate of the model (default: the size's preset)")
    train.add_argument("--average-last", type=positive_int, default=None,
                       help="finish with the average of the last K weight snapshots")
    train.add_argument("--average-every", type=positive_int, default=None,
                       help="take a snapshot every N steps (default: each epoch's end)")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--checkpoint", default=None, help="directory for the checkpoint")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    train.add_argument("--distributed", action="store_true",
                       help="data parallelism over MPI: run as mpiexec -n P python -m "
                            "minitransformer train ... (detected without this flag too); "
                            "batches keep their size, cut in P parts (needs the dist extra)")
    _add_decoding(train)
    train.add_argument("--log-every", type=int, default=50)
    train.add_argument("--trace-every", type=int, default=0,
                       help="trace every N-th step to show matmul share and sequential ops")
    train.set_defaults(run=cmd_train)

    translate = sub.add_parser("translate", help="translate sentences with a checkpoint")
    _add_common(translate)
    translate.add_argument("--checkpoint", required=True)
    _add_decoding(translate)
    translate.add_argument("sentences", nargs="*",
                           help="sentences (default: stdin, one a line)")
    translate.set_defaults(run=cmd_translate)

    evaluate = sub.add_parser("evaluate", help="test BLEU of a checkpoint")
    _add_common(evaluate)
    evaluate.add_argument("--checkpoint", required=True)
    _add_decoding(evaluate)
    evaluate.add_argument("--data", default=None, help="a TSV file to score, every line of it "
                          "(default: the test set of the training run)")
    evaluate.add_argument("--output", default=None,
                          help="write the translations here, one a line")
    evaluate.set_defaults(run=cmd_evaluate)

    data = sub.add_parser("data", help="download a corpus (see data multi30k --help)")
    corpora = data.add_subparsers(dest="corpus", required=True)
    multi30k = corpora.add_parser("multi30k", help="Multi30k English-German (research and "
                                  "education use only): train.tsv, val.tsv, test2016.tsv")
    multi30k.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    from .translation import download
    download.add_arguments(multi30k)
    multi30k.set_defaults(run=cmd_data)

    table1 = sub.add_parser("table1", help="measure Table 1 of the paper (see table1 --help)",
                            add_help=False)
    table1.add_argument("rest", nargs=argparse.REMAINDER)
    table1.set_defaults(run=cmd_table1)

    bench = sub.add_parser("bench", help="run the benchmarks (see bench --help)", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(run=cmd_bench)
    return parser


# Commands with parsers of their own: everything after the name is theirs, --help too.
_DELEGATED = {"table1": cmd_table1, "bench": cmd_bench}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in _DELEGATED:
        return _DELEGATED[argv[0]](argparse.Namespace(rest=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.resume and not args.checkpoint:
        parser.exit(2, "minitransformer train: error: --resume needs --checkpoint DIR\n")
    try:
        args.run(args)
    except (CommandError, ValueError, OSError, RuntimeError) as e:
        # What a user can fix gets one line; a bug elsewhere still shows its traceback.
        if args.debug:
            raise
        parser.exit(2, f"minitransformer {args.command}: error: {e}\n")


if __name__ == "__main__":
    main()

"""``python -m minitransformer <command>`` (also the installed ``minitransformer`` command).

Commands: demo, train, translate, evaluate, table1, bench. ``--help`` on each.
"""
import argparse
import sys

from . import backend


def _add_device(parser):
    parser.add_argument("--device", choices=backend.DEVICES, default=None,
                        help="cpu (NumPy) or gpu (CuPy); default: $MINITRANSFORMER_DEVICE or cpu")


def _device(args):
    device = backend.resolve_device(args.device)
    backend.set_default_device(device)   # parameters are created there too
    return device


def cmd_demo(args):
    from .translation.demo import run
    run(device=_device(args), seconds_per_model=args.seconds, corpus_size=args.corpus_size,
        test_sentences=args.test_sentences, seed=args.seed, out_dir=args.out)


def cmd_train(args):
    from .translation.data import load_data
    from .translation.train import Trainer, new_trainer
    device = _device(args)
    if args.resume:
        trainer = Trainer.load(args.checkpoint, device=device)
        data_args = trainer.settings["data"]
        print(f"resuming {trainer.model.config['kind']} from {args.checkpoint} at epoch "
              f"{trainer.epoch}, step {trainer.step}")
    else:
        data_args = dict(corpus_size=args.corpus_size, seed=args.seed, tsv=args.data,
                         max_tokens=args.max_tokens, reverse=args.reverse)
    data = load_data(**data_args)
    if not args.resume:
        trainer = new_trainer(args.model, data["train"], size=args.size, device=device,
                              min_freq=args.min_freq, data=data_args, batch_size=args.batch_size,
                              lr=args.lr, warmup=args.warmup, seed=args.seed)
    print(f"{trainer.model.config['kind']}: {trainer.model.num_parameters():,} parameters, "
          f"{len(data['train'])} training pairs, vocabularies {len(trainer.src_vocab)} / "
          f"{len(trainer.tgt_vocab)}, device {device}")
    budget = args.minutes * 60 if args.minutes else None
    trainer.fit(data["train"], data["valid"], epochs=args.epochs, time_budget=budget,
                checkpoint_dir=args.checkpoint, log_every=args.log_every,
                trace_every=args.trace_every)
    bleu = trainer.bleu(data["test"], beam_size=args.beam)
    print(f"test BLEU ({len(data['test'])} sentences, "
          f"{'greedy' if args.beam == 1 else f'beam {args.beam}'}): {bleu:.1f}")
    if args.checkpoint:
        print(f"checkpoint: {args.checkpoint}")


def cmd_translate(args):
    from .translation.train import Trainer
    trainer = Trainer.load(args.checkpoint, device=_device(args))
    sentences = args.sentences or [line.strip() for line in sys.stdin if line.strip()]
    for line in trainer.translate(sentences, beam_size=args.beam):
        print(line)


def cmd_evaluate(args):
    from .translation.data import load_data
    from .translation.train import Trainer
    trainer = Trainer.load(args.checkpoint, device=_device(args))
    data_args = dict(trainer.settings["data"])
    if args.data:
        data_args.update(tsv=args.data)
    test = load_data(**data_args)["test"]
    bleu = trainer.bleu(test, beam_size=args.beam)
    print(f"test BLEU ({len(test)} sentences, "
          f"{'greedy' if args.beam == 1 else f'beam {args.beam}'}): {bleu:.1f}")


def cmd_table1(args):
    from .table1 import main
    main(args.rest)


def cmd_bench(args):
    from .benchmarks.quick import main
    main(args.rest)


def build_parser():
    parser = argparse.ArgumentParser(prog="minitransformer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train a tiny Transformer and a tiny LSTM and compare them")
    _add_device(demo)
    demo.add_argument("--seconds", type=float, default=100, help="training time per model")
    demo.add_argument("--corpus-size", type=int, default=20000)
    demo.add_argument("--test-sentences", type=int, default=500)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="demo_output", help="folder for the attention PNGs")
    demo.set_defaults(run=cmd_demo)

    train = sub.add_parser("train", help="train a translator and save a checkpoint")
    _add_device(train)
    train.add_argument("--model", choices=["transformer", "lstm", "rnn"], default="transformer")
    train.add_argument("--size", choices=["tiny", "small"], default="tiny")
    train.add_argument("--data", default=None, help="a TSV file of source<TAB>target lines "
                                                    "(default: the built-in corpus)")
    train.add_argument("--max-tokens", type=int, default=None, help="with --data: drop longer pairs")
    train.add_argument("--reverse", action="store_true", help="with --data: translate column 2 -> 1")
    train.add_argument("--corpus-size", type=int, default=20000)
    train.add_argument("--min-freq", type=int, default=1)
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--minutes", type=float, default=None, help="stop after this many minutes")
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--lr", type=float, default=None, help="Adam rate (recurrent models)")
    train.add_argument("--warmup", type=int, default=None, help="warm-up steps (Transformer)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint", default=None, help="directory for the checkpoint")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    train.add_argument("--beam", type=int, default=1, help="beam size for the final test BLEU")
    train.add_argument("--log-every", type=int, default=50)
    train.add_argument("--trace-every", type=int, default=0,
                       help="trace every N-th step to show matmul share and sequential ops")
    train.set_defaults(run=cmd_train)

    translate = sub.add_parser("translate", help="translate sentences with a checkpoint")
    _add_device(translate)
    translate.add_argument("--checkpoint", required=True)
    translate.add_argument("--beam", type=int, default=1)
    translate.add_argument("sentences", nargs="*", help="sentences (default: lines of stdin)")
    translate.set_defaults(run=cmd_translate)

    evaluate = sub.add_parser("evaluate", help="test BLEU of a checkpoint")
    _add_device(evaluate)
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--beam", type=int, default=1)
    evaluate.add_argument("--data", default=None, help="evaluate on this TSV file's test split")
    evaluate.set_defaults(run=cmd_evaluate)

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
    args = build_parser().parse_args(argv)
    if args.command == "train" and args.resume and not args.checkpoint:
        raise SystemExit("minitransformer train: --resume needs --checkpoint DIR")
    args.run(args)


if __name__ == "__main__":
    main()

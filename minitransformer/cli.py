"""``python -m minitransformer <command>`` (also the installed ``minitransformer`` command).

Commands: demo, train, translate, evaluate, data, table1, bench, docs. ``--help`` on each.

Every command keeps one contract. A mistake in what it is given (an option's value, two
options that mean nothing together, a missing or malformed file, a damaged checkpoint,
a place that cannot be written) is found before any work wherever it can be, and is
reported in one line on stderr,

    minitransformer <command>: error: <what> (<option>, got <value>, expected <what>)

with exit status 2; ``--debug`` shows the Python traceback instead. Ctrl-C ends a
command with one line saying what it leaves behind, and exit status 130. A reader that
stops reading (``translate ... | head -1``) ends it quietly, with the status a shell
gives a writer whose pipe was closed, 141. Nothing is overwritten by accident: ``train``
refuses a folder that holds a checkpoint unless told what to do with it, and
``evaluate --output`` refuses to write over a file it reads.
"""
import argparse
import contextlib
import os
import sys
import warnings

from . import backend, distributed
from .benchmarks.common import (CommandError, CommandParser, check_writable_file,
                                check_writable_folder, end_process, error_line, finite_float,
                                fraction, int_from, positive_float, positive_int)

DEFAULT_EPOCHS = 20
DEFAULT_VOCAB_SIZE = 8000   # bpe: subwords per language
DEFAULT_CORPUS_SIZE = 20000
# Options that decide the model, its vocabulary, its data or its training: a resumed run
# takes them from its checkpoint, so with --resume each may only repeat its stored value.
_FIXED_BY_CHECKPOINT = ("model", "size", "data", "valid", "test", "reverse", "max_tokens",
                        "corpus_size", "vocab", "vocab_size", "min_freq", "batch_size",
                        "batch_tokens", "lr", "warmup", "seed", "average_last", "average_every",
                        "label_smoothing", "clip", "adam_beta2", "dropout")
_DATA_OPTIONS = {"tsv": "--data", "valid": "--valid", "test": "--test"}   # load_data's names
SEED = int_from(0, 2 ** 32 - 1)   # the seeds NumPy's generators take


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the command leaves behind (the rest of its one line)."""


def _option(name):
    """An argparse destination as the user types it: vocab_size -> --vocab-size."""
    return "--" + name.replace("_", "-")


def _add_common(parser):
    parser.add_argument("--device", choices=backend.DEVICES, default=None,
                        help="cpu (NumPy) or gpu (CuPy); default: $MINITRANSFORMER_DEVICE or cpu")
    _add_debug(parser)


def _add_debug(parser):
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of its one line")


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


def _same_file(first, second):
    """True if the two paths name one file (through links too); for a path that does
    not exist yet, if they resolve to the same place."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def cmd_demo(args):
    check_writable_folder(args.out, "--out")
    from .translation.demo import run
    run(device=_device(args), seconds_per_model=args.seconds, corpus_size=args.corpus_size,
        test_sentences=args.test_sentences, seed=args.seed, out_dir=args.out)


# ---------------------------------------------------------------- train
def cmd_train(args):
    """Train a translator and save it in --checkpoint DIR, atomically, at the end of
    every epoch. A folder that holds a checkpoint already is refused, unless --resume
    (continue it) or --overwrite (replace it) is given; while a training writes to a
    folder, its lock file train.lock (the process id) refuses a second training there.
    With --resume the run continues with the checkpoint's model, data and settings:
    the options that decide them may repeat their stored values, not change them, and
    the data files must be the ones it was trained on (checked by their sha256;
    --allow-changed-data trains on them as they are now). --epochs and --max-steps
    count the whole training, a resumed run's earlier steps included: --resume
    --epochs 30 on a checkpoint of 20 epochs trains 10 more, and a limit the checkpoint
    has reached already is an error. --minutes is the time of this run."""
    _check_train_options(args)
    if args.checkpoint:
        check_writable_folder(args.checkpoint, "--checkpoint")
        if not args.resume and not args.overwrite:
            _refuse_existing_checkpoint(args.checkpoint)
    device = _device(args)
    try:
        comm = distributed.init(True if args.distributed else None)   # None: one process
    except distributed.DistributedError as error:
        raise CommandError(str(error)) from None
    root = comm is None or comm.is_root
    if not root:
        sys.stdout = open(os.devnull, "w")   # rank 0 speaks for all ranks
    from .translation import checkpoint
    # Rank 0 alone writes the checkpoint, so it alone holds the lock.
    lock = (checkpoint.writer_lock(args.checkpoint) if args.checkpoint and root
            else contextlib.nullcontext())
    with lock:
        # Checked again under the lock: a training that held it may have saved since.
        if args.checkpoint and root and not (args.resume or args.overwrite):
            _refuse_existing_checkpoint(args.checkpoint)
        trainer, data = _resumed(args, device, comm) if args.resume else _new(args, device, comm)
        earlier = _file_identity(args.checkpoint) if args.overwrite else None
        try:
            _train_and_test(trainer, data, args, comm)
        except KeyboardInterrupt:
            raise Interrupted(_left_behind(trainer, args.checkpoint, earlier)) from None


def _vocab_kind(args):
    """--vocab, or its default: subwords for TSV files, words for the built-in corpus."""
    return args.vocab or ("bpe" if args.data else "word")


def _check_train_options(args):
    """The combinations of train's options that mean nothing, each an error naming both."""
    pairs = [("resume", "overwrite", "--resume continues the checkpoint, --overwrite "
              "replaces it: give one of them")]
    needs = [("resume", "checkpoint", "--checkpoint DIR, the run to continue"),
             ("overwrite", "checkpoint", "--checkpoint DIR, the folder to write over"),
             ("allow_changed_data", "resume", "--resume: only a resumed run has data to compare")]
    if not args.resume:   # with --resume these options must equal the checkpoint's instead
        vocab = _vocab_kind(args)
        needs += [("reverse", "data", "--data TRAIN.tsv: --reverse swaps the columns of TSV "
                   "files; the built-in corpus has none"),
                  ("valid", "data", "--data TRAIN.tsv: the model is trained on it"),
                  ("test", "data", "--data TRAIN.tsv: the model is trained on it")]
        pairs += [("corpus_size", "data", "--corpus-size sizes the built-in corpus, which "
                   "--data replaces")]
        if args.vocab_size is not None and vocab == "word":
            raise CommandError(f"--vocab-size with the word vocabulary{_default_vocab(args)}",
                               expected="--vocab bpe: only a subword vocabulary has a size "
                                        "to choose")
        if args.min_freq is not None and vocab == "bpe":
            raise CommandError(f"--min-freq with the bpe vocabulary{_default_vocab(args)}",
                               expected="--vocab word: only a word vocabulary drops rare words")
        if args.average_every is not None and (args.average_last or 1) == 1:
            raise CommandError("--average-every without --average-last",
                               expected="--average-last K above 1: the snapshots taken every N "
                                        "steps are there to be averaged")
        _check_distinct_files(args)
    for first, second, expected in needs:
        if getattr(args, first) and not getattr(args, second):
            raise CommandError(f"{_option(first)} without {_option(second)}", expected=expected)
    for first, second, expected in pairs:
        if getattr(args, first) and getattr(args, second):
            raise CommandError(f"{_option(first)} with {_option(second)}", expected=expected)


def _default_vocab(args):
    if args.vocab:
        return ""
    return " (the default for the built-in corpus)" if not args.data else " (the default with --data)"


def _check_distinct_files(args):
    """A test set must be unseen in training: --data, --valid and --test, three files."""
    given = [(option, path) for option, path in
             (("--data", args.data), ("--valid", args.valid), ("--test", args.test)) if path]
    for i, (first, first_path) in enumerate(given):
        for second, second_path in given[i + 1:]:
            if _same_file(first_path, second_path):
                raise CommandError(f"{first} and {second} name the same file", got=second_path,
                                   expected="different files: a model is never tested or "
                                            "validated on the pairs it learned")


def _refuse_existing_checkpoint(directory):
    from .translation import checkpoint
    if os.path.exists(os.path.join(directory, checkpoint.FILENAME)):
        raise CommandError(f"{directory} holds a checkpoint already: "
                           f"{_describe_checkpoint(directory)}", "--checkpoint", directory,
                           "a folder without one; add --resume to continue it, or --overwrite "
                           "to replace it")


def _count(number, noun):
    """ "1 epoch", "3 epochs"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _describe_checkpoint(directory):
    """What a checkpoint holds, in a few words: model, epochs, step, last valid BLEU."""
    from .translation import checkpoint
    try:
        meta = checkpoint.load_meta(directory)
        progress = meta["progress"]
        words = [meta["model_config"]["kind"], _count(progress["epoch"], "epoch"),
                 f"step {progress['step']}"]
        scores = [record["valid_bleu"] for record in progress["history"] if "valid_bleu" in record]
    except (checkpoint.CheckpointError, OSError, KeyError, TypeError):
        return f"an unreadable {checkpoint.FILENAME}"
    if scores:
        words.append(f"valid BLEU {scores[-1]:.2f}")
    return ", ".join(words)


def _file_identity(directory):
    """What tells whether ``directory``'s checkpoint file was replaced since (None: none)."""
    from .translation import checkpoint
    try:
        found = os.stat(checkpoint.checkpoint_file(directory))
    except (OSError, TypeError):
        return None
    return found.st_ino, found.st_mtime_ns


def _left_behind(trainer, directory, earlier=None):
    """What an interrupted training leaves: the rest of the "interrupted" line.
    ``earlier``: the identity of the checkpoint file --overwrite was to replace."""
    from .translation import checkpoint
    here = f"at step {trainer.step}"
    if not directory:
        return f"{here}; nothing saved (no --checkpoint)"
    try:
        saved = checkpoint.load_meta(directory)["progress"]["step"]
    except (checkpoint.CheckpointError, OSError, KeyError, TypeError):
        return f"{here}; no checkpoint was written to {directory}"
    if earlier is not None and _file_identity(directory) == earlier:
        return (f"{here}, before its first save; the earlier training's checkpoint (step "
                f"{saved}) is unchanged ({directory})")
    return f"{here}; the checkpoint at step {saved} is intact ({directory})"


def _new(args, device, comm):
    """A new Trainer and its data, from the options (their defaults where not given)."""
    from .translation.data import data_sha256, load_data
    from .translation.train import data_paths, new_trainer
    data_args = data_paths(dict(corpus_size=args.corpus_size or DEFAULT_CORPUS_SIZE,
                                seed=args.seed or 0, tsv=args.data, valid=args.valid,
                                test=args.test, max_tokens=args.max_tokens,
                                reverse=bool(args.reverse)))
    data = load_data(**data_args)
    data_args["sha256"] = data_sha256(data_args)   # so that --resume can tell a changed file
    trainer = new_trainer(args.model or "transformer", data["train"], size=args.size or "tiny",
                          device=device, vocab=_vocab_kind(args),
                          vocab_size=args.vocab_size or DEFAULT_VOCAB_SIZE,
                          min_freq=args.min_freq or 1, data=data_args, comm=comm,
                          batch_size=args.batch_size, batch_tokens=args.batch_tokens, lr=args.lr, warmup=args.warmup,
                          seed=args.seed, average_last=args.average_last,
                          average_every=args.average_every,
                          label_smoothing=args.label_smoothing, clip=args.clip,
                          adam_beta2=args.adam_beta2, dropout=args.dropout)
    return trainer, data


def _resumed(args, device, comm):
    """The Trainer of --checkpoint and its data, after checking that the options given
    agree with it and leave it something to train."""
    from .translation.data import DataChanged, data_sha256, load_data
    trainer = _load_checkpoint(args, device, comm)
    _check_resumed_options(args, trainer)
    _check_budget_left(args, trainer)
    print(f"resuming {trainer.model.config['kind']} from {args.checkpoint} at epoch "
          f"{trainer.epoch}, step {trainer.step}")
    data_args = trainer.settings.data
    if args.allow_changed_data:
        data_args = dict(data_args, sha256=None)   # the files as they are now
    try:
        data = load_data(**data_args)
    except DataChanged as error:
        raise CommandError(f"{error.path} has changed since {args.checkpoint} was trained on "
                           f"it", "--resume", f"sha256 {error.got[:12]}...",
                           f"{error.expected[:12]}..., as recorded; restore the file, or add "
                           f"--allow-changed-data to train on it as it is now") from None
    if args.allow_changed_data:   # the next resume compares with the files as they are now
        trainer.settings.data = dict(data_args, sha256=data_sha256(data_args))
    return trainer, data


def _stored_options(trainer):
    """{option: value} of the fixed options, as a resumed run's checkpoint has them.
    --vocab-size and --min-freq are missing: the checkpoint keeps the vocabulary, not
    what it was built with."""
    from .translation.bpe import BPEVocabulary
    from .translation.train import PRESETS
    settings, config, data = trainer.settings, trainer.model.config, trainer.settings.data
    kind = config["kind"]
    stored = {name: getattr(settings, name) for name in (
        "batch_size", "batch_tokens", "warmup", "seed", "average_last", "average_every",
        "label_smoothing", "clip")}
    adam = trainer.optimizer.param_groups[0]
    sizes = [size for size, preset in PRESETS[kind].items()
             if all(config.get(key) == value for key, value in preset.items() if key != "dropout")]
    stored.update(
        model=kind, size=sizes[0] if sizes else "(none: sizes of its own)",
        data=data.get("tsv"), valid=data.get("valid"), test=data.get("test"),
        reverse=bool(data.get("reverse")), max_tokens=data.get("max_tokens"),
        corpus_size=None if data.get("tsv") else data.get("corpus_size"),
        vocab="bpe" if isinstance(trainer.src_vocab, BPEVocabulary) else "word",
        lr=trainer.schedule.peak_lr if trainer.schedule else adam["lr"],
        adam_beta2=adam["betas"][1], dropout=config["dropout"])
    return stored


def _check_resumed_options(args, trainer):
    stored = _stored_options(trainer)
    refused = []
    for name in _FIXED_BY_CHECKPOINT:
        given = getattr(args, name)
        if given is None:
            continue
        if name not in stored:
            refused.append(f"{_option(name)} (not kept in the checkpoint)")
            continue
        if name in ("data", "valid", "test"):
            given = os.path.abspath(given)   # the checkpoint keeps absolute paths
        if given != stored[name]:
            refused.append(f"{_option(name)} {given} (the checkpoint's: {stored[name]})")
    if refused:
        raise CommandError(f"--resume continues the run in {args.checkpoint} with its own "
                           f"model, data and settings", got=", ".join(refused),
                           expected="no such option, or the checkpoint's value")


def _check_budget_left(args, trainer):
    """--epochs and --max-steps count the whole training: each must be above what the
    checkpoint has done, or there would be nothing to train."""
    epochs = args.epochs or DEFAULT_EPOCHS
    if trainer.epoch >= epochs:
        given = str(epochs) if args.epochs else f"{epochs} (the default)"
        raise CommandError(f"{args.checkpoint} has trained {_count(trainer.epoch, 'epoch')} "
                           f"already",
                           "--epochs", given, f"more than {trainer.epoch}: --epochs counts the "
                                              f"epochs of the whole training")
    if args.max_steps is not None and args.max_steps <= trainer.step:
        raise CommandError(f"{args.checkpoint} has trained {_count(trainer.step, 'step')} "
                           f"already",
                           "--max-steps", args.max_steps, f"more than {trainer.step}: "
                                                          f"--max-steps counts the steps of the "
                                                          f"whole training")


def _train_and_test(trainer, data, args, comm):
    print(f"{trainer.model.config['kind']}: {trainer.model.num_parameters():,} parameters, "
          f"{len(data['train'])} training pairs, vocabularies {len(trainer.src_vocab)} / "
          f"{len(trainer.tgt_vocab)} ({type(trainer.src_vocab).__name__}), device "
          f"{trainer.device}")
    if comm is not None:
        print(f"data parallel over {comm.size} ranks: each takes 1/{comm.size} of every batch "
              f"of {trainer.settings.batch_size} pairs")
    epochs = args.epochs or DEFAULT_EPOCHS   # in all, a resumed run's earlier ones included
    trainer.fit(data["train"], data["valid"], epochs=epochs - trainer.epoch,
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


# ---------------------------------------------------------------- translate, evaluate
def _check_sentences(sentences):
    """Sentences of the command line must be text: the shell passes any bytes."""
    for number, sentence in enumerate(sentences, start=1):
        try:
            sentence.encode("utf-8")
        except UnicodeEncodeError:
            raise CommandError("not valid UTF-8", f"sentence {number} of the command line",
                               os.fsencode(sentence), "UTF-8 text") from None


def _load_checkpoint(args, device, comm=None):
    """The Trainer saved at ``--checkpoint``, on ``device``."""
    from .translation import checkpoint
    from .translation.train import Trainer
    if not os.path.exists(checkpoint.checkpoint_file(args.checkpoint)):
        raise CommandError("no checkpoint there", "--checkpoint", args.checkpoint,
                           f"a folder holding {checkpoint.FILENAME}, as train writes it")
    return Trainer.load(args.checkpoint, device=device, comm=comm)


def cmd_translate(args):
    from .translation.tsv import text_lines
    _check_sentences(args.sentences)
    trainer = _load_checkpoint(args, _device(args))
    # Bytes, so that a line that is not UTF-8 is named; a stdin replaced by text (a
    # test's StringIO) has no buffer and is text already.
    stdin = getattr(sys.stdin, "buffer", None)
    sentences = args.sentences or (
        [text for _, text in text_lines(stdin, "stdin")] if stdin is not None
        else sys.stdin.read().splitlines())
    for line in trainer.translate(sentences, beam_size=args.beam,
                                  length_penalty=args.length_penalty):
        print(line)


def _refuse_to_overwrite(output, inputs):
    """--output must not be any of the files ``inputs`` ({what: path}) the command reads."""
    for what, path in inputs.items():
        if path and _same_file(output, path):
            raise CommandError("it would write over a file it reads", "--output", output,
                               f"a file other than {what} ({path})")


def cmd_evaluate(args):
    from .translation import checkpoint
    from .translation.data import DATA_FILES, DataChanged, load_data
    from .translation.tsv import load_tsv
    if args.output:
        check_writable_file(args.output, "--output")
        _refuse_to_overwrite(args.output, {"--checkpoint": checkpoint.checkpoint_file(args.checkpoint),
                                           "--data": args.data})
    trainer = _load_checkpoint(args, _device(args))
    data_args = trainer.settings.data
    if args.output:
        _refuse_to_overwrite(args.output, {f"the training's {_DATA_OPTIONS[name]}": data_args.get(name)
                                           for name in DATA_FILES})
    if args.data:
        test = load_tsv(args.data, reverse=data_args.get("reverse", False))
    else:
        try:
            test = load_data(**data_args)["test"]
        except DataChanged as error:
            raise CommandError(f"{error.path} has changed since {args.checkpoint} was trained "
                               f"on it: its test set would not be the one", "--checkpoint",
                               args.checkpoint, f"its data as recorded; give --data TEST.tsv "
                                                f"to score a file as it is now") from None
        if not test:
            raise CommandError(f"the run in {args.checkpoint} had no test set", "--checkpoint",
                               args.checkpoint, "a run with a test set, or --data TEST.tsv")
    hypotheses = trainer.translate([source for source, _ in test], beam_size=args.beam,
                                   length_penalty=args.length_penalty)
    if args.output:
        text = "".join(line + "\n" for line in hypotheses)
        checkpoint.write_atomically(args.output, text.encode("utf-8"))
        print(f"translations: {args.output}")
    _print_bleu("test BLEU", hypotheses, test, args)


# ---------------------------------------------------------------- data, docs, benchmarks
def cmd_data(args):
    check_writable_folder(args.dir, "--dir")
    from .translation import download
    download.run(args)


def cmd_docs(args):
    from . import docs
    root = args.root or docs.DEFAULT_ROOT
    if not os.path.isdir(os.path.join(root, "bench", "results")):
        raise CommandError("not the repository's folder", "--root",
                           root if args.root else f"{root} (the default)",
                           "the folder holding bench/results/")
    status = docs.main((["--check"] if args.check else []) + ["--root", root])
    if status:
        sys.exit(status)


def cmd_table1(argv):
    from .benchmarks import table1
    return table1.main(argv, command="table1")


def cmd_bench(argv):
    from .benchmarks.runner import main
    result = main(argv)
    # The suite returns its summary rows: a benchmark that failed fails the command.
    failed = isinstance(result, list) and any(row["status"] != "ok" for row in result)
    return 1 if failed else 0


def _add_decoding(parser):
    from .translation.decode import MAX_BEAM
    parser.add_argument("--beam", type=int_from(1, MAX_BEAM), default=1,
                        help=f"beam size (1: greedy; at most {MAX_BEAM})")
    parser.add_argument("--length-penalty", type=finite_float, default=1.0,
                        help="beam search: scores divided by length ** this (0: none)")


def _command(sub, name, **kwargs):
    """A subcommand's parser, which its namespace names (so its errors carry its name)."""
    parser = sub.add_parser(name, **kwargs)
    parser.set_defaults(command_parser=parser)
    return parser


def build_parser():
    from .translation.bpe import _FIRST_MERGE_ID as SMALLEST_BPE   # specials + 256 bytes
    parser = CommandParser(prog="minitransformer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = _command(sub, "demo", help="train a tiny Transformer and a tiny LSTM and compare them")
    _add_common(demo)
    demo.add_argument("--seconds", type=positive_float, default=100, help="training time per model")
    demo.add_argument("--corpus-size", type=positive_int, default=DEFAULT_CORPUS_SIZE)
    demo.add_argument("--test-sentences", type=positive_int, default=500)
    demo.add_argument("--seed", type=SEED, default=0)
    demo.add_argument("--out", default="demo_output", help="folder for the attention PNGs")
    demo.set_defaults(run=cmd_demo)

    train = _command(sub, "train", help="train a translator and save a checkpoint",
                     description=" ".join(cmd_train.__doc__.split()))
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
                       help=f"pairs of the built-in corpus (default {DEFAULT_CORPUS_SIZE})")
    train.add_argument("--vocab", choices=["word", "bpe"], default=None,
                       help="word: lower-cased words; bpe: cased subwords (default: bpe with "
                            "--data, word for the built-in corpus)")
    train.add_argument("--vocab-size", type=int_from(SMALLEST_BPE), default=None,
                       help=f"bpe: subwords per language (default {DEFAULT_VOCAB_SIZE})")
    train.add_argument("--min-freq", type=positive_int, default=None,
                       help="word: drop rarer words (default 1)")
    train.add_argument("--epochs", type=positive_int, default=None,
                       help=f"stop when this many epochs are done in all, a resumed run's "
                            f"included (default {DEFAULT_EPOCHS})")
    train.add_argument("--minutes", type=positive_float, default=None,
                       help="stop after this many minutes of this run")
    train.add_argument("--max-steps", type=positive_int, default=None,
                       help="stop when this many training steps are done in all, a resumed "
                            "run's included")
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
    train.add_argument("--seed", type=SEED, default=None)
    train.add_argument("--checkpoint", default=None, help="directory for the checkpoint")
    train.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the checkpoint in --checkpoint with a new training")
    train.add_argument("--allow-changed-data", action="store_true",
                       help="with --resume: train on the data files as they are now, although "
                            "their sha256 differs from the checkpoint's record")
    train.add_argument("--distributed", action="store_true",
                       help="data parallelism over MPI: run as mpiexec -n P python -m "
                            "minitransformer train ... (detected without this flag too); "
                            "batches keep their size, cut in P parts (needs the dist extra)")
    _add_decoding(train)
    train.add_argument("--log-every", type=int_from(0), default=50,
                       help="a progress line every N steps (default 50; 0: none)")
    train.add_argument("--trace-every", type=int_from(0), default=0,
                       help="trace every N-th step to show matmul share and sequential ops "
                            "(default 0: never)")
    train.set_defaults(run=cmd_train)

    translate = _command(sub, "translate", help="translate sentences with a checkpoint")
    _add_common(translate)
    translate.add_argument("--checkpoint", required=True)
    _add_decoding(translate)
    translate.add_argument("sentences", nargs="*",
                           help="sentences (default: stdin, one a line)")
    translate.set_defaults(run=cmd_translate)

    evaluate = _command(sub, "evaluate", help="test BLEU of a checkpoint")
    _add_common(evaluate)
    evaluate.add_argument("--checkpoint", required=True)
    _add_decoding(evaluate)
    evaluate.add_argument("--data", default=None, help="a TSV file to score, every line of it "
                          "(default: the test set of the training run)")
    evaluate.add_argument("--output", default=None,
                          help="write the translations here, one a line (atomically; never over "
                               "a file the command reads)")
    evaluate.set_defaults(run=cmd_evaluate)

    data = _command(sub, "data", help="download a corpus (see data multi30k --help)")
    corpora = data.add_subparsers(dest="corpus", required=True)
    multi30k = _command(corpora, "multi30k", help="Multi30k English-German (research and "
                        "education use only): train.tsv, val.tsv, test2016.tsv")
    _add_debug(multi30k)
    from .translation import download
    download.add_arguments(multi30k, seconds=positive_float)
    multi30k.set_defaults(run=cmd_data)

    docs = _command(sub, "docs", help="write docs/results.md and the README's table from "
                    "bench/results/, or --check them")
    docs.add_argument("--check", action="store_true",
                      help="fail (exit status 1) if the committed docs differ from what would "
                           "be generated")
    docs.add_argument("--root", default=None,
                      help="the repository's folder (default: the one holding this package)")
    _add_debug(docs)
    docs.set_defaults(run=cmd_docs)

    # Listed for --help; main hands everything after their names to their own parsers.
    table1 = _command(sub, "table1", help="measure Table 1 of the paper (see table1 --help)",
                      add_help=False)
    table1.add_argument("rest", nargs=argparse.REMAINDER)
    bench = _command(sub, "bench", help="run the benchmarks (see bench --help)", add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


# Commands with parsers of their own: everything after the name is theirs, --help too.
_DELEGATED = {"table1": cmd_table1, "bench": cmd_bench}


def _command_named(argv):
    """The command of ``argv`` as error lines name it before its parser has read it."""
    if not argv or argv[0].startswith("-"):
        return ""
    from .benchmarks.runner import BENCHMARKS
    named = {"bench": BENCHMARKS, "data": ("multi30k",)}.get(argv[0], ())
    if len(argv) > 1 and argv[1] in named:
        return f"{argv[0]} {argv[1]}"   # "bench decoding", "data multi30k"
    return argv[0]                      # an unknown name is the command's own mistake


def _one_line_warnings(command):
    """A ``warnings.showwarning`` that writes a warning as one line naming ``command``."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"minitransformer {command}: warning: {message}", file=sys.stderr)
    return show


def _stdout_to_devnull():
    """After a broken pipe: Python flushes stdout once more at exit, and would fail again."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv=None):
    """Run the command ``argv`` (default: the process's arguments); its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    command = _command_named(argv)
    try:
        with warnings.catch_warnings():
            if not any(arg in ("-h", "--help", "--device") or arg.startswith("--device=")
                       for arg in argv):
                backend.default_device()   # a bad $MINITRANSFORMER_DEVICE: every command's mistake
            if argv and argv[0] in _DELEGATED:
                warnings.showwarning = _one_line_warnings(command)
                result = _DELEGATED[argv[0]](argv[1:])
            else:
                args = build_parser().parse_args(argv)
                command = args.command_parser.prog.split(" ", 1)[1]   # "train", "data multi30k"
                warnings.showwarning = _one_line_warnings(command)
                result = args.run(args)
            sys.stdout.flush()   # a closed pipe shows here, not in Python's flush at exit
        return result or 0
    except KeyboardInterrupt as interrupt:
        if debug:
            raise
        end_process(f"minitransformer {command}: interrupted{' ' + str(interrupt) if str(interrupt) else ''}",
                    130)
    except BrokenPipeError:
        # The reader stopped reading (translate ... | head -1): nothing went wrong, so
        # nothing is said; 141 = 128 + SIGPIPE, the status a shell reports for it.
        _stdout_to_devnull()
        end_process(None, 141)
    except (ValueError, OSError, RuntimeError) as error:
        # What a user can fix gets one line; a bug elsewhere still shows its traceback.
        if debug:
            raise
        end_process(error_line(command, error), 2)


if __name__ == "__main__":
    sys.exit(main())

"""Training a translator: teacher forcing, label smoothing, Adam with warm-up, clipping.

One :class:`Trainer` serves both models. A training step:

1. the model reads the source and the whole shifted target (teacher forcing) and
   predicts every target position: logits (batch, T, vocab);
2. label-smoothed cross-entropy against the target, padding ignored;
3. backward, gradient clipping, an Adam step, the learning-rate schedule.

Batches are cut from length-sorted pools, by pair count and (``batch_tokens``) by
padded size, so a batch of short sentences holds more of them and little padding.
Every epoch ends with validation loss and BLEU and an atomic checkpoint (model,
optimizer, schedule, vocabularies, settings, progress and the random state), so
``--resume`` continues the very same loss curve.
"""
import math
import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields

from .. import backend, optim
from ..functional import cross_entropy
from .._tensor import no_grad
from ..trace import trace
from . import checkpoint
from .batching import encode_pairs, make_batches
from .bleu import corpus_bleu
from .bpe import BPEVocabulary, vocabulary_from_dict
from .cached_decoding import CachedTransformerDecoder
from .decode import beam_search, greedy_decode
from .models import RNNTranslator, TransformerTranslator, build_model
from .vocab import Vocabulary

# Model sizes. "tiny" trains in the demo's minutes on two cores; it uses no dropout: on
# the built-in corpus, whose sentences all follow one grammar, dropout only slowed
# learning (valid BLEU after 6 epochs: Transformer 57 with dropout 0.1, 85 without; LSTM
# 88 and 92). "small" is for longer runs; "base" is the Transformer that published
# Multi30k tutorials train (d_model 256, 3+3 layers, 8 heads, feed-forward 512), and an
# LSTM encoder-decoder of about the same number of parameters.
PRESETS = {
    "transformer": {
        "tiny": dict(d_model=64, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                     dim_feedforward=128, dropout=0.0),
        "small": dict(d_model=128, nhead=4, num_encoder_layers=3, num_decoder_layers=3,
                      dim_feedforward=256, dropout=0.1),
        "base": dict(d_model=256, nhead=8, num_encoder_layers=3, num_decoder_layers=3,
                     dim_feedforward=512, dropout=0.1),
    },
    "lstm": {
        "tiny": dict(embed_dim=64, hidden_size=128, num_layers=1, dropout=0.0),
        "small": dict(embed_dim=128, hidden_size=256, num_layers=2, dropout=0.1),
        "base": dict(embed_dim=256, hidden_size=256, num_layers=2, dropout=0.1),
    },
}
PRESETS["rnn"] = PRESETS["lstm"]

# The training recipe that goes with a size, where it differs from TrainingSettings'
# defaults. "base" is for real text (Multi30k): a peak rate of 1e-3 reached after 400
# steps (the paper's formula would give 3e-3 for d_model 256 at this short warm-up;
# 2e-3 was ahead after 400 steps, but has not been compared over a whole hour: README,
# the recipe table) and larger batches. Weight averaging stays off: in
# an hour on this CPU the model is still improving fast at the end, and the average of
# the last five snapshots (100 steps apart) translated worse than the last weights
# (README, "Real sentences").
RECIPES = {"base": dict(batch_size=128, lr=1e-3, warmup=400)}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: training stops instead of saving garbage."""


@dataclass
class TrainingSettings:
    """Everything about *how* a model is trained (the model's shape is its ``config``).

    batch_size: at most this many sentence pairs per batch.
    batch_tokens: when set, a batch also stops growing before its padded size
        (pairs x longest sentence) exceeds this many tokens.
    lr: Adam's rate; for the Transformer the peak of the warm-up schedule. None: the
        paper's peak d_model^-0.5 · warmup^-0.5 (Transformer), 3e-3 (recurrent).
    warmup: steps of linear warm-up (Transformer).
    label_smoothing: the share of probability spread over the whole vocabulary.
    clip: the largest gradient norm; larger gradients are scaled down to it.
    adam_beta2: Adam's second-moment decay. None: 0.98 for the Transformer (the
        paper's), 0.999 (Adam's default) for a recurrent model.
    seed: weights, shuffling and dropout.
    average_last: at the end, average the weights of the last k snapshots (1: keep the
        last weights). Snapshots are taken every ``average_every`` steps, or at the end
        of each epoch when that is 0.
    data: the arguments of :func:`data.load_data` that produced the training pairs, so
        ``evaluate`` can rebuild the same test set.
    """
    batch_size: int = 64
    batch_tokens: int | None = None
    lr: float | None = None
    warmup: int = 400
    label_smoothing: float = 0.1
    clip: float = 1.0
    adam_beta2: float | None = None
    seed: int = 0
    average_last: int = 1
    average_every: int = 0
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("batch_size", "warmup", "average_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("batch_tokens", "lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not self.clip > 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")
        if self.adam_beta2 is not None and not 0 <= self.adam_beta2 < 1:
            raise ValueError(f"adam_beta2 must be in [0, 1), got {self.adam_beta2}")
        if self.average_every < 0:
            raise ValueError(f"average_every must be >= 0, got {self.average_every}")

    @classmethod
    def from_dict(cls, values):
        """Settings from a dict (a checkpoint's); an unknown key is an error that names it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def default_lr(model_config, warmup):
    """The paper's peak rate for a Transformer, a constant 3e-3 for a recurrent model."""
    if model_config["kind"] == "transformer":
        return model_config["d_model"] ** -0.5 * warmup ** -0.5
    return 3e-3


class Trainer:
    """Owns a model, its optimizer and schedule, its vocabularies and its progress.

    ``comm``: a :class:`~minitransformer.distributed.Communicator` for data-parallel
    training (``mpiexec -n P``): each rank trains on its rows of every batch, the
    gradients are averaged over the ranks, and rank 0 alone logs, validates and saves.
    None: one process.
    """

    def __init__(self, model, src_vocab, tgt_vocab, settings, device="cpu", comm=None):
        if not isinstance(settings, TrainingSettings):
            settings = TrainingSettings.from_dict(settings)
        self.model = model.to(device)
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.settings = settings
        self.device = device
        self.comm = comm
        if comm is not None:   # every rank starts from rank 0's weights
            comm.broadcast_parameters(self.model.parameters())
        lr = settings.lr or default_lr(model.config, settings.warmup)
        if model.config["kind"] == "transformer":
            # Adam with β2 = 0.98 (the paper's): a shorter memory of squared gradients
            # reacts sooner when the warm-up raises the rate.
            beta2 = 0.98 if settings.adam_beta2 is None else settings.adam_beta2
            self.optimizer = optim.Adam(model.parameters(), lr=lr, betas=(0.9, beta2), eps=1e-9)
            self.schedule = optim.InverseSqrtSchedule(self.optimizer, lr, settings.warmup)
        else:
            beta2 = 0.999 if settings.adam_beta2 is None else settings.adam_beta2
            self.optimizer = optim.Adam(model.parameters(), lr=lr, betas=(0.9, beta2))
            self.schedule = None
        self.epoch, self.step = 0, 0
        self.history = []   # one dict per epoch
        self.profile = None  # the tracer's view of the last traced step (see traced_step)
        self.snapshots = deque(maxlen=settings.average_last)  # weights to average at the end

    # ------------------------------------------------------------ one step
    def loss(self, batch):
        """Label-smoothed cross-entropy of one batch (a 0-d Tensor)."""
        logits = self.model(batch.src, batch.tgt_in, batch.src_padding_mask,
                            batch.tgt_padding_mask)                       # (batch, T, vocab)
        vocab = logits.shape[-1]
        return cross_entropy(logits.reshape(-1, vocab), batch.tgt_out.reshape(-1),
                             ignore_index=self.tgt_vocab.pad_id,
                             label_smoothing=self.settings.label_smoothing)

    def train_step(self, batch):
        """One step on ``batch`` (with ``comm``: on this rank's rows of it); its loss."""
        self.model.train()
        # Each rank draws its own dropout masks, and a resumed run the same ones as an
        # unbroken run (backend.reseed_step says how).
        rank = self.comm.rank if self.comm is not None else 0
        backend.reseed_step(self.device, self.settings.seed, self.step, rank)
        if self.comm is not None:
            batch = self.comm.shard_batch(batch)
        loss = self.loss(batch)
        self.optimizer.zero_grad()
        loss.backward()
        global_loss = None
        if self.comm is not None:
            # Every rank gets the gradient of the whole batch, each rank's weighted by
            # its share of the target tokens (distributed.py says why).
            _, global_loss = self.comm.allreduce_gradients(
                self.model.parameters(), weight=batch.n_tokens, loss=loss.item())
        # Clipping's scale is folded into Adam's update (one fused kernel on a GPU).
        _, scale = optim.clip_grad_scale(self.model.parameters(), self.settings.clip)
        self.optimizer.step(grad_scale=scale)
        if self.schedule is not None:
            self.schedule.step()
        self.step += 1
        # The loss is read only now, after the step was queued: on a GPU reading it is the
        # step's one wait for the device, and here the device has all the step's work.
        # read_scalar also reads the GPU's deferred index checks in the same wait.
        value = backend.read_scalar(loss.data) if global_loss is None else global_loss
        if not math.isfinite(value):
            raise TrainingDiverged(f"training stopped: the loss is {value} at step {self.step} "
                                   f"(epoch {self.epoch + 1}); lower the learning rate or raise "
                                   f"the warm-up. The last checkpoint is left as it was.")
        return value

    def traced_step(self, batch):
        """One training step inside the tracer; returns its loss and sets ``self.profile``:
        the share of op time in matmuls and the sequential ops (the forward pass's
        critical path)."""
        with trace() as t:
            loss = self.train_step(batch)
        nodes = t.nodes
        total = sum(n.time for n in nodes) or 1.0
        matmul = sum(n.time for n in nodes if n.is_matmul)
        self.profile = {"matmul_share": matmul / total,
                        "sequential_ops": t.summary("forward")["sequential_ops"]}
        return loss

    # ------------------------------------------------------------ evaluation
    def evaluate_loss(self, batches):
        self.model.eval()
        total, tokens = 0.0, 0
        with no_grad():
            for batch in batches:
                total += self.loss(batch).item() * batch.n_tokens
                tokens += batch.n_tokens
        return total / max(tokens, 1)

    def translate(self, sentences, beam_size=1, length_penalty=1.0, max_len=None,
                  batch_size=128):
        """Translate a list of source strings; returns detokenised strings (cased with a
        subword vocabulary). An empty source gives an empty translation."""
        self.model.eval()
        # The Transformer decodes with a key/value cache: the same output, far less work.
        decoder = (CachedTransformerDecoder(self.model) if isinstance(self.model, TransformerTranslator)
                   else self.model)
        longest = self.model.config.get("max_len")  # positions the Transformer can encode
        out = [""] * len(sentences)
        examples, kept = [], []
        for index, sentence in enumerate(sentences):
            if sentence.strip():
                examples.append((self.src_vocab.encode(sentence), []))
                kept.append(index)
        for position, (ids, _) in enumerate(examples):
            if longest and len(ids) > longest:
                raise ValueError(f"sentence {kept[position] + 1} is {len(ids)} tokens long; this "
                                 f"model reads at most {longest} (its max_len)")
        for batch in make_batches(examples, batch_size=batch_size, shuffle=False,
                                  device=self.device):
            limit = max_len or batch.src.shape[1] * 2 + 10
            if longest:
                limit = min(limit, longest)
            if beam_size > 1:
                ids = beam_search(decoder, batch.src, batch.src_padding_mask,
                                  self.tgt_vocab.bos_id, self.tgt_vocab.eos_id, beam_size, limit,
                                  length_penalty=length_penalty)
            else:
                ids = greedy_decode(decoder, batch.src, batch.src_padding_mask,
                                    self.tgt_vocab.bos_id, self.tgt_vocab.eos_id, limit)
            for index, hyp in zip(batch.indices, ids):
                out[kept[index]] = self.tgt_vocab.decode(hyp)
        return out

    def bleu(self, pairs, beam_size=1, limit=None, lowercase=None):
        """Corpus BLEU (sacrebleu's default: 13a, exp smoothing) of the translations of
        ``pairs``. ``lowercase``: True for the case-insensitive score; None (default):
        cased, unless the target vocabulary lower-cases (a word vocabulary can never
        produce "Hund", so a cased score would only measure that)."""
        if lowercase is None:
            lowercase = getattr(self.tgt_vocab, "lowercase", False)
        pairs = pairs[:limit] if limit else pairs
        hypotheses = self.translate([src for src, _ in pairs], beam_size=beam_size)
        return corpus_bleu(hypotheses, [tgt for _, tgt in pairs], lowercase=lowercase)

    # ------------------------------------------------------------ the loop
    def fit(self, train_pairs, valid_pairs, epochs, time_budget=None, checkpoint_dir=None,
            log=print, log_every=50, trace_every=0, bleu_limit=200, max_steps=None):
        """Train for ``epochs`` more epochs, or until ``time_budget`` seconds have passed,
        or until ``self.step`` reaches ``max_steps`` (steps in all, a resumed run's included).

        Prints a progress line every ``log_every`` steps (step, loss, tokens/s, and
        with ``trace_every`` the tracer's matmul share and sequential steps), then
        per epoch the validation loss and BLEU (on ``bleu_limit`` sentences; 0: no BLEU;
        no validation at all when ``valid_pairs`` is empty). The epoch's record (see
        ``history``) keeps the training tokens per second and the seconds since the start.
        """
        if max_steps and self.step >= max_steps:
            return self.history   # reached already: not one more step, nor an epoch
        settings = self.settings
        root = self.comm is None or self.comm.is_root
        if not root:
            log = _quiet
        train = encode_pairs(train_pairs, self.src_vocab, self.tgt_vocab)
        valid = encode_pairs(valid_pairs, self.src_vocab, self.tgt_vocab)
        valid_batches = make_batches(valid, settings.batch_size, max_tokens=settings.batch_tokens,
                                     shuffle=False, device=self.device) if valid else []
        start = backend.timer(self.device)
        for _ in range(epochs):
            batches = make_batches(train, settings.batch_size, max_tokens=settings.batch_tokens,
                                   shuffle=True, seed=settings.seed + self.epoch, device=self.device)
            tokens, losses, tick = 0, [], backend.timer(self.device)
            now, epoch_tokens, train_seconds = tick, 0, 0.0
            for batch in batches:
                if self.comm is not None and len(batch) < self.comm.size:
                    continue   # too few pairs to give every rank some (rare: a pool's rest)
                # Trace the last step before each progress line (not the cold first step).
                if trace_every and (self.step + 1) % trace_every == 0:
                    losses.append(self.traced_step(batch))
                else:
                    losses.append(self.train_step(batch))
                tokens += batch.n_tokens
                if settings.average_every and self.step % settings.average_every == 0:
                    self._snapshot()
                now = time.perf_counter()  # no sync needed: train_step's loss.item() waited
                if log_every and self.step % log_every == 0:
                    rate = tokens / (now - tick)
                    recent = [x for x in losses[-log_every:] if math.isfinite(x)]
                    line = (f"  step {self.step:5d}  loss {sum(recent) / max(len(recent), 1):.3f}  "
                            f"{rate:7.0f} tok/s")
                    if self.profile:
                        line += (f"  matmul {self.profile['matmul_share']:.0%} of op time, "
                                 f"{self.profile['sequential_ops']} sequential ops/step")
                    log(line)
                    epoch_tokens, train_seconds = epoch_tokens + tokens, train_seconds + now - tick
                    tokens, tick = 0, now
                if time_budget and self._anyone(now - start > time_budget):
                    break
                if max_steps and self.step >= max_steps:
                    break
            epoch_tokens, train_seconds = epoch_tokens + tokens, train_seconds + now - tick
            # An epoch cut short by the time budget still counts as one: a resumed run
            # starts the next epoch (a fresh shuffle), not the rest of this one.
            self.epoch += 1
            if not settings.average_every:
                self._snapshot()
            record = {"epoch": self.epoch, "step": self.step, "train_loss": _mean_finite(losses),
                      "tokens_per_s": epoch_tokens / max(train_seconds, 1e-9)}
            line = f"epoch {self.epoch}: train loss {record['train_loss']:.3f}"
            if valid_batches and root:
                record["valid_loss"] = self.evaluate_loss(valid_batches)
                line += f", valid loss {record['valid_loss']:.3f}"
                if bleu_limit:
                    record["valid_bleu"] = float(self.bleu(valid_pairs, limit=bleu_limit))
                    line += f", valid BLEU {record['valid_bleu']:.2f}"
            record["seconds"] = backend.timer(self.device) - start
            self.history.append(record)
            log(f"{line} ({record['seconds']:.0f} s)")
            if checkpoint_dir and root:
                self.save(checkpoint_dir)
            if time_budget and self._anyone(record["seconds"] > time_budget):
                break
            if max_steps and self.step >= max_steps:
                break
        return self.history

    def _anyone(self, flag):
        """``flag``; with ranks, True when it is True on any of them, so that they all
        leave the loop together (a rank that left alone would leave the others waiting)."""
        return flag if self.comm is None else self.comm.any(flag)

    # ------------------------------------------------------------ weight averaging
    def _snapshot(self):
        if self.settings.average_last > 1:
            self.snapshots.append([p.data.copy() for p in self.model.parameters()])

    def average_snapshots(self):
        """Set the weights to the mean of the kept snapshots (the last ``average_last``);
        returns how many were averaged (0 or 1: nothing changed). An average of nearby
        points of the same run sits nearer the middle of the valley the optimizer is
        bouncing around in, which usually translates a little better than the last point."""
        if len(self.snapshots) < 2:
            return len(self.snapshots)
        for i, param in enumerate(self.model.parameters()):
            total = sum(snapshot[i] for snapshot in self.snapshots)
            param.data[...] = total / total.dtype.type(len(self.snapshots))
        return len(self.snapshots)

    # ------------------------------------------------------------ checkpoints
    def save(self, directory):
        """Write everything needed to translate or resume, atomically."""
        rng = backend.generator("cpu").bit_generator.state
        return checkpoint.save(directory, {
            "model_config": self.model.config, "settings": asdict(self.settings),
            "src_vocab": self.src_vocab.to_dict(), "tgt_vocab": self.tgt_vocab.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule else None,
            "progress": {"epoch": self.epoch, "step": self.step, "history": self.history},
            "rng": rng,
        })

    @classmethod
    def load(cls, directory, device="cpu", comm=None):
        """A Trainer restored from a checkpoint, ready to translate or to resume."""
        saved = checkpoint.load(directory)
        try:
            model = build_model(saved["model_config"])
            model.load_state_dict(saved["model"])
            trainer = cls(model, vocabulary_from_dict(saved["src_vocab"]),
                          vocabulary_from_dict(saved["tgt_vocab"]), saved["settings"], device,
                          comm)
            trainer.optimizer.load_state_dict(saved["optimizer"])
            if trainer.schedule is not None and saved["schedule"]:
                trainer.schedule.load_state_dict(saved["schedule"])
            progress = saved["progress"]
            trainer.epoch, trainer.step = progress["epoch"], progress["step"]
            trainer.history = progress["history"]
            backend.generator("cpu").bit_generator.state = saved["rng"]
        except (KeyError, TypeError, ValueError) as e:
            raise checkpoint.CheckpointError(f"{directory}: not a translator checkpoint of this "
                                             f"version of minitransformer ({type(e).__name__}: "
                                             f"{e})") from e
        return trainer


def _quiet(*_):
    """The log of the ranks other than 0."""


def _mean_finite(values):
    kept = [v for v in values if math.isfinite(v)]
    return sum(kept) / len(kept) if kept else float("nan")


VOCABULARIES = ("word", "bpe")


def build_vocabularies(train_pairs, vocab="word", vocab_size=8000, min_freq=1):
    """Source and target vocabularies learned from the training pairs.

    "word": lower-cased words and punctuation (:class:`vocab.Vocabulary`), the clearest
    lesson on the built-in grammar corpus, whose words are few. "bpe": subwords learned
    by byte-pair encoding, ``vocab_size`` per language (:mod:`bpe`): cased, no unknown
    words, the choice for real text.
    """
    sources, targets = [s for s, _ in train_pairs], [t for _, t in train_pairs]
    if vocab == "word":
        return (Vocabulary.build(sources, min_freq=min_freq),
                Vocabulary.build(targets, min_freq=min_freq))
    if vocab == "bpe":
        return (BPEVocabulary.learn(sources, vocab_size=vocab_size),
                BPEVocabulary.learn(targets, vocab_size=vocab_size))
    raise ValueError(f"vocab must be one of {VOCABULARIES}, got {vocab!r}")


def new_trainer(kind, train_pairs, size="tiny", device="cpu", vocab="word", vocab_size=8000,
                min_freq=1, data=None, comm=None, **options):
    """Vocabularies from the training pairs, a seeded model of preset ``size``, a Trainer.

    ``data``: the arguments of :func:`data.load_data` that produced the pairs, kept in
    the checkpoint so that ``evaluate`` can rebuild the same test set.
    ``options``: training settings (the fields of :class:`TrainingSettings`: batch_size,
    lr, warmup, seed, ...) and model sizes (the preset's keys: d_model, hidden_size,
    ...) that replace the defaults; None means "the default"; an unknown name is an error.
    ``comm``: train on several ranks (see :class:`Trainer`).
    """
    if kind not in PRESETS:
        raise ValueError(f"model must be one of {sorted(PRESETS)}, got {kind!r}")
    if size not in PRESETS[kind]:
        raise ValueError(f"size must be one of {sorted(PRESETS[kind])}, got {size!r}")
    params = dict(PRESETS[kind][size])
    setting_names = {f.name for f in fields(TrainingSettings)} - {"data"}
    unknown = sorted(set(options) - set(params) - setting_names)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for a {kind} translator; model options: "
                         f"{sorted(params)}; training settings: {sorted(setting_names)}")
    recipe = dict(RECIPES.get(size, {}))
    recipe.update({k: v for k, v in options.items() if k in setting_names and v is not None})
    settings = TrainingSettings(data=data or {}, **recipe)
    params.update({k: v for k, v in options.items() if k in params and v is not None})
    # The same seed on every rank: the same initial weights (Trainer broadcasts rank 0's
    # as well); the ranks' dropout streams part at the first step (Trainer.train_step).
    backend.manual_seed(settings.seed)
    src_vocab, tgt_vocab = build_vocabularies(train_pairs, vocab, vocab_size, min_freq)
    if kind == "transformer":
        model = TransformerTranslator(len(src_vocab), len(tgt_vocab), **params)
    else:
        model = RNNTranslator(len(src_vocab), len(tgt_vocab), cell=kind, **params)
    return Trainer(model, src_vocab, tgt_vocab, settings, device, comm)


def data_paths(data_args):
    """``data_args`` with its file paths made absolute, so a checkpoint finds them again
    from another working directory."""
    return {key: os.path.abspath(value) if key in ("tsv", "valid", "test") and value else value
            for key, value in data_args.items()}

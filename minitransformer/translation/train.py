"""Training a translator: teacher forcing, label smoothing, Adam with warm-up, clipping.

One :class:`Trainer` serves both models. A training step:

1. the model reads the source and the whole shifted target (teacher forcing) and
   predicts every target position: logits (batch, T, vocab);
2. label-smoothed cross-entropy against the target, padding ignored;
3. backward, gradient clipping, an Adam step, the learning-rate schedule.

Every epoch ends with validation loss and BLEU and an atomic checkpoint (model,
optimizer, schedule, vocabularies, configuration, progress and the random state),
so ``--resume`` continues the very same loss curve.
"""
import math
import time

from .. import backend, optim
from ..functional import cross_entropy
from ..tensor import no_grad
from ..trace import trace
from . import checkpoint
from .batching import encode_pairs, make_batches
from .bleu import corpus_bleu
from .cached_decoding import CachedTransformerDecoder
from .decode import beam_search, greedy_decode
from .models import RNNTranslator, TransformerTranslator, build_model
from .vocab import Vocabulary

# Model sizes: "tiny" trains in the demo's minutes on two cores; "small" is for the
# longer runs. The tiny models use no dropout: on the built-in corpus, whose
# sentences all follow one grammar, dropout only slowed learning (valid BLEU after 6
# epochs: Transformer 57 with dropout 0.1, 85 without; LSTM 88 and 92).
PRESETS = {
    "transformer": {
        "tiny": dict(d_model=64, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                     dim_feedforward=128, dropout=0.0),
        "small": dict(d_model=128, nhead=4, num_encoder_layers=3, num_decoder_layers=3,
                      dim_feedforward=256, dropout=0.1),
    },
    "lstm": {
        "tiny": dict(embed_dim=64, hidden_size=128, num_layers=1, dropout=0.0),
        "small": dict(embed_dim=128, hidden_size=256, num_layers=2, dropout=0.1),
    },
}
PRESETS["rnn"] = PRESETS["lstm"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: training stops instead of saving garbage."""


def default_settings(kind):
    """Training hyperparameters: the paper's schedule for the Transformer, a constant
    Adam rate for the recurrent models (warm-up buys them little)."""
    return dict(batch_size=64, label_smoothing=0.1, clip=1.0, seed=0,
                lr=3e-3 if kind != "transformer" else None, warmup=400, lr_factor=1.0)


class Trainer:
    """Owns a model, its optimizer and schedule, its vocabularies and its progress."""

    def __init__(self, model, src_vocab, tgt_vocab, settings, device="cpu"):
        self.model = model.to(device)
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.settings = dict(settings)
        self.device = device
        kind = model.config["kind"]
        if kind == "transformer":
            # The paper: Adam(β=(0.9, 0.98), ε=1e-9) with the warm-up schedule.
            self.optimizer = optim.Adam(model.parameters(), betas=(0.9, 0.98), eps=1e-9)
            self.schedule = optim.NoamSchedule(self.optimizer, model.config["d_model"],
                                               warmup_steps=settings["warmup"],
                                               factor=settings["lr_factor"])
        else:
            self.optimizer = optim.Adam(model.parameters(), lr=settings["lr"])
            self.schedule = None
        self.epoch, self.step = 0, 0
        self.history = []   # one dict per epoch
        self.profile = None  # the tracer's view of the last traced step (see traced_step)

    # ------------------------------------------------------------ one step
    def loss(self, batch):
        """Label-smoothed cross-entropy of one batch (a 0-d Tensor)."""
        logits = self.model(batch.src, batch.tgt_in, batch.src_padding_mask,
                            batch.tgt_padding_mask)                       # (batch, T, vocab)
        vocab = logits.shape[-1]
        return cross_entropy(logits.reshape(-1, vocab), batch.tgt_out.reshape(-1),
                             ignore_index=self.tgt_vocab.pad_id, label_smoothing=self.settings["label_smoothing"])

    def train_step(self, batch):
        self.model.train()
        loss = self.loss(batch)
        self.optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(self.model.parameters(), self.settings["clip"])
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
        self.step += 1
        # The loss is read only now, after the step was queued: on a GPU reading it is the
        # step's one wait for the device, and here the device has all the step's work.
        value = loss.item()
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

    def translate(self, sentences, beam_size=1, max_len=None, batch_size=128):
        """Translate a list of source strings; returns detokenised strings."""
        self.model.eval()
        # The Transformer decodes with a key/value cache: the same output, far less work.
        decoder = (CachedTransformerDecoder(self.model) if isinstance(self.model, TransformerTranslator)
                   else self.model)
        examples = [(self.src_vocab.encode(s), []) for s in sentences]
        out = [None] * len(examples)
        for batch in make_batches(examples, batch_size=batch_size, shuffle=False,
                                  device=self.device):
            limit = max_len or batch.src.shape[1] * 2 + 10
            if beam_size > 1:
                ids = beam_search(decoder, batch.src, batch.src_padding_mask,
                                  self.tgt_vocab.bos_id, self.tgt_vocab.eos_id, beam_size, limit)
            else:
                ids = greedy_decode(decoder, batch.src, batch.src_padding_mask,
                                    self.tgt_vocab.bos_id, self.tgt_vocab.eos_id, limit)
            for index, hyp in zip(batch.indices, ids):
                out[index] = self.tgt_vocab.decode(hyp)
        return out

    def bleu(self, pairs, beam_size=1, limit=None):
        """Corpus BLEU of the translations of ``pairs`` (case-insensitive: the vocabulary
        lower-cases)."""
        pairs = pairs[:limit] if limit else pairs
        hypotheses = self.translate([src for src, _ in pairs], beam_size=beam_size)
        return corpus_bleu(hypotheses, [tgt for _, tgt in pairs], lowercase=True)

    # ------------------------------------------------------------ the loop
    def fit(self, train_pairs, valid_pairs, epochs, time_budget=None, checkpoint_dir=None,
            log=print, log_every=50, trace_every=0, bleu_limit=200):
        """Train for ``epochs`` more epochs, or until ``time_budget`` seconds have passed.

        Prints a progress line every ``log_every`` steps (step, loss, tokens/s, and
        with ``trace_every`` the tracer's matmul share and sequential steps), then
        per epoch the validation loss and BLEU (on ``bleu_limit`` sentences; 0: no BLEU).
        """
        train = encode_pairs(train_pairs, self.src_vocab, self.tgt_vocab)
        valid = encode_pairs(valid_pairs, self.src_vocab, self.tgt_vocab)
        valid_batches = make_batches(valid, self.settings["batch_size"], shuffle=False,
                                     device=self.device)
        start = time.perf_counter()
        for _ in range(epochs):
            batches = make_batches(train, self.settings["batch_size"], shuffle=True,
                                   seed=self.settings["seed"] + self.epoch, device=self.device)
            tokens, losses, tick = 0, [], time.perf_counter()
            for batch in batches:
                # Trace the last step before each progress line (not the cold first step).
                if trace_every and (self.step + 1) % trace_every == 0:
                    losses.append(self.traced_step(batch))
                else:
                    losses.append(self.train_step(batch))
                tokens += batch.n_tokens
                if log_every and self.step % log_every == 0:
                    rate = tokens / (time.perf_counter() - tick)
                    recent = [x for x in losses[-log_every:] if math.isfinite(x)]
                    line = (f"  step {self.step:5d}  loss {sum(recent) / max(len(recent), 1):.3f}  "
                            f"{rate:7.0f} tok/s")
                    if self.profile:
                        line += (f"  matmul {self.profile['matmul_share']:.0%} of op time, "
                                 f"{self.profile['sequential_ops']} sequential ops/step")
                    log(line)
                    tokens, tick = 0, time.perf_counter()
                if time_budget and time.perf_counter() - start > time_budget:
                    break
            # An epoch cut short by the time budget still counts as one: a resumed run
            # starts the next epoch (a fresh shuffle), not the rest of this one.
            self.epoch += 1
            record = {"epoch": self.epoch, "step": self.step,
                      "train_loss": _mean_finite(losses),
                      "valid_loss": self.evaluate_loss(valid_batches),
                      "valid_bleu": self.bleu(valid_pairs, limit=bleu_limit) if bleu_limit else None,
                      "seconds": time.perf_counter() - start}
            self.history.append(record)
            bleu = f", valid BLEU {record['valid_bleu']:.1f}" if bleu_limit else ""
            log(f"epoch {self.epoch}: train loss {record['train_loss']:.3f}, valid loss "
                f"{record['valid_loss']:.3f}{bleu} ({record['seconds']:.0f} s)")
            if checkpoint_dir:
                self.save(checkpoint_dir)
            if time_budget and time.perf_counter() - start > time_budget:
                break
        return self.history

    # ------------------------------------------------------------ checkpoints
    def save(self, directory):
        """Write everything needed to translate or resume, atomically."""
        rng = backend.generator("cpu").bit_generator.state
        return checkpoint.save(directory, {
            "model_config": self.model.config, "settings": self.settings,
            "src_vocab": self.src_vocab.to_dict(), "tgt_vocab": self.tgt_vocab.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule else None,
            "progress": {"epoch": self.epoch, "step": self.step, "history": self.history},
            "rng": rng,
        })

    @classmethod
    def load(cls, directory, device="cpu"):
        """A Trainer restored from a checkpoint, ready to translate or to resume."""
        saved = checkpoint.load(directory)
        model = build_model(saved["model_config"])
        model.load_state_dict(saved["model"])
        trainer = cls(model, Vocabulary.from_dict(saved["src_vocab"]),
                      Vocabulary.from_dict(saved["tgt_vocab"]), saved["settings"], device)
        trainer.optimizer.load_state_dict(saved["optimizer"])
        if trainer.schedule is not None and saved["schedule"]:
            trainer.schedule.load_state_dict(saved["schedule"])
        trainer.epoch = saved["progress"]["epoch"]
        trainer.step = saved["progress"]["step"]
        trainer.history = saved["progress"]["history"]
        backend.generator("cpu").bit_generator.state = saved["rng"]
        return trainer


def _mean_finite(values):
    kept = [v for v in values if math.isfinite(v)]
    return sum(kept) / len(kept) if kept else float("nan")


def new_trainer(kind, train_pairs, size="tiny", device="cpu", min_freq=1, data=None, **overrides):
    """Vocabularies from the training pairs, a seeded model of preset ``size``, a Trainer.

    ``data``: the arguments of :func:`data.load_data` that produced the pairs, kept in
    the checkpoint so that ``evaluate`` can rebuild the same test split.
    ``overrides``: training settings (batch_size, lr, warmup, seed, ...) and model
    sizes (d_model, hidden_size, ...) that replace the defaults.
    """
    if kind not in PRESETS:
        raise ValueError(f"model must be one of {sorted(PRESETS)}, got {kind!r}")
    if size not in PRESETS[kind]:
        raise ValueError(f"size must be one of {sorted(PRESETS[kind])}, got {size!r}")
    settings = default_settings(kind)
    settings["data"] = data or {}
    settings.update({k: v for k, v in overrides.items() if k in settings and v is not None})
    backend.manual_seed(settings["seed"])
    src_vocab = Vocabulary.build([s for s, _ in train_pairs], min_freq=min_freq)
    tgt_vocab = Vocabulary.build([t for _, t in train_pairs], min_freq=min_freq)
    params = dict(PRESETS[kind][size])
    params.update({k: v for k, v in overrides.items() if k in params and v is not None})
    if kind == "transformer":
        model = TransformerTranslator(len(src_vocab), len(tgt_vocab), **params)
    else:
        model = RNNTranslator(len(src_vocab), len(tgt_vocab), cell=kind, **params)
    return Trainer(model, src_vocab, tgt_vocab, settings, device)

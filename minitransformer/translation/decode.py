"""Greedy decoding and beam search: where attention's parallelism stops.

Training sees the whole target sentence at once (teacher forcing), so a
Transformer decoder handles every target position in one pass. Generating a
translation cannot: token t+1 depends on the token chosen at step t. Both models
therefore decode in n sequential steps, one token per step.

Both functions work on any translator with the interface of ``models.py``:

* ``model.encode(src, src_padding_mask) -> memory``
* ``model.start_decoding(memory, src_padding_mask) -> state``
* ``model.decode_step(state, tokens) -> (logits (batch, vocab), state)``
* ``model.select(state, rows) -> state`` (keep and reorder batch rows; for beams)
"""
from .. import backend
from ..functional import log_softmax
from .._tensor import Tensor, no_grad

CHECK_EVERY = 4  # greedy decoding looks for the end of every sentence every 4 tokens
# The widest beam searched: a beam of k does k times greedy decoding's work per token, so
# a limit keeps a typo (--beam 5000) from running for hours. Wide beams also favour short
# output, which the length penalty (--length-penalty) offsets.
MAX_BEAM = 64


def greedy_decode(model, src, src_padding_mask, bos_id, eos_id, max_len=50):
    """Translate a batch by taking the most likely token at every step.

    src: (batch, src_len) int64 Tensor; src_padding_mask: (batch, src_len) bool,
    True at padding. Returns a list of ``batch`` lists of token ids (without
    ``<bos>``, cut before ``<eos>``). Stops when every sentence has ended or after
    ``max_len`` tokens.
    """
    if max_len < 1:
        raise ValueError(f"greedy_decode: max_len must be >= 1, got {max_len}")
    xp = backend.array_module(src.data)
    batch = src.shape[0]
    with no_grad():
        memory = model.encode(src, src_padding_mask)
        state = model.start_decoding(memory, src_padding_mask)
        tokens = xp.full((batch,), bos_id, dtype="int64")
        outputs = []
        finished = xp.zeros(batch, dtype=bool)
        for step in range(1, max_len + 1):
            logits, state = model.decode_step(state, Tensor(tokens))
            tokens = logits.data.argmax(axis=-1)
            outputs.append(tokens)
            finished = finished | (tokens == eos_id)
            # Asking "has every sentence ended?" makes a GPU wait for its answer, so ask
            # every CHECK_EVERY tokens only: a few steps past the end are cheaper than a
            # stall per token (the extra tokens are cut at <eos> below).
            if step % CHECK_EVERY == 0 and bool(finished.all()):
                break
    steps = backend.to_numpy(xp.stack(outputs, axis=1))  # (batch, steps)
    return [_cut_at_eos(row, eos_id) for row in steps.tolist()]


def _cut_at_eos(ids, eos_id):
    return ids[:ids.index(eos_id)] if eos_id in ids else ids


def beam_search(model, src, src_padding_mask, bos_id, eos_id, beam_size=4, max_len=50,
                length_penalty=1.0):
    """Translate a batch keeping the ``beam_size`` best partial translations per sentence.

    A hypothesis's score is its summed log-probability divided by
    ``length ** length_penalty`` once it ends (0 disables the normalisation; larger
    values favour longer output). Returns one list of token ids per sentence, like
    :func:`greedy_decode`; with ``beam_size=1`` the result equals greedy decoding.
    """
    if not 1 <= beam_size <= MAX_BEAM or max_len < 1:
        raise ValueError(f"beam_search: beam_size must be in 1..{MAX_BEAM} and max_len >= 1, "
                         f"got {beam_size} and {max_len}")
    xp = backend.array_module(src.data)
    np = backend.numpy
    batch = src.shape[0]
    # Every sentence gets beam_size rows: row b*beam_size + k is beam k of sentence b.
    rows = xp.repeat(xp.arange(batch), beam_size)
    with no_grad():
        memory = model.encode(src, src_padding_mask)
        state = model.start_decoding(memory, src_padding_mask)
        state = model.select(state, rows)
        tokens = xp.full((batch * beam_size,), bos_id, dtype="int64")
        # Only beam 0 is live at the start, so the first step does not pick k copies
        # of the same token.
        scores = np.full((batch, beam_size), -np.inf)
        scores[:, 0] = 0.0
        history = [[[] for _ in range(beam_size)] for _ in range(batch)]
        finished = [[] for _ in range(batch)]    # (normalised score, ids) per sentence
        for step in range(1, max_len + 1):
            logits, state = model.decode_step(state, Tensor(tokens))
            vocab = logits.shape[-1]
            best, best_scores = _best_candidates(scores, log_softmax(logits, axis=-1).data,
                                                 2 * beam_size)
            new_scores = np.full((batch, beam_size), -np.inf)
            new_history = [[[] for _ in range(beam_size)] for _ in range(batch)]
            source_rows = np.repeat(np.arange(batch)[:, None] * beam_size, beam_size, axis=1)
            next_tokens = np.full((batch, beam_size), eos_id, dtype=np.int64)
            for b in range(batch):
                if len(finished[b]) >= beam_size:
                    continue   # this sentence is done; its rows idle on <eos>
                k = 0
                for idx, score in zip(best[b], best_scores[b]):
                    if not np.isfinite(score) or k == beam_size:
                        break
                    beam, token = divmod(int(idx), vocab)
                    ids = history[b][beam] + [token]
                    if token == eos_id:
                        finished[b].append((score / _length_norm(step, length_penalty), ids[:-1]))
                        continue
                    new_scores[b, k], new_history[b][k] = score, ids
                    source_rows[b, k], next_tokens[b, k] = b * beam_size + beam, token
                    k += 1
            scores, history = new_scores, new_history
            if _all_done(finished, scores, step, beam_size, length_penalty):
                break
            state = model.select(state, xp.asarray(source_rows.reshape(-1)))
            tokens = xp.asarray(next_tokens.reshape(-1))
    results = []
    for b in range(batch):
        pool = finished[b] or [(scores[b, k] / _length_norm(max_len, length_penalty),
                                history[b][k]) for k in range(beam_size)
                               if np.isfinite(scores[b, k])]
        results.append(max(pool, key=lambda item: item[0])[1])
    return results


def _best_candidates(scores, log_probs, width):
    """The ``width`` best continuations of each sentence, best first.

    scores: (batch, beam) NumPy float64, each live beam's summed log-probability
    (-inf for an empty slot); log_probs: (batch·beam, vocab), the next token's, on
    the model's device. A continuation is (beam, token), numbered beam·vocab + token.
    Returns (ids, scores), each (batch, width) NumPy arrays. 2·beam candidates are
    enough to refill the beam after some of them end. They are chosen where the
    log-probabilities are, so one small array crosses to the host per token, not
    the whole (batch·beam, vocab) table.
    """
    xp, np = backend.array_module(log_probs), backend.numpy
    batch, beam = scores.shape
    vocab = log_probs.shape[-1]
    candidates = (xp.asarray(scores)[:, :, None]
                  + log_probs.astype("float64").reshape(batch, beam, vocab))
    flat = candidates.reshape(batch, beam * vocab)
    width = min(width, beam * vocab)
    ids = xp.argpartition(-flat, width - 1, axis=1)[:, :width]    # the best, unordered
    chosen = xp.take_along_axis(flat, ids, axis=1)
    # One transfer for both: ids (< beam·vocab) are exact in float64.
    chosen, ids = backend.to_numpy(xp.stack([chosen, ids.astype("float64")]))
    ids = ids.astype(np.int64)
    # Best first; among equal scores the lower id first, as a stable sort of all would.
    order = np.lexsort((ids, -chosen), axis=-1)
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(chosen, order, axis=1)


def _length_norm(length, length_penalty):
    return float(length) ** length_penalty if length_penalty else 1.0


def _all_done(finished, scores, step, beam_size, length_penalty):
    """Stop once every sentence has ``beam_size`` ended hypotheses, or its live beams
    cannot overtake its best ended one (log-probabilities only fall as a sentence grows;
    with a length bonus this holds exactly only when length_penalty is 0, so the test is
    the usual heuristic that the best live beam, normalised now, is already worse)."""
    for b, done in enumerate(finished):
        if len(done) < beam_size:
            live = scores[b][scores[b] > -float("inf")]
            if live.size == 0:
                continue
            best_done = max((s for s, _ in done), default=-float("inf"))
            if live.max() / _length_norm(step, length_penalty) > best_done:
                return False
    return True

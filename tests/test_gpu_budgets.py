"""What the GPU path asks of the device, counted by the CuPy stand-in (tests/fake_cupy.py).

A GPU runs kernels asynchronously: the host queues work and goes on, until it needs a
value back (``.item()``, ``int()``, a transfer), and then waits for everything queued,
a *synchronisation*. Each launch costs a few microseconds whatever the array size, so
on small arrays launches, not arithmetic, are the cost. These tests hold the budgets
that keep a training step, the layers and decoding from stalling the device.

Run with ``MINITRANSFORMER_FAKE_CUPY=1`` (``.ci/run`` does); skipped otherwise.
"""
import time

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import backend, nn, optim

pytestmark = pytest.mark.fakegpu


@pytest.fixture(autouse=True)
def _no_pending_checks():
    """A deferred range check left by one test must not fail the next."""
    backend._deferred.clear()
    yield
    backend._deferred.clear()


def _sites(stats):
    return ", ".join(stats.sync_sites) or "none"


# ---------------------------------------------------------------- the stand-in itself
def test_stand_in_follows_cupys_rules():
    import cupy
    from tests import fake_cupy
    a = cupy.arange(6, dtype="float32").reshape(2, 3)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(3, dtype="float32")
    with pytest.raises(TypeError, match="Unsupported type"):
        cupy.where(a > 1, a, np.zeros(3))
    assert isinstance(a.sum(), cupy.ndarray) and a.sum().ndim == 0   # reductions stay 0-d arrays
    assert not isinstance(a, np.ndarray)
    assert not hasattr(cupy, "install") and not hasattr(cupy, "STATS")   # only CuPy's names
    assert isinstance(np.exp(a), cupy.ndarray)                          # NumPy dispatches to CuPy
    with pytest.raises(fake_cupy.CupyDivergence):
        a[cupy.asarray([0, 2])]                                         # CuPy would wrap to row 0
    with pytest.raises(TypeError, match="must be a cupy.ndarray"):
        cupy.unravel_index(3, (2, 3))


def test_stand_in_counts_syncs_launches_and_copies(gpu_stats):
    import cupy
    a = cupy.asarray(np.ones((4, 4), dtype="float32"))   # 1 host-to-device copy
    b = a * 2 + 1                                        # 2 launches
    view = b[1:, :2].T                                   # views launch nothing
    total = float(view.sum())                            # 1 launch, 1 sync
    assert total == 18.0
    assert (gpu_stats.h2d, gpu_stats.launches, gpu_stats.syncs) == (1, 3, 1)
    assert gpu_stats.sync_sites[0].startswith("tests/test_gpu_budgets.py:")


def test_a_host_array_becomes_a_gpu_tensor_in_one_copy(gpu_stats):
    # make_batch's path: token ids built on the host, one transfer each, no device copy.
    ids = np.arange(12, dtype=np.int32).reshape(3, 4)
    x = mt.tensor(ids, dtype="int64", device="gpu")
    assert (gpu_stats.h2d, gpu_stats.launches, gpu_stats.syncs) == (1, 0, 0)
    ids[0, 0] = 99                                      # still a copy of the host array
    np.testing.assert_array_equal(x.numpy(), np.arange(12).reshape(3, 4))
    assert x.dtype == np.dtype("int64")


def test_multiplying_by_a_number_sends_nothing_to_the_gpu(gpu_stats):
    # attention's query · 1/√d and the embeddings' · √d: the number is a kernel argument
    x = mt.randn(4, 8, device="gpu", requires_grad=True)
    gpu_stats.reset()
    y = x * 0.125
    assert (gpu_stats.h2d, gpu_stats.launches) == (0, 1)
    y.backward(mt.ones(4, 8, device="gpu"))
    assert (gpu_stats.h2d, gpu_stats.syncs) == (0, 0)


def test_stand_in_flags_unsynchronised_clock_reads(gpu_stats):
    import sys
    from tests import fake_cupy
    module = sys.modules[__name__]
    x = mt.randn(8, 8, device="gpu")
    backend.synchronize("gpu")
    with fake_cupy.watch_clock(module):
        start = time.perf_counter()                      # fine: nothing queued
        y = x @ x                                        # queued, not finished
        time.perf_counter()                              # flagged: measures the launch
        backend.synchronize("gpu")
        time.perf_counter()                              # fine: the device is drained
    assert len(gpu_stats.unsynced_clock_reads) == 1 and start >= 0 and y.shape == (8, 8)


# ---------------------------------------------------------------- sync budgets
def _forward_backward(layer, *inputs):
    out = layer(*inputs)
    out = out[0] if isinstance(out, tuple) else out
    (out * out).sum().backward()


@pytest.mark.parametrize("kind", ["lstm", "attention", "blockwise"])
def test_layers_forward_and_backward_never_wait_for_the_device(kind, gpu_stats):
    if kind == "lstm":
        layer, x = nn.LSTM(8, 16, num_layers=2).to("gpu"), mt.randn(6, 3, 8, device="gpu")
        args = (x,)
    else:
        layer = nn.MultiheadAttention(16, 2, batch_first=True,
                                      attention="blockwise" if kind == "blockwise" else "standard",
                                      **({"block_size": 4} if kind == "blockwise" else {})).to("gpu")
        x = mt.randn(2, 10, 16, device="gpu")
        args = (x, x, x)
    x.requires_grad_()
    gpu_stats.reset()
    _forward_backward(layer, *args)
    assert gpu_stats.syncs == 0, f"{kind}: device waits at {_sites(gpu_stats)}"


def test_embedding_and_cross_entropy_check_their_indices_without_waiting(gpu_stats):
    weight = mt.randn(5, 3, device="gpu", requires_grad=True)
    ids = mt.tensor([[0, 4], [2, 1]], device="gpu")
    gpu_stats.reset()
    logits = F.embedding(ids, weight).reshape(4, 3)
    loss = F.cross_entropy(logits, mt.tensor([0, 2, -100, 1], device="gpu"))
    loss.backward()
    assert gpu_stats.syncs == 0, f"device waits at {_sites(gpu_stats)}"
    backend.read_scalar(loss.data)                       # the loss and the checks: one wait
    assert gpu_stats.syncs == 1


def test_bad_ids_on_the_gpu_are_reported_at_the_next_wait(gpu_stats):
    from tests import fake_cupy
    weight = mt.randn(5, 3, device="gpu")
    # CuPy would wrap id 7 to row 2 silently; the stand-in says so at the lookup...
    with pytest.raises(fake_cupy.CupyDivergence):
        F.embedding(mt.tensor([1, 7], device="gpu"), weight)
    # ...and the deferred check, recorded before it without a wait, reports it at the next one.
    assert gpu_stats.syncs == 0
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 5\).* 1 to 7"):
        backend.read_scalar(weight.sum().data)
    targets = mt.tensor([0, 3, -100], device="gpu").data
    backend.check_index_range(targets, 0, 3, "cross_entropy: targets", ignore=-100)
    with pytest.raises(IndexError, match=r"cross_entropy: targets must lie in \[0, 3\) or "
                                         r"equal ignore_index=-100; got values from 0 to 3"):
        weight.numpy()
    backend.read_scalar(weight.sum().data)               # reported once, then forgotten


def test_nll_loss_mean_does_not_wait(gpu_stats):
    log_probs = F.log_softmax(mt.randn(4, 3, device="gpu", requires_grad=True), axis=-1)
    gpu_stats.reset()
    loss = F.nll_loss(log_probs, mt.tensor([0, -100, 2, 1], device="gpu"))
    assert gpu_stats.syncs == 0, f"device waits at {_sites(gpu_stats)}"
    expected = -(log_probs.numpy()[[0, 2, 3], [0, 2, 1]]).mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)


def _tiny_trainer(kind, dropout=0.0):
    from minitransformer.translation.train import new_trainer
    pairs = [("ein hund läuft", "a dog runs"), ("eine katze schläft", "a cat sleeps"),
             ("der mann liest", "the man reads"), ("die frau singt", "the woman sings")]
    sizes = (dict(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                  dim_feedforward=32, warmup=5) if kind == "transformer"
             else dict(embed_dim=16, hidden_size=16, lr=1e-2))
    trainer = new_trainer(kind, pairs, device="gpu", batch_size=4, seed=0, dropout=dropout,
                          **sizes)
    return trainer, pairs


def _first_batch(trainer, pairs):
    from minitransformer.translation.batching import encode_pairs, make_batches
    examples = encode_pairs(pairs, trainer.src_vocab, trainer.tgt_vocab)
    return next(iter(make_batches(examples, batch_size=4, shuffle=False, device="gpu")))


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_a_training_step_waits_for_the_device_at_most_once(kind, gpu_stats):
    trainer, pairs = _tiny_trainer(kind)
    batch = _first_batch(trainer, pairs)
    trainer.train_step(batch)                            # first step: optimizer state made
    gpu_stats.reset()
    trainer.train_step(batch)
    assert gpu_stats.syncs <= 1, f"{kind}: {gpu_stats.syncs} device waits at {_sites(gpu_stats)}"


def test_a_training_step_reports_bad_target_ids_on_the_gpu():
    trainer, pairs = _tiny_trainer("transformer")
    batch = _first_batch(trainer, pairs)
    from tests import fake_cupy
    batch.tgt_out.data[0, 0] = len(trainer.tgt_vocab) + 3
    with fake_cupy.wrap_out_of_range_indices(), pytest.raises(IndexError,
                                                              match="cross_entropy: targets"):
        trainer.train_step(batch)           # the lookup wraps, as on CuPy; the read reports it


def test_greedy_decoding_waits_at_most_once_per_four_tokens(gpu_stats):
    from minitransformer.translation.decode import greedy_decode
    trainer, pairs = _tiny_trainer("transformer")
    batch = _first_batch(trainer, pairs)
    eos = trainer.tgt_vocab.eos_id
    trainer.model.eval()
    gpu_stats.reset()
    out = greedy_decode(trainer.model, batch.src, batch.src_padding_mask,
                        trainer.tgt_vocab.bos_id, eos, max_len=16)
    assert len(out) == batch.src.shape[0]
    # At most 16 steps: a check every 4 of them, and the final transfer of the tokens.
    assert gpu_stats.syncs <= 1 + 16 // 4, f"{gpu_stats.syncs} waits at {_sites(gpu_stats)}"


def test_resumed_training_on_the_gpu_repeats_the_dropout_masks(tmp_path):
    from minitransformer.translation.train import Trainer
    trainer, pairs = _tiny_trainer("transformer", dropout=0.3)
    batch = _first_batch(trainer, pairs)
    trainer.train_step(batch)
    trainer.save(str(tmp_path / "checkpoint"))
    uninterrupted = [trainer.train_step(batch) for _ in range(2)]
    backend.random_uniform((7,), "float32", "gpu")      # the process's GPU stream moves on
    resumed = Trainer.load(str(tmp_path / "checkpoint"), device="gpu")
    assert [resumed.train_step(batch) for _ in range(2)] == uninterrupted


# ---------------------------------------------------------------- launch budgets
def _lstm_launches(steps):
    from tests import fake_cupy
    lstm = nn.LSTM(8, 16).to("gpu")
    x = mt.randn(steps, 4, 8, device="gpu", requires_grad=True)
    fake_cupy.STATS.reset()
    out, _ = lstm(x)
    forward = fake_cupy.STATS.launches
    out.backward(mt.ones(*out.shape, device="gpu"))
    return forward, fake_cupy.STATS.launches - forward - 1   # less the ones() of the seed grad


def test_lstm_launches_per_time_step():
    """The marginal cost of one more step: a matmul and the fused cell forward; backward
    two matmuls, the fused cell backward and the gradient bookkeeping."""
    forward_4, _ = _lstm_launches(4)
    forward_12, _ = _lstm_launches(12)
    per_step_forward = (forward_12 - forward_4) / 8
    assert per_step_forward <= 3, per_step_forward


def test_lstm_backward_launches_per_time_step():
    """Backward, one more step: the fused cell backward, the two matmuls of h W_hhᵀ,
    W_hh's gradient sum, x_proj[t]'s slot, and the step's state (a copy of its slice
    of the stacked outputs' gradient, then the hidden and the cell slots added)."""
    _, backward_4 = _lstm_launches(4)
    _, backward_12 = _lstm_launches(12)
    per_step_backward = (backward_12 - backward_4) / 8
    assert per_step_backward <= 8, per_step_backward


def test_masked_softmax_launches():
    """Forward: the mask's where, the row maximum, the fused exp, the row sum and the
    fused normalisation; backward: grad·w, its row sum and the fused gradient."""
    from tests import fake_cupy
    from minitransformer.nn.attention import masked_softmax
    scores = mt.randn(2, 3, 5, 5, device="gpu", requires_grad=True)
    hide = mt.tensor(np.triu(np.ones((5, 5), dtype=bool), k=1), device="gpu")
    fake_cupy.STATS.reset()
    weights = masked_softmax(scores, hide)
    forward = fake_cupy.STATS.launches
    grad = mt.randn(2, 3, 5, 5, device="gpu")
    fake_cupy.STATS.reset()
    weights.backward(grad)
    assert (forward, fake_cupy.STATS.launches - 1) == (5, 3)     # less the leaf's grad copy
    assert fake_cupy.STATS.h2d == 0


def _adam_launches(n_params, clip):
    from tests import fake_cupy
    params = [mt.randn(5, 3, device="gpu", requires_grad=True) for _ in range(n_params)]
    opt = optim.Adam(params, lr=0.01)
    for _ in range(2):                                  # the first step also makes the state
        for p in params:
            p.grad = mt.randn(5, 3, device="gpu").data
        fake_cupy.STATS.reset()
        if clip:
            _, scale = optim.clip_grad_scale(params, 1.0)
            opt.step(grad_scale=scale)
        else:
            opt.step()
    return fake_cupy.STATS.launches


@pytest.mark.parametrize("clip", [False, True])
def test_adam_launches_per_parameter(clip):
    per_parameter = (_adam_launches(9, clip) - _adam_launches(3, clip)) / 6
    assert per_parameter <= (2 if clip else 1), per_parameter


def test_adam_with_folded_clipping_equals_clip_then_step():
    start = [np.random.default_rng(i).standard_normal((4, 3)).astype("float32") for i in range(2)]
    grads = [np.random.default_rng(9 + i).standard_normal((4, 3)).astype("float32") * 5
             for i in range(2)]
    results = []
    for folded in (False, True):
        params = [mt.tensor(s, device="gpu", requires_grad=True) for s in start]
        opt = optim.AdamW(params, lr=0.1, weight_decay=0.1)
        for _ in range(3):
            for p, g in zip(params, grads):
                p.grad = mt.tensor(g, device="gpu").data
            if folded:
                opt.step(grad_scale=optim.clip_grad_scale(params, 1.0)[1])
            else:
                optim.clip_grad_norm_(params, 1.0)
                opt.step()
        results.append([p.numpy() for p in params])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- clocks
def test_trace_reads_its_clock_after_the_device_is_drained(gpu_stats):
    """The default device is the CPU, the work on the GPU: trace() must still wait for
    the GPU before its clock reads."""
    from tests import fake_cupy
    import sys
    from minitransformer.trace import trace
    trace_module = sys.modules["minitransformer.trace"]
    x = mt.randn(16, 16, device="gpu", requires_grad=True)
    pending = x @ x                                      # queued before the trace starts
    with fake_cupy.watch_clock(trace_module, backend):
        with trace() as t:
            (x @ x).sum().backward()
            x.data *= 0.5                                # untraced work, as an optimizer's update
    assert t.duration > 0 and pending.shape == (16, 16)
    assert gpu_stats.unsynced_clock_reads == [], gpu_stats.unsynced_clock_reads


def test_the_tracer_synchronises_each_timed_op(gpu_stats):
    from minitransformer.trace import trace
    x = mt.randn(8, 8, device="gpu", requires_grad=True)
    with trace() as t:
        (F.relu(x @ x) * 2).sum().backward()
    stream_waits = sum("backend.py" in site for site in gpu_stats.sync_sites)
    assert stream_waits >= 2 * len(t.nodes)


# ---------------------------------------------------------------- random numbers
def test_reseed_gpu_makes_a_steps_draws_depend_only_on_seed_and_step():
    backend.reseed_gpu(7, 3)
    first = backend.to_numpy(backend.random_uniform((5,), "float32", "gpu"))
    backend.random_uniform((11,), "float32", "gpu")     # other draws in between
    backend.reseed_gpu(7, 4)
    other_step = backend.to_numpy(backend.random_uniform((5,), "float32", "gpu"))
    backend.reseed_gpu(7, 3)
    again = backend.to_numpy(backend.random_uniform((5,), "float32", "gpu"))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_step)


def test_manual_seed_seeds_the_gpu_generator_lazily():
    mt.manual_seed(5)
    a = backend.to_numpy(backend.random_uniform((4,), "float32", "gpu"))
    mt.manual_seed(5)
    assert "gpu" not in backend._generators              # made at the first GPU draw
    b = backend.to_numpy(backend.random_uniform((4,), "float32", "gpu"))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- benchmarks on the GPU path
def test_seq_scaling_times_its_warm_up_estimate_synchronised(gpu_stats):
    """The estimate that decides repeats and skips must time the work, not the launches."""
    from tests import fake_cupy
    from minitransformer.benchmarks import seq_scaling
    with fake_cupy.watch_clock(seq_scaling, backend):
        row = seq_scaling.measure_point("lstm", 6, 2, 16, 2, "gpu", 2, 1.0, 100.0, min_time=0.0)
    assert row["status"] == "ok"
    assert gpu_stats.unsynced_clock_reads == [], gpu_stats.unsynced_clock_reads


def test_gpu_memory_meter_counts_arrays_in_use():
    """The hook-based meter on the stand-in's pool: standard attention's peak grows
    as n², blockwise attention's as n."""
    from minitransformer.benchmarks import attention_memory, common
    growth = {}
    for variant in ("standard", "blockwise"):
        peaks = []
        for n in (64, 128):
            step, _ = attention_memory.attention_step(variant, 2, 2, n, 16, 16, "gpu")
            peaks.append(common.peak_bytes(step, "gpu"))
        growth[variant] = peaks[1] / peaks[0]
    assert 3.0 < growth["standard"] <= 4.2 and 1.7 < growth["blockwise"] <= 2.2, growth


def test_device_description_says_whether_tf32_is_on(monkeypatch):
    from minitransformer.benchmarks import common
    monkeypatch.setenv("CUPY_TF32", "1")
    assert "TF32 on" in common.device_description("gpu")
    monkeypatch.setenv("CUPY_TF32", "0")
    assert "TF32 off" in common.device_description("gpu")


def test_out_of_memory_is_recognised_outside_the_pool():
    class CUBLASError(RuntimeError):
        pass
    assert backend.is_out_of_memory(MemoryError("pool"))
    assert backend.is_out_of_memory(CUBLASError("CUBLAS_STATUS_ALLOC_FAILED"))
    assert not backend.is_out_of_memory(ValueError("shapes do not match"))


def test_training_loop_reads_its_clocks_synchronised(gpu_stats):
    """tokens/s and the time budget must time the device's work."""
    import sys
    from tests import fake_cupy
    trainer, pairs = _tiny_trainer("lstm")
    train_module = sys.modules[type(trainer).__module__]
    with fake_cupy.watch_clock(train_module, backend):
        trainer.fit(pairs, [], epochs=1, log=lambda *args: None, log_every=1, bleu_limit=0)
    assert trainer.step >= 1
    assert gpu_stats.unsynced_clock_reads == [], gpu_stats.unsynced_clock_reads

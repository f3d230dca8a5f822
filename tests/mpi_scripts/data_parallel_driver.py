"""A few data-parallel training steps of a tiny translator: the target of test_distributed's mpiexec runs.

    mpiexec -n 2 python tests/mpi_scripts/data_parallel_driver.py --out DIR [--model lstm]
    mpiexec -n 2 python tests/mpi_scripts/data_parallel_driver.py --out DIR --fail raise
    mpiexec -n 2 python tests/mpi_scripts/data_parallel_driver.py --out DIR --dropout 0.3

Every rank writes its parameters, the global losses and the bytes of each allreduce the
tracer saw in the last step to ``DIR/rank<r>.npz``. The same steps in one process
(``train_steps(None, ...)``) give the reference the test compares them with.

Each rank starts from *different* random weights (seed + rank), so identical results
also show that broadcasting rank 0's parameters works. ``--fail raise|exit|leave|hang``
makes the last rank misbehave at step ``--fail-step``: raise an exception, die at once
(``os._exit``), leave the loop silently while the others go on to their next allreduce,
or hang (sleep far longer than any test waits). A rank that left takes part in no
collective after that (it only ends): a collective it started would be matched against a
different one of the others, which MPI does not define, so the test could not say what
the others see.

``--dropout P`` trains instead through ``Trainer.train_step`` (the command line's step,
dropout seeding included) with dropout P, every rank given the same rows; it also writes
each rank's own losses (before the allreduce), with and without dropout.
"""
import argparse
import os
import sys
import time

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402

from minitransformer import backend, distributed, no_grad, optim  # noqa: E402
from minitransformer.trace import trace  # noqa: E402
from minitransformer.translation.batching import encode_pairs, make_batch, make_batches  # noqa: E402
from minitransformer.translation.grammar import load_corpus  # noqa: E402
from minitransformer.translation.train import new_trainer  # noqa: E402


def train_steps(comm, model="transformer", steps=3, global_batch=16, corpus_size=300,
                fail=None, fail_step=1, timeout=None):
    """``steps`` training steps on global batches of ``global_batch`` pairs (float64);
    returns the trainer and the global losses, one per step. ``timeout``: the
    communicator's timeout during the steps."""
    rank = comm.rank if comm else 0
    pairs = load_corpus(size=corpus_size, seed=0)["train"]
    trainer = new_trainer(model, pairs, seed=rank, batch_size=global_batch)
    trainer.model.double()
    params = list(trainer.model.parameters())
    if comm is not None:
        comm.broadcast_parameters(params)
        # Start-up (imports, building the model) can take one rank far longer than the
        # short timeout of the failure tests on a busy machine: it applies from here on.
        comm.barrier()
        comm.timeout = timeout or comm.timeout
    examples = encode_pairs(pairs, trainer.src_vocab, trainer.tgt_vocab)
    batches = make_batches(examples, global_batch, shuffle=True, seed=0)[:steps]
    losses = []
    for step, batch in enumerate(batches):
        if comm is not None and fail and step == fail_step and comm.rank == comm.size - 1:
            # The wall-clock moment of the failure, for the test to time the stop from.
            print(f"failing at {time.time():.3f}", flush=True)
            if fail == "raise":
                raise RuntimeError(f"injected failure on rank {comm.rank} at step {step}")
            if fail == "exit":
                os._exit(3)
            if fail == "leave":
                return trainer, losses
            if fail == "hang":
                time.sleep(3600)
        mine = comm.shard_batch(batch) if comm is not None else batch
        # Each step runs inside the tracer (tracing changes no result); the test checks
        # that the last one recorded the allreduce as an op.
        with trace() as traced:
            trainer.optimizer.zero_grad()
            loss = trainer.loss(mine)
            loss.backward()
            value = loss.item()
            if comm is not None:
                _, value = comm.allreduce_gradients(params, weight=mine.n_tokens, loss=value)
        trainer.allreduce_bytes = [n.bytes_read for n in traced.nodes if n.name == "allreduce"]
        optim.clip_grad_norm_(params, 1.0)
        trainer.optimizer.step()
        if trainer.schedule is not None:
            trainer.schedule.step()
        losses.append(value)
    return trainer, losses


def train_with_dropout(comm, dropout, steps=3, rows_per_rank=8, corpus_size=300):
    """``steps`` steps of ``Trainer.train_step`` of a tiny Transformer with ``dropout``,
    in which every rank gets the same rows: each global batch is one batch of pairs
    repeated once per rank. Ranks that drew the same dropout masks would then compute
    the same loss. Returns the trainer, the global losses, each rank's own losses, and
    each rank's own loss on the first batch in evaluation mode (no dropout: the same on
    every rank)."""
    pairs = load_corpus(size=corpus_size, seed=0)["train"]
    trainer = new_trainer("transformer", pairs, seed=0, batch_size=rows_per_rank * comm.size,
                          dropout=dropout, comm=comm)
    examples = encode_pairs(pairs, trainer.src_vocab, trainer.tgt_vocab)
    batches = [make_batch(examples[i * rows_per_rank:(i + 1) * rows_per_rank] * comm.size)
               for i in range(steps)]
    own_losses = []
    loss_of = trainer.loss

    def recording_loss(batch):          # train_step's loss on this rank's rows
        loss = loss_of(batch)
        own_losses.append(loss.item())
        return loss

    trainer.model.eval()
    with no_grad():
        evaluation_loss = loss_of(comm.shard_batch(batches[0])).item()
    trainer.loss = recording_loss
    losses = [trainer.train_step(batch) for batch in batches]
    return trainer, losses, own_losses, evaluation_loss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="transformer")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--fail", choices=["raise", "exit", "leave", "hang"], default=None)
    parser.add_argument("--fail-step", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--dropout", type=float, default=None)
    args = parser.parse_args(argv)
    comm = distributed.init(distributed=True, timeout=300)
    if args.dropout is not None:
        trainer, losses, own_losses, evaluation_loss = train_with_dropout(comm, args.dropout,
                                                                          args.steps)
        results = dict(own_losses=np.array(own_losses), evaluation_loss=evaluation_loss)
    else:
        trainer, losses = train_steps(comm, args.model, args.steps, args.global_batch,
                                      fail=args.fail, fail_step=args.fail_step,
                                      timeout=args.timeout)
        if args.fail == "leave" and comm.rank == comm.size - 1:
            return                      # left the loop: no more collectives, just end
        results = dict(allreduce_bytes=np.array(trainer.allreduce_bytes))
    comm.check_identical(trainer.model.parameters())
    arrays = {name: backend.to_numpy(p.data) for name, p in trainer.model.named_parameters()}
    np.savez(os.path.join(args.out, f"rank{comm.rank}.npz"), losses=np.array(losses),
             **results, **arrays)


if __name__ == "__main__":
    main()

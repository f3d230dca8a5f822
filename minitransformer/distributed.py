"""Data parallelism over MPI: P processes train one model, each on 1/P of every batch.

::

    mpiexec -n 2 python -m minitransformer train ...       # the command line does this for you

    comm = distributed.init()                  # None when not started by mpiexec
    comm.broadcast_parameters(model.parameters())
    for batch in batches:                      # every rank builds the same global batches
        mine = comm.shard_batch(batch)         # ... and keeps its own rows of each
        loss = loss_of(mine)
        loss.backward()
        comm.allreduce_gradients(model.parameters(), weight=mine.n_tokens)
        clip_grad_norm_(...); optimizer.step()  # identical gradients: identical steps

One step, P ranks, a global batch of G sentence pairs:

1. every rank holds the same parameters: rank 0's are broadcast at the start, and from
   then on identical gradients and the same optimizer keep them equal, bit for bit;
2. each rank runs forward and backward on its own G/P rows of the batch;
3. :meth:`Communicator.allreduce_gradients` sums the ranks' gradients, each weighted so
   that the sum is the gradient of the *global* batch's loss;
4. every rank clips and steps its optimizer on those identical gradients.

Nothing in the layers knows about this: the model sees an ordinary, smaller batch.

Why weights and not a plain average. The loss is a mean over the rank's non-padding
target tokens: rank r computes ``g_r = (1/N_r) Σ_{its tokens} ∇ℓ``. One process with the
whole batch would compute ``(1/N) Σ_{all tokens} ∇ℓ`` with ``N = Σ_r N_r``. The two agree
when each rank's gradient is weighted by ``N_r / N`` before the sum -- a plain average
(weight 1/P) would be wrong whenever the shards hold different numbers of tokens, which
is almost always. ``N`` itself is one tiny allreduce, which also carries the loss (for
logging the global batch's loss) and which parameters got a gradient anywhere.

Why buckets. An allreduce costs a fixed latency plus a time per byte. One call per
parameter (a Transformer has dozens) pays the latency dozens of times; one flat buffer
per bucket of a few MB pays it a few times, and each call is large enough to run at full
bandwidth. (Frameworks also start a bucket's allreduce while backward is still producing
the next bucket's gradients; here the allreduce follows backward, which keeps the code
short and the trace easy to read.)

Why this works for an LSTM as well as for the Transformer. Data parallelism splits the
*batch*, whose rows are independent; it never splits a sequence. A recurrence forbids
spreading the n time steps of one sentence over processors (step t needs step t - 1),
but every rank can walk its own sentences' time steps at the same time as the others.

The communication is visible. Every collective runs as the op :class:`AllReduce`
(through ``Function.apply``, the engine's usual path), so inside ``with trace()`` it is
recorded like any other op: name "allreduce", the bytes of the buffer, the reduction's
FLOPs and the time it took, next to the step's matmuls.

Failures: no rank may wait forever.

* A rank whose Python code raises prints its traceback and calls ``MPI_Abort``, which
  stops every rank of the job (the hook :class:`Communicator` installs in
  ``sys.excepthook``): mpiexec exits with an error instead of the others hanging in
  their next allreduce.
* A program that catches an error to report it in one line (the command line does)
  calls :func:`fail_together`, which aborts the job the same way when there are ranks.
* A rank that dies (killed, crashed) is noticed by mpiexec, which ends the others.
* A rank that stops taking part without dying (stuck, or left the training loop early)
  is caught by the timeout: every collective here is non-blocking and waited for with a
  deadline (``timeout`` seconds, default 600, or ``$MINITRANSFORMER_DIST_TIMEOUT``), and
  passing it raises :class:`DistributedTimeout` on the ranks that waited, which the hook
  turns into an abort. The deadline must exceed the longest time one rank works alone
  (rank 0's evaluation).

Either way the failing rank prints one line, ``<error> [rank r of P: aborting all
ranks]``, and waits (at most :data:`DRAIN_SECONDS`) for mpiexec to read what it wrote
before aborting: the abort kills mpiexec's forwarding processes too, and output they had
not read yet would be lost -- on a busy machine, often that very line.

GPUs. With CuPy arrays the gradients never need to leave the device: ``gpu_transport``
"nccl" (default where CuPy has NCCL) runs the sum with NCCL on the current stream;
"mpi" hands device buffers to a CUDA-aware MPI; "host" copies each bucket to the host
and back (works with any MPI, costs two copies). Only the CPU path is tested here.
"""
import array
import dataclasses
import os
import stat
import sys
import time

from . import backend
from ._tensor import Function, Tensor, no_grad

# Variables that MPI launchers set in every process they start (Open MPI; MPICH, Intel
# MPI and MVAPICH through PMI; MVAPICH's own). One of them present: we run under mpiexec.
LAUNCHER_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
DEFAULT_BUCKET_BYTES = 4 * 2**20
DEFAULT_TIMEOUT = 600.0
TIMEOUT_VARIABLE = "MINITRANSFORMER_DIST_TIMEOUT"
SPIN_SECONDS = 0.2   # how long a collective busy-waits before it starts sleeping between tests
DRAIN_SECONDS = 2.0  # the longest an aborting rank waits for mpiexec to read its output
INSTALL_HINT = "pip install 'minitransformer[dist]' (mpi4py and an MPI library such as mpich)"


class DistributedError(RuntimeError):
    """Distributed training cannot go on (no MPI, or the ranks disagree)."""


class DistributedTimeout(DistributedError):
    """A collective waited longer than the timeout: another rank died or is stuck."""


def launched_by_mpi(environ=None):
    """True when this process was started by an MPI launcher (mpiexec, mpirun, srun
    with PMI): one of :data:`LAUNCHER_SIZE_VARIABLES` is set."""
    return _launcher_size(environ) > 0


def _launcher_size(environ=None):
    """The number of processes the launcher says it started (0 if none)."""
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_SIZE_VARIABLES:
        if environ.get(name, "").isdigit():
            return int(environ[name])
    return 0


def mpi():
    """The ``mpi4py.MPI`` module, or a DistributedError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedError(f"distributed training needs mpi4py ({error}); {INSTALL_HINT}") from None
    return MPI


def init(distributed=None, **options):
    """The job's :class:`Communicator`, or None to train in one process.

    ``distributed``: True (must run with MPI: an error if mpi4py is missing), False
    (never), None (detect: a Communicator when started by an MPI launcher).
    ``options`` go to :class:`Communicator`.
    """
    if distributed is False or (distributed is None and not launched_by_mpi()):
        return None
    return Communicator(**options)


def shard_range(total, rank, size):
    """``(start, stop)`` of rank ``rank``'s part of ``total`` items split over ``size``
    ranks: consecutive parts whose lengths differ by at most one (the first
    ``total % size`` ranks get one more)."""
    if not 0 <= rank < size:
        raise ValueError(f"shard_range: rank must be in [0, {size}), got {rank}")
    base, extra = divmod(total, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard_batch(batch, rank, size, token_mask="tgt_padding_mask", token_count="n_tokens"):
    """Rank ``rank``'s rows of ``batch``, or None when it gets no rows (fewer rows than ranks).

    ``batch``: a dataclass whose Tensor and list fields all have the batch as their first
    axis (translation's ``Batch``). Those are cut to this rank's rows; the padding width
    stays the global batch's, so every row is computed exactly as it would be in one
    process. The integer field ``token_count`` is recounted from the boolean padding mask
    ``token_mask`` (True at padding), when both exist; other fields are kept.
    """
    rows = len(getattr(batch, dataclasses.fields(batch)[0].name))
    start, stop = shard_range(rows, rank, size)
    if start == stop:
        return None
    cut = {}
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if isinstance(value, Tensor):
            cut[field.name] = Tensor(value.data[start:stop])
        elif isinstance(value, list):
            cut[field.name] = value[start:stop]
    if token_count in {f.name for f in dataclasses.fields(batch)} and token_mask in cut:
        cut[token_count] = int((~cut[token_mask].data).sum())
    return dataclasses.replace(batch, **cut)


class AllReduce(Function):
    """Sum of one array over all ranks, in place: the step's communication as an op.

    It goes through ``Function.apply`` only so that the tracer records it (name, bytes
    of the buffer, time); it builds no graph (inputs never require a gradient). FLOPs:
    a ring allreduce has each rank add (P-1)/P of the buffer's elements. The bytes each
    rank sends (and receives) in a ring are 2(P-1)/P times the buffer.
    """

    name = "allreduce"

    def forward(self, array):
        self.elements = array.size
        self.comm._reduce_in_place(array, self.op)
        return array

    def flops(self):
        return self.elements * (self.comm.size - 1) // self.comm.size

    def backward(self, grad):
        raise RuntimeError("allreduce: no gradient flows through communication")


class _Bucket:
    """A flat buffer for consecutive parameters of one dtype; ``slices[i]`` is where
    parameter ``params[i]`` lives in it."""

    def __init__(self, params, xp, dtype):
        self.params = params
        self.slices, offset = [], 0
        for p in params:
            self.slices.append((offset, offset + p.data.size))
            offset += p.data.size
        self.buffer = xp.empty(offset, dtype=dtype)   # (total elements,)


class Communicator:
    """The ranks of one training job and the collectives that data parallelism needs.

    ``rank`` (0 ... size-1) and ``size`` (P). ``comm``: an mpi4py communicator (default
    COMM_WORLD). ``timeout``: seconds any collective may wait (see the module
    docstring). ``bucket_bytes``: the size of a gradient bucket. ``abort_on_error``:
    install the ``sys.excepthook`` that aborts the whole job when this rank raises.
    ``gpu_transport``: "nccl", "mpi" (CUDA-aware) or "host", for CuPy gradients.
    """

    def __init__(self, comm=None, timeout=None, bucket_bytes=DEFAULT_BUCKET_BYTES,
                 abort_on_error=True, gpu_transport=None):
        self.MPI = mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        launched = _launcher_size()
        if comm is None and launched > 1 and self.size == 1:
            # Each process started alone: mpiexec belongs to a different MPI library than
            # the one mpi4py loaded, and every "rank" would train on its own.
            raise DistributedError(f"the launcher started {launched} processes but MPI sees one: "
                                   f"this mpiexec belongs to another MPI library than mpi4py's "
                                   f"({self.MPI.Get_library_version().splitlines()[0].strip()}); "
                                   f"use the mpiexec of that library")
        if timeout is None:
            timeout = float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT))
        if timeout <= 0:
            raise ValueError(f"Communicator: timeout must be > 0 seconds, got {timeout}")
        if bucket_bytes < 1:
            raise ValueError(f"Communicator: bucket_bytes must be >= 1, got {bucket_bytes}")
        if gpu_transport not in (None, "nccl", "mpi", "host"):
            raise ValueError(f"Communicator: gpu_transport must be 'nccl', 'mpi' or 'host', "
                             f"got {gpu_transport!r}")
        self.timeout, self.bucket_bytes = float(timeout), int(bucket_bytes)
        self.gpu_transport, self._nccl = gpu_transport, None
        self._buckets, self._layout_key = None, None
        if abort_on_error:
            _install_abort_hook(self)

    @property
    def is_root(self):
        """True on rank 0, the rank that logs, evaluates and writes checkpoints."""
        return self.rank == 0

    def __repr__(self):
        return f"<Communicator rank {self.rank} of {self.size}, {self.MPI.Get_library_version().split(',')[0].strip()}>"

    # ------------------------------------------------------------ what training calls
    def broadcast_parameters(self, parameters, root=0):
        """Overwrite every rank's parameters with rank ``root``'s (in place)."""
        for p in parameters:
            if backend.array_module(p.data) is backend.numpy or self.gpu_transport == "mpi":
                self._run(p.data, "bcast", root)
            else:                         # once per training: through the host is fine
                host = backend.to_numpy(p.data)
                self._run(host, "bcast", root)
                p.data[...] = backend.cupy.asarray(host)

    def shard_batch(self, batch):
        """This rank's rows of a global ``batch`` (see :func:`shard_batch`)."""
        return shard_batch(batch, self.rank, self.size)

    def allreduce_gradients(self, parameters, weight=1.0, loss=None):
        """Replace each parameter's gradient by the weighted sum over the ranks,
        ``Σ_r (w_r / Σ w) g_r``: every rank ends with the same gradient.

        ``weight``: this rank's share of the global batch (the number of tokens its loss
        averages over; 0 for a rank with no rows, whose missing gradients count as 0).
        ``loss``: this rank's loss value (a float), to get the global batch's loss back.
        A parameter gets a gradient if any rank computed one for it. Returns
        ``(total_weight, global_loss)``: Σ w, and Σ w_r loss_r / Σ w (None without ``loss``).
        """
        params = [p for p in parameters if p.requires_grad]
        if self.size == 1:                # the sum over one rank: the gradients as they are
            return float(weight), loss
        xp = backend.array_module(params[0].data)
        # The small allreduce: the weights, the weighted losses, and which parameters have
        # a gradient (so that all ranks agree on which ones the optimizer will update).
        small = backend.numpy.zeros(2 + len(params), dtype="float64")
        small[0] = weight
        small[1] = weight * (loss if loss is not None else 0.0)
        small[2:] = [p.grad is not None for p in params]
        self._allreduce(small)
        anyone_has_grad = {id(p): small[2 + i] > 0 for i, p in enumerate(params)}
        total = float(small[0])
        if not total > 0:
            raise DistributedError(f"allreduce_gradients: the weights of all ranks sum to {total}; "
                                   f"need a positive total (rank {self.rank} gave {weight})")
        scale = weight / total
        for bucket in self._layout(params, xp):
            buffer = bucket.buffer
            for p, (start, stop) in zip(bucket.params, bucket.slices):
                if p.grad is None:
                    buffer[start:stop] = 0
                else:
                    buffer[start:stop] = p.grad.reshape(-1)
            buffer *= buffer.dtype.type(scale)
            self._allreduce(buffer)
            for p, (start, stop) in zip(bucket.params, bucket.slices):
                if not anyone_has_grad[id(p)]:
                    continue                      # no rank had a gradient: leave it None
                reduced = buffer[start:stop].reshape(p.data.shape)
                if p.grad is None:
                    p.grad = reduced.copy()
                else:
                    p.grad[...] = reduced
        return total, (float(small[1]) / total if loss is not None else None)

    def any(self, flag):
        """True on every rank if ``flag`` is true on any rank (to agree on stopping:
        a rank that leaves the loop alone would leave the others waiting)."""
        value = backend.numpy.array([1.0 if flag else 0.0])
        self._allreduce(value)
        return bool(value[0] > 0)

    def sum(self, values):
        """The sums over all ranks of a list of numbers (a list of floats)."""
        array = backend.numpy.array(values, dtype="float64")
        self._allreduce(array)
        return array.tolist()

    def check_identical(self, parameters):
        """Raise DistributedError unless every rank holds exactly the same parameters.

        Compares the elementwise maximum and minimum over the ranks: equal everywhere
        only when all ranks agree bit for bit (NaNs count as a mismatch)."""
        for index, p in enumerate(parameters):
            host = backend.to_numpy(p.data).astype("float64").reshape(-1)
            high, low = host.copy(), host.copy()
            self._run(high, "allreduce", self.MPI.MAX)
            self._run(low, "allreduce", self.MPI.MIN)
            if not (high == low).all():
                worst = float(abs(high - low).max())
                raise DistributedError(f"check_identical: parameter {index} (shape "
                                       f"{tuple(p.data.shape)}) differs between ranks by up to {worst}")

    def barrier(self):
        self._wait(self.comm.Ibarrier(), "barrier")

    def abort(self, code=1):
        """Stop every rank of the job now (MPI_Abort)."""
        self.comm.Abort(code)

    # ------------------------------------------------------------ inside
    def _layout(self, params, xp):
        """The buckets for ``params``: consecutive parameters of one dtype, at most
        ``bucket_bytes`` each (a larger parameter gets a bucket of its own). Built once,
        rebuilt only when the parameters change."""
        key = tuple((id(p), p.data.shape, str(p.data.dtype), backend.device_of(p.data)) for p in params)
        if key != self._layout_key:
            buckets, group, size = [], [], 0
            for p in params:
                if group and (p.data.dtype != group[0].data.dtype
                              or size + p.data.nbytes > self.bucket_bytes):
                    buckets.append(_Bucket(group, xp, group[0].data.dtype))
                    group, size = [], 0
                group.append(p)
                size += p.data.nbytes
            if group:
                buckets.append(_Bucket(group, xp, group[0].data.dtype))
            self._buckets, self._layout_key = buckets, key
        return self._buckets

    def _allreduce(self, array, op=None):
        """Sum ``array`` over the ranks in place, as a traced op."""
        with no_grad():
            AllReduce.apply(Tensor(array), comm=self, op=op)

    def _reduce_in_place(self, array, op=None):
        op = self.MPI.SUM if op is None else op
        if backend.array_module(array) is backend.numpy:
            self._run(array, "allreduce", op)
        else:
            self._reduce_on_gpu(array, op)

    def _reduce_on_gpu(self, array, op):
        transport = self.gpu_transport or ("nccl" if _nccl_module() is not None else "host")
        cupy = backend.cupy
        if transport == "nccl" and op == self.MPI.SUM:
            self._nccl_allreduce(array)
        elif transport == "mpi":
            cupy.cuda.get_current_stream().synchronize()   # MPI reads the memory directly
            self._run(array, "allreduce", op)
        else:
            host = cupy.asnumpy(array)
            self._run(host, "allreduce", op)
            array[...] = cupy.asarray(host)

    def _nccl_allreduce(self, array):
        nccl, cupy = _nccl_module(), backend.cupy
        if self._nccl is None:
            # Rank 0 makes NCCL's id, MPI hands it to everyone, then NCCL takes over.
            uid = nccl.get_unique_id() if self.rank == 0 else None
            uid = self.comm.bcast(uid, root=0)
            self._nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        types = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64,
                 "float16": nccl.NCCL_FLOAT16}
        if str(array.dtype) not in types:
            raise DistributedError(f"allreduce over NCCL: dtype {array.dtype} is not supported")
        stream = cupy.cuda.get_current_stream()
        self._nccl.allReduce(array.data.ptr, array.data.ptr, array.size, types[str(array.dtype)],
                             nccl.NCCL_SUM, stream.ptr)
        stream.synchronize()

    def _run(self, array, what, arg):
        """Start the non-blocking MPI collective ``what`` on ``array`` and wait for it."""
        if what == "allreduce":
            request = self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=arg)
        else:
            request = self.comm.Ibcast(array, root=arg)
        self._wait(request, what)

    def _wait(self, request, what):
        """Wait for ``request`` until the deadline.

        MPI moves a large buffer only while some call of ours drives it (here: ``Test``),
        so for the first :data:`SPIN_SECONDS` we test without pause: that covers the
        transfer and the usual difference in speed between ranks. After that, another
        rank is working alone (rank 0 evaluating): we test every millisecond and sleep
        in between, so the waiting rank does not take a core from the working one."""
        start = time.monotonic()
        deadline, spin_until = start + self.timeout, start + SPIN_SECONDS
        while not request.Test():
            now = time.monotonic()
            if now > deadline:
                raise DistributedTimeout(
                    f"{what}: rank {self.rank} of {self.size} waited {self.timeout:g} s for the "
                    f"other ranks; one of them has died, is stuck, or left the training loop "
                    f"early. Raise the timeout (${TIMEOUT_VARIABLE}) if a rank legitimately "
                    f"works alone for longer.")
            if now > spin_until:
                time.sleep(1e-3)


def _nccl_module():
    """``cupy.cuda.nccl`` when CuPy was built with NCCL, else None."""
    if backend.cupy is None:
        return None
    try:
        from cupy.cuda import nccl
    except ImportError:
        return None
    return nccl if getattr(nccl, "available", True) else None


def fail_together(message: str, status: int = 2) -> None:
    """End the whole MPI job because this rank cannot go on; do nothing in one process.

    ``message``: the error in one line, as the user would see it. When this process is
    one rank of several (MPI initialised, world size > 1), print ``message`` with the
    rank to stderr and call ``MPI_Abort(status)``: every rank stops within seconds
    instead of waiting in its next collective until the deadline. Otherwise return, and
    the caller reports the error its usual way.

    For errors a program catches (the command line turns them into one line and exit
    status 2); uncaught exceptions reach the same code through the hook below.
    """
    MPI = sys.modules.get("mpi4py.MPI")     # never imported here: importing starts MPI
    if MPI is None or not MPI.Is_initialized() or MPI.Is_finalized():
        return
    _abort_ranks(MPI.COMM_WORLD, message, status)


def _abort_ranks(comm, message, status):
    """If ``comm`` has more than one rank: say in one line on stderr which rank failed
    and why, let mpiexec read it, and abort every rank with exit status ``status``."""
    rank, size = comm.Get_rank(), comm.Get_size()
    if size < 2:
        return
    one_line = " ".join(str(message).split("\n"))
    sys.stderr.write(f"{one_line} [rank {rank} of {size}: aborting all ranks]\n")
    _wait_until_output_is_read()
    comm.Abort(status)


def _wait_until_output_is_read(limit=DRAIN_SECONDS):
    """Flush stdout and stderr, then wait until their readers (mpiexec's forwarding
    processes) have taken everything from the pipes, or ``limit`` seconds have passed
    (a reader that stopped reading must not keep the job from ending)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):    # closed, or its reader is gone: nothing to wait for
            pass
    deadline = time.monotonic() + limit
    for fd in (1, 2):
        while _unread_bytes(fd) > 0 and time.monotonic() < deadline:
            time.sleep(1e-3)


def _unread_bytes(fd):
    """How many bytes written to pipe ``fd`` its reader has not read yet; 0 where ``fd``
    is not a pipe (a terminal, a file: nothing to lose) or the system cannot say."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return 0
        import fcntl
        import termios               # both POSIX only: elsewhere, nothing to wait for
        count = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, count)
    except (OSError, ImportError):
        return 0
    return count[0]


def _install_abort_hook(communicator):
    """Make an uncaught exception on this rank abort the whole job (after printing it).

    Without it the failed rank exits while the others wait in their next collective
    (until the timeout at best). Installed once per process.
    """
    if getattr(sys.excepthook, "_aborts_mpi_job", False):
        return
    previous = sys.excepthook

    def abort_job(kind, value, tb):
        previous(kind, value, tb)
        _abort_ranks(communicator.comm, f"minitransformer: {kind.__name__}: {value}", 1)

    abort_job._aborts_mpi_job = True
    sys.excepthook = abort_job

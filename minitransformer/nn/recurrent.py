"""Recurrent layers: RNNCell, LSTMCell, RNN, LSTM.

A recurrent layer reads a sequence one step at a time:

    h[t] = tanh(x[t] W_ihᵀ + b_ih + h[t-1] W_hhᵀ + b_hh)          (RNN)

Step t needs h[t-1], so ``forward`` is an explicit Python loop over time steps:
n tokens cost n dependent steps however many processors there are. Compare
``attention.py``, where all tokens are handled by a few large matrix products.

Layouts follow PyTorch: parameters ``weight_ih_l{k}`` (gates·hidden, input),
``weight_hh_l{k}`` (gates·hidden, hidden), ``bias_ih_l{k}``, ``bias_hh_l{k}``;
LSTM gates stacked in the order input, forget, cell, output; all initialised
uniform in ±1/√hidden_size. Sequences are (seq, batch, feature), or
(batch, seq, feature) with ``batch_first=True``, or (seq, feature) unbatched.
"""
import math

from .. import backend
from .. import functional as F
from ..ops import dependence
from .._tensor import Function, zeros
from .module import Module, uniform_parameter

_NONLINEARITIES = {"tanh": F.tanh, "relu": F.relu}


# ---------------------------------------------------------------- one time step
def rnn_step(x_proj, hidden, weight_hh_t, activation):
    """One RNN step. x_proj: (batch, hidden), the input already projected and
    biased; hidden: (batch, hidden); weight_hh_t: W_hhᵀ (hidden, hidden)."""
    return activation(x_proj + hidden @ weight_hh_t)


def _sigmoid(xp, z):
    return 0.5 * (xp.tanh(0.5 * z) + 1)   # = 1 / (1 + e^-z), without overflow


def lstm_cell_forward(x_proj, hidden_proj, cell):
    """The gates and cell update of one LSTM step, in NumPy/CuPy operations (the
    readable version; on a GPU one fused kernel computes the same, see below).

    x_proj, hidden_proj: (batch, 4·hidden), the projected input and hidden state;
    cell: (batch, hidden). Returns (new hidden, new cell, the four gates' activations
    (batch, 4·hidden), tanh(new cell)); the last two are what backward needs.
    """
    xp = backend.array_module(cell)
    size = cell.shape[-1]
    gates = x_proj + hidden_proj                        # (batch, 4·hidden): i, f, g, o
    activations = xp.concatenate([
        _sigmoid(xp, gates[:, :2 * size]),              # input and forget gates: how much to write, keep
        xp.tanh(gates[:, 2 * size:3 * size]),           # the candidate: what to write
        _sigmoid(xp, gates[:, 3 * size:])], axis=1)     # the output gate: how much of the cell to show
    input_gate, forget_gate, candidate, output_gate = (
        activations[:, k * size:(k + 1) * size] for k in range(4))
    # The cell is updated by addition, not squashed through a matrix product: its
    # gradient flows back through time multiplied only by the forget gate, which is
    # why an LSTM remembers over longer delays than a plain RNN.
    new_cell = forget_gate * cell + input_gate * candidate
    tanh_cell = xp.tanh(new_cell)
    return output_gate * tanh_cell, new_cell, activations, tanh_cell


def lstm_cell_backward(grad_hidden, grad_new_cell, activations, cell, tanh_cell):
    """Backward of :func:`lstm_cell_forward`: the gradient of the gates' pre-activations
    (batch, 4·hidden) and of the old cell (batch, hidden)."""
    xp = backend.array_module(cell)
    size = cell.shape[-1]
    input_gate, forget_gate, candidate, output_gate = (
        activations[:, k * size:(k + 1) * size] for k in range(4))
    # The new cell reaches the loss directly and through hidden = o · tanh(cell).
    grad_new_cell = grad_new_cell + grad_hidden * output_gate * (1 - tanh_cell * tanh_cell)
    # Each gate's derivative times that of its squashing function (σ' = σ(1-σ), tanh' = 1-tanh²).
    grad_gates = xp.concatenate([
        grad_new_cell * candidate * input_gate * (1 - input_gate),
        grad_new_cell * cell * forget_gate * (1 - forget_gate),
        grad_new_cell * input_gate * (1 - candidate * candidate),
        grad_hidden * tanh_cell * output_gate * (1 - output_gate)], axis=1)
    return grad_gates, grad_new_cell * forget_gate


# The same two functions as fused CUDA kernels. Written with array operations, a step
# launches about twenty kernels forward and thirty backward, each on a small (batch,
# hidden) array: on a GPU the launches, not the arithmetic, are the cost. Each kernel
# below does a whole step's elementwise work in one launch: thread i handles unit j of
# sentence b (i = b·hidden + j) and reads that unit's four gates from the (batch,
# 4·hidden) rows. The arrays passed "raw" are indexed by hand, the others by i.
_LSTM_FORWARD_KERNEL = backend.ElementwiseKernel(
    "minitransformer_lstm_cell_forward",
    "raw T x_proj, raw T hidden_proj, T cell, int64 size",
    "T new_hidden, T new_cell, raw T activations, T tanh_cell",
    """
    const long long b = i / size, row = b * 4 * size + i % size;   // gate i of this unit
    const T half = 0.5;
    T gi = half * (tanh(half * (x_proj[row] + hidden_proj[row])) + 1);
    T gf = half * (tanh(half * (x_proj[row + size] + hidden_proj[row + size])) + 1);
    T gg = tanh(x_proj[row + 2 * size] + hidden_proj[row + 2 * size]);
    T go = half * (tanh(half * (x_proj[row + 3 * size] + hidden_proj[row + 3 * size])) + 1);
    activations[row] = gi; activations[row + size] = gf;
    activations[row + 2 * size] = gg; activations[row + 3 * size] = go;
    new_cell = gf * cell + gi * gg;
    tanh_cell = tanh(new_cell);
    new_hidden = go * tanh_cell;
    """,
    reference=lambda x_proj, hidden_proj, cell, size, *outputs: lstm_cell_forward(
        x_proj, hidden_proj, cell))

_LSTM_BACKWARD_KERNEL = backend.ElementwiseKernel(
    "minitransformer_lstm_cell_backward",
    "T grad_hidden, T grad_new_cell, raw T activations, T cell, T tanh_cell, int64 size",
    "raw T grad_gates, T grad_cell",
    """
    const long long b = i / size, row = b * 4 * size + i % size;
    const T gi = activations[row], gf = activations[row + size];
    const T gg = activations[row + 2 * size], go = activations[row + 3 * size];
    const T gc = grad_new_cell + grad_hidden * go * (1 - tanh_cell * tanh_cell);
    grad_gates[row] = gc * gg * gi * (1 - gi);
    grad_gates[row + size] = gc * cell * gf * (1 - gf);
    grad_gates[row + 2 * size] = gc * gi * (1 - gg * gg);
    grad_gates[row + 3 * size] = grad_hidden * tanh_cell * go * (1 - go);
    grad_cell = gc * gf;
    """,
    reference=lambda grad_hidden, grad_new_cell, activations, cell, tanh_cell, size, *outputs:
        lstm_cell_backward(grad_hidden, grad_new_cell, activations, cell, tanh_cell))


class LSTMCellUpdate(Function):
    """The gates and cell update of one LSTM step, as one op.

    Written with the ops of ``functional``, this would be an add, four slices, three
    sigmoids, two tanh, three products and a sum: fourteen ops per time step,
    forward and backward, each paying the engine's bookkeeping on a small
    (batch, hidden) array. As one op the equations are the same, the arrays the
    same, and the bookkeeping is paid once; on a GPU it is also one kernel launch.

    forward(x_proj (batch, 4·hidden), hidden_proj (batch, 4·hidden), cell (batch, hidden))
    -> (2, batch, hidden): the new hidden state and the new cell, stacked because an op
    has one output. The gates are x_proj + hidden_proj: the add is folded in.
    ``apply(gates, cell)`` (no hidden_proj) takes the gates ready-made.
    """

    def forward(self, x_proj, *rest):
        hidden_proj, cell = rest if len(rest) == 2 else (None, rest[0])
        self.gates_given = hidden_proj is None
        if hidden_proj is None:
            hidden_proj = backend.array_module(cell).zeros_like(x_proj)
        if backend.device_of(cell) == "gpu":
            xp = backend.array_module(cell)
            x_proj, hidden_proj = xp.ascontiguousarray(x_proj), xp.ascontiguousarray(hidden_proj)
            both = xp.empty((2,) + cell.shape, dtype=cell.dtype)
            activations = xp.empty(x_proj.shape, dtype=cell.dtype)
            tanh_cell = xp.empty(cell.shape, dtype=cell.dtype)
            _LSTM_FORWARD_KERNEL(x_proj, hidden_proj, cell, cell.shape[-1],
                                 both[0], both[1], activations, tanh_cell)
        else:
            hidden, new_cell, activations, tanh_cell = lstm_cell_forward(x_proj, hidden_proj, cell)
            both = backend.array_module(cell).stack([hidden, new_cell])
        self.saved = (activations, cell, tanh_cell)
        return both

    def backward(self, grad):
        activations, cell, tanh_cell = self.saved
        if backend.device_of(cell) == "gpu":
            xp = backend.array_module(cell)
            grad_gates = xp.empty(activations.shape, dtype=cell.dtype)
            grad_cell = xp.empty(cell.shape, dtype=cell.dtype)
            _LSTM_BACKWARD_KERNEL(grad[0], grad[1], xp.ascontiguousarray(activations), cell,
                                  tanh_cell, cell.shape[-1], grad_gates, grad_cell)
        else:
            grad_gates, grad_cell = lstm_cell_backward(grad[0], grad[1], activations, cell,
                                                       tanh_cell)
        if self.gates_given:
            return grad_gates, grad_cell
        # The gates are x_proj + hidden_proj: both get the gates' gradient.
        return grad_gates, grad_gates, grad_cell

    def flops(self):
        return 20 * self.saved[-1].size   # about twenty elementwise operations per unit

    def span(self):
        # Fusing saves bookkeeping, not dependence: the equations still take their
        # dependent elementwise steps -- the add x_proj + hidden_proj (unless the gates
        # come ready-made), slice a gate, squash it, the products f·c and i·g, their sum
        # (the new cell), its tanh, and o·tanh(cell) (the new hidden state) -- as many
        # as the tracer counts for them written with functional ops.
        return 6 if self.gates_given else 7

    def depends(self, depths, out):
        # Unit k of the new cell reads unit k of the input, forget and candidate gates
        # and of the old cell; unit k of the new hidden state also the output gate's.
        xp = backend.array_module(out)
        _, batch, size = out.shape
        *gate_depths, cell_depth = depths                 # x_proj (and hidden_proj), cell
        per_gate = dependence.elementwise(gate_depths, xp.empty((batch, 4 * size)))
        per_gate = per_gate.reshape(batch, 4, size)       # (batch, gate, unit)
        new_cell = per_gate[:, :3].max(axis=1)
        if cell_depth is not None:
            new_cell = xp.maximum(new_cell, cell_depth)
        hidden = xp.maximum(new_cell, per_gate[:, 3])
        return xp.stack([hidden, new_cell])               # (2, batch, hidden)


def lstm_step(x_proj, state, weight_hh_t):
    """One LSTM step. x_proj: (batch, 4·hidden), the projected input of this step;
    state: (2, batch, hidden), the hidden state and the cell stacked (the step's op
    has one output); weight_hh_t: W_hhᵀ (hidden, 4·hidden). Returns the new state
    (2, batch, hidden). The gate equations are in :func:`lstm_cell_forward`."""
    hidden, cell = state[0], state[1]
    return LSTMCellUpdate.apply(x_proj, hidden @ weight_hh_t, cell)


# ---------------------------------------------------------------- checks
def _check_size(layer, argument, x, expected_last, expected_ndims):
    if x.ndim not in expected_ndims or x.shape[-1] != expected_last:
        raise ValueError(f"{layer}: {argument} has shape {x.shape}, expected {expected_ndims[0]} "
                         f"or {expected_ndims[-1]} dims ending in {expected_last}")


def _check_state(layer, argument, state, expected, layout):
    if tuple(state.shape) != tuple(expected):
        raise ValueError(f"{layer}: {argument} has shape {state.shape}, expected "
                         f"{tuple(expected)} {layout}")


# ---------------------------------------------------------------- cells
class _CellBase(Module):
    gates = 1

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        rows = self.gates * hidden_size
        self.weight_ih = uniform_parameter((rows, input_size), bound)
        self.weight_hh = uniform_parameter((rows, hidden_size), bound)
        self.bias_ih = uniform_parameter((rows,), bound) if bias else None
        self.bias_hh = uniform_parameter((rows,), bound) if bias else None

    def _project(self, x):
        """x W_ihᵀ + b_ih + b_hh: everything of a step that does not need h[t-1]."""
        x_proj = x @ self.weight_ih.T
        if self.bias_ih is not None:
            x_proj = x_proj + (self.bias_ih + self.bias_hh)
        return x_proj

    def _prepare(self, x, states, names):
        """Check shapes, add a batch axis to unbatched input, zeros for missing states."""
        name = type(self).__name__
        _check_size(name, "input", x, self.input_size, (2, 1))
        batched = x.ndim == 2
        x = x if batched else x.reshape(1, -1)
        out = []
        for state, arg in zip(states, names):
            if state is None:
                state = zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            else:
                expected = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
                _check_state(name, arg, state, expected,
                             "(batch, hidden_size)" if batched else "(hidden_size,)")
                state = state if batched else state.reshape(1, -1)
            out.append(state)
        return x, batched, out

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class RNNCell(_CellBase):
    """One step of an Elman RNN: h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh).

    forward(input (batch, input_size) or (input_size,), hx (batch, hidden_size) or None)
    -> h' (batch, hidden_size) (no batch axis for unbatched input).
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh"):
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, batched, (hidden,) = self._prepare(input, (hx,), ("hx",))
        hidden = rnn_step(self._project(x), hidden, self.weight_hh.T,
                          _NONLINEARITIES[self.nonlinearity])
        return hidden if batched else hidden.reshape(-1)


class LSTMCell(_CellBase):
    """One LSTM step.

    forward(input (batch, input_size), hx=(h, c) each (batch, hidden_size), or None)
    -> (h', c') each (batch, hidden_size) (no batch axis for unbatched input).
    """
    gates = 4

    def forward(self, input, hx=None):
        h0, c0 = hx if hx is not None else (None, None)
        x, batched, (hidden, cell) = self._prepare(input, (h0, c0), ("hx[0]", "hx[1]"))
        state = lstm_step(self._project(x), F.stack([hidden, cell]), self.weight_hh.T)
        hidden, cell = state[0], state[1]
        if not batched:
            hidden, cell = hidden.reshape(-1), cell.reshape(-1)
        return hidden, cell


# ---------------------------------------------------------------- layers over sequences
class _RecurrentBase(Module):
    gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False):
        super().__init__()
        name = type(self).__name__
        if bidirectional:
            raise ValueError(f"{name}: bidirectional=True is not supported (one direction only)")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if num_layers < 1 or hidden_size < 1:
            raise ValueError(f"{name}: num_layers and hidden_size must be positive, got "
                             f"{num_layers} and {hidden_size}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        bound = 1.0 / math.sqrt(hidden_size)
        rows = self.gates * hidden_size
        for k in range(num_layers):
            inputs = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", uniform_parameter((rows, inputs), bound))
            setattr(self, f"weight_hh_l{k}", uniform_parameter((rows, hidden_size), bound))
            if bias:
                setattr(self, f"bias_ih_l{k}", uniform_parameter((rows,), bound))
                setattr(self, f"bias_hh_l{k}", uniform_parameter((rows,), bound))

    def _project(self, x, k):
        """The input projection of layer ``k`` for every time step at once.

        x: (seq, batch, features) -> (seq, batch, gates·hidden), as one
        (seq·batch, features) @ (features, gates·hidden) GEMM, with both biases
        added here, once. This is the only part of a recurrent layer that
        parallelises over time: it does not depend on the hidden state.
        """
        x_proj = x @ getattr(self, f"weight_ih_l{k}").T
        if self.bias:
            x_proj = x_proj + (getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}"))
        return x_proj

    def _prepare(self, input):
        """Check the input; return it time-major (seq, batch, features) and whether batched."""
        _check_size(type(self).__name__, "input", input, self.input_size, (3, 2))
        batched = input.ndim == 3
        if not batched:
            return input.reshape(input.shape[0], 1, input.shape[1]), False
        return (input.transpose(1, 0, 2) if self.batch_first else input), True

    def _initial(self, state, argument, x, batched):
        """The initial state (num_layers, batch, hidden) for ``x``, zeros when None."""
        batch = x.shape[1]
        if state is None:
            return zeros(self.num_layers, batch, self.hidden_size, dtype=x.dtype, device=x.device)
        expected = ((self.num_layers, batch, self.hidden_size) if batched
                    else (self.num_layers, self.hidden_size))
        _check_state(type(self).__name__, argument, state, expected,
                     "(num_layers, batch, hidden_size)" if batched
                     else "(num_layers, hidden_size) for unbatched input")
        return state if batched else state.reshape(self.num_layers, 1, self.hidden_size)

    def _between_layers(self, x, k):
        """Dropout on the outputs of every layer but the last, as in PyTorch."""
        if self.dropout > 0 and k < self.num_layers - 1:
            return F.dropout(x, self.dropout, self.training)
        return x

    def _finish(self, output, finals, batched):
        """Output back to the caller's layout; final states stacked (num_layers, batch, hidden)."""
        finals = [F.stack(states) for states in finals]
        if not batched:
            return output.reshape(output.shape[0], -1), [s.reshape(self.num_layers, -1) for s in finals]
        return (output.transpose(1, 0, 2) if self.batch_first else output), finals

    def extra_repr(self):
        args = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            args += f", num_layers={self.num_layers}"
        if not self.bias:
            args += ", bias=False"
        if self.batch_first:
            args += ", batch_first=True"
        if self.dropout:
            args += f", dropout={self.dropout}"
        return args


class RNN(_RecurrentBase):
    """An Elman RNN of ``num_layers`` layers, h[t] = act(x[t] W_ihᵀ + b_ih + h[t-1] W_hhᵀ + b_hh).

    forward(input, h0=None) -> (output, h_n)
      input:  (seq, batch, input_size), (batch, seq, input_size) if batch_first, or (seq, input_size)
      h0:     (num_layers, batch, hidden_size) or (num_layers, hidden_size); zeros if None
      output: (seq, batch, hidden_size) (batch first if batch_first): the last layer's h[t]
      h_n:    (num_layers, batch, hidden_size): every layer's final h
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False):
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional)
        self.nonlinearity = nonlinearity

    def forward(self, input, h0=None):
        x, batched = self._prepare(input)                 # (seq, batch, input_size)
        h0 = self._initial(h0, "h0", x, batched)          # (num_layers, batch, hidden)
        activation = _NONLINEARITIES[self.nonlinearity]
        final_hidden = []
        for k in range(self.num_layers):
            x_proj = self._project(x, k)                  # (seq, batch, hidden): all steps at once
            weight_hh_t = getattr(self, f"weight_hh_l{k}").T
            hidden = h0[k]                                # (batch, hidden)
            outputs = []
            for t in range(x.shape[0]):                   # sequential: step t waits for step t-1
                hidden = rnn_step(x_proj[t], hidden, weight_hh_t, activation)
                outputs.append(hidden)
            x = self._between_layers(F.stack(outputs), k)  # (seq, batch, hidden)
            final_hidden.append(hidden)
        output, (h_n,) = self._finish(x, [final_hidden], batched)
        return output, h_n

    def extra_repr(self):
        extra = f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else ""
        return super().extra_repr() + extra


class LSTM(_RecurrentBase):
    """A long short-term memory network of ``num_layers`` layers.

    forward(input, hx=None) -> (output, (h_n, c_n))
      input:  (seq, batch, input_size), (batch, seq, input_size) if batch_first, or (seq, input_size)
      hx:     (h0, c0), each (num_layers, batch, hidden_size); zeros if None
      output: (seq, batch, hidden_size) (batch first if batch_first): the last layer's h[t]
      h_n, c_n: (num_layers, batch, hidden_size): every layer's final hidden and cell state
    """
    gates = 4

    def forward(self, input, hx=None):
        x, batched = self._prepare(input)                 # (seq, batch, input_size)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTM: hx must be a tuple (h0, c0)")
        h0, c0 = hx if hx is not None else (None, None)
        h0 = self._initial(h0, "h0 (hx[0])", x, batched)  # (num_layers, batch, hidden)
        c0 = self._initial(c0, "c0 (hx[1])", x, batched)
        final_hidden, final_cell = [], []
        for k in range(self.num_layers):
            x_proj = self._project(x, k)                  # (seq, batch, 4·hidden): all steps at once
            weight_hh_t = getattr(self, f"weight_hh_l{k}").T
            state = F.stack([h0[k], c0[k]])               # (2, batch, hidden): hidden, cell
            states = []
            for t in range(x.shape[0]):                   # sequential: step t waits for step t-1
                state = lstm_step(x_proj[t], state, weight_hh_t)
                states.append(state)
            # Each step's hidden state, row 0 of its state. Stacking whole states (not
            # state[0]) lets backward give each step's state one gradient array to
            # add into, not two pieces to sum first: one kernel less per step on a GPU.
            x = self._between_layers(F.stack(states)[:, 0], k)   # (seq, batch, hidden)
            final_hidden.append(state[0])
            final_cell.append(state[1])
        output, (h_n, c_n) = self._finish(x, [final_hidden, final_cell], batched)
        return output, (h_n, c_n)

"""Multi-head self-attention and an LSTM written by hand on arrays: no autograd at all.

The same maths as ``nn.MultiheadAttention`` and ``nn.LSTM`` (PyTorch layouts),
forward and backward derived on paper. The overhead benchmark times the engine
against these: the ratio says how much of a training step is the engine's
bookkeeping and how much is arithmetic. They run on NumPy or CuPy (``xp``).
"""
from .. import backend


def attention_forward_backward(x, in_w, in_b, out_w, out_b, num_heads, grad_out):
    """One self-attention layer's forward and backward.

    x: (batch, seq, embed); in_w: (3·embed, embed); in_b: (3·embed,);
    out_w: (embed, embed); out_b: (embed,); grad_out: (batch, seq, embed).
    Returns (output, grads) with grads for x, in_w, in_b, out_w, out_b.
    """
    xp = backend.array_module(x)
    batch, seq, embed = x.shape
    head = embed // num_heads
    x2 = x.reshape(batch * seq, embed)
    qkv = x2 @ in_w.T + in_b                                        # (B·n, 3E)
    split = qkv.reshape(batch, seq, 3, num_heads, head).transpose(2, 0, 3, 1, 4)
    q, k, v = split[0], split[1], split[2]                           # (B, H, n, dh)
    scale = 1.0 / head ** 0.5
    scores = (q @ k.swapaxes(-1, -2)) * scale                        # (B, H, n, n)
    probs = xp.exp(scores - scores.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    context = probs @ v                                              # (B, H, n, dh)
    merged = context.transpose(0, 2, 1, 3).reshape(batch * seq, embed)
    out = merged @ out_w.T + out_b

    g = grad_out.reshape(batch * seq, embed)
    grad_out_w = g.T @ merged
    grad_out_b = g.sum(axis=0)
    grad_context = (g @ out_w).reshape(batch, seq, num_heads, head).transpose(0, 2, 1, 3)
    grad_probs = grad_context @ v.swapaxes(-1, -2)
    grad_v = probs.swapaxes(-1, -2) @ grad_context
    grad_scores = probs * (grad_probs - (grad_probs * probs).sum(axis=-1, keepdims=True)) * scale
    grad_q = grad_scores @ k
    grad_k = grad_scores.swapaxes(-1, -2) @ q
    grad_qkv = xp.stack([grad_q, grad_k, grad_v]).transpose(1, 3, 0, 2, 4).reshape(batch * seq, 3 * embed)
    grad_in_w = grad_qkv.T @ x2
    grad_in_b = grad_qkv.sum(axis=0)
    grad_x = (grad_qkv @ in_w).reshape(batch, seq, embed)
    return out.reshape(batch, seq, embed), (grad_x, grad_in_w, grad_in_b, grad_out_w, grad_out_b)


def _sigmoid(xp, z):
    return 0.5 * (xp.tanh(0.5 * z) + 1)


def lstm_forward_backward(x, w_ih, w_hh, b_ih, b_hh, grad_out):
    """One LSTM layer (batch_first, zero initial state) forward and backward through time.

    x: (batch, seq, input); w_ih: (4·hidden, input); w_hh: (4·hidden, hidden);
    b_ih, b_hh: (4·hidden,); gates stacked input, forget, cell, output.
    grad_out: (batch, seq, hidden). Returns (output, grads for x, w_ih, w_hh, b_ih, b_hh).
    """
    xp = backend.array_module(x)
    batch, seq, inputs = x.shape
    hidden = w_hh.shape[1]
    x2 = x.reshape(batch * seq, inputs)
    projected = (x2 @ w_ih.T + (b_ih + b_hh)).reshape(batch, seq, 4 * hidden)
    h = xp.zeros((batch, hidden), x.dtype)
    c = xp.zeros((batch, hidden), x.dtype)
    saved, outputs = [], []
    for t in range(seq):
        gates = projected[:, t] + h @ w_hh.T
        i = _sigmoid(xp, gates[:, :hidden])
        f = _sigmoid(xp, gates[:, hidden:2 * hidden])
        g = xp.tanh(gates[:, 2 * hidden:3 * hidden])
        o = _sigmoid(xp, gates[:, 3 * hidden:])
        c_prev, h_prev = c, h
        c = f * c + i * g
        tanh_c = xp.tanh(c)
        h = o * tanh_c
        saved.append((i, f, g, o, c_prev, h_prev, tanh_c))
        outputs.append(h)
    out = xp.stack(outputs, axis=1)

    grad_projected = xp.empty((batch, seq, 4 * hidden), x.dtype)
    grad_w_hh = xp.zeros_like(w_hh)
    grad_h = xp.zeros((batch, hidden), x.dtype)
    grad_c = xp.zeros((batch, hidden), x.dtype)
    for t in reversed(range(seq)):
        i, f, g, o, c_prev, h_prev, tanh_c = saved[t]
        grad_h = grad_h + grad_out[:, t]
        grad_o = grad_h * tanh_c
        grad_c = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
        grad_gates = xp.concatenate([grad_c * g * i * (1 - i), grad_c * c_prev * f * (1 - f),
                                     grad_c * i * (1 - g * g), grad_o * o * (1 - o)], axis=1)
        grad_projected[:, t] = grad_gates
        grad_w_hh += grad_gates.T @ h_prev
        grad_h = grad_gates @ w_hh
        grad_c = grad_c * f
    gp = grad_projected.reshape(batch * seq, 4 * hidden)
    grad_w_ih = gp.T @ x2
    grad_b = gp.sum(axis=0)
    grad_x = (gp @ w_ih).reshape(batch, seq, inputs)
    return out, (grad_x, grad_w_ih, grad_w_hh, grad_b, grad_b)

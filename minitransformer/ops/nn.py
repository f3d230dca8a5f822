"""Fused ops that numerical stability or speed demand.

Softmax built from exp, sum and div overflows for large logits and keeps three
intermediate arrays alive for backward; as one op it subtracts the maximum first
and saves only its output. Cross-entropy, layer norm and embedding lookup are
fused for the same reasons: a short closed-form backward instead of a long chain
of small ops.
"""
from .. import backend
from .._tensor import Function
from . import dependence


def softmax_span(length):
    """Parallel steps of a softmax over ``length`` numbers: two reductions (the max,
    the sum), each a tree, and three elementwise steps (subtract, exp, divide)."""
    return 2 * dependence.tree(length) + 3


def _stable_log_softmax(x, axis):
    xp = backend.array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """softmax(x)_i = exp(x_i - max x) / Σ_j exp(x_j - max x) along ``axis``."""
    axis = -1

    def forward(self, x):
        xp = backend.array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        e /= e.sum(axis=self.axis, keepdims=True)
        self.out = e
        return e

    def backward(self, grad):
        # The Jacobian diag(s) - s sᵀ applied to grad, without forming it.
        s = self.out
        return (s * (grad - (grad * s).sum(axis=self.axis, keepdims=True)),)

    def flops(self):
        return 4 * self.out.size  # max, subtract, exp, divide (the sum shares the divide's pass)

    def span(self):
        return softmax_span(self.out.shape[self.axis])

    def depends(self, depths, out):
        # Every output along the axis reads every input along it (the sum).
        return dependence.along_axes(depths[0], self.axis)


class LogSoftmax(Function):
    """log softmax(x) = x - logsumexp(x), computed with the maximum subtracted."""
    axis = -1

    def forward(self, x):
        self.out = _stable_log_softmax(x, self.axis)
        return self.out

    def backward(self, grad):
        xp = backend.array_module(grad)
        return (grad - xp.exp(self.out) * grad.sum(axis=self.axis, keepdims=True),)

    def flops(self):
        return 5 * self.out.size

    def span(self):
        return softmax_span(self.out.shape[self.axis])   # the same two trees

    def depends(self, depths, out):
        return dependence.along_axes(depths[0], self.axis)


class CrossEntropy(Function):
    """Cross-entropy of logits ``(N, C)`` or ``(N, C, d1, ...)`` against class indices.

    Fused log-softmax and negative log-likelihood, with ``ignore_index`` (targets
    equal to it add nothing and are not counted by the mean) and label smoothing
    (the target distribution puts ``1 - ε`` on the true class and ``ε / C``
    spread over all classes, as in PyTorch).
    """
    ignore_index = -100
    label_smoothing = 0.0
    reduction = "mean"

    def forward(self, logits, targets):
        xp = backend.array_module(logits)
        classes = logits.shape[1]
        if logits.ndim > 2:  # (N, C, d1, ...) -> (N·d1·..., C): classes last
            logits = xp.moveaxis(logits, 1, -1)
        self.logits_shape = logits.shape
        flat = logits.reshape(-1, classes)
        flat_targets = targets.reshape(-1)
        valid = flat_targets != self.ignore_index
        safe_targets = xp.where(valid, flat_targets, 0)
        log_probs = _stable_log_softmax(flat, -1)
        rows = xp.arange(flat.shape[0])
        nll = -log_probs[rows, safe_targets]
        eps = self.label_smoothing
        losses = (1 - eps) * nll - eps * log_probs.mean(axis=-1) if eps > 0 else nll
        losses = losses * valid
        self.log_probs, self.safe_targets, self.valid = log_probs, safe_targets, valid
        self.targets_shape = targets.shape
        if self.reduction == "none":
            return losses.reshape(targets.shape)
        total = losses.sum()
        if self.reduction == "sum":
            return total
        # The count stays an array: converting it to a Python int would wait for the GPU.
        self.count = xp.maximum(valid.sum(), 1).astype(total.dtype)
        return total / self.count

    def backward(self, grad):
        xp = backend.array_module(grad)
        classes = self.log_probs.shape[1]
        # d loss_i / d logits_i = softmax(logits_i) - target distribution_i
        grad_flat = xp.exp(self.log_probs)
        eps = self.label_smoothing
        if eps > 0:
            grad_flat -= eps / classes
        rows = xp.arange(grad_flat.shape[0])
        grad_flat[rows, self.safe_targets] -= 1 - eps
        if self.reduction == "none":
            weight = grad.reshape(-1)
        elif self.reduction == "sum":
            weight = grad
        else:
            weight = grad / self.count
        grad_flat *= (self.valid * weight).astype(grad_flat.dtype)[:, None]
        grad_logits = grad_flat.reshape(self.logits_shape)
        if len(self.logits_shape) > 2:
            grad_logits = xp.moveaxis(grad_logits, -1, 1)
        return grad_logits, None

    def flops(self):
        return 6 * self.log_probs.size

    def span(self):
        # A log-softmax per row, then (unless reduction="none") the sum over rows.
        rows = self.log_probs.shape[0]
        steps = softmax_span(self.log_probs.shape[1])
        return steps if self.reduction == "none" else steps + dependence.tree(rows)

    def depends(self, depths, out):
        if depths[0] is None:     # the targets are integers: no path runs through them
            return dependence.unreached(out)
        if self.reduction != "none":
            return dependence.everything(depths[:1], out)
        # loss[i] reads the logits of example i, all classes (axis 1).
        return dependence.along_axes(depths[0], 1, keepdims=False).reshape(out.shape)


class LayerNorm(Function):
    """Normalise over the last ``len(normalized_shape)`` axes, then scale and shift.

    Inputs: ``x`` and, when present, ``weight`` and ``bias`` of shape
    ``normalized_shape``; ``has_weight``/``has_bias`` say which were passed.
    """
    normalized_ndim = 1
    eps = 1e-5
    has_weight = has_bias = False

    def forward(self, x, *affine):
        xp = backend.array_module(x)
        axes = tuple(range(x.ndim - self.normalized_ndim, x.ndim))
        self.axes = axes
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        self.rstd = 1 / xp.sqrt(var + self.eps)
        self.normed = centered * self.rstd
        self.weight = affine[0] if self.has_weight else None
        out = self.normed * self.weight if self.has_weight else self.normed
        if self.has_bias:
            out = out + affine[-1]
        return out

    def backward(self, grad):
        lead = tuple(range(grad.ndim - self.normalized_ndim))
        grads = []
        g = grad * self.weight if self.has_weight else grad
        # x̂ = (x - μ)·rstd: the mean and variance depend on every x, hence two
        # correction terms on top of g·rstd.
        mean_g = g.mean(axis=self.axes, keepdims=True)
        mean_gx = (g * self.normed).mean(axis=self.axes, keepdims=True)
        grads.append(self.rstd * (g - mean_g - self.normed * mean_gx))
        if self.has_weight:
            grads.append((grad * self.normed).sum(axis=lead))
        if self.has_bias:
            grads.append(grad.sum(axis=lead))
        return tuple(grads)

    def flops(self):
        return 8 * self.normed.size

    def span(self):
        # Two reductions (mean, variance), each a tree, and eight elementwise steps.
        size = 1
        for axis in self.axes:
            size *= self.normed.shape[axis]
        return 2 * dependence.tree(size) + 8

    def depends(self, depths, out):
        # Each output reads every element it is normalised with (mean and variance),
        # and elementwise the weight and bias.
        reached = dependence.unreached(out)
        if depths[0] is not None:
            reached = backend.array_module(out).maximum(
                reached, dependence.along_axes(depths[0], self.axes))
        return dependence.elementwise([reached] + list(depths[1:]), out)


class Embedding(Function):
    """Rows of ``weight`` (num_embeddings, dim) picked by integer ``indices`` of any shape.

    Backward adds each output row's gradient to the row it came from (repeated
    indices add up); the ``padding_idx`` row gets no gradient, as in PyTorch.
    """
    padding_idx = None

    def forward(self, indices, weight):
        self.indices, self.weight_shape, self.dtype = indices, weight.shape, weight.dtype
        return weight[indices]

    def backward(self, grad):
        xp = backend.array_module(grad)
        grad_weight = xp.zeros(self.weight_shape, dtype=self.dtype)
        flat = self.indices.reshape(-1)
        backend.scatter_add(grad_weight, flat, grad.reshape(flat.size, -1))
        if self.padding_idx is not None:
            grad_weight[self.padding_idx] = 0
        return None, grad_weight

    def span(self):
        return 1   # every row fetched at once

    def depends(self, depths, out):
        # Output row i is row indices[i] of the weight; no path runs through integers.
        if depths[1] is None:
            return dependence.unreached(out)
        return depths[1][self.indices]

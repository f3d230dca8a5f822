"""Loss modules: thin wrappers of the functional losses, as in PyTorch."""
from .. import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """Cross-entropy between logits and integer class targets.

    forward(logits (N, C) or (N, C, d1, ...), targets (N,) or (N, d1, ...)) -> a scalar
    (or one loss per target with reduction="none"). Targets equal to
    ``ignore_index`` (padding) add nothing and are not counted by the mean.
    """

    def __init__(self, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"CrossEntropyLoss: reduction must be 'mean', 'sum' or 'none', "
                             f"got {reduction!r}")
        self.ignore_index, self.reduction = ignore_index, reduction
        self.label_smoothing = label_smoothing

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets, ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing, reduction=self.reduction)

    def extra_repr(self):
        return (f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, "
                f"label_smoothing={self.label_smoothing}")


class MSELoss(Module):
    """Mean squared error. forward(input, target), both of one shape -> a scalar
    (or elementwise squared errors with reduction="none")."""

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"MSELoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"

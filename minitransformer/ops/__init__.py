"""The primitive ops, one class each, forward and backward side by side.

Read them in this order: ``elementwise`` (the pattern every op follows),
``reduction``, ``shape``, ``matmul`` (where the work is), ``nn`` (fused ops).
Users call them through :mod:`minitransformer.functional`.
"""

"""The argument of the project in one run: trace an LSTM and a self-attention layer.

    python examples/trace_lstm_vs_attention.py

For growing sequence length n, the tracer measures the critical path (sequential
ops) and the parallelism (work / span) of one forward pass of each layer.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a clone

import minitransformer as mt  # noqa: E402
from minitransformer import nn  # noqa: E402
from minitransformer.trace import trace  # noqa: E402

d = 32
lstm = nn.LSTM(d, d, batch_first=True)
attention = nn.MultiheadAttention(d, 4, batch_first=True)
print(f"{'n':>5} {'LSTM seq. ops':>14} {'attention seq. ops':>19} {'LSTM W/S':>10} {'attention W/S':>14}")
for n in (8, 32, 128):
    x = mt.randn(1, n, d)
    with trace() as t_lstm:
        lstm(x)
    with trace() as t_attn:
        attention(x, x, x)
    a, b = t_lstm.summary(), t_attn.summary()
    print(f"{n:>5} {a['sequential_ops']:>14} {b['sequential_ops']:>19} "
          f"{a['parallelism']:>10.0f} {b['parallelism']:>14.0f}")
print("\nThe LSTM's chain grows with n; attention's does not, and its parallelism grows instead.")

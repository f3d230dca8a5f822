# %% [markdown]
# # 7. The GPU
#
# After this chapter you will be able to run the same layers on the CPU and on a CUDA
# GPU, time them honestly (a GPU runs ahead of Python, so the clock must wait for
# it), and explain why a GPU widens the gap between an LSTM and attention.
#
# Without a GPU the chapter says so and measures the CPU only.

# %%
import os
import statistics
import time

import minitransformer as mt
from minitransformer import nn

QUICK = os.environ.get("MINITRANSFORMER_TOUR_QUICK") == "1"
n, d, batch = (32, 32, 4) if QUICK else (256, 64, 16)
REPEATS = 3 if QUICK else 5

# %% [markdown]
# ## Is there a GPU?
#
# `mt.gpu_available()` is True where CuPy is installed and a CUDA GPU answers. Where it
# is False the library runs everything on NumPy.

# %%
devices = ["cpu"] + (["gpu"] if mt.gpu_available() else [])
if "gpu" in devices:
    print("GPU:", mt.backend.device_name("gpu"))
else:
    print("No GPU here (mt.gpu_available() is False): measuring the CPU only.")

# %% [markdown]
# ## Timing on a GPU: wait before reading the clock
#
# A GPU op returns to Python as soon as it is *queued*; the work happens later. A
# clock read right after it measures the launch, not the work. `mt.synchronize(device)`
# waits until the device has finished everything queued (on the CPU it does nothing).
# Each measurement below also starts with an untimed warm-up run: on a GPU the first
# run compiles kernels.

# %%
def median_seconds(run, device, repeats=REPEATS):
    run()                                     # warm-up
    times = []
    for _ in range(repeats):
        mt.synchronize(device)
        start = time.perf_counter()
        run()
        mt.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)

# %% [markdown]
# ## The same layers on every device
#
# One LSTM layer and one self-attention layer, the same width, over the same n tokens,
# forward and backward. Seeded alike, so they start from the same weights on every
# device.

# %%
def layers_on(device):
    mt.manual_seed(0)
    lstm = nn.LSTM(d, d, batch_first=True).to(device)
    attention = nn.MultiheadAttention(d, 4, batch_first=True).to(device)
    x = mt.randn(batch, n, d, device=device)

    def run_lstm():
        out, _ = lstm(x)
        out.sum().backward()

    def run_attention():
        out, _ = attention(x, x, x, need_weights=False)
        out.sum().backward()

    return run_lstm, run_attention


results = {}
for device in devices:
    run_lstm, run_attention = layers_on(device)
    results[device] = (median_seconds(run_lstm, device), median_seconds(run_attention, device))

print(f"n = {n} tokens, d = {d}, batch {batch}, forward + backward, median of {REPEATS}")
print(f"{'device':>6} {'LSTM ms':>9} {'attention ms':>13} {'LSTM / attention':>17}")
for device, (lstm_s, attention_s) in results.items():
    ratio = lstm_s / attention_s
    print(f"{device:>6} {lstm_s * 1e3:>9.1f} {attention_s * 1e3:>13.1f} {ratio:>17.1f}")

# %% [markdown]
# ## Reading the ratio
#
# The LSTM runs n dependent steps of small products, each a separate op with its own
# fixed cost (Python, and on a GPU a kernel launch of some microseconds); attention runs
# a handful of large products. On a CPU the large products cost their FLOPs, and
# attention's n² scores can make it as slow as the LSTM or slower: a ratio near 1, or
# below. On a GPU a large product takes barely longer than a small one, while the LSTM
# still pays for n launches in a row: the ratio grows, and it grows with n.

# %%
if "gpu" not in results:
    print("Run this notebook on a machine with a GPU (in Colab: Runtime > Change runtime "
          "type > GPU) to see the GPU's ratio beside the CPU's.")
else:
    cpu_ratio = results["cpu"][0] / results["cpu"][1]
    gpu_ratio = results["gpu"][0] / results["gpu"][1]
    print(f"the GPU's ratio is {gpu_ratio / cpu_ratio:.1f} times the CPU's")

# %% [markdown]
# ## Exercises
#
# **Exercise 7.1: a fair stopwatch.** In `tour/exercises/ex07_1.py` write
# `timed(fn, device, repeats)`: the median wall time of `fn()`, with the device
# synchronised before each clock reading. The check times functions whose durations
# it knows and counts your calls of `mt.synchronize`: `python -m pytest -m exercise_7_1`.
# Then use it to time the LSTM at n = 64, 128, 256 on each device you have: on which
# device does the time grow most nearly in proportion to n?

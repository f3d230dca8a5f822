"""float32 on the CPU against float32 on the GPU: the same weights, the same inputs.

    python bench/gpu_compare.py --device gpu     # -> bench/results/gpu-<name>/gpu_compare.csv
    python bench/gpu_compare.py --device cpu --quick   # a dry run: both halves on the CPU

For each case the script builds the layer on the CPU from a fixed seed, copies it to
``--device``, runs forward and backward on both, and writes the largest relative
difference of the outputs and of every gradient (relative to the largest CPU value).
The translator case trains a tiny Transformer for 20 steps on both devices from the
same weights (dropout 0) and compares the loss curves.

What to expect: float32 sums in a different order differ by ~1e-6 relative; with TF32
matrix products (CUPY_TF32=1) by ~1e-3. gpu_check.sh runs with CUPY_TF32=0.
"""
import copy
import time

from .. import backend, nn
from .._tensor import tensor
from . import common

np = backend.numpy   # host arrays: inputs built and results compared on the CPU


def _relative(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def _layer_case(name, make, inputs, device):
    """Forward+backward of ``make()`` on the CPU and on ``device``; max relative errors."""
    backend.manual_seed(0)
    layer_cpu = make()
    layer_dev = copy.deepcopy(layer_cpu).to(device)
    results = {}
    for where, layer in (("cpu", layer_cpu), (device, layer_dev)):
        xs = [tensor(x, device=where, requires_grad=True) for x in inputs]
        out = layer(*xs)
        out = out[0] if isinstance(out, tuple) else out
        weights = tensor(np.linspace(-1, 1, out.size(), dtype=np.float32).reshape(out.shape),
                            device=where)
        (out * weights).sum().backward()
        grads = [x.grad for x in xs] + [p.grad for p in layer.parameters()]
        results[where] = [out.numpy()] + [backend.to_numpy(g) for g in grads if g is not None]
    errors = [_relative(d, c) for d, c in zip(results[device], results["cpu"])]
    return {"case": name, "output_rel_err": errors[0], "max_grad_rel_err": max(errors[1:])}


def _translator_case(device, steps=20):
    from minitransformer.translation.batching import encode_pairs, make_batches
    from minitransformer.translation.synthetic import copy_task
    from minitransformer.translation.train import new_trainer
    pairs = copy_task(64, 8, seed=0)
    curves = {}
    for where in ("cpu", device):
        # new_trainer draws the weights on the CPU generator, then moves them: the same
        # starting point on both devices.
        trainer = new_trainer("transformer", pairs, device=where, batch_size=16, seed=0,
                              dropout=0.0, d_model=64, nhead=4, num_encoder_layers=2,
                              num_decoder_layers=2, dim_feedforward=128, warmup=10)
        examples = encode_pairs(pairs, trainer.src_vocab, trainer.tgt_vocab)
        batches = list(make_batches(examples, batch_size=16, shuffle=False, device=where))
        losses = []
        for step in range(steps):
            losses.append(trainer.train_step(batches[step % len(batches)]))
        curves[where] = losses
    return {"case": f"translator_{steps}_steps", "output_rel_err": _relative(curves[device][-1:],
                                                                             curves["cpu"][-1:]),
            "max_grad_rel_err": max(_relative([d], [c]) for d, c in zip(curves[device],
                                                                        curves["cpu"])),
            "cpu_losses": " ".join(f"{x:.5f}" for x in curves["cpu"]),
            "device_losses": " ".join(f"{x:.5f}" for x in curves[device])}


def main(argv=None):
    parser = common.parser("gpu_compare", __doc__.split("\n")[0],
                           quick_help="tiny sizes (a CPU dry run)")
    args = common.parse(parser, argv)
    batch, dim, n = (2, 16, 12) if args.quick else (32, 256, 128)
    rng = np.random.default_rng(0)
    x_seq = rng.standard_normal((n, batch, dim)).astype(np.float32)          # (seq, batch, d)
    x_bf = rng.standard_normal((batch, n, dim)).astype(np.float32)           # (batch, seq, d)
    heads = 4 if args.quick else 8
    cases = [
        ("lstm", lambda: nn.LSTM(dim, dim), [x_seq]),
        ("attention", lambda: _SelfAttention(nn.MultiheadAttention(dim, heads, batch_first=True)),
         [x_bf]),
        ("blockwise", lambda: _SelfAttention(nn.MultiheadAttention(
            dim, heads, batch_first=True, attention="blockwise", block_size=max(n // 4, 1))), [x_bf]),
    ]
    rows = []
    started = time.perf_counter()
    for name, make, inputs in cases:
        rows.append(_layer_case(name, make, inputs, args.device))
        print(rows[-1], flush=True)
    rows.append(_translator_case(args.device, steps=4 if args.quick else 20))
    print(rows[-1], flush=True)
    print(f"compared in {time.perf_counter() - started:.0f} s; TF32: {backend.tf32_setting()}")
    fields = ["case", "output_rel_err", "max_grad_rel_err", "cpu_losses", "device_losses"]
    common.finish("gpu_compare", args.device, args.out_dir,
                  {"gpu_compare": [{k: row.get(k, "") for k in fields} for row in rows]},
                  [f"float32 on the cpu against the {args.device}; batch={batch} d={dim} n={n}; "
                   f"TF32: {backend.tf32_setting()}"])
    return rows


class _SelfAttention(nn.Module):
    """MultiheadAttention(x, x, x) as a one-input layer."""

    def __init__(self, attention):
        super().__init__()
        self.attention = attention

    def forward(self, x):
        return self.attention(x, x, x)[0]


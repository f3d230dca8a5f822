"""`import minitransformer as mt` alone gives `mt.nn` and `mt.optim`, as `import torch`
gives `torch.nn` and `torch.optim`.

Checked in a fresh interpreter: in this one, other tests have already imported
`minitransformer.nn`, which sets the attribute whatever `__init__.py` does.
"""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_nn_and_optim_are_attributes_after_a_plain_import():
    code = ("import minitransformer as mt\n"
            "layer = mt.nn.Linear(3, 2)\n"
            "optimizer = mt.optim.Adam(layer.parameters(), lr=0.1)\n"
            "print(type(layer).__name__, type(optimizer).__name__)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO] + [p for p in [env.get("PYTHONPATH")] if p])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Linear", "Adam"]

"""``python -m minitransformer train ...`` whose validation fails on rank 0 alone.

    mpiexec -n 2 python tests/mpi_scripts/failing_validation.py train --valid ... ...

Rank 0 alone validates, while the other ranks wait for it in their next collective:
this script makes that validation raise (``Trainer.bleu``, on rank 0), then runs the
command line with the arguments it was given, so the test sees what a user would when
rank 0 fails on its own: how the job ends, and how long that takes.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from minitransformer import cli  # noqa: E402
from minitransformer.translation.train import Trainer  # noqa: E402


def failing_bleu(self, *args, **kwargs):
    if self.comm is None or self.comm.is_root:
        print(f"failing in validation at {time.time():.3f}", file=sys.stderr, flush=True)
        raise RuntimeError("injected failure in validation")
    raise AssertionError("only rank 0 validates")


Trainer.bleu = failing_bleu

if __name__ == "__main__":
    cli.main(sys.argv[1:])

"""`python bench/predict.py [flags]` is `python -m minitransformer bench predict [flags]`.

What it measures: minitransformer/benchmarks/predict.py; its flags: `--help`.
Writes its CSV (and PNG, when matplotlib is installed) under bench/results/<device>/.
"""
import os
import sys

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minitransformer.benchmarks.runner import main  # noqa: E402

if __name__ == "__main__":
    main([os.path.splitext(os.path.basename(__file__))[0], *sys.argv[1:]])

"""`python bench/gpu_compare.py [flags]` is `python -m minitransformer bench gpu_compare [flags]`.

What it measures: minitransformer/benchmarks/gpu_compare.py; its flags: `--help`.
Writes gpu_compare.csv under bench/results/<device>/ (bench/gpu_check.sh runs it on a GPU).
"""
import os
import sys

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minitransformer.benchmarks.runner import main  # noqa: E402

if __name__ == "__main__":
    main([os.path.splitext(os.path.basename(__file__))[0], *sys.argv[1:]])

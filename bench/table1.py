"""`python bench/table1.py [flags]` is `python -m minitransformer bench table1 [flags]`.

What it measures: minitransformer/benchmarks/table1.py; its flags: `--help`.
Writes bench/results/table1.csv (and .png with matplotlib); the same as
`python -m minitransformer table1`.
"""
import os
import sys

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minitransformer.benchmarks.runner import main  # noqa: E402

if __name__ == "__main__":
    main([os.path.splitext(os.path.basename(__file__))[0], *sys.argv[1:]])

"""Runs minitransformer/benchmarks/real_translation.py: see its docstring, or `python bench/real_translation.py --help`.

Writes its CSV (and PNG, when matplotlib is installed) under bench/results/<device>/.
"""
import os
import sys

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minitransformer.benchmarks.real_translation import main  # noqa: E402

if __name__ == "__main__":
    main()

"""Table 1 of "Attention Is All You Need", measured: see minitransformer/table1.py.

    python bench/table1.py [--d 64] [--ns 8 16 ... 512] [--device cpu|gpu]

Writes bench/results/table1.csv (and table1.png beside it when matplotlib is
installed). Same as ``python -m minitransformer table1``.
"""
import os
import sys

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minitransformer.table1 import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())

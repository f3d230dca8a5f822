"""Runs minitransformer/benchmarks/data_parallel.py: see its docstring, or `python bench/data_parallel.py --help`.

Needs the dist extra (mpi4py and an MPI with mpiexec); it starts the mpiexec jobs itself.
Writes its CSVs (and PNG, when matplotlib is installed) under bench/results/<device>/.
"""
import os
import sys

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minitransformer.benchmarks.runner import main  # noqa: E402

if __name__ == "__main__":   # the same as `python -m minitransformer bench data_parallel [flags]`
    main([os.path.splitext(os.path.basename(__file__))[0], *sys.argv[1:]])

#!/usr/bin/env python
"""Write docs/benchmark.md and the README's result blocks from the JSON run records in
docs/results/ (``lab.benchmark_page``). ``--check`` writes nothing and exits 1 if a committed
file differs from what the records give.

Example::

    python tools/benchmark_page.py
    python tools/benchmark_page.py --check
"""
import argparse
import os.path as osp
import sys

# lab/, the benchmark harness, lives beside the package in this checkout (not installed).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from lab.benchmark_page import stale, write


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--check', action='store_true',
                   help='write nothing; exit 1 if docs/benchmark.md or README.md is stale')
    args = p.parse_args(argv)
    if args.check:
        paths = stale()
        for path in paths:
            print(f'stale: {path} (run python tools/benchmark_page.py)')
        return 1 if paths else 0
    for path in write():
        print(f'written: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

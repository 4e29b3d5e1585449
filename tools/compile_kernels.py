"""Compile every Triton kernel the imbfocal losses launch for a GPU, without one, and report
ptxas's registers, spills and shared memory and the occupancy that follows.

Each loss of ``lab.benchmarking.benchmarked_losses`` takes one forward and backward on
RetinaNet-like CPU inputs, called as RetinaNet's head calls it (anchor weights, a float
``avg_factor``) and as FCOS's does (no weights, a tensor ``avg_factor``), under
``use_impl('triton')`` inside ``lab.kernel_compilation.compile_only``: every
kernel launch compiles for the target (compute capability ``--arch``) exactly as Triton's JIT
compiles it on that GPU, down to the cubin, and nothing runs. A kernel that does not compile
fails the command.

Example::

    python tools/compile_kernels.py --arch 90 --tilings 4096x8x8 2048x8x8 2048x4x8
"""
import argparse
import itertools
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import torch

# lab/, the benchmark harness, lives beside the package in this checkout (not installed).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from imbfocal.kernels.common import Tiling, use_tiling
from imbfocal.losses import use_impl
from lab.benchmarking import benchmarked_losses, make_inputs, write_report
from lab.kernel_compilation import compile_only, resource_usage

DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}


# How heads call a loss: RetinaNet passes anchor weights and a float avg_factor; FCOS no
# weights and a tensor avg_factor (read by the kernel from device memory)
HEAD_CALLS = {
    'retina': lambda inputs: dict(weight=inputs['weight'], avg_factor=inputs['avg_factor']),
    'fcos': lambda inputs: dict(weight=None, avg_factor=torch.tensor(inputs['avg_factor'])),
}


def compile_losses(arch: int, tiling: Tiling, num_classes: int, dtypes: Sequence[str],
                   num_rows: int) -> List[Dict]:
    """One row per kernel launch of every loss's forward and backward, per logits dtype and
    way a head calls it."""
    rows = []
    for dtype, (call, call_args) in itertools.product(dtypes, HEAD_CALLS.items()):
        inputs = make_inputs(num_rows, num_classes, 'cpu', DTYPES[dtype])
        for name, module in benchmarked_losses(num_classes).items():
            logits = inputs['logits'].clone().requires_grad_()
            with compile_only(arch) as launches, use_impl('triton'), use_tiling(tiling):
                module(logits, inputs['labels'], **call_args(inputs)).backward()
            for launch in launches:
                usage = resource_usage(launch.compiled, arch)
                rows.append(dict(loss=name, dtype=dtype, call=call, kernel=launch.kernel,
                                 tiling=str(tiling), **usage.as_dict()))
    return rows


def markdown(rows: List[Dict]) -> str:
    """The table, one line per kernel launch."""
    lines = ['| tiling | loss | dtype | call | kernel | registers | spill B | shared B | '
             'programs/SM | warps/SM | occupancy |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['tiling']} | {r['loss']} | {r['dtype']} | {r['call']} | "
                     f"{r['kernel']} | {r['registers']} | {r['spill_bytes']} | "
                     f"{r['shared_bytes']} | "
                     f"{r['programs_per_sm']} | {r['warps_per_sm']} | {r['occupancy']:.0%} |")
    return '\n'.join(lines) + '\n'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', type=int, nargs='+', default=[90],
                        help='CUDA compute capabilities to compile for (80: A100, 90: H100)')
    parser.add_argument('--tilings', nargs='+', type=Tiling.parse, default=[Tiling()],
                        metavar='ELEMENTSxWARPS[xROW_TILES]',
                        help='kernel tilings to compile (default: the default tiling)')
    parser.add_argument('--classes', type=int, nargs='+', default=[1203],
                        help='numbers of classes (1203: LVIS, 80: COCO)')
    parser.add_argument('--dtypes', nargs='+', choices=list(DTYPES), default=list(DTYPES))
    parser.add_argument('--rows', type=int, default=4096,
                        help='anchors (only shapes matter: enough for every row tile)')
    parser.add_argument('--out', help='write the rows as JSON here')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    import triton
    args = parse_args(argv)
    report = dict(triton=triton.__version__, results=[])
    for arch in args.arch:
        for num_classes in args.classes:
            rows = []
            for tiling in args.tilings:
                rows += compile_losses(arch, tiling, num_classes, args.dtypes, args.rows)
            print(f'### sm_{arch}, {num_classes} classes (Triton {triton.__version__})\n\n'
                  f'{markdown(rows)}', flush=True)
            report['results'].append(dict(arch=arch, num_classes=num_classes, rows=rows))
    return write_report(report, args.out)


if __name__ == '__main__':
    main()

"""Forward+backward time and peak extra memory of every imbfocal loss and the baselines.

Measured per scale (COCO: N x 80, LVIS: N x 1203 logits) for:

* every imbfocal loss module, through each implementation ``--impls`` names (see
  ``imbfocal.losses.fast``): ``triton`` (the Triton kernels) and ``torch`` (the chunked
  PyTorch path) by default on CUDA, ``fused`` (the default path) on CPU, and ``reference``
  (the autograd reference) on request;
* MMDetection's ``FocalLoss`` (on CPU its pure-PyTorch ``py_sigmoid_focal_loss`` with the
  one-hot target it builds itself; on CUDA the mmcv op);
* torchvision's ``sigmoid_focal_loss`` when torchvision is installed (one-hot targets built
  outside the timed region), else reported as "not installed";
* the memory-bandwidth floor: the time of a copy of the logits (``clone``).

Inputs imitate a RetinaNet step: logits ``N(-4, 2)``, 2% positive anchors with uniformly drawn
classes, anchor weights of ones, ``avg_factor`` = the number of positives, reduction 'mean'.
Counted losses get exponentially decaying counts (imbalance factor 100); EqualizedFocalLoss
starts from a random non-trivial state; all modules are in training mode (AFL advances its
schedule, EFL collects its statistics, as in training).

Time: median of ``--repeats`` runs of ``loss = fn(x, ...); loss.backward()`` after ``--warmup``
runs (CUDA: CUDA events around the call, after ``torch.cuda.synchronize``).

Peak extra memory: bytes allocated during one forward+backward above what was live before it
(the inputs), at the peak; the gradient of the logits (1x logits) counts. CUDA:
``torch.cuda.max_memory_allocated`` minus the allocation before the call. CPU: the profiler's
memory events (``torch.profiler.profile(profile_memory=True)``, whose chrome trace records the
CPU allocator's running "Total Allocated" at every allocation and free); the peak of that
running total over the call. Both count tensor storage only (not Python objects).

``--busy K`` repeats the measurements while ``K`` other processes each spin on a core: how a
CPU path holds up on a training machine whose cores are shared with data loaders.

Every argument is checked before anything is timed (loss names against the benchmarked
losses, no name twice, a usable device, a writable ``--out``); a bad one ends the tool with
argparse's one-line error and exit status 2.

Benchmarks are not tests: nothing here asserts a time. Example::

    python tools/benchmark_losses.py --out bench.json
    python tools/benchmark_losses.py --device cuda --lvis-n 240000
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch import Tensor

# lab/, the benchmark harness, lives beside the package in this checkout (not installed).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from imbfocal.cli import at_least, check_output_file
from lab.benchmarking import (
    Inputs,
    benchmarked_losses,
    environment,
    make_inputs,
    write_report,
)

LossFn = Callable[[Inputs], Tensor]

DEFAULT_N = {'cpu': {'coco': 60_000, 'lvis': 20_000}, 'cuda': {'coco': 240_000, 'lvis': 240_000}}
CLASSES = {'coco': 80, 'lvis': 1203}
MMDET = 'mmdet FocalLoss'
FLOOR = 'floor (copy of logits)'


@dataclass
class Case:
    """One row of the table: a named callable, or why it cannot run."""
    name: str
    impl: str
    fn: Optional[LossFn]
    status: str = 'ok'


def _module_case(name: str, module: torch.nn.Module, impl: str,
                 tiling: Optional[str] = None) -> Case:
    from imbfocal.losses import use_impl

    def fn(inputs: Inputs) -> Tensor:
        with use_impl(impl), _tiling_context(tiling):
            return module(inputs['logits_leaf'], inputs['labels'], inputs['weight'],
                          avg_factor=inputs['avg_factor'])

    return Case(name, impl if tiling is None else f'{impl} {tiling}', fn)


def _tiling_context(tiling: Optional[str]) -> contextlib.AbstractContextManager:
    if tiling is None:
        return contextlib.nullcontext()
    from imbfocal.kernels import common
    return common.use_tiling(common.Tiling.parse(tiling))


def _tiling_arg(text: str) -> str:
    """``--tilings`` entries, checked and written in full (``2048x4`` -> ``2048x4x64``)."""
    from imbfocal.kernels import common
    try:
        return str(common.Tiling.parse(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def imbfocal_cases(num_classes: int, device: str, impls: Sequence[str],
                   tilings: Sequence[str] = ()) -> List[Case]:
    """Every imbfocal loss module through each implementation in ``impls`` (the Triton one
    once per tiling in ``tilings`` if any, see ``imbfocal.kernels.common.Tiling``)."""
    from imbfocal import kernels
    cases = []
    for name, module in benchmarked_losses(num_classes).items():
        module.to(device).train()
        for impl in impls:
            if impl == 'triton' and not kernels.kernels_run_on(torch.empty(0, device=device)):
                cases.append(Case(name, impl, None, 'triton unavailable'))
            elif impl == 'triton' and tilings:
                cases.extend(_module_case(name, module, impl, tiling) for tiling in tilings)
            else:
                cases.append(_module_case(name, module, impl))
    return cases


def baseline_cases(device: str) -> List[Case]:
    """MMDetection's FocalLoss, torchvision's sigmoid_focal_loss and the copy floor."""
    from mmdet.models.losses import FocalLoss
    focal = FocalLoss()
    on_cuda = device.startswith('cuda')

    def mmdet_fn(inputs: Inputs) -> Tensor:
        return focal(inputs['logits_leaf'], inputs['labels'], inputs['weight'],
                     avg_factor=inputs['avg_factor'])

    cases = [Case(MMDET, 'mmcv op' if on_cuda else 'py_sigmoid_focal_loss', mmdet_fn)]
    try:
        from torchvision.ops import sigmoid_focal_loss
    except ImportError:
        cases.append(Case('torchvision sigmoid_focal_loss', '-', None, 'not installed'))
    else:

        def torchvision_fn(inputs: Inputs) -> Tensor:
            loss = sigmoid_focal_loss(inputs['logits_leaf'], inputs['one_hot'],
                                      reduction='sum')
            return loss / inputs['avg_factor']

        cases.append(Case('torchvision sigmoid_focal_loss', 'python', torchvision_fn))
    cases.append(Case(FLOOR, 'clone', lambda inputs: inputs['logits_leaf'].clone()))
    return cases


def _run_once(fn: LossFn, inputs: Inputs, backward: bool) -> None:
    inputs['logits_leaf'] = inputs['logits'].detach().requires_grad_(backward)
    out = fn(inputs)
    if backward:
        out.backward(torch.ones_like(out) if out.dim() else None)
    del inputs['logits_leaf']


def time_ms(fn: LossFn, inputs: Inputs, repeats: int, warmup: int, device: str,
            backward: bool = True) -> List[float]:
    """Wall time of ``repeats`` forward+backward runs after ``warmup`` runs, in ms."""
    for _ in range(warmup):
        _run_once(fn, inputs, backward)
    times = []
    for _ in range(repeats):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                enable_timing=True)
            start.record()
            _run_once(fn, inputs, backward)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            _run_once(fn, inputs, backward)
            times.append((time.perf_counter() - begin) * 1e3)
    return times


def peak_extra_bytes(fn: LossFn, inputs: Inputs, device: str, backward: bool = True) -> int:
    """Peak of the tensor bytes allocated during one call above those live before it."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        _run_once(fn, inputs, backward)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _run_once(fn, inputs, backward)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'trace.json')
        prof.export_chrome_trace(path)
        with open(path, encoding='utf-8') as f:
            events = json.load(f)['traceEvents']
    # 'Total Allocated' counts from 0 at the start of profiling: the bytes above the inputs.
    totals = [e['args']['Total Allocated'] for e in events
              if e.get('name') == '[memory]' and e['args'].get('Device Type') == 0]
    return max(totals, default=0)


def measure(case: Case, inputs: Inputs, args: argparse.Namespace) -> Dict:
    """One row: times, peak memory, or the reason it was skipped."""
    row = dict(loss=case.name, impl=case.impl, status=case.status)
    if case.fn is None:
        return row
    backward = case.name != FLOOR
    try:
        times = time_ms(case.fn, inputs, args.repeats, args.warmup, args.device, backward)
        peak = peak_extra_bytes(case.fn, inputs, args.device, backward)
    except Exception as err:  # a benchmark reports a failing loss instead of stopping
        row['status'] = f'error: {type(err).__name__}: {err}'
        return row
    logits_bytes = inputs['logits'].numel() * inputs['logits'].element_size()
    row.update(time_ms_median=statistics.median(times), time_ms_min=min(times),
               time_ms_max=max(times), peak_extra_bytes=peak,
               peak_extra_logits=peak / max(logits_bytes, 1))
    return row


def add_ratios(rows: List[Dict]) -> None:
    """``x_mmdet`` (MMDetection's time / this time) and ``x_floor`` (this time / floor)."""
    times = {r['loss']: r.get('time_ms_median') for r in rows}
    for row in rows:
        if row.get('time_ms_median') is None:
            continue
        if times.get(MMDET):
            row['speedup_vs_mmdet'] = times[MMDET] / row['time_ms_median']
        if times.get(FLOOR):
            row['x_floor'] = row['time_ms_median'] / times[FLOOR]


def run_scale(scale: str, n: int, args: argparse.Namespace) -> Dict:
    """Every case at one scale."""
    num_classes = CLASSES[scale]
    dtype = getattr(torch, args.dtype)
    inputs = make_inputs(n, num_classes, args.device, dtype)
    impls = args.impls or (['triton', 'torch'] if args.device.startswith('cuda') else ['fused'])
    # --losses picks among imbfocal's losses; every baseline is timed whatever it names.
    cases = baseline_cases(args.device) + [
        case for case in imbfocal_cases(num_classes, args.device, impls, args.tilings)
        if not args.losses or case.name in args.losses]
    rows = []
    for case in cases:
        rows.append(measure(case, inputs, args))
        print(f'  {scale}: {case.name} ({case.impl}): {rows[-1].get("time_ms_median", "-")}',
              flush=True)
    add_ratios(rows)
    logits_mb = inputs['logits'].numel() * inputs['logits'].element_size() / 2**20
    return dict(scale=scale, n=n, num_classes=num_classes, logits_mb=logits_mb, results=rows)


def markdown(scale_result: Dict) -> str:
    """The table of one scale."""
    head = (f"### {scale_result['scale']}: {scale_result['n']:,} x {scale_result['num_classes']}"
            f" ({scale_result['logits_mb']:.1f} MB of logits)\n\n"
            '| loss | impl | time ms (median) | x vs mmdet FocalLoss | x floor | '
            'peak extra MB | x logits |\n|---|---|---|---|---|---|---|\n')
    lines = []
    for r in scale_result['results']:
        if 'time_ms_median' not in r:
            lines.append(f"| {r['loss']} | {r['impl']} | {r['status']} | | | | |")
            continue
        speedup = r.get('speedup_vs_mmdet')
        lines.append(
            f"| {r['loss']} | {r['impl']} | {r['time_ms_median']:.1f} | "
            f"{'%.1fx' % speedup if speedup else '-'} | {r.get('x_floor', 0):.1f} | "
            f"{r['peak_extra_bytes'] / 2**20:.1f} | {r['peak_extra_logits']:.2f} |")
    return head + '\n'.join(lines) + '\n'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments, every one checked (``parser.error``: exit 2) before anything is timed."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument('--dtype', default='float32',
                        choices=['float32', 'float16', 'bfloat16', 'float64'],
                        help='dtype of the logits (the losses compute in float32)')
    parser.add_argument('--scales', nargs='+', default=['coco', 'lvis'], choices=list(CLASSES))
    parser.add_argument('--coco-n', type=at_least(1), help='anchors at COCO scale (80 classes)')
    parser.add_argument('--lvis-n', type=at_least(1),
                        help='anchors at LVIS scale (1203 classes)')
    parser.add_argument('--repeats', type=at_least(1), default=7)
    parser.add_argument('--warmup', type=at_least(0), default=2)
    parser.add_argument('--threads', type=at_least(1), default=os.cpu_count(),
                        help='torch.set_num_threads (default: all cores)')
    parser.add_argument('--impls', nargs='+', choices=['fused', 'torch', 'triton', 'reference'],
                        help="implementations of the imbfocal losses to time (default: 'triton' "
                        "and 'torch' on CUDA, 'fused' on CPU; see imbfocal.losses.fast.dispatch)")
    parser.add_argument('--tilings', nargs='+', default=(), type=_tiling_arg,
                        metavar='ELEMENTSxWARPS[xROW_TILES]',
                        help='time the Triton kernels once per tiling, e.g. 4096x8x8 2048x4x8 '
                        '(default: the kernels\' default tiling only)')
    parser.add_argument('--losses', nargs='+', metavar='LOSS',
                        help='only these imbfocal losses (default: all of them)')
    parser.add_argument('--busy', type=at_least(0), default=0, metavar='PROCESSES',
                        help='time everything while this many other processes each keep a '
                        'core busy (a training machine\'s data loaders, another job)')
    parser.add_argument('--out', help='write the results as JSON here')
    args = parser.parse_args(argv)
    try:
        check_args(args)
    except ValueError as error:
        parser.error(str(error))
    return args


def check_args(args: argparse.Namespace) -> None:
    """Refuse unknown or repeated names, an unusable device and an unwritable ``--out``.

    Raises:
        ValueError: Naming the argument and the fix.
    """
    for name in ('scales', 'impls', 'tilings', 'losses'):
        values = list(getattr(args, name) or ())
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f'--{name} names {repeated} more than once')
    known = sorted(benchmarked_losses(2))
    unknown = [name for name in args.losses or () if name not in known]
    if unknown:
        raise ValueError(f'--losses: unknown {unknown}; the imbfocal losses benchmarked are '
                         f'{known} (MMDetection\'s FocalLoss and the copy floor always run)')
    _check_device(args.device)
    if args.out:
        try:
            check_output_file(args.out, 'the JSON file')
        except OSError as error:
            raise ValueError(str(error)) from None


def _check_device(device: str) -> None:
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f'--device {device!r} is not a device; give cpu or cuda[:i]') from None
    if parsed.type not in ('cpu', 'cuda'):
        raise ValueError(f'--device {device!r}: give cpu or cuda[:i]')
    if parsed.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; use --device cpu')
    if parsed.type == 'cuda' and (parsed.index or 0) >= torch.cuda.device_count():
        raise ValueError(f'--device {device}: there are {torch.cuda.device_count()} CUDA '
                         'devices')


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """Run ``count`` processes that each spin on one core for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(count)]
    try:
        time.sleep(0.5 if procs else 0)  # let the scheduler see them
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    kind = 'cuda' if args.device.startswith('cuda') else 'cpu'
    sizes = {'coco': args.coco_n, 'lvis': args.lvis_n}
    report = dict(config=dict(environment(args.device), dtype=args.dtype,
                              repeats=args.repeats, warmup=args.warmup,
                              busy_processes=args.busy), scales=[])
    with busy_processes(args.busy):
        for scale in args.scales:
            n = sizes[scale] or DEFAULT_N[kind][scale]
            report['scales'].append(run_scale(scale, n, args))
    report['config']['load_average_after'] = list(os.getloadavg())
    for scale_result in report['scales']:
        print(markdown(scale_result))
    print(f"load average before / after: {report['config']['load_average']} / "
          f"{report['config']['load_average_after']}")
    return write_report(report, args.out)


if __name__ == '__main__':
    main()

"""Time a whole detector training step (data preprocessing, forward, loss, backward, SGD).

For each config, the model and optimiser are built from the config as MMEngine's Runner
builds them (with random weights: pretrained backbones are not downloaded), and
``model.train_step`` (the call the Runner's training loop makes) runs on synthetic batches:
random images of ``--image-size`` and ``--boxes`` random boxes per image whose labels
follow a long-tailed distribution (exponentially decaying, imbalance factor 100).
Every config sees the same batches. Losses that need class counts and have none from the
config get the counts of that distribution (``ClassCountsHook`` needs a dataset, which a
synthetic run does not have).

Reported per config: median, min and max time of ``--iters`` steps after ``--warmup`` steps
(CUDA: synchronised around each step) and, on CUDA, the peak memory allocated during the
timed steps. The first config is the baseline of the "x vs first" column; pass MMDetection's
focal-loss config first to compare every loss against MMDetection's ``FocalLoss`` (the mmcv
CUDA op on a GPU). Benchmarks are not tests: nothing here asserts a time. Example::

    python tools/benchmark_train_step.py configs/retinanet/retinanet_r50_fpn_{focal,cb-focal,\\
afl,dfl,efl,pf}_1x_lvis-v1.py --device cuda --out train_step.json
"""
import argparse
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData

# lab/, the benchmark harness, lives beside the package in this checkout (not installed).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from lab.benchmarking import environment, long_tailed_weights, write_report


def long_tailed_probabilities(num_classes: int) -> torch.Tensor:
    """``lab.benchmarking.long_tailed_weights``, normalised to sum to 1."""
    weights = torch.tensor(long_tailed_weights(num_classes), dtype=torch.float64)
    return weights / weights.sum()


def synthetic_batches(num_batches: int, batch_size: int, image_size: Sequence[int],
                      boxes: int, num_classes: int, device: str, seed: int = 0) -> List[Dict]:
    """``train_step`` inputs: uint8 images ``(3, H, W)`` and DetDataSamples with boxes."""
    from mmdet.structures import DetDataSample
    gen = torch.Generator().manual_seed(seed)
    width, height = image_size
    probabilities = long_tailed_probabilities(num_classes)
    batches = []
    for _ in range(num_batches):
        inputs, samples = [], []
        for _ in range(batch_size):
            inputs.append(torch.randint(0, 256, (3, height, width), generator=gen,
                                        dtype=torch.uint8).to(device))
            xy = torch.rand(boxes, 2, generator=gen) * torch.tensor([width, height]) * 0.8
            wh = (torch.rand(boxes, 2, generator=gen) * 0.3 + 0.05) * torch.tensor(
                [width, height])
            bboxes = torch.cat([xy, (xy + wh).minimum(torch.tensor([width, height]))], dim=1)
            sample = DetDataSample(metainfo=dict(img_shape=(height, width),
                                                 ori_shape=(height, width),
                                                 scale_factor=(1.0, 1.0)))
            sample.gt_instances = InstanceData(
                bboxes=bboxes.to(device),
                labels=torch.multinomial(probabilities, boxes, replacement=True,
                                         generator=gen).to(device))
            samples.append(sample)
        batches.append(dict(inputs=inputs, data_samples=samples))
    return batches


def synthetic_counts(num_classes: int, images: int = 10_000) -> List[int]:
    """Instance counts of ``images`` images of 10 boxes drawn from the synthetic distribution."""
    counts = (long_tailed_probabilities(num_classes) * images * 10).round().long()
    return counts.clamp(min=1).tolist()


def _give_counts(model: torch.nn.Module, num_classes: int) -> None:
    from imbfocal.class_counts import ClassCountsMixin
    for module in model.modules():
        if isinstance(module, ClassCountsMixin) and not module.has_class_counts:
            module.set_class_counts(synthetic_counts(num_classes))


def _num_classes(cfg: Config) -> int:
    for head in ('bbox_head', 'roi_head'):
        if head in cfg.model and 'num_classes' in cfg.model[head]:
            return cfg.model[head].num_classes
    raise ValueError('the config has no model.bbox_head.num_classes')


def drop_pretrained(node) -> None:
    """Remove every ``init_cfg=dict(type='Pretrained', ...)``: timing needs no download."""
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            drop_pretrained(value)


def build(cfg: Config, device: str):
    """The model (train mode, on ``device``) and its optimiser wrapper, as the Runner does."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    drop_pretrained(cfg.model)
    model = MODELS.build(cfg.model)
    model.init_weights()
    _give_counts(model, _num_classes(cfg))
    model.to(device).train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def _synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_steps(model, optim_wrapper, batches: List[Dict], iters: int, warmup: int,
               device: str) -> Dict:
    """Median/min/max seconds of ``iters`` ``train_step`` calls and the CUDA peak memory."""
    for k in range(warmup):
        model.train_step(batches[k % len(batches)], optim_wrapper)
    _synchronize(device)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for k in range(iters):
        start = time.perf_counter()
        log_vars = model.train_step(batches[k % len(batches)], optim_wrapper)
        _synchronize(device)
        times.append(time.perf_counter() - start)
    loss = float(log_vars['loss'])
    if not torch.isfinite(torch.tensor(loss)):
        raise FloatingPointError(f'the loss is {loss}')
    result = dict(step_ms_median=1e3 * statistics.median(times), step_ms_min=1e3 * min(times),
                  step_ms_max=1e3 * max(times), last_loss=loss)
    if device.startswith('cuda'):
        result['peak_memory_mb'] = torch.cuda.max_memory_allocated() / 2**20
    return result


def run(config: str, args: argparse.Namespace) -> Dict:
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    torch.manual_seed(args.seed)
    model, optim_wrapper = build(cfg, args.device)
    batches = synthetic_batches(args.batches, args.batch_size, args.image_size, args.boxes,
                                _num_classes(cfg), args.device, args.seed)
    loss_type = cfg.model.get('bbox_head', {}).get('loss_cls', {}).get('type')
    row = dict(config=osp.basename(config), loss=loss_type)
    row.update(time_steps(model, optim_wrapper, batches, args.iters, args.warmup, args.device))
    del model, optim_wrapper, batches
    if args.device.startswith('cuda'):
        torch.cuda.empty_cache()
    return row


def markdown(rows: List[Dict]) -> str:
    base = rows[0]['step_ms_median']
    lines = ['| config | loss_cls | step ms (median) | min | max | x vs first | peak MB |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        peak = f"{r['peak_memory_mb']:.0f}" if 'peak_memory_mb' in r else '-'
        lines.append(f"| {r['config']} | {r['loss']} | {r['step_ms_median']:.1f} | "
                     f"{r['step_ms_min']:.1f} | {r['step_ms_max']:.1f} | "
                     f"{r['step_ms_median'] / base:.3f} | {peak} |")
    return '\n'.join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='configs; the first is the baseline')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch-size', type=int, default=2, help='images per step')
    parser.add_argument('--image-size', type=int, nargs=2, default=[1333, 800],
                        metavar=('W', 'H'))
    parser.add_argument('--boxes', type=int, default=10, help='boxes per image')
    parser.add_argument('--iters', type=int, default=20, help='timed steps')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--batches', type=int, default=4, help='distinct batches, cycled')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (CPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of every config, as in tools/train.py')
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmengine.logging import MMLogger

    import imbfocal  # noqa: F401  (registers the losses, heads and hooks)
    MMLogger.get_instance('benchmark_train_step', log_level='WARNING')  # no init_weights log
    rows = []
    for config in args.configs:
        rows.append(run(config, args))
        print(f"  {rows[-1]['config']}: {rows[-1]['step_ms_median']:.1f} ms", flush=True)
    report = dict(config=dict(environment(args.device), batch_size=args.batch_size,
                              image_size=args.image_size, boxes=args.boxes, iters=args.iters,
                              warmup=args.warmup), results=rows)
    print(markdown(rows))
    return write_report(report, args.out)


if __name__ == '__main__':
    main()

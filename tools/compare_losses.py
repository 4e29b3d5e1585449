#!/usr/bin/env python
"""Train one detector with several losses and seeds on digits-LT and compare AP / APr / APc / APf.

Each run is ``tools/train.py`` on the shipped config ``configs/<detector>/*_<loss>_*digits-lt.py``
with ``randomness.seed=<seed>`` (same data, schedule and model; only the loss and the training
seed change). Finished runs are kept, so an interrupted comparison picks up where it stopped.
Writes ``results.md`` (mean ± std over seeds), ``results.json`` (every run) and
``frequency_ap.png`` (a per-frequency AP bar chart) into ``--work-dir``.

Example::

    python tools/compare_losses.py --losses focal cb-focal afl pf efl --seeds 0 1 2
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys

from mmengine.logging import MMLogger, print_log

from imbfocal.evaluation.plots import plot_frequency_ap
from imbfocal.evaluation.runs import final_metrics, markdown_table, summarise

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--detector', default='retinanet', choices=('retinanet', 'fcos', 'centernet'))
    p.add_argument('--losses', nargs='+', default=['focal', 'cb-focal', 'afl', 'pf', 'efl'])
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--work-dir', default='work_dirs/compare_losses')
    p.add_argument('--data-root', default='data/digits_lt',
                   help='digits-LT build (made with tools/make_digits_lt.py if missing)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='passed to every run, as tools/train.py takes them')
    return p.parse_args(argv)


def find_config(detector: str, loss: str) -> str:
    """The shipped digits-LT config of ``detector`` with ``loss``."""
    matches = glob.glob(osp.join(REPO, 'configs', detector, f'*_{loss}_*digits-lt.py'))
    if len(matches) != 1:
        found = sorted(osp.basename(m) for m in glob.glob(
            osp.join(REPO, 'configs', detector, '*digits-lt.py')))
        raise SystemExit(f'expected one {detector} digits-LT config for loss {loss!r}, found '
                         f'{len(matches)}; the digits-LT configs are: {found}')
    return matches[0]


def ensure_data(data_root: str) -> None:
    """Generate the default digits-LT build if ``data_root`` has none."""
    if not osp.isfile(osp.join(data_root, 'meta.json')):
        subprocess.run([sys.executable, osp.join(REPO, 'tools/make_digits_lt.py'), '--out',
                        data_root], check=True)


def train(config: str, work_dir: str, seed: int, data_root: str, cfg_options: list) -> None:
    """One ``tools/train.py`` run; its log goes to the console and to ``work_dir``."""
    root = data_root.rstrip('/') + '/'
    options = [f'randomness.seed={seed}'] + [
        f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')
    ] + [f'{split}_evaluator.ann_file={root}annotations/lvis_v1_val.json'
         for split in ('val', 'test')] + list(cfg_options)
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', work_dir,
           '--cfg-options'] + options
    subprocess.run(cmd, check=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    logger = MMLogger.get_instance('compare_losses', log_level='INFO')
    ensure_data(args.data_root)
    runs = {}
    for loss in args.losses:
        config = find_config(args.detector, loss)
        runs[loss] = []
        for seed in args.seeds:
            work_dir = osp.join(args.work_dir, loss, f'seed{seed}')
            metrics = final_metrics(work_dir)
            if metrics is None:
                print_log(f'training {osp.basename(config)} with seed {seed} -> {work_dir}',
                          logger=logger)
                train(config, work_dir, seed, args.data_root, args.cfg_options)
                metrics = final_metrics(work_dir)
            else:
                print_log(f'{work_dir} already has results; kept', logger=logger)
            if metrics is None:
                raise SystemExit(f'{work_dir}: training finished without validation metrics')
            runs[loss].append(metrics)

    summary = summarise(runs)
    table = markdown_table(summary, {loss: len(seeds) for loss, seeds in runs.items()})
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'results.md'), 'w', encoding='utf-8') as f:
        f.write(f'{args.detector} on digits-LT, seeds {args.seeds} (AP in points, mean ± std)'
                f'\n\n{table}')
    with open(osp.join(args.work_dir, 'results.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(detector=args.detector, seeds=args.seeds, runs=runs,
                       summary={k: {m: list(v) for m, v in row.items()}
                                for k, row in summary.items()}), f, indent=1)
    means = {loss: {key: mean for key, (mean, _) in row.items()} for loss, row in summary.items()}
    png = plot_frequency_ap(means, osp.join(args.work_dir, 'frequency_ap.png'),
                            title=f'{args.detector} on digits-LT: AP by class frequency '
                            f'(mean of {len(args.seeds)} seeds)')
    print_log(f'\n{table}\nwritten: {args.work_dir}/results.md, results.json, {png}',
              logger=logger)
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python
"""Train one detector with several losses and seeds on digits-LT and compare AP / APr / APc / APf.

Each run is ``tools/train.py`` on the shipped config ``configs/<detector>/*_<loss>_*<benchmark>.py``
with ``randomness.seed=<seed>`` (same data, schedule and model; only the loss and the training
seed change), evaluated once at the end of training on ``--split``: ``val`` to choose settings,
``test`` for final tables. Finished runs are kept, so an interrupted comparison (or one that
grows over several sessions) picks up where it stopped. ``--rfs`` (repeat-factor sampling),
``--prior`` (class-frequency bias initialisation) and ``--tag`` with ``--cfg-options`` make
other settings, each a row of its own. Writes into ``--work-dir``:

* ``results_<split>.md`` / ``.json``: mean ± sample std over seeds of AP, AP50, APr, APc, APf,
  the minutes per run, every run's metrics and each row's setting, and each row's difference
  to ``--reference`` (focal) seed by seed; rows written by earlier
  calls on the same split are kept (a row computed again is replaced);
* ``frequency_ap_<split>.png``: AP by frequency group;
* ``per_class_ap_<split>.png``: each class's AP against its training images, one colour a loss.

Example::

    python tools/compare_losses.py --losses focal cb-focal afl --seeds 0 1 2 --split test
"""
import argparse
import fcntl
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import MMLogger, print_log

# lab/, the benchmark harness, lives beside the package in this checkout (not installed).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from lab.plots import plot_frequency_ap, plot_per_class_ap
from lab.runs import (
    differences_table,
    final_metrics,
    markdown_table,
    mean_std,
    paired_differences,
    per_class_ap,
    summarise,
)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# benchmark -> (config file suffix, default data root, generator preset, pretrained backbone)
BENCHMARKS = {
    'lt100': ('digits-lt100', 'data/digits_lt100', 'lt100', True),
    'digits-lt': ('digits-lt', 'data/digits_lt', 'default', False),
}
# Repeat-factor sampling: LVIS oversamples the classes in fewer than 1e-3 of its ~100k training
# images (fewer than ~100 images); 0.1 of digits-LT's 1,000 images is the same 100.
RFS_THRESHOLD = 0.1
# The classification layer whose bias ClassPriorInitHook sets (--prior), per detector.
CLS_LAYERS = {'retinanet': 'bbox_head.retina_cls', 'fcos': 'bbox_head.conv_cls',
              'centernet': 'bbox_head.heatmap_head.2'}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--benchmark', default='lt100', choices=sorted(BENCHMARKS))
    p.add_argument('--detector', default='retinanet', choices=('retinanet', 'fcos', 'centernet'))
    p.add_argument('--losses', nargs='+', default=['focal', 'cb-focal', 'afl', 'pf', 'efl'])
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--split', default='val', choices=('val', 'test'),
                   help='evaluated at the end of training: val chooses settings, test reports')
    p.add_argument('--rfs', action='store_true',
                   help=f'repeat-factor sampling (ClassBalancedDataset, oversample_thr='
                   f'{RFS_THRESHOLD})')
    p.add_argument('--prior', action='store_true',
                   help='start the classification bias from the class frequencies '
                   '(ClassPriorInitHook) instead of pi = 0.01 for every class')
    p.add_argument('--lab', action='store_true',
                   help='import the lab\'s control losses (lab.controls) in every run, so that '
                   '--cfg-options can name them')
    p.add_argument('--log-gradients', action='store_true',
                   help='record per-iteration gradient norms of the classification logits by '
                   'frequency group (lab.mechanism.GradientGroupsHook) in each run\'s work dir')
    p.add_argument('--report-only', action='store_true',
                   help='train nothing: rewrite the tables from finished runs (an unfinished '
                   'run is an error)')
    p.add_argument('--tag', default='',
                   help='a name for this setting (with --cfg-options), kept apart on disk')
    p.add_argument('--reference', default='focal',
                   help='the row the others are compared with, seed by seed')
    p.add_argument('--work-dir', default=None,
                   help='default: work_dirs/compare_<benchmark>_<detector>')
    p.add_argument('--data-root', default=None,
                   help='digits-LT build (made, and its backbone pretrained, if missing)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='passed to every run, as tools/train.py takes them')
    args = p.parse_args(argv)
    for name, values in (('--losses', args.losses), ('--seeds', args.seeds)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            p.error(f'{name} names {repeated} more than once; each loss and seed is one run')
    return args


def check_writable(path: str) -> None:
    """Raise SystemExit unless ``path`` is (or can be made) a writable folder."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise SystemExit(f'--work-dir {path}: cannot create it ({error.strerror})') from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SystemExit(f'--work-dir {path}: not writable')


def find_config(detector: str, loss: str, suffix: str) -> str:
    """The shipped config of ``detector`` with ``loss`` on the benchmark ``suffix``."""
    matches = [m for m in glob.glob(osp.join(REPO, 'configs', detector, f'*_{loss}_*.py'))
               if m.endswith(f'_{suffix}.py')]
    if len(matches) != 1:
        found = sorted(osp.basename(m) for m in glob.glob(
            osp.join(REPO, 'configs', detector, f'*_{suffix}.py')))
        raise SystemExit(f'expected one {detector} {suffix} config for loss {loss!r}, found '
                         f'{len(matches)}; the {suffix} configs are: {found}')
    return matches[0]


def ensure_data(data_root: str, preset: str, pretrained: bool) -> None:
    """Generate the build (and pretrain its backbone) if ``data_root`` lacks them."""
    if not osp.isfile(osp.join(data_root, 'meta.json')):
        subprocess.run([sys.executable, osp.join(REPO, 'tools/make_digits_lt.py'), '--preset',
                        preset, '--out', data_root], check=True)
    if pretrained:
        subprocess.run([sys.executable, osp.join(REPO, 'tools/pretrain_digits_backbone.py'),
                        '--data-root', data_root], check=True)


def derived_config(config: str, run_dir: str, rfs: bool, prior_layer: Optional[str],
                   lab: bool = False, log_gradients: bool = False) -> str:
    """``config``, or a config in ``run_dir`` built on it: its training set repeat-factor
    sampled (``rfs``), ``ClassPriorInitHook`` on ``prior_layer`` and/or the lab's
    ``GradientGroupsHook`` (``log_gradients``) added to its hooks, the lab's modules imported
    (``lab``, or ``log_gradients``)."""
    if not (rfs or prior_layer or lab or log_gradients):
        return config
    lines = [f"_base_ = ['{config}']"]
    if lab or log_gradients:
        lines.append("custom_imports = dict(imports=['imbfocal', 'lab.controls', "
                     "'lab.mechanism'], allow_failed_imports=False)")
    if rfs:
        lines.append("train_dataloader = dict(dataset=dict(\n"
                     "    _delete_=True, type='ClassBalancedDataset',\n"
                     f"    oversample_thr={RFS_THRESHOLD},\n"
                     "    dataset={{_base_.train_dataloader.dataset}}))")
    if prior_layer is not None or log_gradients:
        hooks = list(Config.fromfile(config).to_dict().get('custom_hooks', None) or [])
        if prior_layer is not None:
            hooks.append(dict(type='ClassPriorInitHook', layer=prior_layer))
        if log_gradients:
            hooks.append(dict(type='GradientGroupsHook'))
        lines.append(f'custom_hooks = {hooks!r}')
    prefix = ''.join(name + '_' for name, on in (('rfs', rfs), ('prior', prior_layer),
                                                 ('lab', lab or log_gradients)) if on)
    path = osp.join(run_dir, prefix + osp.basename(config))
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def run_options(data_root: str, seed: int, split: str, pretrained: bool,
                rfs: bool = False) -> List[str]:
    """The ``--cfg-options`` every run gets: seed, data root, evaluated split, backbone.

    With ``rfs`` the training set is the one ``ClassBalancedDataset`` wraps, so its data root
    is one level deeper.
    """
    root = data_root.rstrip('/') + '/'
    ann = f'annotations/lvis_v1_{split}.json'
    train_dataset = 'train_dataloader.dataset.dataset' if rfs else 'train_dataloader.dataset'
    options = [f'randomness.seed={seed}', f'{train_dataset}.data_root={root}'] + [
        f'{loader}_dataloader.dataset.data_root={root}' for loader in ('val', 'test')
    ] + [f'val_dataloader.dataset.ann_file={ann}', f'val_evaluator.ann_file={root}{ann}',
         f'test_evaluator.ann_file={root}{ann}']
    if pretrained:
        options.append('model.backbone.init_cfg.checkpoint='
                       f'{root}pretrained/resnet18_w32_digits.pth')
    return options


# Written into a run's work dir once its training process has exited cleanly, after the train
# loop and its final validation: a run without it was interrupted and is trained again.
FINISHED = 'run_finished.json'


def source_commit() -> Optional[str]:
    """The git commit of the code that trains (None outside a git checkout)."""
    try:
        return subprocess.run(['git', 'rev-parse', '--short=7', 'HEAD'], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def train(config: str, work_dir: str, options: List[str]) -> float:
    """One ``tools/train.py`` run; returns its minutes. Once it has finished, writes
    :data:`FINISHED` (minutes, load average, torch threads, commit) into ``work_dir``."""
    os.makedirs(work_dir, exist_ok=True)
    marker = osp.join(work_dir, FINISHED)
    if osp.exists(marker):
        os.remove(marker)
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', work_dir,
           '--cfg-options'] + options
    # The lab (control losses, gradient logging) is imported from this checkout.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    tic = time.time()
    subprocess.run(cmd, check=True, env=env)
    minutes = (time.time() - tic) / 60
    with open(marker, 'w', encoding='utf-8') as f:
        json.dump(dict(minutes=round(minutes, 2), load_average=os.getloadavg(),
                       omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
                       commit=source_commit()), f)
    return minutes


def finished_run(work_dir: str) -> Optional[dict]:
    """What :func:`train` recorded of a finished run in ``work_dir``, or None if it did not
    finish (never started, interrupted, or failed)."""
    path = osp.join(work_dir, FINISHED)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def train_images_per_class(data_root: str) -> Dict[str, int]:
    """``{class name: training images}`` from the build's LVIS train annotations."""
    with open(osp.join(data_root, 'annotations', 'lvis_v1_train.json'), encoding='utf-8') as f:
        return {c['name']: c['image_count'] for c in json.load(f)['categories']}


def main(argv=None) -> int:
    args = parse_args(argv)
    suffix, default_root, preset, pretrained = BENCHMARKS[args.benchmark]
    data_root = args.data_root or default_root
    work_root = args.work_dir or f'work_dirs/compare_{args.benchmark}_{args.detector}'
    setting = '_'.join(filter(None, ['rfs' if args.rfs else '', 'prior' if args.prior else '',
                                     args.tag]))
    logger = MMLogger.get_instance('compare_losses', log_level='INFO')
    configs = {loss: find_config(args.detector, loss, suffix) for loss in args.losses}
    check_writable(work_root)
    ensure_data(data_root, preset, pretrained)
    runs: Dict[str, List[dict]] = {}
    minutes: Dict[str, List[float]] = {}
    provenance: Dict[str, List[dict]] = {}
    for loss, config in configs.items():
        name = f'{loss}_{setting}' if setting else loss
        runs[name], minutes[name], provenance[name] = [], [], []
        for seed in args.seeds:
            work_dir = osp.join(work_root, args.split, name, f'seed{seed}')
            metrics = final_metrics(work_dir) if finished_run(work_dir) else None
            if metrics is None and args.report_only:
                raise SystemExit(f'{work_dir} holds no finished run; --report-only trains '
                                 'nothing: run without it')
            if metrics is None:
                print_log(f'training {osp.basename(config)} ({setting or "as shipped"}) '
                          f'with seed {seed}, evaluated on {args.split} -> {work_dir}',
                          logger=logger)
                os.makedirs(work_dir, exist_ok=True)
                run_config = derived_config(config, work_dir, args.rfs,
                                            CLS_LAYERS[args.detector] if args.prior else None,
                                            args.lab, args.log_gradients)
                options = run_options(data_root, seed, args.split, pretrained, args.rfs)
                train(run_config, work_dir, options + args.cfg_options)
                metrics = final_metrics(work_dir)
            else:
                print_log(f'{work_dir} already has results; kept', logger=logger)
            if metrics is None:
                raise SystemExit(f'{work_dir}: training finished without evaluation metrics')
            runs[name].append(metrics)
            minutes[name].append(finished_run(work_dir)['minutes'])
            provenance[name].append(dict(seed=seed, **finished_run(work_dir)))
    write_reports(args, work_root, data_root, runs, minutes, logger, provenance)
    return 0


def merge_previous(path: str, args: argparse.Namespace, runs: Dict[str, List[dict]],
                   minutes: Dict[str, List[float]]) -> Tuple[dict, dict, dict]:
    """This call's rows added to those an earlier call wrote to ``path`` (same detector,
    benchmark and split), so one table grows over calls with other settings and sessions.

    Returns ``(runs, minutes, settings)``; a row recomputed now replaces its earlier version.
    """
    setting = dict(seeds=args.seeds, rfs=args.rfs, prior=args.prior, tag=args.tag,
                   cfg_options=args.cfg_options, lab=args.lab or args.log_gradients)
    merged_runs, merged_minutes, settings = {}, {}, {}
    if osp.isfile(path):
        with open(path, encoding='utf-8') as f:
            previous = json.load(f)
        if all(previous.get(k) == getattr(args, k) for k in ('detector', 'benchmark', 'split')):
            merged_runs, merged_minutes = previous['runs'], previous.get('minutes', {})
            settings = previous.get('settings') or {
                name: {k: previous.get(k) for k in setting} for name in merged_runs}
    merged_runs.update(runs)
    merged_minutes.update(minutes)
    settings.update({name: setting for name in runs})
    return merged_runs, merged_minutes, settings


def write_reports(args: argparse.Namespace, work_root: str, data_root: str,
                  runs: Dict[str, List[dict]], minutes: Dict[str, List[float]],
                  logger: MMLogger, provenance: Optional[Dict[str, List[dict]]] = None) -> None:
    """The table, the JSON and the two plots of this comparison (module docstring), with the
    rows of earlier calls on the same split kept."""
    split = args.split
    json_path = osp.join(work_root, f'results_{split}.json')
    # Comparisons running side by side add their rows to one file: one merge at a time.
    with open(json_path + '.lock', 'w', encoding='utf-8') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_locked(args, work_root, data_root, json_path, runs, minutes, logger,
                     provenance or {})


def write_locked(args: argparse.Namespace, work_root: str, data_root: str, json_path: str,
                 runs: Dict[str, List[dict]], minutes: Dict[str, List[float]],
                 logger: MMLogger, provenance: Dict[str, List[dict]]) -> None:
    """:func:`write_reports` while holding the lock on ``json_path``; each row's setting
    keeps what :func:`train` recorded of its runs (seed, minutes, threads, commit)."""
    split = args.split
    runs, minutes, settings = merge_previous(json_path, args, runs, minutes)
    for name, info in provenance.items():
        settings[name] = dict(settings[name], runs=info)
    summary = summarise(runs)
    table = markdown_table(summary, {loss: len(seeds) for loss, seeds in runs.items()})
    differences = paired_differences(runs, {row: settings[row]['seeds'] for row in runs},
                                     args.reference)
    if differences:
        table += (f'\nDifference to {args.reference}, seed by seed (the same seed gives every '
                  'loss the same initialisation and data order; mean ± sample std of the '
                  f'paired differences, AP points):\n\n{differences_table(differences)}')
    timing = {name: mean_std(values) for name, values in minutes.items() if values}
    header = (f'{args.detector} on digits-LT {args.benchmark}, {split} split (AP in points, '
              'mean ± sample std over the seeds of each row)')
    times = ', '.join(f'{name} {m:.1f} ± {s:.1f}' for name, (m, s) in timing.items())
    os.makedirs(work_root, exist_ok=True)
    with open(osp.join(work_root, f'results_{split}.md'), 'w', encoding='utf-8') as f:
        f.write(f'{header}\n\n{table}\nminutes per run (train + evaluation): {times}\n')
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(dict(detector=args.detector, benchmark=args.benchmark, split=split,
                       settings=settings, runs=runs, minutes=minutes,
                       differences={row: {k: list(v) for k, v in values.items()}
                                    for row, values in differences.items()},
                       reference=args.reference,
                       summary={k: {m: list(v) for m, v in row.items()}
                                for k, row in summary.items()}), f, indent=1)
    means = {loss: {key: mean for key, (mean, _) in row.items()} for loss, row in summary.items()}
    bars = plot_frequency_ap(means, osp.join(work_root, f'frequency_ap_{split}.png'),
                             title=f'{args.detector} on digits-LT {args.benchmark} ({split}): '
                             'AP by class frequency (mean over seeds)')
    per_class = {}
    for loss, seeds in runs.items():
        values = [per_class_ap(metrics) for metrics in seeds]
        classes = set.intersection(*(set(v) for v in values)) if values else set()
        per_class[loss] = {c: sum(v[c] for v in values) / len(values) for c in classes}
    points = plot_per_class_ap(per_class, train_images_per_class(data_root),
                               osp.join(work_root, f'per_class_ap_{split}.png'),
                               title=f'{args.detector} on digits-LT {args.benchmark} ({split}):'
                               ' AP per class (mean over seeds)')
    print_log(f'\n{header}\n{table}\nminutes per run: {times}\nwritten: {work_root}/results_'
              f'{split}.md, results_{split}.json, {bars}, {points}', logger=logger)


if __name__ == '__main__':
    sys.exit(main())

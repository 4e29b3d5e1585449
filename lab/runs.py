"""Read the evaluation results of finished training runs and summarise them over seeds."""
import glob
import json
import math
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .plots import frequency_results

SUMMARY_KEYS = ('AP', 'AP50', 'APr', 'APc', 'APf')


def final_metrics(work_dir: str) -> Optional[Dict[str, float]]:
    """The last validation metrics MMEngine logged in ``work_dir``, or None if there are none.

    MMEngine's ``LocalVisBackend`` appends one json line per logging step to
    ``<work_dir>/<timestamp>/vis_data/scalars.json``; validation lines carry the metric keys.
    The newest run folder holding a validation line wins.

    Args:
        work_dir: The ``--work-dir`` of ``tools/train.py``.

    Returns:
        The metric entries (``{'lvis/bbox_mAP': ..}``...) of the last validation, with ``step``
        (the epoch), or None.
    """
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                       reverse=True):
        with open(path, encoding='utf-8') as f:
            records = [json.loads(line) for line in f if line.strip()]
        validations = [r for r in records if any(k.endswith('bbox_mAP') for k in r)]
        if validations:
            return validations[-1]
    return None


def per_class_ap(metrics: Mapping[str, float]) -> Dict[str, float]:
    """``{class name: AP}`` from the ``<prefix>bbox_<class>_precision`` entries of a metric
    dict (``LongTailMetric`` with ``classwise=True``, as MMDetection's ``CocoMetric``)."""
    out = {}
    for key, value in metrics.items():
        if key.endswith('_precision') and 'bbox_' in key:
            out[key.rsplit('bbox_', 1)[1][:-len('_precision')]] = float(value)
    return out


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value); NaN for no values."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def summarise(runs: Mapping[str, List[Mapping[str, float]]],
              keys: Sequence[str] = SUMMARY_KEYS) -> Dict[str, Dict[str, Tuple[float, float]]]:
    """Mean and std over seeds of AP, APr, APc, APf for each loss.

    Args:
        runs: ``{loss: [metrics of seed 0, metrics of seed 1, ...]}`` as :func:`final_metrics`
            returns them. An entry of -1 (a frequency group with no valid class) is left out.
        keys: Which summary entries to aggregate.

    Returns:
        ``{loss: {key: (mean, std)}}``.
    """
    summary = {}
    for loss, seeds in runs.items():
        picked = [frequency_results(metrics) for metrics in seeds]
        summary[loss] = {
            key: mean_std([p[key] for p in picked if key in p and p[key] >= 0])
            for key in keys
        }
    return summary


def markdown_table(summary: Mapping[str, Mapping[str, Tuple[float, float]]],
                   num_seeds: Mapping[str, int],
                   keys: Sequence[str] = SUMMARY_KEYS) -> str:
    """A markdown table with one row per loss: ``mean ± std`` (in AP points) per key."""
    lines = ['| loss | seeds | ' + ' | '.join(keys) + ' |',
             '|---|---|' + '---|' * len(keys)]
    for loss, row in summary.items():
        cells = [f'{100 * m:.1f} ± {100 * s:.1f}' if not math.isnan(m) else 'n/a'
                 for m, s in (row[k] for k in keys)]
        lines.append(f'| {loss} | {num_seeds[loss]} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def paired_differences(runs: Mapping[str, List[Mapping[str, float]]],
                       seeds: Mapping[str, Sequence[int]], reference: str,
                       keys: Sequence[str] = SUMMARY_KEYS
                       ) -> Dict[str, Dict[str, Tuple[float, float, int]]]:
    """Each row's difference to ``reference`` over the seeds both ran, seed by seed.

    A training seed fixes the initialisation and the data order for every loss, and much of a
    run's luck is shared between the groups (a lucky seed is good on AP, APr and APf alike),
    so the spread of the paired differences is the noise a comparison with the reference has
    to beat, often smaller than either row's own spread.

    Args:
        runs: ``{row: [metrics per seed]}``, as :func:`summarise` takes them.
        seeds: ``{row: [the seed of each entry of runs[row]]}``.
        reference: The row to compare with (absent: no differences).
        keys: Which summary entries to compare.

    Returns:
        ``{row: {key: (mean, sample std, number of paired seeds)}}`` for every other row
        with at least one seed in common with the reference.
    """
    if reference not in runs:
        return {}
    base = dict(zip(seeds[reference], (frequency_results(m) for m in runs[reference])))
    out = {}
    for row, metrics in runs.items():
        if row == reference:
            continue
        pairs = [(base[seed], frequency_results(m)) for seed, m in zip(seeds[row], metrics)
                 if seed in base]
        if not pairs:
            continue
        out[row] = {}
        for key in keys:
            diffs = [b[key] - a[key] for a, b in pairs
                     if key in a and key in b and a[key] >= 0 and b[key] >= 0]
            out[row][key] = (*mean_std(diffs), len(diffs))
    return out


def differences_table(differences: Mapping[str, Mapping[str, Tuple[float, float, int]]],
                      keys: Sequence[str] = SUMMARY_KEYS) -> str:
    """A markdown table of :func:`paired_differences` in AP points (``+mean ± std``)."""
    lines = ['| loss | paired seeds | ' + ' | '.join(f'Δ{k}' for k in keys) + ' |',
             '|---|---|' + '---|' * len(keys)]
    for row, values in differences.items():
        cells = [f'{100 * m:+.1f} ± {100 * s:.1f}' if not math.isnan(m) else 'n/a'
                 for m, s, _ in (values[k] for k in keys)]
        count = max(n for _, _, n in values.values())
        lines.append(f'| {row} | {count} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'

"""``docs/benchmark.md`` and the README's evidence blocks, written from the JSON run records.

Every number on the page comes from a JSON file in ``docs/results/``: the comparisons
``tools/compare_losses.py`` writes (one file per detector, benchmark and split), the speed
benchmarks of ``tools/benchmark_losses.py`` and ``tools/benchmark_train_step.py``, and the
gradient logs of ``lab.mechanism``. What is written by hand is the page's prose and, here,
which rows a table shows and how each setting is named. ``python tools/benchmark_page.py``
writes the page, its plots and the README blocks; ``--check`` only reports whether the
committed files differ from what the records give.
"""
import inspect
import json
import math
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .runs import SUMMARY_KEYS, mean_std, paired_differences, per_class_ap, summarise

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(REPO, 'docs', 'results')
PAGE = osp.join(REPO, 'docs', 'benchmark.md')
README = osp.join(REPO, 'README.md')


# --- reading the records --------------------------------------------------------------------


def load(name: str, results_dir: str = RESULTS) -> Optional[dict]:
    """The JSON record ``docs/results/<name>.json``, or None if there is none."""
    path = osp.join(results_dir, f'{name}.json')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


@dataclass(frozen=True)
class Row:
    """A row of a comparison table: the record's row ``key`` shown as ``label``."""
    key: str
    label: str


def seeds_of(record: dict, key: str) -> List[int]:
    """The training seeds of row ``key``, in the order of its runs."""
    return list(record['settings'][key]['seeds'])


def minutes_cell(record: dict, key: str) -> str:
    """Row ``key``'s mean minutes a run, one mean per thread count where the record has each
    run's (``5.9 (2); 11.6 (1)``: 2-thread runs alone, 1-thread runs two side by side)."""
    runs = record.get('settings', {}).get(key, {}).get('runs', [])
    if runs and all(run.get('omp_num_threads') for run in runs):
        by_threads: Dict[str, List[float]] = {}
        for run in runs:
            by_threads.setdefault(run['omp_num_threads'], []).append(run['minutes'])
        return '; '.join(f'{mean_std(minutes)[0]:.1f} ({threads})' for threads, minutes in
                         sorted(by_threads.items(), key=lambda item: -int(item[0])))
    minutes, _ = mean_std(record.get('minutes', {}).get(key, []))
    return 'n/a' if math.isnan(minutes) else f'{minutes:.1f}'


def _pm(mean: float, std: float, n: int, signed: bool = False) -> str:
    if math.isnan(mean):
        return 'n/a'
    value = f'{100 * mean:+.1f}' if signed else f'{100 * mean:.1f}'
    return value if n == 1 else f'{value} ± {100 * std:.1f}'


def metrics_table(record: dict, rows: Sequence[Row]) -> str:
    """``| setting | seeds | AP | AP50 | APr | APc | APf | min / run |`` for ``rows``, mean ±
    sample std over each row's seeds (a single seed: its value), minutes by thread count
    (:func:`minutes_cell`)."""
    rows = [row for row in rows if row.key in record['runs']]
    summary = summarise({row.key: record['runs'][row.key] for row in rows})
    lines = ['| setting | seeds | ' + ' | '.join(SUMMARY_KEYS) + ' | min / run (threads) |',
             '|---|---|' + '---|' * (len(SUMMARY_KEYS) + 1)]
    for row in rows:
        n = len(record['runs'][row.key])
        cells = [_pm(*summary[row.key][k], n) for k in SUMMARY_KEYS]
        lines.append(f'| {row.label} | {n} | ' + ' | '.join(cells) +
                     f' | {minutes_cell(record, row.key)} |')
    return '\n'.join(lines) + '\n'


def differences(record: dict, rows: Sequence[Row], reference: str
                ) -> Dict[str, Dict[str, Tuple[float, float, int]]]:
    """Each row's difference to ``reference`` over the seeds both ran (``paired_differences``)."""
    keys = [row.key for row in rows if row.key in record['runs']] + [reference]
    runs = {key: record['runs'][key] for key in keys}
    return paired_differences(runs, {key: seeds_of(record, key) for key in keys}, reference)


def paired_table(record: dict, rows: Sequence[Row], reference: str) -> str:
    """``| setting | paired seeds | ΔAP | ... |``: each row minus ``reference``, seed by seed."""
    diffs = differences(record, rows, reference)
    lines = ['| setting | paired seeds | ' + ' | '.join(f'Δ{k}' for k in SUMMARY_KEYS) + ' |',
             '|---|---|' + '---|' * len(SUMMARY_KEYS)]
    for row in rows:
        if row.key not in diffs:
            continue
        values = diffs[row.key]
        n = max(count for _, _, count in values.values())
        cells = [_pm(m, s, n, signed=True) for m, s, _ in (values[k] for k in SUMMARY_KEYS)]
        lines.append(f'| {row.label} | {n} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def evidence(record: Optional[dict], key: str, reference: str, detector: str,
             baseline: str = '') -> str:
    """``+a ± s / +b ± s`` (ΔAP / ΔAPr) of row ``key`` against ``reference`` (detector,
    seeds, the baseline's setting)."""
    if record is None or key not in record['runs'] or reference not in record['runs']:
        return 'not measured'
    values = differences(record, [Row(key, key)], reference)[key]
    n = values['AP'][2]
    ap, apr = (_pm(values[k][0], values[k][1], n, signed=True) for k in ('AP', 'APr'))
    context = ', '.join(filter(None, [detector, f'{n} seed{"s" if n > 1 else ""}', baseline]))
    return f'{ap} / {apr} ({context})'


# --- the page's tables ----------------------------------------------------------------------


@dataclass
class Comparison:
    """One comparison on the page: a record, the rows it shows, the row the others are
    paired with, and the prose around it."""
    record: str
    title: str
    rows: Sequence[Row]
    reference: str
    intro: str = ''
    after: str = ''
    plots: Sequence[str] = field(default_factory=tuple)


def _sweep_label(tag: str) -> str:
    """``w400-lr0.004-a0.5`` -> ``warm-up 400, lr 4e-3, alpha 0.5``."""
    match = re.fullmatch(r'w(\d+)-lr([\d.]+)-a([\d.]+)', tag)
    if not match:
        return tag
    warm, lr, alpha = match.groups()
    mantissa, exponent = f'{float(lr):.1e}'.split('e')
    return (f'warm-up {warm}, lr {mantissa.removesuffix(".0")}e{int(exponent)}'
            f', alpha {alpha}')


def sweep_rows(record: Optional[dict], loss: str = 'focal') -> List[Row]:
    """The rows of a schedule sweep (tags ``w<warm-up>-lr<lr>-a<alpha>``), by val AP."""
    if record is None:
        return []
    keys = [k for k in record['runs'] if re.fullmatch(rf'{loss}_w\d+-lr[\d.]+-a[\d.]+', k)]
    summary = summarise({k: record['runs'][k] for k in keys})
    keys.sort(key=lambda k: -summary[k]['AP'][0])
    return [Row(k, f'{loss}: {_sweep_label(k.split("_", 1)[1])}') for k in keys]


RETINANET_VAL_ROWS = [
    Row('focal', 'focal (MMDetection `FocalLoss`)'),
    Row('focal_prior', 'focal + `ClassPriorInitHook`'),
    Row('cb-focal', 'CB-focal: beta 0.999, max_weight 10, positive term'),
    Row('cb-focal_column', 'CB-focal: beta 0.999, max_weight 10, whole columns'),
    Row('cb-focal_max2', 'CB-focal: beta 0.999, max_weight 2'),
    Row('cb-focal_beta0.99_max2', 'CB-focal: beta 0.99, max_weight 2'),
    Row('cb-focal_beta0.95_max2', 'CB-focal: beta 0.95, max_weight 2'),
    Row('cb-focal_beta0.9_max2', 'CB-focal: beta 0.9, max_weight 2'),
    Row('cb-focal_beta0.99_max1', '**CB-focal: beta 0.99, max_weight 1 (default)**'),
    Row('afl', 'AFL: CB at beta 0.999, max_weight 10; lam0 1'),
    Row('afl_prior', 'AFL: CB at beta 0.999, max_weight 10; lam0 1; + prior'),
    Row('afl_beta0.99-max2', 'AFL: CB at beta 0.99, max_weight 2; lam0 1'),
    Row('afl_prior_beta0.99-max2', 'AFL: lam0 1, + prior'),
    Row('afl_lam0.5', 'AFL: lam0 0.5'),
    Row('afl_lam2.0', 'AFL: lam0 2'),
    Row('afl_lam4.0', 'AFL: CB at beta 0.99, max_weight 2; lam0 4'),
    Row('afl_lam8.0', 'AFL: lam0 8'),
    Row('afl_lam16.0', 'AFL: lam0 16'),
    Row('afl_agf0.25', 'AFL: lam0 1, agf_fraction 0.25'),
    Row('afl_agf1.0', 'AFL: lam0 1, agf_fraction 1'),
    Row('afl_lam8.0-beta0', 'AFL without class weights (beta 0), lam0 8'),
    Row('afl_lam4.0-beta0', '**AFL without class weights (beta 0), lam0 4 (default)**'),
    Row('pf', '**PF, detection form (default)**'),
    Row('pf_prior', 'PF + prior'),
    Row('dfl', 'DFL: nu 0.1, beta 1'),
    Row('dfl_nu0.01_beta0.01', '**DFL: nu 0.01, beta 0.01 (default)**'),
    Row('efl', '**EFL (default)**'),
]
RETINANET_TEST_ROWS = [
    Row('focal', 'focal (MMDetection `FocalLoss`)'),
    Row('focal_prior', 'focal + `ClassPriorInitHook`'),
    Row('cb-focal', 'CB-focal: beta 0.99, max_weight 2'),
    Row('cb-focal_beta0.99_max1', '**CB-focal (default: beta 0.99, max_weight 1)**'),
    Row('afl', 'AFL: CB at beta 0.999, max_weight 10; lam0 1'),
    Row('afl_beta0.99-max2', 'AFL: CB at beta 0.99, max_weight 2; lam0 1'),
    Row('afl_prior_beta0.99-max2', 'AFL: lam0 1, + prior'),
    Row('afl_lam4.0', 'AFL: beta 0.99, max_weight 2, lam0 4'),
    Row('afl_lam4.0-beta0', '**AFL (default: beta 0, lam0 4): no class weights**'),
    Row('afl_prior_lam4.0', 'AFL at beta 0.99, lam0 4, + prior'),
    Row('pf', '**PF, detection form (default)**'),
    Row('pf_prior', 'PF + prior'),
    Row('dfl', '**DFL (default: nu 0.01, beta 0.01)**'),
    Row('efl', '**EFL (default)**'),
    Row('focal_rfs', 'focal, RFS'),
    Row('cb-focal_rfs', 'CB-focal at beta 0.99, max_weight 2, RFS'),
    Row('cb-focal_rfs_beta0.99_max1', 'CB-focal (default), RFS'),
    Row('afl_rfs', 'AFL at lam0 1, RFS'),
    Row('afl_rfs_prior_beta0.99-max2', 'AFL at lam0 1 + prior, RFS'),
    Row('afl_rfs_lam4.0', 'AFL at beta 0.99, lam0 4, RFS'),
    Row('afl_rfs_prior_lam4.0', 'AFL at beta 0.99, lam0 4, + prior, RFS'),
    Row('pf_rfs', 'PF, RFS'),
    Row('dfl_rfs', 'DFL, RFS'),
    Row('efl_rfs', 'EFL, RFS'),
]
FCOS_VAL_ROWS = [
    Row('focal', "focal, MMDetection's FCOS head settings"),
    Row('focal_tricks', 'focal, FCOS improvements, centre radius 1.5'),
    Row('focal_tricks-r0.75', 'focal, FCOS improvements, centre radius 0.75'),
    Row('focal_tricks-r0.5', '**focal, FCOS improvements, centre radius 0.5 (the config)**'),
]
FCOS_TEST_ROWS = [
    Row('focal', 'focal (MMDetection `FocalLoss`)'),
    Row('afl', 'AFL: lam0 1'),
    Row('afl_lam4.0', 'AFL: beta 0.99, lam0 4'),
    Row('pf', '**PF, detection form (default)**'),
]
CENTERNET_VAL_ROWS = [
    Row('focal_c5s32', "focal, MMDetection's CenterNet R-18 (C5 at stride 32, three "
        'deconvolutions)'),
    Row('focal_c5s32-lr0.01', 'focal, as above, lr 0.01'),
    Row('focal_c5s16', 'focal, C5 at stride 16 (dilated), two deconvolutions'),
    Row('focal', '**focal, C5 at stride 8 (dilated), one deconvolution (the config)**'),
    Row('focal_prior', 'focal + `ClassPriorInitHook`'),
    Row('cb-focal_w0.999-10', 'CB-focal: beta 0.999, max_weight 10'),
    Row('cb-focal', '**CB-focal (default: beta 0.99, max_weight 2)**'),
    Row('afl_w0.999-10', 'AFL: CB at beta 0.999, max_weight 10; lam0 1'),
    Row('afl', '**AFL (default: beta 0.99, max_weight 2, lam0 1)**'),
    Row('afl_lam4.0', 'AFL: lam0 4'),
    Row('pf', '**PF, detection form (default)**'),
]
CENTERNET_TEST_ROWS = [
    Row('focal', 'focal (MMDetection `GaussianFocalLoss`)'),
    Row('cb-focal', '**CB-focal (default)**'),
    Row('afl', '**AFL (default)**'),
    Row('pf', '**PF, detection form (default)**'),
]

HISTORY = [
    Comparison('lt100_retinanet_val', 'RetinaNet, val split: choosing the settings',
               RETINANET_VAL_ROWS, 'focal',
               intro='Training seed 0; seeds 0-2 where the call was close. Two threads a run, '
               'warm-up 100 iterations, lr 2e-3, alpha 0.25 (the schedule before the fair '
               'fight below). Bold: the settings the classes now default to.',
               plots=('lt100_retinanet_frequency_ap_val.png',
                      'lt100_retinanet_per_class_ap_val.png')),
    Comparison('lt100_retinanet_test', 'RetinaNet, test split', RETINANET_TEST_ROWS, 'focal',
               intro='Three training seeds, each setting chosen on val before it ran; two '
               'threads a run, focal loss at warm-up 100, lr 2e-3 (not tuned: the fair fight '
               'below tunes it). RFS rows train on `ClassBalancedDataset` '
               '(`oversample_thr=0.1`) for the same 800 iterations.',
               plots=('lt100_retinanet_frequency_ap_test.png',
                      'lt100_retinanet_per_class_ap_test.png')),
    Comparison('lt100_fcos_val', 'FCOS, val split: making FCOS a detector on lt100',
               FCOS_VAL_ROWS, 'focal_tricks-r0.5',
               intro='"FCOS improvements": centre sampling, stride-normalised box targets, '
               'centre-ness on the regression branch, GIoU.'),
    Comparison('lt100_fcos_test', 'FCOS, test split', FCOS_TEST_ROWS, 'focal',
               intro='Focal loss at the configs\' schedule, not tuned: these differences are '
               'not quoted as gains.',
               plots=('lt100_fcos_frequency_ap_test.png',)),
    Comparison('lt100_centernet_val', 'CenterNet, val split', CENTERNET_VAL_ROWS, 'focal',
               intro='lt100\'s 128x128 images make MMDetection\'s stride-32 C5 a 4x4 map in '
               'which several objects share a cell; the config dilates the last stages instead.'),
    Comparison('lt100_centernet_test', 'CenterNet, test split', CENTERNET_TEST_ROWS, 'focal',
               intro='Focal loss at the configs\' schedule, not tuned: these differences are '
               'not quoted as gains.',
               plots=('lt100_centernet_frequency_ap_test.png',)),
]


# --- the fair fight --------------------------------------------------------------------------

# The focal-loss schedule chosen on val (the sweep's best mean AP over seeds 0-2), AFL's lam0
# re-checked on it, and the controls' rows: ``<loss>_<TUNED><suffix>``.
TUNED = 'w400-lr0.008-a0.25'
# Other sweep schedules that AFL or the damping also trained on (val): each with its title
OTHER_SCHEDULES = [('w400-lr0.004-a0.25', 'the runner-up schedule (lr 4e-3)'),
                   ('w600-lr0.008-a0.25', 'the longer warm-up (600 iterations)')]
AFL_LAM0 = 4.0
CONTROLS = [
    ('-damped', '**the damping alone: `AdaptiveFocalLoss` at its defaults (beta 0)**'),
    ('-damped-pos', 'the damping on positives only'),
    ('-damped-neg', 'the damping on negatives only'),
    ('-damped-const', 'the damping held at lam0 (no fade)'),
    ('-ramp', "positives' weight ramped as the damping scales them on average"),
    ('-poly1', 'Poly-1 focal loss, eps -1 (Leng et al. 2022)'),
]


def afl_row(schedule: str, lam0: float = AFL_LAM0, suffix: str = '') -> Row:
    """The row of AFL with class weights (the afl rows ran at beta 0.99) on ``schedule``."""
    return Row(f'afl_{schedule}-lam{lam0}{suffix}',
               f'AFL with class weights (beta 0.99), lam0 {lam0:g}')


def fair_rows(lam0s: Sequence[float] = (2.0, 4.0, 8.0), suffix: str = '') -> List[Row]:
    """The tuned focal row, AFL's rows and the controls, on the tuned schedule."""
    rows = [Row(f'focal_{TUNED}{suffix}',
                f'**focal loss, tuned schedule ({_sweep_label(TUNED)})**')]
    rows += [afl_row(TUNED, lam0, suffix) for lam0 in lam0s]
    rows += [Row(f'focal_{TUNED}{control}{suffix}', label) for control, label in CONTROLS]
    return rows


def damping_against_afl(val: dict) -> str:
    """The damping alone paired with AFL on val, once they share more than one seed."""
    damped, afl = f'focal_{TUNED}-damped', f'afl_{TUNED}-lam{AFL_LAM0}'
    if (not {afl, damped} <= set(val['runs'])
            or len(set(seeds_of(val, damped)) & set(seeds_of(val, afl))) < 2):
        return ''
    return ('The damping alone paired with AFL, seed by seed (what the class weights add):\n\n'
            + paired_table(val, [Row(damped, CONTROLS[0][1])], afl))


def fair_section(results_dir: str) -> str:
    """The focal baseline tuned with AFL's budget, the controls of the damping, 3x, and the
    mechanism plots; empty until the records exist."""
    val, test, x3 = (load(f'lt100_fair_retinanet_{split}', results_dir)
                     for split in ('val', 'test', '3x_test'))
    if val is None and test is None:
        return ''
    parts = ['## The fair fight: AFL against a tuned focal loss\n', FAIR_INTRO]
    sweep = sweep_rows(val)
    if len(sweep) > 1:  # the tuned schedule alone is in the next table
        parts.append('### Focal loss\'s schedule, val split\n')
        parts.append('Sorted by mean val AP; the other losses then train on the best.\n')
        parts.append(metrics_table(val, sweep))
    else:
        parts.append(FAIR_NO_SWEEP)
    for schedule, title in OTHER_SCHEDULES:
        rows = [Row(f'focal_{schedule}', f'focal loss ({_sweep_label(schedule)})'),
                afl_row(schedule), Row(f'focal_{schedule}-damped', CONTROLS[0][1])]
        if (val is not None and rows[0].key in val['runs']
                and any(row.key in val['runs'] for row in rows[1:])):
            parts.append(f'### On {title}, val split\n')
            parts.append(metrics_table(val, rows))
            parts.append('Paired with focal loss on this schedule, seed by seed:\n')
            parts.append(paired_table(val, rows, rows[0].key))
    reference = f'focal_{TUNED}'
    for title, record, rows, ref, intro in (
            ('### On the tuned schedule, val split', val, fair_rows(), reference, ''),
            ('### On the tuned schedule, test split', test, fair_rows(), reference, ''),
            ('### Three times the schedule (2,400 iterations), test split', x3,
             fair_rows((AFL_LAM0, ), '-3x'), reference + '-3x', FAIR_3X)):
        if record is None:
            continue
        parts.append(title + '\n')
        if intro:
            parts.append(intro)
        parts.append(metrics_table(record, rows))
        if any(row.key in record['runs'] and row.key != ref for row in rows):
            parts.append('Paired with the tuned focal loss, seed by seed:\n')
            parts.append(paired_table(record, rows, ref))
        if record is val and (pairing := damping_against_afl(val)):
            parts.append(pairing)
    if test is not None and f'focal_{TUNED}-ramp' in test['runs']:
        parts.append(FAIR_READING)
    for png, caption in (('lt100_fair_gradient_groups.png', 'Where the classification gradient '
                          'goes, test runs of seed 0'),
                         ('lt100_fair_per_class_difference.png', 'AFL minus the tuned focal '
                          'loss, per class, test split, mean over seeds')):
        if osp.isfile(osp.join(results_dir, png)):
            parts.append(f'{caption}:\n\n![{png}](results/{png})\n')
    return '\n'.join(parts)


FAIR_INTRO = """`lab/fair_fight.sh` lists every run of this section; `lab/fair_fight.sh report`
rebuilds the records from the runs that finished, and a table shows the rows whose records
are in `docs/results/` (each run's seed, threads, minutes and commit: `settings[row]['runs']`).
Focal loss gets a tuning budget at least the size of AFL's `lam0` sweep: warm-up 100 / 200 /
400 iterations × peak lr 1e-3 / 2e-3 / 4e-3, alpha 0.5, and lr 8e-3 and 1.6e-2 and warm-up
600 past the grid's edge, on val. It chose warm-up 400 and lr 8e-3 (the best mean val AP over
seeds 0-2), the schedule every lt100 RetinaNet config trains on. AFL's `lam0` is re-checked
on it (2 / 4 / 8). The controls each change focal loss in one way, so that one matching AFL
names where its gain comes from (`lab/controls.py`); the tuned warm-up already spans the
damping's 400 iterations, so the warm-up control is the tuned focal loss itself.
"""
FAIR_NO_SWEEP = """The sweep's other runs are not in `docs/results/`, so this page shows no
number of theirs (a sweep table appears when the records hold them).
"""


FAIR_3X = """Both on the tuned schedule stretched to 2,400 iterations (about 39 epochs): the
cosine decay over all of them, the warm-up still 400 iterations. AFL's damping fades over
half the run (`agf_fraction=0.5`, here 1,200 iterations), as it does when a config's
schedule is lengthened. One thread a run, two runs side by side.
"""


FAIR_READING = """### What the controls show

- **The class weights are not where the gain comes from.** The damping alone (the
  `damped` rows) is within the seed spread of AFL with class weights on val (paired with
  AFL above) and on test, as it was on focal loss's untuned schedule (the RetinaNet tables
  above). It is the simpler loss (no class counts), so it is `AdaptiveFocalLoss`'s default
  (`beta=0.0`); `beta=0.99` gives the paper's class-balanced form.
- **Most of it is a lighter start for the positives.** The damping on the positives only
  does as well as on every element (val, two seeds), on the negatives only it gives little
  (val, one seed).
  The ramp control scales every
  positive's loss by one number a batch, the mean damping AFL would give the positives, and
  leaves the negatives alone; it recovers most of AFL's gain, within the seed spread of AFL's.
  The gradient plot below shows the same from the inside: over the damping's window AFL's
  positive gradients are several times smaller than focal loss's in every frequency group,
  its negative gradients close to focal loss's, and the curves join once the damping has
  faded. Early in training, with the 0.01 prior, the negatives' focal losses are tiny, so the
  damping falls on the positives: close to a lower alpha early in training, not the
  robust-loss mechanism of damping individual hard examples. What AFL's per-element weighting
  adds over the ramp is within the seed spread here.
- **The fade is not what matters.** The damping held at lam0 for the whole run does as well
  as AFL (val, one seed): once the focal losses are small, `log(1 + lam L) / lam` is close to
  `L`, so the damping switches itself off as training converges, fade or no fade.
- **Not a robust loss.** Poly-1 at eps -1, a published loss of the same family that
  lowers the weight of hard examples for the whole run, loses heavily (val, one seed).
- **An early-training gain.** At three times the schedule AFL's gain is gone: its AP and
  APr differences to the tuned focal loss are inside the seed spread (the 3x table above;
  AFL with class weights, the damping alone was not run at 3x). The damping fades over half
  the run; what it buys is a faster start, not a better end point.
- **A warm-up does not give it.** The tuned schedule already warms the learning rate up over
  the damping's 400 iterations, and a longer warm-up (600) is no better for focal loss on
  val (the sweep); on that longer warm-up the damping still adds AP and APr (its table).
- **On val the gain is smaller and less sure than on test.** With the tuned focal loss at
  three seeds, AFL's and the damping's paired val differences are positive at every seed
  but inside two seed spreads, seed 0 carrying most of them; the single-seed controls
  above are read against that spread.
"""


# --- the README's which-loss table -----------------------------------------------------------


@dataclass
class LossEntry:
    """A row of the README's which-loss table: the evidence is ``key`` minus ``reference`` in
    ``record`` (``baseline`` says how that focal loss was set), or no record: not quoted."""
    name: str
    when: str
    parameters: Sequence[str]
    record: Optional[str]
    key: str = ''
    reference: str = ''
    detector: str = ''
    baseline: str = ''


def loss_classes() -> Dict[str, type]:
    """imbfocal's registered loss classes by name."""
    import imbfocal.losses as losses
    return {name: getattr(losses, name) for name in losses.__all__
            if isinstance(getattr(losses, name), type)}


def defaults(cls: type, parameters: Sequence[str]) -> str:
    """``name=value`` of each of ``parameters`` as ``cls``'s constructor defaults it."""
    signature = inspect.signature(cls.__init__)
    return ', '.join(f'`{p}={signature.parameters[p].default!r}`' for p in parameters) or '—'


UNTUNED = 'focal untuned'
CENTERNET = 'CenterNet: not measured against a tuned focal loss'
LOSSES = [
    LossEntry('AdaptiveFocalLoss', 'rare classes, short schedules (the recommended loss)',
              ('lam0', 'beta', 'max_weight'), 'lt100_fair_retinanet_test',
              f'focal_{TUNED}-damped', f'focal_{TUNED}', 'RetinaNet', 'focal tuned'),
    LossEntry('ParameterFreeLoss', 'no class counts and no tuning',
              ('negative', ), 'lt100_retinanet_test', 'pf', 'focal', 'RetinaNet', UNTUNED),
    LossEntry('ClassBalancedFocalLoss', 'a class-weighted baseline',
              ('beta', 'max_weight', 'weighting'), 'lt100_retinanet_test',
              'cb-focal_beta0.99_max1', 'focal', 'RetinaNet', UNTUNED),
    LossEntry('DualFocalLoss', 'comparison only (no gain measured)', ('nu', 'beta'),
              'lt100_retinanet_test', 'dfl', 'focal', 'RetinaNet', UNTUNED),
    LossEntry('EqualizedFocalLoss', 'long LVIS schedules (inert on short ones)',
              ('gamma_b', 's'), 'lt100_retinanet_test', 'efl', 'focal', 'RetinaNet', UNTUNED),
    LossEntry('GaussianAdaptiveFocalLoss', 'CenterNet, rare classes matter',
              ('lam0', 'beta', 'max_weight'), None),
    LossEntry('GaussianParameterFreeLoss', 'CenterNet, no class counts', (), None),
    LossEntry('GaussianClassBalancedFocalLoss', 'CenterNet, a class-weighted baseline',
              ('beta', 'max_weight'), None),
]


def losses_block(results_dir: str = RESULTS) -> str:
    """The README's which-loss table: each loss's defaults and its paired test difference."""
    classes = loss_classes()
    lines = ['| loss (`type=`) | use it for | defaults (= recommended) | ΔAP / ΔAPr vs focal '
             'loss, lt100 test |', '|---|---|---|---|']
    for entry in LOSSES:
        cell = CENTERNET if entry.record is None else evidence(
            load(entry.record, results_dir), entry.key, entry.reference, entry.detector,
            entry.baseline)
        lines.append(f'| `{entry.name}` | {entry.when} | '
                     f'{defaults(classes[entry.name], entry.parameters)} | {cell} |')
    variants = []
    for text, name, key, reference in VARIANTS:
        record = load(name, results_dir)
        if record is not None and key in record['runs'] and reference in record['runs']:
            variants.append(f'{text}: ' + evidence(record, key, reference, 'RetinaNet',
                                                   'focal tuned, same schedule'))
    if variants:
        lines.append('\nAgainst the tuned focal loss on lt100 test, ' + '; '.join(variants) + '.')
    return '\n'.join(lines) + '\n'


# Settings quoted under the which-loss table: (text, record, row, the focal row it is paired
# with).
VARIANTS = [
    ("AFL with the paper's class weights, `AdaptiveFocalLoss(beta=0.99)`",
     'lt100_fair_retinanet_test', f'afl_{TUNED}-lam{AFL_LAM0}', f'focal_{TUNED}'),
    ('the same at 3x the schedule (2,400 iterations)', 'lt100_fair_retinanet_3x_test',
     f'afl_{TUNED}-lam{AFL_LAM0}-3x', f'focal_{TUNED}-3x'),
    ("a control without per-element adaptivity, focal loss with every positive scaled by "
     "the batch's mean damping of the positives, negatives untouched (`lab/controls.py`)",
     'lt100_fair_retinanet_test', f'focal_{TUNED}-ramp', f'focal_{TUNED}'),
]


# --- speed -----------------------------------------------------------------------------------


def speed_table(record: Optional[dict], scale: str) -> str:
    """Time, speed-up and peak memory of each loss at ``scale`` of a loss benchmark."""
    if record is None:
        return ''
    (block, ) = [s for s in record['scales'] if s['scale'] == scale]
    lines = ['| loss | time (ms) | × MMDetection `FocalLoss` | peak extra memory (× logits) |',
             '|---|---|---|---|']
    for result in block['results']:
        if result['status'] != 'ok':
            continue
        lines.append(f"| {result['loss']} | {result['time_ms_median']:.1f} | "
                     f"{result['speedup_vs_mmdet']:.1f} | {result['peak_extra_logits']:.2f} |")
    return '\n'.join(lines) + '\n'


def speed_caption(record: dict, scale: str) -> str:
    config = record['config']
    (block, ) = [s for s in record['scales'] if s['scale'] == scale]
    return (f"{block['n']:,} anchors × {block['num_classes']} classes, {config['device']} "
            f"({config['torch']}, {config['threads']} threads, {config['dtype']}, median of "
            f"{config['repeats']})")


def speed_block(results_dir: str = RESULTS) -> str:
    """The README's speed table: COCO scale on this project's CPU machine."""
    record = load('benchmark_cpu', results_dir)
    return f'{speed_caption(record, "coco")}:\n\n{speed_table(record, "coco")}'


def train_step_table(record: Optional[dict]) -> str:
    if record is None:
        return ''
    base = record['results'][0]['step_ms_median']
    lines = ['| config | loss | step (ms) | × the first |', '|---|---|---|---|']
    for result in record['results']:
        lines.append(f"| `{result['config']}` | {result['loss']} | "
                     f"{result['step_ms_median']:.0f} | {result['step_ms_median'] / base:.2f} |")
    return '\n'.join(lines) + '\n'


# --- the page --------------------------------------------------------------------------------


def comparison_section(comparison: Comparison, results_dir: str) -> str:
    record = load(comparison.record, results_dir)
    if record is None:
        return ''
    reference = next((row.label for row in comparison.rows if row.key == comparison.reference),
                     comparison.reference)
    parts = [f'### {comparison.title}\n']
    if comparison.intro:
        parts.append(comparison.intro + '\n')
    parts.append(metrics_table(record, comparison.rows))
    if len(comparison.rows) > 1:
        parts.append(f'Paired with {reference.strip("*")}, seed by seed:\n')
        parts.append(paired_table(record, comparison.rows, comparison.reference))
    if comparison.after:
        parts.append(comparison.after + '\n')
    for png in comparison.plots:
        if osp.isfile(osp.join(results_dir, png)):
            parts.append(f'![{png}](results/{png})\n')
    return '\n'.join(parts)


PAGE_HEAD = """# Benchmark results

Written by `python tools/benchmark_page.py` from the JSON run records in `docs/results/`; a
test regenerates it and fails if this file differs. Do not edit by hand.

**The benchmark: digits-LT lt100.** 100 classes ('00'-'99', two handwritten digits side by
side on cluttered 128×128 images); the train split long-tailed (300 down to 2 images per
class; by LVIS's rule 33 rare, 45 common, 22 frequent classes), val and test balanced and
drawn from source digits of their own. RetinaNet R-18 (`retinanet_r18_fpn_<loss>_800it_
digits-lt100.py`: the digit-pretrained half-width ResNet-18, GroupNorm head, AdamW, 800
iterations of 16 images) on this project's 2-core CPU machine through
`tools/compare_losses.py`. **Settings are chosen on val; final tables come from test,
run once per setting and training seed.** AP in points (COCO AP over IoU 0.50:0.95; APr / APc
/ APf by LVIS's rule on training images). A training seed fixes the initialisation and the
data order for every loss, so differences are paired by seed: mean ± sample std of the
per-seed differences. A difference inside its spread is not a result. Minutes are train +
evaluation per run, by thread count: "5.9 (2)" is 2-thread runs one at a time, "11.6 (1)"
1-thread runs two side by side.
"""


def render(results_dir: str = RESULTS) -> str:
    """The whole page."""
    parts = [PAGE_HEAD]
    parts.append('## The recommended losses\n')
    parts.append(losses_block(results_dir))
    parts.append('## Results by detector\n')
    for comparison in HISTORY:
        section = comparison_section(comparison, results_dir)
        if section:
            parts.append(section)
    parts += [section for section in (fair_section(results_dir), speed_section(results_dir))
              if section]
    return '\n'.join(parts).rstrip('\n') + '\n'


def speed_section(results_dir: str) -> str:
    parts = ['## Speed and memory\n',
             '`tools/benchmark_losses.py` (forward + backward, median of repeated runs after '
             'warm-up; peak memory above the inputs) and `tools/benchmark_train_step.py` (a '
             'whole training step through MMEngine). Benchmarks, not tests.\n']
    record = load('benchmark_cpu', results_dir)
    if record is not None:
        for scale in ('coco', 'lvis'):
            parts.append(f'{speed_caption(record, scale)}:\n')
            parts.append(speed_table(record, scale))
    for name, caption in (
            ('train_step_cpu_lvis_r50', 'RetinaNet R-50, 1203 classes, one 320×320 image a '
             'step, CPU'),
            ('train_step_cpu_lt100', 'RetinaNet R-18 on lt100 batches (16 images of 128×128, '
             '100 classes), CPU')):
        step = load(name, results_dir)
        if step is not None:
            parts.append(f'{caption}, {step["config"]["threads"]} threads:\n')
            parts.append(train_step_table(step))
    return '\n'.join(parts)


# --- README blocks ---------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f'{minutes} min {seconds} s' if minutes else f'{seconds} s'


def commands_block(results_dir: str = RESULTS) -> str:
    """The README's measured times of the two commands (``commands.json``)."""
    record = load('commands', results_dir)
    setup, demo, test = record['setup'], record['demo'], record['test']
    printed = '  '.join(f'{k} {v:.1f}' for k, v in demo['printed'].items())
    return (f"Measured on {record['machine']}: {setup['what']}, {setup['minutes']} minutes "
            f"({setup['date']}); {demo['what']}, **{_duration(demo['seconds'])}**, printing "
            f"`{printed}` ({demo['date']}; a first demo also builds the data and pretrains the "
            f"backbone, {_duration(demo['first_run_extra_seconds'])} more); {test['what']}, "
            f"**{_duration(test['seconds'])}** for {test['tests']:,} tests ({test['date']}).\n")


BLOCKS: Mapping[str, Callable[[str], str]] = {
    'commands': commands_block, 'losses': losses_block, 'speed': speed_block}


def _block_pattern(name: str) -> 're.Pattern':
    return re.compile(rf'(<!-- benchmark:{name} -->\n)(.*?)(<!-- /benchmark:{name} -->)',
                      re.S)


def fill_readme(text: str, results_dir: str = RESULTS) -> str:
    """``text`` with every ``<!-- benchmark:NAME -->`` block written from the records."""
    for name, make in BLOCKS.items():
        pattern = _block_pattern(name)
        if not pattern.search(text):
            raise ValueError(f'README.md has no <!-- benchmark:{name} --> block')
        body = make(results_dir)
        text = pattern.sub(lambda m: m.group(1) + body + m.group(3), text)
    return text


def outputs(results_dir: str = RESULTS, page: str = PAGE, readme: str = README
            ) -> Dict[str, str]:
    """``{path: content}`` of every file the records write."""
    with open(readme, encoding='utf-8') as f:
        readme_text = f.read()
    return {page: render(results_dir), readme: fill_readme(readme_text, results_dir)}


def stale(results_dir: str = RESULTS, page: str = PAGE, readme: str = README) -> List[str]:
    """The files whose committed content differs from what the records give."""
    out = []
    for path, content in outputs(results_dir, page, readme).items():
        current = open(path, encoding='utf-8').read() if osp.isfile(path) else None
        if current != content:
            out.append(path)
    return out


def gradient_logs(results_dir: str = RESULTS) -> Dict[str, List[dict]]:
    """``{row label: per-iteration records}`` of the gradient logs in
    ``docs/results/mechanism/`` (``<row>_seed<k>.jsonl``, as ``GradientGroupsHook`` writes
    them)."""
    logs = {}
    folder = osp.join(results_dir, 'mechanism')
    for name, label in ((f'focal_{TUNED}', 'focal loss (tuned)'),
                        (f'afl_{TUNED}-lam{AFL_LAM0}', f'AFL (lam0 {AFL_LAM0:g})')):
        path = osp.join(folder, f'{name}_seed0.jsonl')
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                logs[label] = [json.loads(line) for line in f if line.strip()]
    return logs


def per_class_difference(record: dict, row: str, reference: str) -> Dict[str, float]:
    """``{class: AP of row - AP of reference}``, mean over the seeds both ran."""
    seeds = seeds_of(record, row)
    base = dict(zip(seeds_of(record, reference), map(per_class_ap, record['runs'][reference])))
    pairs = [(base[seed], per_class_ap(metrics)) for seed, metrics in
             zip(seeds, record['runs'][row]) if seed in base]
    return {c: sum(b[c] - a[c] for a, b in pairs) / len(pairs) for c in pairs[0][0]}


def write_plots(results_dir: str = RESULTS) -> List[str]:
    """The fair fight's plots, from the records; returns the paths written."""
    from .plots import plot_gradient_groups, plot_per_class_difference
    written = []
    logs = gradient_logs(results_dir)
    if logs:
        written.append(plot_gradient_groups(
            logs, osp.join(results_dir, 'lt100_fair_gradient_groups.png'),
            title='|dL/dx| of the classification logits by frequency group, lt100 test '
            'runs of seed 0 (running mean of 20 iterations)'))
    record = load('lt100_fair_retinanet_test', results_dir)
    row, reference = f'afl_{TUNED}-lam{AFL_LAM0}', f'focal_{TUNED}'
    classes = load('lt100_classes', results_dir)
    if record is not None and row in record['runs'] and reference in record['runs']:
        written.append(plot_per_class_difference(
            per_class_difference(record, row, reference), classes['train_images'],
            osp.join(results_dir, 'lt100_fair_per_class_difference.png'),
            title='AFL minus the tuned focal loss, AP per class (lt100 test, mean over seeds)'))
    return written


def write(results_dir: str = RESULTS, page: str = PAGE, readme: str = README) -> List[str]:
    """Write the plots, the page and the README blocks; returns the paths written."""
    written = write_plots(results_dir)
    for path, content in outputs(results_dir, page, readme).items():
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(content)
        written.append(path)
    return written


__all__ = ['Row', 'Comparison', 'load', 'metrics_table', 'paired_table', 'evidence',
           'losses_block', 'render', 'fill_readme', 'stale', 'write']

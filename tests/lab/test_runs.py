"""Reading MMEngine's logged validation metrics and summarising them over seeds."""
import json
import math

import pytest

from lab.runs import (
    differences_table,
    final_metrics,
    markdown_table,
    mean_std,
    paired_differences,
    summarise,
)


def _write_scalars(work_dir, timestamp, records):
    path = work_dir / timestamp / 'vis_data'
    path.mkdir(parents=True)
    (path / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))


def test_final_metrics_takes_the_last_validation_of_the_newest_run(tmp_path):
    _write_scalars(tmp_path, '20260101_000000', [{'lvis/bbox_mAP': 0.9, 'step': 12}])
    _write_scalars(tmp_path, '20260102_000000', [
        {'loss': 1.0, 'step': 1},
        {'lvis/bbox_mAP': 0.1, 'lvis/bbox_APr': 0.0, 'step': 4},
        {'lvis/bbox_mAP': 0.2, 'lvis/bbox_APr': 0.05, 'step': 8},
        {'loss': 0.5, 'step': 900},
    ])
    assert final_metrics(str(tmp_path)) == {'lvis/bbox_mAP': 0.2, 'lvis/bbox_APr': 0.05, 'step': 8}


def test_final_metrics_none_without_validation(tmp_path):
    _write_scalars(tmp_path, '20260102_000000', [{'loss': 1.0, 'step': 1}])
    assert final_metrics(str(tmp_path)) is None
    assert final_metrics(str(tmp_path / 'missing')) is None


def test_mean_std_is_the_sample_standard_deviation():
    # mean (0.1 + 0.2 + 0.3) / 3 = 0.2; squared deviations 0.01 + 0 + 0.01 over n-1 = 2
    # gives variance 0.01, std 0.1.
    mean, std = mean_std([0.1, 0.2, 0.3])
    assert mean == pytest.approx(0.2) and std == pytest.approx(0.1)
    assert mean_std([0.4]) == (0.4, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))


def test_summarise_and_table_leave_out_empty_groups():
    runs = {
        'focal': [{'lvis/bbox_mAP': 0.30, 'lvis/bbox_APr': 0.00, 'lvis/bbox_APc': 0.2,
                   'lvis/bbox_APf': 0.5},
                  {'lvis/bbox_mAP': 0.34, 'lvis/bbox_APr': 0.10, 'lvis/bbox_APc': 0.2,
                   'lvis/bbox_APf': 0.5}],
        'pf': [{'lvis/bbox_mAP': 0.32, 'lvis/bbox_APr': -1.0, 'lvis/bbox_APc': 0.3,
                'lvis/bbox_APf': 0.4}],
    }
    summary = summarise(runs)
    # focal AP: mean(0.30, 0.34) = 0.32, std sqrt(2 * 0.02**2 / 1) = 0.02828...
    assert summary['focal']['AP'][0] == pytest.approx(0.32)
    assert summary['focal']['AP'][1] == pytest.approx(0.02 * math.sqrt(2))
    assert summary['focal']['APr'] == pytest.approx((0.05, 0.05 * math.sqrt(2)))
    assert all(math.isnan(v) for v in summary['pf']['APr'])  # -1: no rare class in val
    table = markdown_table(summary, {'focal': 2, 'pf': 1})
    # AP50 was not logged in these runs: n/a
    assert '| focal | 2 | 32.0 ± 2.8 | n/a | 5.0 ± 7.1 | 20.0 ± 0.0 | 50.0 ± 0.0 |' in table
    assert '| pf | 1 | 32.0 ± 0.0 | n/a | n/a | 30.0 ± 0.0 | 40.0 ± 0.0 |' in table


def _m(ap, apr):
    return {'lvis/bbox_mAP': ap, 'lvis/bbox_APr': apr}


def test_paired_differences_pair_runs_by_seed():
    # focal seeds 0, 1, 2: AP 0.60, 0.70, 0.65. cb seeds 2, 0 (another order, seed 1 missing):
    # AP 0.66, 0.62 -> differences seed 2: +0.01, seed 0: +0.02 -> mean 0.015,
    # std sqrt(((0.005)^2 + (0.005)^2) / 1) = 0.00707. Unpaired, the rows' own spreads are
    # 0.05 and 0.028: the seed effect cancels in the pairs.
    runs = {'focal': [_m(0.60, 0.5), _m(0.70, 0.6), _m(0.65, -1)],
            'cb': [_m(0.66, 0.7), _m(0.62, 0.4)],
            'other_seeds': [_m(0.9, 0.9)]}
    seeds = {'focal': [0, 1, 2], 'cb': [2, 0], 'other_seeds': [7]}
    diffs = paired_differences(runs, seeds, 'focal')
    assert set(diffs) == {'cb'}  # no seed in common: no row
    mean, std, n = diffs['cb']['AP']
    assert n == 2 and mean == pytest.approx(0.015) and std == pytest.approx(0.005 * math.sqrt(2))
    # APr: seed 2's focal group is empty (-1), so only seed 0 pairs: 0.4 - 0.5.
    assert diffs['cb']['APr'][0] == pytest.approx(-0.1) and diffs['cb']['APr'][2] == 1
    assert math.isnan(diffs['cb']['APc'][0])
    table = differences_table(diffs)
    assert '| cb | 2 | +1.5 ± 0.7 | n/a | -10.0 ± 0.0 | n/a | n/a |' in table
    assert paired_differences(runs, seeds, 'absent') == {}

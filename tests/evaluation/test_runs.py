"""Reading MMEngine's logged validation metrics and summarising them over seeds."""
import json
import math

import pytest

from imbfocal.evaluation.runs import final_metrics, markdown_table, mean_std, summarise


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

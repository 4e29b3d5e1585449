"""``tools/compare_losses.py`` end to end on tiny digits-LT builds (a few steps a run)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _compare(tmp_path, *args):
    cmd = [sys.executable, osp.join(REPO, 'tools/compare_losses.py'), *args]
    return cmd, subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True,
                               timeout=600)


@pytest.mark.slow
def test_compare_two_losses_writes_table_json_and_charts(tmp_path, tiny_digits_lt):
    work_dir = tmp_path / 'compare'
    cmd, result = _compare(
        tmp_path, '--benchmark', 'digits-lt', '--losses', 'focal', 'pf', '--seeds', '0',
        '--work-dir', str(work_dir), '--data-root', tiny_digits_lt, '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'train_dataloader.batch_size=4',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False')
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    table = (work_dir / 'results_val.md').read_text()
    assert '| focal | 1 |' in table and '| pf | 1 |' in table and 'minutes per run' in table
    results = json.loads((work_dir / 'results_val.json').read_text())
    assert set(results['summary']) == {'focal', 'pf'} and results['split'] == 'val'
    assert set(results['summary']['pf']) == {'AP', 'AP50', 'APr', 'APc', 'APf'}
    assert 'lvis/bbox_APr' in results['runs']['pf'][0]
    assert any(key.endswith('_precision') for key in results['runs']['pf'][0])
    assert results['minutes']['pf'][0] > 0
    for png in ('frequency_ap_val.png', 'per_class_ap_val.png'):
        assert (work_dir / png).stat().st_size > 1000
    # A second call finds every run finished and trains nothing.
    again = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count('already has results') + \
        again.stderr.count('already has results') == 2


@pytest.mark.slow
def test_test_split_with_repeat_factor_sampling(tmp_path, tiny_digits_lt100):
    """lt100 runs evaluated on the test split, the training set repeat-factor sampled."""
    work_dir = tmp_path / 'compare'
    _, result = _compare(
        tmp_path, '--losses', 'focal', '--seeds', '0', '--split', 'test', '--rfs',
        '--work-dir', str(work_dir), '--data-root', tiny_digits_lt100, '--cfg-options',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'train_dataloader.batch_size=4',
        'default_hooks.checkpoint.interval=2')
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    run_dir = work_dir / 'test' / 'focal_rfs' / 'seed0'
    config = run_dir / 'rfs_retinanet_r18_fpn_focal_800it_digits-lt100.py'
    text = config.read_text()
    assert "type='ClassBalancedDataset'" in text and 'oversample_thr=0.1' in text
    assert 'lvis_v1_test.json' in text  # evaluated on test, not val
    results = json.loads((work_dir / 'results_test.json').read_text())
    assert results['rfs'] and set(results['summary']) == {'focal_rfs'}

"""``tools/compare_losses.py`` end to end on the tiny digits-LT build (one epoch a run)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_compare_two_losses_writes_table_json_and_chart(tmp_path, tiny_digits_lt):
    work_dir = tmp_path / 'compare'
    cmd = [sys.executable, osp.join(REPO, 'tools/compare_losses.py'), '--losses', 'focal', 'pf',
           '--seeds', '0', '--work-dir', str(work_dir), '--data-root', tiny_digits_lt,
           '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
           'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
           'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
           'val_dataloader.persistent_workers=False']
    result = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    table = (work_dir / 'results.md').read_text()
    assert '| focal | 1 |' in table and '| pf | 1 |' in table
    results = json.loads((work_dir / 'results.json').read_text())
    assert set(results['summary']) == {'focal', 'pf'}
    assert 'lvis/bbox_APr' in results['runs']['pf'][0]
    assert (work_dir / 'frequency_ap.png').stat().st_size > 1000
    # A second call finds every run finished and trains nothing.
    again = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count('already has results') + \
        again.stderr.count('already has results') == 2

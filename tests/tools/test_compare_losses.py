"""``tools/compare_losses.py`` end to end on tiny digits-LT builds (a few steps a run)."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys
from pathlib import Path

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
def test_test_split_with_repeat_factor_sampling_and_prior(tmp_path, tiny_digits_lt100):
    """lt100 runs evaluated on the test split, the training set repeat-factor sampled and the
    classification bias started from the class frequencies."""
    work_dir = tmp_path / 'compare'
    _, result = _compare(
        tmp_path, '--losses', 'focal', '--seeds', '0', '--split', 'test', '--rfs', '--prior',
        '--work-dir', str(work_dir), '--data-root', tiny_digits_lt100, '--cfg-options',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'train_dataloader.batch_size=4',
        'default_hooks.checkpoint.interval=2')
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    run_dir = work_dir / 'test' / 'focal_rfs_prior' / 'seed0'
    config = run_dir / 'rfs_prior_retinanet_r18_fpn_focal_800it_digits-lt100.py'
    text = config.read_text()
    assert "type='ClassBalancedDataset'" in text and 'oversample_thr=0.1' in text
    assert "type='ClassPriorInitHook'" in text and "layer='bbox_head.retina_cls'" in text
    assert 'lvis_v1_test.json' in text  # evaluated on test, not val
    assert 'ClassPriorInitHook: bbox_head.retina_cls bias from training instances' in \
        result.stdout + result.stderr
    results = json.loads((work_dir / 'results_test.json').read_text())
    assert set(results['summary']) == {'focal_rfs_prior'}
    setting = results['settings']['focal_rfs_prior']
    assert setting['rfs'] and setting['prior'] and setting['seeds'] == [0]


def _tool():
    spec = importlib.util.spec_from_file_location(
        'compare_losses', osp.join(REPO, 'tools/compare_losses.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_of_earlier_calls_are_kept(tmp_path):
    tool = _tool()
    path = str(tmp_path / 'results_val.json')
    first = tool.parse_args(['--losses', 'focal', '--seeds', '0', '1'])
    runs, minutes, settings = tool.merge_previous(path, first, {'focal': [{'a': 1}] * 2},
                                                  {'focal': [6.0, 6.5]})
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(dict(detector='retinanet', benchmark='lt100', split='val', runs=runs,
                       minutes=minutes, settings=settings), f)
    tagged = tool.parse_args(['--losses', 'cb-focal', '--seeds', '0', '--tag', 'row',
                              '--cfg-options', 'model.bbox_head.loss_cls.weighting=row'])
    runs, minutes, settings = tool.merge_previous(path, tagged, {'cb-focal_row': [{'b': 2}]},
                                                  {'cb-focal_row': [6.1]})
    assert list(runs) == ['focal', 'cb-focal_row'] and minutes['focal'] == [6.0, 6.5]
    assert settings['focal']['seeds'] == [0, 1] and settings['focal']['tag'] == ''
    assert settings['cb-focal_row']['cfg_options'] == ['model.bbox_head.loss_cls.weighting=row']
    # Another split (or detector) starts its own table; a recomputed row replaces the old one.
    assert list(tool.merge_previous(path, tool.parse_args(['--split', 'test']), {}, {})[0]) == []
    runs, _, _ = tool.merge_previous(path, first, {'focal': [{'a': 3}]}, {})
    assert runs['focal'] == [{'a': 3}]


@pytest.mark.parametrize('rfs', [False, True])
def test_data_root_reaches_the_training_set(tmp_path, rfs):
    """With repeat-factor sampling the training set is the one ``ClassBalancedDataset`` wraps:
    the run's data root must land there, not on the wrapper (which takes no ``data_root``)."""
    import argparse

    from mmengine.config import Config, DictAction

    tool = _tool()
    config = osp.join(REPO, 'configs/retinanet/retinanet_r18_fpn_focal_800it_digits-lt100.py')
    cfg = Config.fromfile(tool.derived_config(config, str(tmp_path), rfs, None))
    # Parsed and merged as MMDetection's tools/train.py does with --cfg-options.
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = tool.run_options('/data/lt100', 3, 'test', pretrained=True, rfs=rfs)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    train_set = cfg.train_dataloader.dataset
    if rfs:
        assert train_set.type == 'ClassBalancedDataset' and 'data_root' not in train_set
        train_set = train_set.dataset
    assert train_set.data_root == '/data/lt100/'
    assert train_set.ann_file == 'annotations/lvis_v1_train.json'
    assert cfg.test_dataloader.dataset.data_root == '/data/lt100/'
    assert cfg.val_dataloader.dataset.ann_file == 'annotations/lvis_v1_test.json'
    assert cfg.randomness.seed == 3


def _fake_run(work_dir, step, finished, stamp='20261207_000000'):
    """A work dir whose scalars.json holds one validation line (``step``), with or without the
    marker a finished training leaves; ``stamp`` names the run's folder as MMEngine does."""
    vis = Path(work_dir) / stamp / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text(json.dumps({'lvis/bbox_mAP': 0.1 * step, 'step': step}))
    if finished:
        (Path(work_dir) / 'run_finished.json').write_text(json.dumps(dict(minutes=1.0)))


@pytest.fixture
def offline_tool(monkeypatch):
    """compare_losses with training replaced by a recorder (no data, no reports)."""
    tool = _tool()
    trained = []

    def fake_train(config, work_dir, options):
        trained.append(work_dir)
        _fake_run(work_dir, 12, finished=True, stamp='20261207_010000')  # a newer run
        return 1.0

    monkeypatch.setattr(tool, 'train', fake_train)
    monkeypatch.setattr(tool, 'ensure_data', lambda *args: None)
    monkeypatch.setattr(tool, 'write_reports', lambda *args: None)
    return tool, trained


def test_an_interrupted_run_is_trained_again_not_counted(tmp_path, offline_tool):
    """seed 0 stopped after its epoch-4 validation (no marker); seed 1 finished."""
    tool, trained = offline_tool
    root = tmp_path / 'compare'
    _fake_run(root / 'val' / 'focal' / 'seed0', 4, finished=False)
    _fake_run(root / 'val' / 'focal' / 'seed1', 12, finished=True)
    assert tool.main(['--losses', 'focal', '--seeds', '0', '1', '--work-dir', str(root)]) == 0
    assert trained == [str(root / 'val' / 'focal' / 'seed0')]


def test_unknown_loss_refused_before_any_training(tmp_path, offline_tool):
    tool, trained = offline_tool
    with pytest.raises(SystemExit, match="loss 'afll'"):
        tool.main(['--losses', 'focal', 'afll', '--seeds', '0', '--work-dir',
                   str(tmp_path / 'compare')])
    assert trained == []


@pytest.mark.parametrize('args', [['--seeds', '0', '0'], ['--losses', 'focal', 'focal']])
def test_repeated_seeds_or_losses_refused(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _tool().parse_args(args)
    assert exit_info.value.code == 2 and 'more than once' in capsys.readouterr().err


def test_unwritable_work_dir_refused_before_any_training(tmp_path, offline_tool):
    tool, trained = offline_tool
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(SystemExit, match='--work-dir'):
        tool.main(['--losses', 'focal', '--seeds', '0', '--work-dir', str(blocker / 'sub')])
    assert trained == []


def test_report_only_trains_nothing_and_keeps_each_runs_provenance(tmp_path, offline_tool,
                                                                    monkeypatch):
    tool, trained = offline_tool
    root = tmp_path / 'compare'
    _fake_run(root / 'val' / 'focal' / 'seed0', 12, finished=True)
    _fake_run(root / 'val' / 'focal' / 'seed1', 4, finished=False)
    with pytest.raises(SystemExit, match='report-only'):
        tool.main(['--losses', 'focal', '--seeds', '0', '1', '--work-dir', str(root),
                   '--report-only'])
    written = []
    monkeypatch.setattr(tool, 'write_reports', lambda *args: written.append(args))
    assert tool.main(['--losses', 'focal', '--seeds', '0', '--work-dir', str(root),
                      '--report-only']) == 0
    assert trained == [] and written[0][-1] == {'focal': [dict(seed=0, minutes=1.0)]}

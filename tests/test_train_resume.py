"""End-to-end: train a shipped config on CPU, through both entry points, and resume.

The shipped digits-LT Adaptive Focal Loss config is pointed at an 8-image build (two iterations
an epoch at batch 4), so each run takes seconds of training on top of start-up.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from imbfocal.entrypoints import mmdet_tool_path

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs/retinanet/retinanet_r18_fpn_afl_12e_digits-lt.py')
ITERS_PER_EPOCH = 2  # 8 training images at batch size 4

pytestmark = pytest.mark.slow


def _cli_options(options: dict) -> list:
    return ['--cfg-options'] + [f'{key}={value}' for key, value in options.items()]


@pytest.mark.parametrize('entry_point', ['imbfocal', 'mmdet'])
def test_train_and_evaluate_from_the_command_line(tmp_path, digits_lt_options, entry_point):
    script = (osp.join(REPO, 'tools/train.py')
              if entry_point == 'imbfocal' else mmdet_tool_path('train'))
    cmd = [sys.executable, script, CONFIG, '--work-dir', str(tmp_path)]
    result = subprocess.run(cmd + _cli_options(digits_lt_options()), cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert osp.isfile(tmp_path / 'epoch_1.pth')
    assert 'ClassCountsHook' in log  # the hook reported the counts it filled
    assert 'bbox_APr' in log  # LVIS evaluation of the val split ran


def _runner(cfg_options: dict, work_dir, **overrides) -> Runner:
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(cfg_options)
    cfg.work_dir = str(work_dir)
    cfg.update(overrides)
    return Runner.from_cfg(cfg)


# AFL with class weights, so that the counts the hook fills and the checkpoint keeps weigh
WEIGHTED = {'model.bbox_head.loss_cls.beta': 0.99}


def test_resume_restores_iteration_and_loss_state(tmp_path, digits_lt_options):
    first = _runner(digits_lt_options(**WEIGHTED), tmp_path)
    first.train()
    checkpoint = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)  # torch>=2.6 default
    assert checkpoint['meta']['iter'] == ITERS_PER_EPOCH

    # Tamper with the saved counts: a resumed run must keep them, not refill from the data.
    state = checkpoint['state_dict']
    saved_counts = state['bbox_head.loss_cls.class_counts']
    state['bbox_head.loss_cls.class_counts'] = saved_counts + 1000
    assert int(state['bbox_head.loss_cls.agf_iter']) == ITERS_PER_EPOCH - 1
    torch.save(checkpoint, tmp_path / 'tampered.pth')

    second = _runner(digits_lt_options(**WEIGHTED, **{'train_cfg.max_epochs': 2}),
                     tmp_path / 'resumed', resume=True, load_from=str(tmp_path / 'tampered.pth'))
    second.train()
    assert second.iter == 2 * ITERS_PER_EPOCH and second.epoch == 2
    loss_cls = second.model.bbox_head.loss_cls
    assert torch.equal(loss_cls.class_counts, saved_counts + 1000)
    # The runner's iteration drives AFL's progress: the last step of epoch 2 was iteration 3.
    assert int(loss_cls.agf_iter) == 2 * ITERS_PER_EPOCH - 1

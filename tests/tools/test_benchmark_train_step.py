"""Smoke test of tools/benchmark_train_step.py: real train steps on tiny synthetic batches.

Benchmarks are not tests: no time is asserted here.
"""
import importlib.util
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'benchmark_train_step.py'


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_train_step', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_labels_are_long_tailed():
    tool = _load_tool()
    probabilities = tool.long_tailed_probabilities(10)
    # p_c proportional to 100^(-c/9): the first class is 100 times the last one
    torch.testing.assert_close(probabilities[0] / probabilities[-1],
                               torch.tensor(100.0, dtype=torch.float64))
    counts = tool.synthetic_counts(10)
    assert counts == sorted(counts, reverse=True) and min(counts) >= 1


def test_tiny_cpu_run_writes_json(tmp_path, capsys):
    tool = _load_tool()
    out = tmp_path / 'steps.json'
    configs = [str(ROOT / f'configs/retinanet/retinanet_r18_fpn_{loss}_12e_digits-lt.py')
               for loss in ('focal', 'cb-focal', 'pf')]
    tool.main(configs + ['--device', 'cpu', '--image-size', '64', '64', '--batch-size', '1',
                         '--iters', '1', '--warmup', '1', '--batches', '1', '--threads', '1',
                         '--out', str(out)])
    report = json.loads(out.read_text())
    assert [r['loss'] for r in report['results']] == [
        'FocalLoss', 'ClassBalancedFocalLoss', 'ParameterFreeLoss']
    for row in report['results']:
        assert row['step_ms_median'] > 0 and row['last_loss'] > 0
    assert '| config | loss_cls | step ms (median) |' in capsys.readouterr().out


def test_pretrained_backbones_are_not_downloaded():
    from mmengine.config import Config
    tool = _load_tool()
    cfg = Config.fromfile(str(ROOT / 'configs/retinanet/retinanet_r50_fpn_afl_1x_lvis-v1.py'))
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    tool.drop_pretrained(cfg.model)
    assert cfg.model.backbone.init_cfg is None
    assert "'Pretrained'" not in repr(cfg.model.to_dict())

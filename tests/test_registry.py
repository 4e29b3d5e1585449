"""``import imbfocal`` registers the whole public API, idempotently and without shadowing."""
import importlib

import pytest
from mmdet.registry import DATASETS, HOOKS, METRICS, MODELS
from torch import nn

import imbfocal
from imbfocal.registry import register

PUBLIC_MODELS = [
    'ClassBalancedFocalLoss', 'AdaptiveFocalLoss', 'ParameterFreeLoss', 'DualFocalLoss',
    'EqualizedFocalLoss', 'GaussianClassBalancedFocalLoss', 'GaussianAdaptiveFocalLoss',
    'GaussianParameterFreeLoss'
]


@pytest.mark.parametrize('name', PUBLIC_MODELS)
def test_losses_registered(name):
    assert MODELS.get(name).__module__.startswith('imbfocal.losses')


def test_hook_dataset_metric_registered():
    assert HOOKS.get('ClassCountsHook').__module__.startswith('imbfocal')
    assert DATASETS.get('FastLVISV1Dataset').__module__.startswith('imbfocal')
    assert METRICS.get('LongTailMetric').__module__.startswith('imbfocal')


def test_executing_modules_twice_does_not_raise():
    # A second execution of a module body re-runs its register() decorators.
    for module in ('imbfocal.losses.class_balanced_focal_loss',
                   'imbfocal.losses.parameter_free_loss', 'imbfocal.hooks.class_counts_hook'):
        importlib.reload(importlib.import_module(module))
    importlib.reload(imbfocal)
    assert MODELS.get('ClassBalancedFocalLoss').__module__ == (
        'imbfocal.losses.class_balanced_focal_loss')


def test_register_refuses_to_shadow_mmdetection():
    shadow = type('FocalLoss', (nn.Module, ), {'__module__': 'somewhere_else'})
    with pytest.raises(KeyError, match='will not shadow'):
        register(MODELS)(shadow)
    assert MODELS.get('FocalLoss').__module__.startswith('mmdet')

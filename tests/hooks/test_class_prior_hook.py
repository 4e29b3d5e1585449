"""ClassPriorInitHook and frequency_prior_bias: per-class initial biases from class counts."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmdet.datasets import CocoDataset
from mmengine.config import Config
from test_class_counts_hook import CLASSES, INSTANCES, coco_json  # noqa: F401 (fixture)
from torch import nn

from imbfocal.hooks import ClassPriorInitHook, frequency_prior_bias


def _logit(p):
    return math.log(p / (1 - p))


def test_bias_arithmetic():
    # counts 3, 1, 4 (sum 8), C = 3, pi = 0.01: pi_c = 0.01 * 3 * n_c / 8
    #   = 0.01125, 0.00375, 0.015; b_c = log(pi_c / (1 - pi_c)).
    b = frequency_prior_bias([3, 1, 4], prior_prob=0.01)
    expected = [_logit(0.01 * 3 * n / 8) for n in (3, 1, 4)]
    torch.testing.assert_close(b, torch.tensor(expected), rtol=1e-6, atol=1e-6)
    assert b.dtype == torch.float32


def test_equal_counts_give_retinanet_prior():
    b = frequency_prior_bias([5] * 80, prior_prob=0.01)
    torch.testing.assert_close(b, torch.full((80, ), -math.log(99)))


def test_clipping_of_absent_and_dominant_classes():
    # [0, 1, 999]: pi_c = 0.3 * 3 * n_c / 1000 -> 0 (clipped up to min_prob), 9e-4, 0.8991
    # (clipped down to max_prob 0.5, logit 0).
    b = frequency_prior_bias([0, 1, 999], prior_prob=0.3, min_prob=1e-4, max_prob=0.5)
    torch.testing.assert_close(b, torch.tensor([_logit(1e-4), _logit(9e-4), 0.0]),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('kwargs, match', [
    (dict(counts=[0, 0]), 'positive sum'),
    (dict(counts=[-1, 3]), 'non-negative'),
    (dict(counts=[]), 'one non-negative count'),
    (dict(counts=[1], prior_prob=0.0), 'prior_prob'),
    (dict(counts=[1], min_prob=0.2, max_prob=0.1), 'must not exceed'),
])
def test_invalid_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        frequency_prior_bias(**kwargs)


def test_hook_arguments_are_checked_at_build():
    with pytest.raises(ValueError, match='count_type'):
        ClassPriorInitHook('cls', count_type='boxes')
    with pytest.raises(ValueError, match='max_prob'):
        ClassPriorInitHook('cls', max_prob=1.0)


class _Head(nn.Module):

    def __init__(self, outputs):
        super().__init__()
        self.bbox_head = nn.Module()
        self.bbox_head.retina_cls = nn.Conv2d(4, outputs, 3)
        nn.init.constant_(self.bbox_head.retina_cls.bias, -4.595)


def _runner(model, ann_file, resume=False, load_from=None):
    dataset = CocoDataset(ann_file=str(ann_file), data_prefix=dict(img=''), pipeline=[],
                          metainfo=dict(classes=CLASSES), filter_cfg=None, lazy_init=False)
    return SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=dataset),
                           _resume=resume, cfg=Config(dict(load_from=load_from)))


def test_hook_sets_every_anchors_class_biases(coco_json):  # noqa: F811
    # 2 anchors x 3 classes, anchor-major channels (a * C + c) as RetinaHead's: each anchor's
    # 3 channels get the class biases of the instance counts 3, 1, 4.
    model = _Head(2 * len(CLASSES))
    ClassPriorInitHook('bbox_head.retina_cls').before_train(_runner(model, coco_json))
    expected = frequency_prior_bias(INSTANCES).repeat(2)
    torch.testing.assert_close(model.bbox_head.retina_cls.bias.data, expected)


@pytest.mark.parametrize('resume, load_from', [(True, None), (False, 'ckpt.pth')])
def test_hook_keeps_a_loaded_bias(coco_json, resume, load_from):  # noqa: F811
    model = _Head(len(CLASSES))
    ClassPriorInitHook('bbox_head.retina_cls').before_train(
        _runner(model, coco_json, resume, load_from))
    assert torch.all(model.bbox_head.retina_cls.bias.data == -4.595)


def test_hook_errors_name_the_fix(coco_json):  # noqa: F811
    with pytest.raises(ValueError, match=r"no layer 'bbox_head.cls'.*bbox_head.retina_cls"):
        ClassPriorInitHook('bbox_head.cls').before_train(_runner(_Head(3), coco_json))
    with pytest.raises(ValueError, match='not a multiple'):
        ClassPriorInitHook('bbox_head.retina_cls').before_train(_runner(_Head(4), coco_json))

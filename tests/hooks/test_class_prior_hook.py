"""ClassPriorInitHook and frequency_prior_bias: per-class initial biases from class counts."""
import logging
import math
import re
from types import SimpleNamespace

import pytest
import torch
from mmdet.datasets import CocoDataset
from mmdet.registry import MODELS
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from test_class_counts_hook import CLASSES, INSTANCES, coco_json  # noqa: F401 (fixture)
from torch import nn

import imbfocal  # noqa: F401  (registers imbfocal's heads)
from imbfocal.hooks import ClassPriorInitHook, classification_layers, frequency_prior_bias


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


C = len(CLASSES)  # 3: ant, bee, cow with 3, 1, 4 training instances
FOCAL = dict(type='FocalLoss', use_sigmoid=True)
HEADS = {
    # RetinaHead's default anchors: 3 scales x 3 ratios = 9 per location
    'RetinaHead': dict(type='RetinaHead', num_classes=C, in_channels=4, feat_channels=4,
                       stacked_convs=1, loss_cls=FOCAL),
    'RetinaAllLevelsHead': dict(type='RetinaAllLevelsHead', num_classes=C, in_channels=4,
                                feat_channels=4, stacked_convs=1, loss_cls=FOCAL),
    'AnchorHead': dict(type='AnchorHead', num_classes=C, in_channels=4, feat_channels=4,
                       loss_cls=FOCAL),
    'FCOSHead': dict(type='FCOSHead', num_classes=C, in_channels=4, feat_channels=4,
                     stacked_convs=1, norm_cfg=None),
    # feat_channels 6, a multiple of C, so that heatmap_head.0 passed the old divisibility test
    'CenterNetHead': dict(type='CenterNetHead', num_classes=C, in_channels=4, feat_channels=6),
    'CenterNetPriorHead': dict(type='CenterNetPriorHead', num_classes=C, in_channels=4,
                               feat_channels=6),
}
# head -> (its classification layer, anchors per location)
CLASSIFIERS = {'RetinaHead': ('bbox_head.retina_cls', 9),
               'RetinaAllLevelsHead': ('bbox_head.retina_cls', 9),
               'AnchorHead': ('bbox_head.conv_cls', 9),
               'FCOSHead': ('bbox_head.conv_cls', 1),
               'CenterNetHead': ('bbox_head.heatmap_head.2', 1),
               'CenterNetPriorHead': ('bbox_head.heatmap_head.2', 1)}
DEFAULT_BIAS = -4.595


class _Detector(BaseModel):
    """A neck conv of 6 outputs (a multiple of C) and a real MMDetection head."""

    def __init__(self, head='RetinaHead', **head_args):
        super().__init__()
        self.neck = nn.Module()
        self.neck.fpn_conv = nn.Conv2d(4, 2 * C, 3)
        self.bbox_head = MODELS.build(dict(HEADS[head], **head_args))
        for name in classification_layers(self):
            nn.init.constant_(self.get_submodule(name).bias, DEFAULT_BIAS)

    def forward(self, *args, **kwargs):  # never called: the hook only touches weights
        raise NotImplementedError


def _runner(model, ann_file):
    dataset = CocoDataset(ann_file=str(ann_file), data_prefix=dict(img=''), pipeline=[],
                          metainfo=dict(classes=CLASSES), filter_cfg=None, lazy_init=False)
    return SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=dataset))


def _bias(model, head):
    return model.get_submodule(CLASSIFIERS[head][0]).bias.data


@pytest.mark.parametrize('head', HEADS)
def test_hook_sets_every_anchors_class_biases(coco_json, head):  # noqa: F811
    # RetinaHead: 9 anchors x 3 classes, anchor-major channels (a * C + c): each anchor's 3
    # channels get the class biases of the instance counts 3, 1, 4; FCOS / CenterNet: 3.
    model = _Detector(head)
    hook = ClassPriorInitHook(CLASSIFIERS[head][0])
    hook.before_run(_runner(model, coco_json))
    hook.before_train(_runner(model, coco_json))
    expected = frequency_prior_bias(INSTANCES).repeat(CLASSIFIERS[head][1])
    torch.testing.assert_close(_bias(model, head), expected)


def test_the_model_names_its_classification_layers():
    model = nn.Module()
    model.bbox_head = _Detector('RetinaHead').bbox_head
    model.rpn_like = _Detector('FCOSHead').bbox_head
    assert {name: outputs for name, (_, outputs) in classification_layers(model).items()} == {
        'bbox_head.retina_cls': 9 * C, 'rpn_like.conv_cls': C}


@pytest.mark.parametrize('head, layer', [
    ('RetinaHead', 'bbox_head.retina_reg'),  # 9 anchors x 4 = 36, a multiple of C = 3
    ('RetinaHead', 'neck.fpn_conv'),  # 6 outputs
    ('RetinaHead', 'bbox_head.cls_convs.0.conv'),  # 4 outputs
    ('FCOSHead', 'bbox_head.conv_reg'),
    ('CenterNetHead', 'bbox_head.heatmap_head.0'),  # 6 feature channels
    ('CenterNetPriorHead', 'bbox_head.wh_head.2'),
    ('CenterNetHead', 'bbox_head.heatmap_head'),  # the Sequential, not its conv
    ('RetinaHead', 'bbox_head.nope'),
])
def test_any_other_layer_is_refused_naming_the_classifier(coco_json, head, layer):  # noqa: F811
    """The old check took any layer whose outputs a multiple of C divides and overwrote,
    e.g., RetinaNet's regression bias with class priors."""
    model = _Detector(head)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = CLASSIFIERS[head][0].replace('.', r'\.')
    for stage in ('before_run', 'before_train'):
        with pytest.raises(ValueError, match=rf"'{layer}' is not the classification layer.*"
                           rf"classification layers: \['{expected}'\]. Set layer="):
            getattr(ClassPriorInitHook(layer), stage)(_runner(model, coco_json))
    torch.testing.assert_close(model.state_dict(), before)


def test_a_model_without_a_supported_head_is_named(coco_json):  # noqa: F811
    model = nn.Module()
    model.bbox_head = nn.Module()
    model.bbox_head.retina_cls = nn.Conv2d(4, 9 * C, 3)  # the right name, but no head
    with pytest.raises(ValueError, match='none: the model has no RetinaHead, AnchorHead, '
                       'FCOSHead or CenterNetHead'):
        ClassPriorInitHook('bbox_head.retina_cls').before_train(_runner(model, coco_json))


def test_softmax_heads_and_other_class_counts_are_refused(coco_json):  # noqa: F811
    softmax = _Detector('RetinaHead', loss_cls=dict(type='CrossEntropyLoss',
                                                    use_sigmoid=False))
    with pytest.raises(ValueError, match='softmax head'):
        ClassPriorInitHook('bbox_head.retina_cls').before_train(_runner(softmax, coco_json))
    four = _Detector('FCOSHead', num_classes=4)
    with pytest.raises(ValueError, match='num_classes=4 but the training dataset has 3'):
        ClassPriorInitHook('bbox_head.conv_cls').before_train(_runner(four, coco_json))


def _checkpoint(shape=None, prefix=''):
    """A checkpoint as MMEngine loads it: the bias of bbox_head.retina_cls of ``shape`` (None:
    absent) and an unrelated weight."""
    state = {prefix + 'neck.fpn_conv.weight': torch.zeros(2 * C, 4, 3, 3)}
    if shape is not None:
        state[prefix + 'bbox_head.retina_cls.bias'] = torch.full(shape, 0.5)
    return dict(meta=dict(), state_dict=state)


@pytest.mark.parametrize('checkpoint, kept, why', [
    (_checkpoint((9 * C, )), True, 'keeps the bias it loaded'),
    (_checkpoint((9 * C, ), prefix='module.'), True, 'keeps the bias it loaded'),  # DDP-saved
    # fine-tuning from 80 classes: MMEngine skips the mismatched bias, the layer keeps its init
    (_checkpoint((9 * 80, )), False, r'bias has shape \(720,\), the layer \(27,\)'),
    (_checkpoint(None), False, r'holds no bbox_head\.retina_cls\.bias'),  # a backbone
    (None, False, r'bias from training instances: prior'),  # resume=True, nothing found
])
def test_the_bias_is_kept_only_if_the_checkpoint_loaded_it(coco_json, checkpoint, kept,  # noqa: F811
                                                           why):
    model = _Detector('RetinaHead')
    hook = ClassPriorInitHook('bbox_head.retina_cls')
    runner = _runner(model, coco_json)
    hook.before_run(runner)
    if checkpoint is not None:
        hook.after_load_checkpoint(runner, checkpoint)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        hook.before_train(runner)
    finally:
        logger.removeHandler(handler)
    expected = torch.full((9 * C, ), DEFAULT_BIAS) if kept else \
        frequency_prior_bias(INSTANCES).repeat(9)
    torch.testing.assert_close(_bias(model, 'RetinaHead'), expected)
    messages = [r.getMessage() for r in records]
    assert any(re.search(why, m) for m in messages), messages


def test_mmengine_reports_the_loaded_checkpoint_to_the_hook(coco_json, tmp_path):  # noqa: F811
    """Through MMEngine's own Runner.load_checkpoint (what load_from and resume call): a
    checkpoint of another class count leaves the default bias, and the hook replaces it."""
    hook = ClassPriorInitHook('bbox_head.retina_cls')
    runner = Runner(model=_Detector('RetinaHead'), work_dir=str(tmp_path),
                    custom_hooks=[hook], default_scope='mmdet')
    hook.before_run(runner)
    other = _Detector('RetinaHead', num_classes=5)  # a 5-class model's checkpoint
    torch.save(dict(meta=dict(), state_dict=other.state_dict()), tmp_path / 'other.pth')
    runner.load_checkpoint(str(tmp_path / 'other.pth'))
    hook.before_train(_runner(runner.model, coco_json))
    torch.testing.assert_close(_bias(runner.model, 'RetinaHead'),
                               frequency_prior_bias(INSTANCES).repeat(9))

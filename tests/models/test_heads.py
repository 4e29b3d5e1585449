"""imbfocal's heads: RetinaAllLevelsHead equals RetinaHead for element-wise losses and makes one
classification-loss call per batch; CenterNetPriorHead's prior init, kept on resume.

The prior init of every shipped config is checked in ``tests/configs/test_configs.py``.
"""
import inspect
import math

import pytest
import torch
from mmdet.models.dense_heads import FCOSHead, RetinaHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict
from mmengine.runner import Runner, load_checkpoint
from mmengine.structures import InstanceData

import imbfocal  # noqa: F401  (registers imbfocal's modules)
from imbfocal.models import CenterNetPriorHead, RetinaAllLevelsHead

register_all_modules()

NUM_CLASSES = 5
IMG_SIZE = 64
STRIDES = [8, 16, 32, 64, 128]
PRIOR_BIAS = -math.log(99.0)  # pi = 0.01
RETINA_TRAIN_CFG = ConfigDict(
    assigner=dict(
        type='MaxIoUAssigner',
        pos_iou_thr=0.5,
        neg_iou_thr=0.4,
        min_pos_iou=0,
        ignore_iof_thr=-1),
    sampler=dict(type='PseudoSampler'),
    allowed_border=-1,
    pos_weight=-1,
    debug=False)
FOCAL = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
CLASS_BALANCED = dict(
    type='ClassBalancedFocalLoss',
    use_sigmoid=True,
    class_counts=[500, 100, 20, 5, 1],
    loss_weight=1.0)


def _retina_head(head_type: str, loss_cls: dict) -> RetinaHead:
    head = MODELS.build(
        dict(
            type=head_type,
            num_classes=NUM_CLASSES,
            in_channels=8,
            feat_channels=8,
            stacked_convs=1,
            loss_cls=loss_cls,
            train_cfg=RETINA_TRAIN_CFG))
    head.init_weights()
    return head


def _targets():
    """Two images: ground truth of several classes and sizes, image metas of a 64x64 batch."""
    torch.manual_seed(0)
    gt_instances = [
        InstanceData(
            bboxes=torch.tensor([[2., 3., 30., 40.], [20., 20., 60., 50.], [5., 40., 15., 60.]]),
            labels=torch.tensor([0, 3, 1])),
        InstanceData(
            bboxes=torch.tensor([[10., 10., 54., 62.], [30., 2., 40., 12.]]),
            labels=torch.tensor([2, 4])),
    ]
    shape = (IMG_SIZE, IMG_SIZE)
    metas = [dict(img_shape=shape, pad_shape=shape, batch_input_shape=shape)] * 2
    return gt_instances, metas


def _head_outputs(head: RetinaHead):
    """Random per-level classification and box outputs (leaf tensors, for gradients)."""
    generator = torch.Generator().manual_seed(1)
    sizes = [math.ceil(IMG_SIZE / stride) for stride in STRIDES]
    cls_scores = [
        (3 * torch.randn(2, head.num_base_priors * NUM_CLASSES, s, s,
                         generator=generator)).requires_grad_() for s in sizes
    ]
    bbox_preds = [
        torch.randn(2, head.num_base_priors * 4, s, s, generator=generator).requires_grad_()
        for s in sizes
    ]
    return cls_scores, bbox_preds


def _losses_and_grads(head: RetinaHead):
    cls_scores, bbox_preds = _head_outputs(head)
    losses = head.loss_by_feat(cls_scores, bbox_preds, *_targets())
    loss_cls = sum(losses['loss_cls']) if isinstance(losses['loss_cls'],
                                                     list) else losses['loss_cls']
    loss_bbox = sum(losses['loss_bbox'])
    grads = torch.autograd.grad(loss_cls + loss_bbox, cls_scores + bbox_preds)
    return loss_cls.detach(), loss_bbox.detach(), grads


@pytest.mark.parametrize('loss_cls', [FOCAL, CLASS_BALANCED], ids=['FocalLoss', 'CBFocalLoss'])
def test_all_levels_head_matches_retina_head(loss_cls):
    if MODELS.get(loss_cls['type']) is None:
        pytest.skip(f"{loss_cls['type']} is not registered yet")
    reference = _retina_head('RetinaHead', loss_cls)
    all_levels = _retina_head('RetinaAllLevelsHead', loss_cls)
    all_levels.load_state_dict(reference.state_dict())

    ref_cls, ref_bbox, ref_grads = _losses_and_grads(reference)
    cls, bbox, grads = _losses_and_grads(all_levels)
    assert ref_cls > 0 and ref_bbox > 0
    torch.testing.assert_close(cls, ref_cls, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(bbox, ref_bbox, rtol=1e-6, atol=0)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-9)


def test_all_levels_head_calls_the_classification_loss_once():
    """RetinaHead makes one loss_cls call per level; RetinaAllLevelsHead one over everything."""
    for head_type, expected_calls in (('RetinaHead', len(STRIDES)), ('RetinaAllLevelsHead', 1)):
        head = _retina_head(head_type, FOCAL)
        calls = []
        head.loss_cls.register_forward_hook(lambda module, args, out: calls.append(args[0]))
        cls_scores, bbox_preds = _head_outputs(head)
        head.loss_by_feat(cls_scores, bbox_preds, *_targets())
        assert len(calls) == expected_calls, head_type
        total_anchors = sum(score.numel() for score in cls_scores) // NUM_CLASSES
        assert sum(pred.shape[0] for pred in calls) == total_anchors


def test_all_levels_head_keeps_retina_prior_init():
    head = _retina_head('RetinaAllLevelsHead', FOCAL)
    assert isinstance(head, RetinaAllLevelsHead)
    torch.testing.assert_close(head.retina_cls.bias,
                               torch.full_like(head.retina_cls.bias, PRIOR_BIAS))


def test_fcos_head_has_prior_init_and_one_classification_call():
    """FCOS needs no all-levels head: one loss_cls call over all levels and images."""
    head = FCOSHead(num_classes=NUM_CLASSES, in_channels=8, feat_channels=32, stacked_convs=1)
    head.init_weights()
    torch.testing.assert_close(head.conv_cls.bias, torch.full_like(head.conv_cls.bias,
                                                                   PRIOR_BIAS))
    calls = []
    head.loss_cls.register_forward_hook(lambda module, args, out: calls.append(args[0]))
    feats = [torch.randn(2, 8, math.ceil(IMG_SIZE / s), math.ceil(IMG_SIZE / s)) for s in STRIDES]
    head.loss_by_feat(*head(feats), *_targets())
    assert len(calls) == 1
    assert calls[0].shape[0] == 2 * sum(f.shape[-1] * f.shape[-2] for f in feats)


def _centernet(prior_prob=0.01) -> CenterNetPriorHead:
    return MODELS.build(
        dict(
            type='CenterNetPriorHead',
            prior_prob=prior_prob,
            num_classes=NUM_CLASSES,
            in_channels=8,
            feat_channels=8,
            test_cfg=ConfigDict(topk=10, local_maximum_kernel=3, max_per_img=10)))


@pytest.mark.parametrize('prior_prob', [0.01, 0.1, 0.5])
def test_centernet_prior_init(prior_prob):
    head = _centernet(prior_prob)
    head.init_weights()
    bias = head.heatmap_head[-1].bias
    expected = -math.log((1 - prior_prob) / prior_prob)
    torch.testing.assert_close(bias, torch.full_like(bias, expected))


def test_centernet_prior_default_and_validation():
    assert inspect.signature(CenterNetPriorHead).parameters['prior_prob'].default == 0.01
    with pytest.raises(ValueError, match='prior_prob'):
        _centernet(prior_prob=1.0)


def test_centernet_bias_from_checkpoint_survives_init(tmp_path):
    """Resume/load_from: the runner initialises first, then loads; the loaded bias is kept."""
    trained = _centernet()
    trained.init_weights()
    with torch.no_grad():
        trained.heatmap_head[-1].bias.fill_(-1.234)
    path = tmp_path / 'head.pth'
    torch.save({'state_dict': trained.state_dict()}, path)

    resumed = _centernet()
    resumed.init_weights()  # Runner.train(): _init_model_weights() ...
    load_checkpoint(resumed, str(path))  # ... then load_or_resume()
    bias = resumed.heatmap_head[-1].bias
    torch.testing.assert_close(bias, torch.full_like(bias, -1.234))


def test_runner_initialises_weights_before_loading_checkpoint():
    """The guarantee the test above relies on: MMEngine's Runner.train() order."""
    source = inspect.getsource(Runner.train)
    assert source.index('self._init_model_weights()') < source.index('self.load_or_resume()')
    for method in (Runner.val, Runner.test):
        assert '_init_model_weights' not in inspect.getsource(method)


def test_centernet_predicts_without_border_meta():
    """Pipelines other than RandomCenterCropPad give no `border`: decoded with a zero border."""
    head = _centernet()
    head.init_weights()
    head.eval()
    feats = (torch.randn(2, 8, IMG_SIZE // 4, IMG_SIZE // 4), )
    metas = [dict(img_shape=(IMG_SIZE, IMG_SIZE), batch_input_shape=(IMG_SIZE, IMG_SIZE))] * 2
    samples = [DetDataSample(metainfo=meta) for meta in metas]
    with torch.no_grad():
        results = head.predict(feats, samples, rescale=False)
        with_border = head.predict_by_feat(
            *head(feats), [dict(meta, border=(0, 0, 0, 0)) for meta in metas], rescale=False)
    assert len(results) == 2 and len(results[0]) == 10
    torch.testing.assert_close(results[0].bboxes, with_border[0].bboxes)
    assert 'border' not in metas[0]  # the caller's metas are not modified

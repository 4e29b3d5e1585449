"""MMDetection's loss contract, for every loss this package registers.

Dense losses follow ``FocalLoss``'s contract: ``forward(pred, target, weight, avg_factor,
reduction_override)``, integer labels with background ``C`` or ``(N, C)`` targets, weights
``(N,)`` / ``(N, C)`` / ``(N * C,)``, ``avg_factor`` only with ``'mean'``, float32 maths under
autocast, ``loss_weight`` last. Where a loss reduces to focal loss (equal class counts, no
damping, EFL's initial state, DFL without its extra terms) it must equal MMDetection's
``FocalLoss`` call for call, gradients included. Heatmap losses follow ``GaussianFocalLoss``'s,
``pos_inds`` / ``pos_labels`` included, checked against it and against ``CenterNetUpdateHead``.
PF normalises itself, so its reductions are checked on their own terms.
"""
import itertools

import pytest
import torch
from mmdet.models.losses import FocalLoss, GaussianFocalLoss
from mmdet.registry import MODELS

import imbfocal  # noqa: F401  (registers the losses)
from imbfocal.losses import (
    AdaptiveFocalLoss,
    ClassBalancedFocalLoss,
    DualFocalLoss,
    EqualizedFocalLoss,
    GaussianAdaptiveFocalLoss,
    GaussianClassBalancedFocalLoss,
    GaussianParameterFreeLoss,
    ParameterFreeLoss,
    gaussian_parameter_free_loss,
)

from loss_testing import anchor_weights, labelled_batch, value_and_grad

C = 4
EQUAL = [10] * C
LONG_TAIL = [1000, 100, 10, 0]
# EFL statistics giving g = [0.25, 1, 0, 1]: gamma_j up to 10
EFL_STATE = dict(pos_grad=[1.0, 3.0, 0.0, 0.5], neg_grad=[4.0, 1.0, 2.0, 0.5])
pytestmark = pytest.mark.filterwarnings('ignore:.*counted as 1:UserWarning')


def _efl(state=None, train=False, **kwargs):
    efl = EqualizedFocalLoss(num_classes=C, **kwargs).train(train)
    for key, value in (state or {}).items():
        getattr(efl, key).copy_(torch.tensor(value))
    return efl


# name -> a module of that loss in a non-trivial state, in eval mode (AFL's schedule stays put)
DENSE = {
    'ClassBalancedFocalLoss': lambda **kw: ClassBalancedFocalLoss(
        class_counts=LONG_TAIL, beta=0.99, **kw),
    'AdaptiveFocalLoss': lambda **kw: AdaptiveFocalLoss(
        class_counts=LONG_TAIL, beta=0.99, lam0=1.0, **kw).eval(),
    'DualFocalLoss': lambda **kw: DualFocalLoss(gamma=2.0, nu=0.1, beta=0.5, rho=0.5, **kw),
    'EqualizedFocalLoss': lambda **kw: _efl(EFL_STATE, **kw),
    'ParameterFreeLoss': lambda **kw: ParameterFreeLoss(**kw),
    'ParameterFreeLoss-mean': lambda **kw: ParameterFreeLoss(negative='mean', **kw),
}
FOCAL_FAMILY = [name for name in DENSE if not name.startswith('ParameterFreeLoss')]
# name -> (the loss where it reduces to focal loss, the FocalLoss it must equal)
AS_FOCAL = {
    'ClassBalancedFocalLoss': lambda **kw: (ClassBalancedFocalLoss(class_counts=EQUAL, **kw),
                                            FocalLoss(**kw)),
    'AdaptiveFocalLoss': lambda **kw: (AdaptiveFocalLoss(class_counts=EQUAL, lam0=0.0, **kw),
                                       FocalLoss(**kw)),
    # DFL(nu = beta = 0) = (1 - p_t)^gamma l = 2 * FocalLoss(alpha = 0.5), alpha_t being 0.5
    'DualFocalLoss': lambda reduction='mean', loss_weight=1.0: (
        DualFocalLoss(nu=0.0, beta=0.0, reduction=reduction, loss_weight=loss_weight),
        FocalLoss(alpha=0.5, reduction=reduction, loss_weight=2 * loss_weight)),
    'EqualizedFocalLoss': lambda **kw: (_efl(**kw), FocalLoss(**kw)),
}
HEATMAP = {
    'GaussianClassBalancedFocalLoss': lambda **kw: GaussianClassBalancedFocalLoss(
        class_counts=LONG_TAIL, beta=0.99, **kw),
    'GaussianAdaptiveFocalLoss': lambda **kw: GaussianAdaptiveFocalLoss(
        class_counts=LONG_TAIL, beta=0.99, **kw).eval(),
    'GaussianParameterFreeLoss': lambda **kw: GaussianParameterFreeLoss(**kw),
    'GaussianParameterFreeLoss-mean': lambda **kw: GaussianParameterFreeLoss(negative='mean',
                                                                             **kw),
}
HEATMAP_AS_FOCAL = {
    'GaussianClassBalancedFocalLoss': lambda **kw: GaussianClassBalancedFocalLoss(
        class_counts=EQUAL, **kw),
    'GaussianAdaptiveFocalLoss': lambda **kw: GaussianAdaptiveFocalLoss(
        class_counts=EQUAL, lam0=0.0, **kw),
}
# config arguments a user writes; the counts come from ClassCountsHook otherwise
CONFIG_ARGS = {'ClassBalancedFocalLoss': dict(class_counts=EQUAL),
               'AdaptiveFocalLoss': dict(class_counts=EQUAL),
               'GaussianClassBalancedFocalLoss': dict(class_counts=EQUAL),
               'GaussianAdaptiveFocalLoss': dict(class_counts=EQUAL)}


def _batch(n=12, dtype=torch.float32, seed=0):
    return labelled_batch(n, C, 3.0, dtype, seed)


def _heatmap(b=2, h=5, w=5, dtype=torch.float32, seed=0):
    """Probabilities in [0.02, 0.98] and a Gaussian target with a peak in every channel."""
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(b, C, h, w, generator=g, dtype=dtype).clamp(0.02, 0.98)
    target = torch.rand(b, C, h, w, generator=g, dtype=dtype) * 0.9
    target[0, :, 1, 2] = 1
    target[-1, 0, -1, -1] = 1
    return pred, target


@pytest.mark.parametrize('name', list(DENSE) + list(HEATMAP))
def test_registered_and_built_from_a_config(name):
    type_name = name.split('-')[0]
    loss = MODELS.build(dict(type=type_name, loss_weight=0.5, **CONFIG_ARGS.get(name, {})))
    assert type(loss).__name__ == type_name and loss.loss_weight == 0.5
    assert loss.use_sigmoid is True if hasattr(loss, 'use_sigmoid') else True


# --- dense: reduction, weights, avg_factor and loss_weight against FocalLoss ------------------

CASES = [dict(), dict(reduction_override='sum'), dict(reduction_override='none'),
         dict(reduction_override='mean'),
         dict(avg_factor=4.0), dict(avg_factor=4.0, reduction_override='none'),
         dict(avg_factor=torch.tensor(2.5)), dict(weight='anchor'),
         dict(weight='element', avg_factor=2.5), dict(weight='flat'),
         dict(weight='flat', reduction_override='sum'), dict(weight='anchor', avg_factor=0.0)]


@pytest.mark.parametrize('name', AS_FOCAL)
@pytest.mark.parametrize('case', CASES, ids=str)
@pytest.mark.parametrize('reduction,loss_weight', [('mean', 1.0), ('sum', 0.5), ('none', 2.0)])
def test_equals_mmdet_focal_loss_call_for_call(name, case, reduction, loss_weight):
    pred, labels = _batch()
    case = dict(case)
    weight = anchor_weights(case.pop('weight', None), 12, C, torch.float32)
    if reduction == 'sum' and 'avg_factor' in case and 'reduction_override' not in case:
        case['reduction_override'] = 'mean'  # avg_factor with reduction='sum' is an error
    ours, focal = AS_FOCAL[name](reduction=reduction, loss_weight=loss_weight)
    value, grad = value_and_grad(ours, pred, labels, weight=weight, **case)
    ref_value, ref_grad = value_and_grad(focal, pred, labels, weight=weight, **case)
    # avg_factor = 0 divides by float32 eps: values of 1e6, compared relatively
    torch.testing.assert_close(value, ref_value, rtol=2e-5, atol=1e-5)
    torch.testing.assert_close(grad, ref_grad, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize('name', AS_FOCAL)
def test_one_hot_targets_equal_labels_and_focal_loss(name):
    pred, labels = _batch()
    one_hot = torch.nn.functional.one_hot(labels, C + 1)[:, :C].float()
    ours, focal = AS_FOCAL[name](reduction='none')
    torch.testing.assert_close(ours(pred, one_hot), ours(pred, labels))
    torch.testing.assert_close(ours(pred, one_hot), focal(pred, labels))


@pytest.mark.parametrize('use_sigmoid', [True, False])
def test_parameter_free_reductions(use_sigmoid):
    """PF is a mean over classes of per-class terms: 'none' gives the terms, 'sum' C times
    the mean, and the head's avg_factor never rescales it (it raises with 'sum', as
    MMDetection's weight_reduce_loss does)."""
    x, y = _batch(30, torch.float64, seed=11)
    w = (torch.rand(30, generator=torch.Generator().manual_seed(1)) > 0.25).double()
    y = y if use_sigmoid else y.clamp(max=C - 1)
    loss = ParameterFreeLoss(use_sigmoid=use_sigmoid, negative='mean')
    terms = loss(x, y, w, reduction_override='none')
    assert terms.shape == (C, )  # C terms (sigmoid) or M = C columns (softmax)
    mean = loss(x, y, w)
    assert mean.item() == pytest.approx(terms.mean().item(), rel=1e-12)
    assert loss(x, y, w, reduction_override='sum').item() == pytest.approx(
        C * mean.item(), rel=1e-12)
    assert loss(x, y, w, avg_factor=17).item() == mean.item()
    assert loss(x, y, w, avg_factor=torch.tensor(3.0)).item() == mean.item()
    torch.testing.assert_close(loss(x, y, w, avg_factor=5, reduction_override='none'), terms)
    with pytest.raises(ValueError, match='avg_factor'):
        loss(x, y, w, avg_factor=5, reduction_override='sum')
    assert ParameterFreeLoss(use_sigmoid=use_sigmoid, negative='mean', reduction='sum')(
        x, y, w).item() == pytest.approx(C * mean.item(), rel=1e-12)
    assert ParameterFreeLoss(use_sigmoid=use_sigmoid, negative='mean', loss_weight=2.5)(
        x, y, w).item() == pytest.approx(2.5 * mean.item(), rel=1e-12)


@pytest.mark.parametrize('name', DENSE)
@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
def test_loss_weight_applied_last(name, reduction):
    pred, labels = _batch(dtype=torch.float64)
    weight = anchor_weights('anchor', 12, C)
    one = DENSE[name](reduction=reduction)(pred, labels, weight)
    torch.testing.assert_close(DENSE[name](reduction=reduction, loss_weight=2.5)(
        pred, labels, weight), 2.5 * one)


# --- dense: errors ----------------------------------------------------------------------------


@pytest.mark.parametrize('name', DENSE)
def test_contract_errors(name):
    with pytest.raises(ValueError, match='reduction'):
        DENSE[name](reduction='avg')
    loss = DENSE[name]()
    pred, labels = _batch()
    with pytest.raises(ValueError, match='reduction_override'):
        loss(pred, labels, reduction_override='max')
    with pytest.raises(ValueError, match='avg_factor'):
        DENSE[name](reduction='sum')(pred, labels, avg_factor=2.0)
    with pytest.raises(ValueError, match=r'\(N, C\)'):
        loss(torch.zeros(2, C, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match='labels'):
        loss(pred, labels[:5])
    with pytest.raises(ValueError, match='weight'):
        loss(pred, labels, weight=torch.ones(5))


@pytest.mark.parametrize('name', FOCAL_FAMILY)
def test_sigmoid_only(name):
    with pytest.raises(ValueError, match='use_sigmoid'):
        DENSE[name](use_sigmoid=False)
    assert DENSE[name]().use_sigmoid is True


# --- dense: empty, no positives, all ignored, extreme logits ----------------------------------


@pytest.mark.parametrize('name', DENSE)
def test_empty_input(name):
    """0 anchors: 0 with and without avg_factor and with 'sum' (MMDetection's FocalLoss gives
    0 with avg_factor, NaN for the mean of nothing)."""
    loss = DENSE[name]()
    empty = torch.zeros(0, C, requires_grad=True)
    no_labels = torch.zeros(0, dtype=torch.long)
    assert FocalLoss()(empty, no_labels, avg_factor=0).item() == 0
    for kwargs in (dict(avg_factor=0), dict(), dict(reduction_override='sum')):
        value = loss(empty, no_labels, **kwargs)
        value.backward()
        assert value.item() == 0 and value.dtype == torch.float32
    assert empty.grad.shape == (0, C)


@pytest.mark.parametrize('name', DENSE)
def test_no_positives(name):
    pred = _batch()[0].requires_grad_()
    loss = DENSE[name]()(pred, torch.full((12, ), C), avg_factor=1)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0 and torch.isfinite(pred.grad).all()


@pytest.mark.parametrize('name', DENSE)
def test_all_ignored(name):
    """Weight 0 everywhere and avg_factor 0 (no positives): loss 0, zero gradient."""
    pred, labels = _batch()
    pred.requires_grad_()
    loss = DENSE[name]()(pred, labels, torch.zeros(12), avg_factor=0.0)
    loss.backward()
    assert loss.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))


@pytest.mark.parametrize('name', DENSE)
@pytest.mark.parametrize('pattern', ['linspace', 'saturated'])
def test_extreme_logits_finite(name, pattern):
    if pattern == 'linspace':
        x = torch.linspace(-100, 100, 201).view(-1, 1).repeat(1, C)
        labels = torch.arange(201) % (C + 1)
    else:
        x = torch.tensor([[-100., 100., 0., 50.], [100., -100., -50., 0.]]).repeat(3, 1)
        labels = torch.tensor([0, 1, 4, 2, 3, 4])
    x.requires_grad_()
    module = DENSE[name]().train(name == 'EqualizedFocalLoss')  # EFL's statistics too
    loss = module(x, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(b).all() for b in module.buffers() if b.is_floating_point())


# --- dense: autocast and gradcheck ------------------------------------------------------------


@pytest.mark.parametrize('name', DENSE)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast(name, dtype):
    """Half logits from a layer under autocast: a float32 loss equal to that of the same
    logits in float32, finite gradients in the logits' dtype, saturated logits included."""
    loss = DENSE[name]()
    layer = torch.nn.Linear(5, C)
    features = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(12) % (C + 1)
    with torch.autocast('cpu', dtype=dtype):
        pred = layer(features)
        value = loss(pred, labels, avg_factor=3)
    assert pred.dtype == dtype and value.dtype == torch.float32
    torch.testing.assert_close(value, loss(pred.float(), labels, avg_factor=3))
    value.backward()
    assert torch.isfinite(layer.weight.grad).all()
    half = _batch(6)[0].to(dtype)
    half[0] = torch.tensor([-100., 100., 60., -60.], dtype=dtype)
    half.requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        value = loss(half, labels[:6], avg_factor=3)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert half.grad.dtype == dtype and torch.isfinite(half.grad).all()


@pytest.mark.parametrize('name', DENSE)
@pytest.mark.parametrize('target_kind', ['labels', 'soft'])
def test_gradcheck_float64(name, target_kind):
    pred, labels = _batch(5, torch.float64)
    gen = torch.Generator().manual_seed(3)
    target = labels if target_kind == 'labels' else torch.rand(5, C, dtype=torch.float64,
                                                                generator=gen)
    weight = torch.rand(5, dtype=torch.float64, generator=gen)
    loss = DENSE[name]()
    assert torch.autograd.gradcheck(lambda x: loss(x, target, weight, avg_factor=3.0),
                                    pred.requires_grad_())


# --- heatmaps: GaussianFocalLoss's contract ---------------------------------------------------


@pytest.mark.parametrize('name', HEATMAP_AS_FOCAL)
@pytest.mark.parametrize('reduction,avg_factor', itertools.product(['mean', 'sum', 'none'],
                                                                   [None, 3.0]))
def test_heatmap_equals_gaussian_focal_loss(name, reduction, avg_factor):
    if reduction == 'sum' and avg_factor is not None:
        avg_factor = None
    pred, target = _heatmap()
    kwargs = dict(reduction=reduction, loss_weight=0.5, pos_weight=0.25, neg_weight=0.75)
    ours = HEATMAP_AS_FOCAL[name](**kwargs)
    ref = GaussianFocalLoss(**kwargs)
    value, grad = value_and_grad(ours, pred, target, avg_factor=avg_factor)
    ref_value, ref_grad = value_and_grad(ref, pred, target, avg_factor=avg_factor)
    torch.testing.assert_close(value, ref_value)
    torch.testing.assert_close(grad, ref_grad)


def _pos_inds_inputs(seed=0):
    """``CenterNetUpdateHead``'s form: ``(N, C)`` rows, positives by row and class."""
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(40, C, generator=g).clamp(1e-4, 1 - 1e-4)
    target = torch.rand(40, C, generator=g) * 0.9
    pos_inds = torch.tensor([0, 7, 19, 33])
    pos_labels = torch.tensor([0, 2, 3, 2])
    target[pos_inds, pos_labels] = 1
    return pred, target, pos_inds, pos_labels


@pytest.mark.parametrize('name', HEATMAP_AS_FOCAL)
def test_heatmap_pos_inds_form_equals_gaussian_focal_loss(name):
    pred, target, pos_inds, pos_labels = _pos_inds_inputs()
    kwargs = dict(pos_weight=0.25, neg_weight=0.75)
    ours = HEATMAP_AS_FOCAL[name](**kwargs)(pred, target, pos_inds=pos_inds,
                                            pos_labels=pos_labels, avg_factor=4.0)
    ref = GaussianFocalLoss(**kwargs)(pred, target, pos_inds=pos_inds, pos_labels=pos_labels,
                                      avg_factor=4.0)
    torch.testing.assert_close(ours, ref)


def test_parameter_free_heatmap_pos_inds_form_equals_its_peaks():
    """With the peaks given by ``pos_inds`` / ``pos_labels`` PF equals PF reading the same
    peaks from the target (the rows are pixels of a (1, C, 40, 1) heatmap)."""
    pred, target, pos_inds, pos_labels = _pos_inds_inputs()
    for loss in (GaussianParameterFreeLoss(), GaussianParameterFreeLoss(negative='mean')):
        dense = loss(pred.t().reshape(1, C, 40, 1), target.t().reshape(1, C, 40, 1))
        rows = loss(pred, target, pos_inds=pos_inds, pos_labels=pos_labels)
        torch.testing.assert_close(rows, dense)


@pytest.mark.parametrize('name', HEATMAP)
def test_centernet_update_head_takes_the_loss(name):
    """``CenterNetUpdateHead`` passes ``pos_inds`` / ``pos_labels`` by keyword."""
    from mmdet.models.dense_heads import CenterNetUpdateHead
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    loss_cls = dict(type=name.split('-')[0], loss_weight=1.0, **CONFIG_ARGS.get(name, {}))
    if name.endswith('-mean'):
        loss_cls['negative'] = 'mean'
    head = CenterNetUpdateHead(num_classes=C, in_channels=32, feat_channels=32, stacked_convs=1,
                               strides=[8], regress_ranges=((0, 1e8), ),
                               loss_cls=loss_cls)
    feats = (torch.randn(2, 32, 8, 8, generator=torch.Generator().manual_seed(0)), )
    samples = []
    for boxes, labels in (([[4., 4., 30., 28.], [40., 8., 60., 50.]], [0, 2]),
                          ([[10., 12., 50., 40.]], [3])):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes),
                                           labels=torch.tensor(labels))
        samples.append(sample)
    losses = head.loss(feats, samples)
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    losses['loss_cls'].backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


def test_parameter_free_heatmap_reductions():
    pred, target = _heatmap(seed=4)
    loss = GaussianParameterFreeLoss(negative='mean', loss_weight=2.0)
    terms = loss(pred, target, reduction_override='none')
    assert terms.shape == (C, )
    base = GaussianParameterFreeLoss(negative='mean')(pred, target)
    torch.testing.assert_close(terms.mean(), 2 * base)
    assert loss(pred, target, avg_factor=6).item() == pytest.approx(2 * base.item(), rel=1e-6)
    torch.testing.assert_close(loss(pred, target, reduction_override='sum'), terms.sum())
    with pytest.raises(ValueError, match='avg_factor'):
        loss(pred, target, avg_factor=6, reduction_override='sum')
    with pytest.raises(ValueError, match='use_sigmoid'):
        GaussianParameterFreeLoss(use_sigmoid=False)


@pytest.mark.parametrize('name', HEATMAP)
def test_heatmap_contract_errors(name):
    with pytest.raises(ValueError, match='reduction'):
        HEATMAP[name](reduction='avg')
    loss = HEATMAP[name]()
    pred, target = _heatmap()
    with pytest.raises(ValueError, match='same shape'):
        loss(torch.rand(1, C, 2, 2), torch.rand(1, C, 2, 3))
    with pytest.raises(ValueError, match='reduction_override'):
        loss(pred, target, reduction_override='max')
    rows, row_target, pos_inds, pos_labels = _pos_inds_inputs()
    with pytest.raises(ValueError, match='pos_labels'):
        loss(rows, row_target, pos_inds=pos_inds)
    with pytest.raises(ValueError, match='weight'):
        loss(rows, row_target, pos_inds=pos_inds, pos_labels=pos_labels,
             weight=torch.ones_like(rows))


# (which argument, the indices, the message): the rows are 0..39 and the classes 0..3
BAD_POSITIONS = [
    ('pos_labels', [0, 2, 3, -1], r'pos_labels must lie in \[0, 3\] \(the predictions have 4 '
     r'classes\), got values in \[-1, 3\]'),
    ('pos_labels', [0, 2, 4, 2], r'pos_labels must lie in \[0, 3\].*got values in \[0, 4\]'),
    ('pos_inds', [0, 7, 19, -1], r'pos_inds must lie in \[0, 39\] \(the predictions have 40 '
     r'rows\), got values in \[-1, 19\]'),
    ('pos_inds', [0, 7, 19, 40], r'pos_inds must lie in \[0, 39\].*\[0, 40\]'),
    ('pos_labels', [0.0, 2.0, 3.0, 2.0], 'pos_labels must be a 1-d int64'),
    ('pos_inds', [[0, 7, 19, 33]], r'pos_inds must be a 1-d int64 .* shape \(1, 4\)'),
    ('pos_labels', [0, 2, 3], '4 pos_inds but 3 pos_labels'),
]


@pytest.mark.parametrize('name', HEATMAP)
@pytest.mark.parametrize('which, indices, match', BAD_POSITIONS)
def test_heatmap_positions_outside_the_predictions_raise(name, which, indices, match):
    """pos_labels = -1 used to score the last class (pred[i].gather / index with -1) and
    pos_inds = -1 the last row: refused as the dense losses refuse labels."""
    rows, row_target, pos_inds, pos_labels = _pos_inds_inputs()
    given = dict(pos_inds=pos_inds, pos_labels=pos_labels)
    given[which] = torch.tensor(indices)
    with pytest.raises(ValueError, match=match):
        HEATMAP[name]()(rows, row_target, **given)


def test_heatmap_positions_checks_reach_the_functional_form_and_need_both():
    rows, row_target, pos_inds, _ = _pos_inds_inputs()
    with pytest.raises(ValueError, match=r'pos_labels must lie in \[0, 3\]'):
        gaussian_parameter_free_loss(rows, row_target, pos_inds=pos_inds,
                                     pos_labels=torch.tensor([0, 1, 2, -1]))
    with pytest.raises(ValueError, match='pos_inds and pos_labels go together'):
        GaussianParameterFreeLoss()(rows, row_target, pos_labels=torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r'rows of predictions of shape \(N, C\)'):
        GaussianParameterFreeLoss()(*_heatmap(), pos_inds=torch.tensor([0]),
                                    pos_labels=torch.tensor([0]))
    empty = torch.zeros(0, dtype=torch.long)  # no positives in the batch: fine
    assert torch.isfinite(GaussianParameterFreeLoss()(rows, row_target, pos_inds=empty,
                                                      pos_labels=empty))


@pytest.mark.parametrize('name', HEATMAP)
def test_heatmap_no_peaks_and_empty(name):
    loss = HEATMAP[name]()
    pred, target = _heatmap()
    pred.requires_grad_()
    value = loss(pred, target.clamp(max=0.9), avg_factor=1)  # no peak anywhere
    value.backward()
    assert torch.isfinite(value) and value > 0 and torch.isfinite(pred.grad).all()
    empty = torch.zeros(0, C, 4, 4, requires_grad=True)
    value = loss(empty, torch.zeros(0, C, 4, 4), avg_factor=0)
    value.backward()
    assert value.item() == 0 and empty.grad.shape == empty.shape


@pytest.mark.parametrize('name', HEATMAP)
def test_heatmap_all_ignored(name):
    pred, target = _heatmap()
    pred.requires_grad_()
    value = HEATMAP[name]()(pred, target, weight=torch.zeros_like(pred), avg_factor=0)
    value.backward()
    assert value.item() == 0 and torch.equal(pred.grad, torch.zeros_like(pred))


@pytest.mark.parametrize('name', HEATMAP)
def test_heatmap_saturated_probabilities_finite(name):
    logits = torch.tensor([-100., 100.]).repeat(C * 8)[:C * 16].view(1, C, 4, 4)
    logits.requires_grad_()
    _, target = _heatmap(b=1, h=4, w=4)
    value = HEATMAP[name]()(logits.sigmoid(), target, avg_factor=2)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize('name', HEATMAP)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_heatmap_autocast(name, dtype):
    """The head's sigmoid under autocast gives half probabilities: float32 loss equal to that
    of the same probabilities in float32, finite gradients in their dtype."""
    loss = HEATMAP[name]()
    logits, target = _heatmap(dtype=dtype)
    logits = (logits.float().logit()).to(dtype).requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        prob = logits.sigmoid()
        value = loss(prob, target, avg_factor=3)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    torch.testing.assert_close(value, loss(prob.detach().float(), target.float(), avg_factor=3),
                               rtol=1e-5, atol=1e-6)
    value.backward()
    assert logits.grad.dtype == dtype and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize('name', HEATMAP)
def test_heatmap_gradcheck_float64(name):
    pred, target = _heatmap(b=1, h=3, w=3, dtype=torch.float64)
    pred = pred.clamp(0.05, 0.95)
    pred = torch.where((pred - 0.5).abs() < 0.05, pred + 0.1, pred).requires_grad_()
    loss = HEATMAP[name]()
    assert torch.autograd.gradcheck(lambda p: loss(p, target, avg_factor=2.0), pred)

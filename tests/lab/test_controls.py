"""The fair fight's mechanism controls (``lab.controls``) and gradient logging
(``lab.mechanism``): each control is focal loss changed in exactly the one way it names."""
import math

import pytest
import torch
from mmdet.models.losses import FocalLoss
from mmdet.registry import MODELS

from imbfocal.losses import AdaptiveFocalLoss
from lab.controls import DampedFocalLoss, PolyFocalLoss, PositiveRampFocalLoss
from lab.mechanism import group_gradient_norms

from loss_testing import labelled_batch, value_and_grad

N, C = 40, 6


def _batch():
    pred, labels = labelled_batch(N, C, dtype=torch.float64)
    return pred, labels


def _focal(pred, labels, **kwargs):
    return FocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.25)(pred, labels, **kwargs)


def _positive_mask(labels):
    mask = torch.zeros(N, C, dtype=torch.bool)
    fg = labels < C
    mask[fg.nonzero(as_tuple=True)[0], labels[fg]] = True
    return mask


@pytest.mark.parametrize('name', ['DampedFocalLoss', 'PositiveRampFocalLoss', 'PolyFocalLoss'])
def test_registered_and_take_focal_losss_config_keys(name):
    # a focal config's loss_cls with only the type changed builds
    loss = MODELS.build(dict(type=name, use_sigmoid=True, gamma=2.0, alpha=0.25,
                             loss_weight=1.0))
    assert loss.use_sigmoid
    with pytest.raises(ValueError, match='use_sigmoid'):
        MODELS.build(dict(type=name, use_sigmoid=False))


@pytest.mark.parametrize('name', ['DampedFocalLoss', 'PositiveRampFocalLoss', 'PolyFocalLoss'])
def test_anchor_weights_as_a_head_passes_them(name):
    """RetinaNet's head passes one weight per anchor, ``(N,)``; with lam0 = 0 (and eps = 0)
    every control is focal loss, weights included."""
    pred, labels = _batch()
    weight = torch.rand(N, dtype=torch.float64)
    params = dict(eps=0.0) if name == 'PolyFocalLoss' else dict(lam0=0.0, agf_iters=10)
    loss = MODELS.build(dict(type=name, **params)).train()
    torch.testing.assert_close(loss(pred, labels, weight, avg_factor=5.0),
                               _focal(pred, labels, weight=weight, avg_factor=5.0))


def test_damping_on_all_elements_is_afl_without_class_weights():
    pred, labels = _batch()
    afl = AdaptiveFocalLoss(beta=0.0, lam0=4.0, agf_iters=10, class_counts=[5] * C).train()
    control = DampedFocalLoss(lam0=4.0, agf_iters=10).train()
    for _ in range(3):  # both step through the same schedule
        a, ga = value_and_grad(afl, pred, labels, avg_factor=7.0)
        b, gb = value_and_grad(control, pred, labels, avg_factor=7.0)
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(ga, gb)


@pytest.mark.parametrize('scope', ['positives', 'negatives'])
def test_scoped_damping_changes_only_its_elements(scope):
    """d/dx A(L) = L'(x) / (1 + lam L): the scoped elements' gradient is focal loss's divided by
    ``1 + 4 L`` (lam_s = lam0 = 4 at the first step), the others' is focal loss's."""
    pred, labels = _batch()
    _, g_focal = value_and_grad(lambda x, y: _focal(x, y, reduction_override='none'), pred,
                                labels)
    elementwise = _focal(pred, labels, reduction_override='none')
    _, g = value_and_grad(DampedFocalLoss(lam0=4.0, agf_iters=10, scope=scope,
                                          reduction='none').train(), pred, labels)
    on = _positive_mask(labels)
    on = on if scope == 'positives' else ~on
    torch.testing.assert_close(g[on], g_focal[on] / (1 + 4 * elementwise[on]))
    torch.testing.assert_close(g[~on], g_focal[~on])


def test_damping_without_fade_holds_lam0():
    """Past the horizon (agf_iters = 2) the faded damping is the identity, the held one not."""
    pred, labels = _batch()
    faded = DampedFocalLoss(lam0=4.0, agf_iters=2).train()
    held = DampedFocalLoss(lam0=4.0, agf_iters=2, fade=False).train()
    for _ in range(3):
        faded_loss = faded(pred, labels)
        held_loss = held(pred, labels)
    torch.testing.assert_close(faded_loss, _focal(pred, labels))
    elementwise = _focal(pred, labels, reduction_override='none')
    torch.testing.assert_close(held_loss, (torch.log1p(4 * elementwise) / 4).mean())


def test_positive_ramp_scales_every_positive_by_the_mean_damping_factor():
    pred, labels = _batch()
    elementwise = _focal(pred, labels, reduction_override='none')
    pos = _positive_mask(labels)
    r_s = (1 / (1 + 4 * elementwise[pos])).mean()  # lam_s = 4 at the first step
    _, g_focal = value_and_grad(lambda x, y: _focal(x, y, reduction_override='none'), pred,
                                labels)
    loss, g = value_and_grad(PositiveRampFocalLoss(lam0=4.0, agf_iters=10,
                                                   reduction='none').train(), pred, labels)
    assert 0 < float(r_s) < 1
    torch.testing.assert_close(loss[pos], r_s * elementwise[pos])
    torch.testing.assert_close(g[pos], r_s * g_focal[pos])  # r_s is not differentiated
    torch.testing.assert_close(g[~pos], g_focal[~pos])


def test_poly_one_at_a_hand_computed_point():
    """x = 0 on a positive: p_t = 0.5, focal 0.25 * 0.5^2 * log 2 = 0.0433217, the Poly-1 term
    -1 * 0.25 * 0.5^3 = -0.03125; on a negative of the same row: 0.75 * 0.5^2 * log 2 =
    0.1299651 and -0.75 * 0.125 = -0.09375."""
    pred = torch.zeros(1, 2, dtype=torch.float64)
    loss = PolyFocalLoss(eps=-1.0, reduction='none')(pred, torch.tensor([0]))
    expected = torch.tensor([[0.25 * 0.25 * math.log(2) - 0.25 * 0.125,
                              0.75 * 0.25 * math.log(2) - 0.75 * 0.125]], dtype=torch.float64)
    torch.testing.assert_close(loss, expected)


def test_poly_one_at_minus_one_stays_non_negative_and_eps_zero_is_focal():
    pred = torch.linspace(-30, 30, 601, dtype=torch.float64).reshape(-1, 1).repeat(1, 2)
    labels = torch.tensor([0, 2]).repeat(301)[:601]
    # (1 - p_t)^2 (-log p_t) >= (1 - p_t)^3; float64 cancellation near p_t = 1 leaves 1e-30
    assert PolyFocalLoss(eps=-1.0, reduction='none')(pred, labels).min() >= -1e-20
    torch.testing.assert_close(PolyFocalLoss(eps=0.0)(pred, labels), _focal(pred, labels))
    with pytest.raises(ValueError, match='eps'):
        PolyFocalLoss(eps=-1.5)


@pytest.mark.parametrize('name', ['DampedFocalLoss', 'PositiveRampFocalLoss', 'PolyFocalLoss'])
def test_gradcheck_and_empty(name):
    # eval mode: the schedule stays at lam0 over gradcheck's repeated calls
    loss = MODELS.build(dict(type=name, agf_iters=10) if name != 'PolyFocalLoss'
                        else dict(type=name)).eval()
    pred, labels = labelled_batch(8, 3, dtype=torch.float64)
    if name != 'PositiveRampFocalLoss':  # whose r_s is held constant on purpose
        assert torch.autograd.gradcheck(lambda x: loss(x, labels, avg_factor=3.0),
                                        pred.requires_grad_())
    empty = torch.zeros(0, 3, requires_grad=True)
    out = loss(empty, torch.zeros(0, dtype=torch.long))
    out.backward()
    assert out.item() == 0


def test_group_gradient_norms_arithmetic():
    """Two classes: 0 rare, 1 frequent. Rows: a positive of class 0, a positive of class 1,
    a background anchor, and an anchor of weight 0 (left out)."""
    grad = torch.tensor([[3., 1.], [2., 4.], [5., 12.], [100., 100.]])
    labels = torch.tensor([0, 1, 2, 0])
    weight = torch.tensor([1., 1., 1., 0.])
    out = group_gradient_norms(grad, labels, weight, torch.tensor([0, 2]))
    assert out['pos_r'] == 3 and out['npos_r'] == 1
    assert out['neg_r'] == pytest.approx(math.sqrt(2**2 + 5**2))
    assert out['pos_f'] == 4 and out['neg_f'] == pytest.approx(math.sqrt(1 + 12**2))
    assert out['pos_c'] == 0 and out['neg_c'] == 0 and out['npos_c'] == 0

"""Tests of ``DualFocalLoss`` (project reconstruction of Hossain et al., see its docstring)."""
from math import log

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import FocalLoss
from mmdet.registry import MODELS

import imbfocal  # noqa: F401  (registers the losses)
from imbfocal.losses.dual_focal_loss import DualFocalLoss
from loss_testing import dual_focal_loss, labelled_batch, value_and_grad

C = 3


def _batch(n=8, c=C, scale=3.0, dtype=torch.float32, seed=0):
    return labelled_batch(n, c, scale, dtype, seed)


def test_registered():
    loss = MODELS.build(dict(type='DualFocalLoss', gamma=2.0, nu=0.1, beta=1.0, rho=1.0))
    assert isinstance(loss, DualFocalLoss)


def test_nu_beta_zero_is_focal_loss_without_alpha():
    # DFL(nu=0, beta=0) = (1 - p_t)^gamma * l. MMDetection's FocalLoss always multiplies by
    # alpha_t; with alpha = 0.5, alpha_t = 0.5 for every element, so DFL = 2 * FocalLoss.
    pred, labels = _batch()
    dfl = DualFocalLoss(gamma=2.0, nu=0.0, beta=0.0, reduction='none')
    focal = FocalLoss(gamma=2.0, alpha=0.5, reduction='none')
    value, grad = value_and_grad(dfl, pred, labels)
    ref_value, ref_grad = value_and_grad(focal, pred, labels)
    torch.testing.assert_close(value, 2 * ref_value)
    torch.testing.assert_close(grad, 2 * ref_grad)


def test_gamma_nu_beta_zero_is_bce():
    pred, labels = _batch(dtype=torch.float64)
    target = F.one_hot(labels, C + 1)[:, :C].double()
    dfl = DualFocalLoss(gamma=0.0, nu=0.0, beta=0.0, reduction='none')
    value, grad = value_and_grad(dfl, pred, labels)
    ref_value, ref_grad = value_and_grad(F.binary_cross_entropy_with_logits, pred, target,
                                          reduction='none')
    torch.testing.assert_close(value, ref_value)
    torch.testing.assert_close(grad, ref_grad)


def test_hand_computed_2x3():
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
    pred = torch.tensor([[log(3), 0.0, -log(3)], [-log(3), log(3), 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 3])  # row 0: class 0; row 1: background (C = 3)
    # Each element: [(1 - p_t)^2 + 0.1] * l + 1 * (1 - t) * ln(1 + p / 1).
    expected = torch.tensor([
        # t=1, p=3/4: p_t = 3/4, l = -ln(3/4); no regulariser
        [(0.25**2 + 0.1) * -log(0.75),
         # t=0, p=1/2: p_t = 1/2, l = -ln(1/2); regulariser ln(3/2)
         (0.5**2 + 0.1) * -log(0.5) + log(1.5),
         # t=0, p=1/4: p_t = 3/4, l = -ln(3/4); regulariser ln(5/4)
         (0.25**2 + 0.1) * -log(0.75) + log(1.25)],
        # t=0, p=1/4 (as above)
        [(0.25**2 + 0.1) * -log(0.75) + log(1.25),
         # t=0, p=3/4: p_t = 1/4, l = -ln(1/4); regulariser ln(7/4)
         (0.75**2 + 0.1) * -log(0.25) + log(1.75),
         # t=0, p=1/2 (as above)
         (0.5**2 + 0.1) * -log(0.5) + log(1.5)],
    ], dtype=torch.float64)
    # = [[0.046748, 0.648067, 0.269892], [0.269892, 1.478036, 0.648067]]
    loss = DualFocalLoss(reduction='none')
    torch.testing.assert_close(loss(pred, labels), expected)
    # mean = sum / 6 = 3.360702 / 6
    torch.testing.assert_close(DualFocalLoss()(pred, labels), expected.mean())


def test_regulariser_gradient_does_not_vanish_for_confident_false_class():
    # d/dp [beta * ln(1 + p / rho)] = beta / (rho + p) >= beta / (rho + 1) = 1/2 for p -> 1.
    # Read d/dp off the logit gradient: dL/dx = dL/dp * p (1 - p).
    x = torch.tensor([[2.0, 6.0, 12.0]], dtype=torch.float64)
    background = torch.tensor([1])  # C = 1: every element is a false class (t = 0)

    def regulariser(x, t):  # gamma = nu = 0 leaves l + regulariser
        return dual_focal_loss(x, t, gamma=0.0, nu=0.0) - F.binary_cross_entropy_with_logits(
            x, t, reduction='none')

    _, grad_x = value_and_grad(regulariser, x.t(), torch.zeros(3, 1, dtype=torch.float64))
    p = x.t().sigmoid()
    torch.testing.assert_close(grad_x / (p * (1 - p)), 1 / (1 + p))
    assert (grad_x / (p * (1 - p)) > 0.5).all()
    # The whole DFL gradient on a confident false class (p -> 1) tends to 1 + nu, not to 0:
    # with l = softplus(x), d/dx [(p^2 + nu) l] = 2 p^2 (1 - p) l + (p^2 + nu) p -> 1 + nu.
    dfl = DualFocalLoss(reduction='none')
    _, grad = value_and_grad(dfl, torch.tensor([[12.0]], dtype=torch.float64), background)
    torch.testing.assert_close(grad, torch.tensor([[1.1]], dtype=torch.float64), atol=1e-3,
                               rtol=0)


def test_easy_false_class_keeps_a_gradient_focal_loss_loses():
    # An easy false class, x = -8, p = sigmoid(-8) = 3.35e-4. Focal (gamma = 2) gradient:
    # 2 p^2 (1 - p) l + p^2 * p with l = softplus(x) ~ p, so ~ 3 p^3 = 1.1e-10. DFL adds
    # nu * p (from nu * l) and p (1 - p) / (1 + p) (regulariser): ~ 1.1 p = 3.7e-4, over six
    # orders of magnitude more feedback.
    x = torch.tensor([[-8.0]], dtype=torch.float64)
    background = torch.tensor([1])
    _, focal_grad = value_and_grad(DualFocalLoss(nu=0.0, beta=0.0), x, background)
    _, dfl_grad = value_and_grad(DualFocalLoss(), x, background)
    p = torch.sigmoid(x)
    assert focal_grad.item() < 2e-10
    torch.testing.assert_close(dfl_grad, 0.1 * p + p * (1 - p) / (1 + p), rtol=1e-3, atol=0)


@pytest.mark.parametrize('target_kind', ['labels', 'soft'])
def test_gradcheck_float64(target_kind):
    pred, labels = _batch(n=5, dtype=torch.float64)
    target = labels if target_kind == 'labels' else torch.rand(5, C, dtype=torch.float64)
    weight = torch.rand(5, dtype=torch.float64)
    loss = DualFocalLoss(gamma=2.0, nu=0.1, beta=0.5, rho=0.5)
    assert torch.autograd.gradcheck(lambda x: loss(x, target, weight=weight, avg_factor=3.0),
                                    pred.requires_grad_())


def test_finite_for_extreme_logits():
    x = torch.linspace(-100, 100, 201).view(-1, 1).repeat(1, C).requires_grad_()
    labels = torch.arange(201) % (C + 1)
    loss = DualFocalLoss()(x, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_empty_input():
    pred = torch.zeros(0, C, requires_grad=True)
    labels = torch.zeros(0, dtype=torch.long)
    for kwargs in ({}, {'avg_factor': 0.0}):
        loss = DualFocalLoss()(pred, labels, **kwargs)
        assert loss.item() == 0
        loss.backward()
    assert pred.grad.shape == (0, C)


def test_no_positives_and_all_ignored():
    pred, _ = _batch()
    background = torch.full((8, ), C)
    loss = DualFocalLoss()(pred, background)
    assert torch.isfinite(loss) and loss > 0
    # all ignored: weight 0 everywhere, avg_factor 0 (no positives) -> 0 and zero gradients
    pred.requires_grad_()
    loss = DualFocalLoss()(pred, background, weight=torch.zeros(8), avg_factor=0.0)
    loss.backward()
    assert loss.item() == 0 and not pred.grad.any()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast_cpu(dtype):
    features = torch.randn(8, 4)
    layer = torch.nn.Linear(4, C)
    labels = torch.arange(8) % (C + 1)
    with torch.autocast('cpu', dtype=dtype):
        pred = layer(features)
        loss = DualFocalLoss()(pred, labels)
    assert pred.dtype == dtype and loss.dtype == torch.float32
    torch.testing.assert_close(loss, DualFocalLoss()(pred.float(), labels))
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()


REDUCTION_CASES = [
    dict(),
    dict(reduction_override='sum'),
    dict(reduction_override='none'),
    dict(avg_factor=4.0),
    dict(avg_factor=4.0, reduction_override='none'),
    dict(weight='anchor'),
    dict(weight='element', avg_factor=2.5),
    dict(weight='flat', reduction_override='sum'),
]


@pytest.mark.parametrize('case', REDUCTION_CASES, ids=str)
@pytest.mark.parametrize('reduction,loss_weight', [('mean', 1.0), ('sum', 0.5)])
def test_reduction_matches_mmdet_focal_loss(case, reduction, loss_weight):
    # With nu = beta = 0 and alpha = 0.5, DFL = 2 * FocalLoss element-wise (see above), so the
    # weighting and reduction machinery must match MMDetection's FocalLoss call for call.
    pred, labels = _batch()
    case = dict(case)
    weight = {None: None, 'anchor': torch.rand(8), 'element': torch.rand(8, C),
              'flat': torch.rand(8 * C)}[case.pop('weight', None)]
    if reduction == 'sum' and 'avg_factor' in case and case.get('reduction_override') is None:
        case['reduction_override'] = 'mean'  # avg_factor with reduction='sum' is an error
    dfl = DualFocalLoss(nu=0.0, beta=0.0, reduction=reduction, loss_weight=loss_weight)
    focal = FocalLoss(alpha=0.5, reduction=reduction, loss_weight=2 * loss_weight)
    torch.testing.assert_close(dfl(pred, labels, weight=weight, **case),
                               focal(pred, labels, weight=weight, **case))


def test_soft_and_one_hot_targets():
    pred, labels = _batch()
    one_hot = F.one_hot(labels, C + 1)[:, :C].float()
    loss = DualFocalLoss(reduction='none')
    torch.testing.assert_close(loss(pred, one_hot), loss(pred, labels))


def test_errors():
    with pytest.raises(ValueError, match='use_sigmoid'):
        DualFocalLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match='gamma'):
        DualFocalLoss(gamma=0.5)
    with pytest.raises(ValueError, match='rho'):
        DualFocalLoss(rho=0.0)
    pred, labels = _batch()
    with pytest.raises(ValueError):
        DualFocalLoss()(pred, labels, reduction_override='max')
    with pytest.raises(ValueError):
        DualFocalLoss(reduction='sum')(pred, labels, avg_factor=2.0)
    with pytest.raises(ValueError):
        DualFocalLoss()(pred, labels[:5])

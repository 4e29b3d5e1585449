"""``DualFocalLoss`` (this project's reconstruction of Hossain et al.): hand-computed values and
the properties of its terms (MMDetection's contract: test_contract.py)."""
from math import log

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import FocalLoss

import imbfocal  # noqa: F401  (registers the losses)
from imbfocal.losses.dual_focal_loss import DualFocalLoss

from loss_testing import dual_focal_loss, labelled_batch, value_and_grad

C = 3


def _batch(n=8, c=C, scale=3.0, dtype=torch.float32, seed=0):
    return labelled_batch(n, c, scale, dtype, seed)


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
    loss = DualFocalLoss(nu=0.1, beta=1.0, reduction='none')
    torch.testing.assert_close(loss(pred, labels), expected)
    # mean = sum / 6 = 3.360702 / 6
    torch.testing.assert_close(DualFocalLoss(nu=0.1, beta=1.0)(pred, labels), expected.mean())


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
    dfl = DualFocalLoss(nu=0.1, beta=1.0, reduction='none')
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
    _, dfl_grad = value_and_grad(DualFocalLoss(nu=0.1, beta=1.0), x, background)
    p = torch.sigmoid(x)
    assert focal_grad.item() < 2e-10
    torch.testing.assert_close(dfl_grad, 0.1 * p + p * (1 - p) / (1 + p), rtol=1e-3, atol=0)


def test_parameter_errors():
    with pytest.raises(ValueError, match='gamma'):
        DualFocalLoss(gamma=0.5)
    with pytest.raises(ValueError, match='rho'):
        DualFocalLoss(rho=0.0)

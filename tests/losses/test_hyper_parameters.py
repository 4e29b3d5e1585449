"""Every hyper-parameter of every loss is checked when the loss is built, NaN and inf included.

One helper per kind of parameter (``imbfocal.losses.contract``): each test below names the
parameter, a value that passed before the check (NaN fails every comparison, so ``nan < 0`` is
False; inf passes ``>= 0``; ``ParameterFreeLoss`` had no gamma check at all) and the message
that now names it.
"""
import math

import numpy as np
import pytest
import torch

from imbfocal.losses import (
    AdaptiveFocalLoss,
    ClassBalancedFocalLoss,
    DualFocalLoss,
    EqualizedFocalLoss,
    GaussianAdaptiveFocalLoss,
    GaussianClassBalancedFocalLoss,
    GaussianParameterFreeLoss,
    ParameterFreeLoss,
    class_balanced_weights,
    gaussian_parameter_free_loss,
    parameter_free_loss,
)
from imbfocal.losses.contract import (
    check_alpha,
    check_count,
    check_finite,
    check_fraction,
    check_gamma,
    check_non_negative,
    check_positive,
    check_probability,
)

NAN, INF = math.nan, math.inf
COUNTS = dict(class_counts=[3, 1])
# (loss, the arguments it needs, parameter, values it must refuse)
GAMMA = [NAN, INF, -1.0, 0.5]
ALPHA = [NAN, INF, -INF, 1.5]
BETA = [NAN, INF, -0.1, 1.0]
NON_NEGATIVE = [NAN, INF, -1.0]
POSITIVE = [NAN, INF, 0.0, -1.0]
CASES = [
    (ClassBalancedFocalLoss, COUNTS, 'gamma', GAMMA),
    (ClassBalancedFocalLoss, COUNTS, 'alpha', ALPHA),
    (ClassBalancedFocalLoss, COUNTS, 'beta', BETA),
    (ClassBalancedFocalLoss, COUNTS, 'max_weight', POSITIVE),
    (ClassBalancedFocalLoss, dict(COUNTS, weighting='row'), 'bg_weight', NON_NEGATIVE),
    (ClassBalancedFocalLoss, COUNTS, 'loss_weight', NON_NEGATIVE),
    (AdaptiveFocalLoss, COUNTS, 'gamma', GAMMA),
    (AdaptiveFocalLoss, COUNTS, 'lam0', NON_NEGATIVE),
    (AdaptiveFocalLoss, COUNTS, 'agf_iters', [-1, 2.5, NAN, True]),
    (AdaptiveFocalLoss, COUNTS, 'agf_fraction', [NAN, INF, -0.1, 1.5]),
    (GaussianClassBalancedFocalLoss, COUNTS, 'alpha', NON_NEGATIVE),
    (GaussianClassBalancedFocalLoss, COUNTS, 'gamma', NON_NEGATIVE),
    (GaussianClassBalancedFocalLoss, COUNTS, 'beta', BETA),
    (GaussianClassBalancedFocalLoss, COUNTS, 'max_weight', POSITIVE),
    (GaussianClassBalancedFocalLoss, COUNTS, 'pos_weight', NON_NEGATIVE),
    (GaussianClassBalancedFocalLoss, COUNTS, 'neg_weight', NON_NEGATIVE),
    (GaussianAdaptiveFocalLoss, COUNTS, 'lam0', NON_NEGATIVE),
    (GaussianAdaptiveFocalLoss, COUNTS, 'alpha', NON_NEGATIVE),
    (DualFocalLoss, {}, 'gamma', GAMMA),
    (DualFocalLoss, {}, 'nu', NON_NEGATIVE),
    (DualFocalLoss, {}, 'beta', NON_NEGATIVE),
    (DualFocalLoss, {}, 'rho', POSITIVE),
    (EqualizedFocalLoss, {}, 'gamma_b', GAMMA + [0.0]),
    (EqualizedFocalLoss, {}, 's', NON_NEGATIVE),
    (EqualizedFocalLoss, {}, 'alpha', ALPHA),
    (EqualizedFocalLoss, {}, 'num_classes', [0, 2.5]),
    (ParameterFreeLoss, {}, 'gamma', GAMMA),
    (ParameterFreeLoss, {}, 'alpha', [NAN, INF, -0.25, 1.5]),
    (ParameterFreeLoss, {}, 'eps', POSITIVE),
    (GaussianParameterFreeLoss, {}, 'gamma', NON_NEGATIVE),
    (GaussianParameterFreeLoss, {}, 'focal_power', NON_NEGATIVE),
    (GaussianParameterFreeLoss, {}, 'eps', POSITIVE),
]


@pytest.mark.parametrize('loss, needs, name, bad', [
    pytest.param(loss, needs, name, value, id=f'{loss.__name__}-{name}={value}')
    for loss, needs, name, values in CASES for value in values
])
def test_every_loss_refuses_a_bad_hyper_parameter_by_name(loss, needs, name, bad):
    with pytest.raises(ValueError, match=rf'^{name} must'):
        loss(**needs, **{name: bad})


@pytest.mark.parametrize('loss, kwargs', [
    (ClassBalancedFocalLoss, dict(COUNTS, gamma=0, alpha=-1, beta=0.0, max_weight=None)),
    (ClassBalancedFocalLoss, dict(COUNTS, gamma=1, alpha=1.0, weighting='row', bg_weight=0)),
    (AdaptiveFocalLoss, dict(COUNTS, lam0=0, agf_iters=0)),
    (AdaptiveFocalLoss, dict(COUNTS, agf_fraction=1.0, loss_weight=0)),
    (GaussianClassBalancedFocalLoss, dict(COUNTS, alpha=0, gamma=0, pos_weight=0)),
    (DualFocalLoss, dict(gamma=0, nu=0, beta=0, rho=1e-3)),
    (EqualizedFocalLoss, dict(gamma_b=1, s=0, alpha=-1, num_classes=np.int64(3))),
    (ParameterFreeLoss, dict(gamma=0, alpha=0.0)),
    (ParameterFreeLoss, dict(gamma=np.float64(1.0), alpha=1)),
    (GaussianParameterFreeLoss, dict(gamma=0, focal_power=0, eps=1e-12)),
])
def test_the_edges_of_every_range_are_accepted(loss, kwargs):
    module = loss(**kwargs)
    for name, value in kwargs.items():
        if name != 'class_counts':
            assert getattr(module, name) == value


def test_parameter_free_gamma_below_one_no_longer_builds():
    """PF's focal negatives have (1 - p_t)^gamma = p^gamma: for gamma = 0.5 its derivative
    0.5 p^-0.5 is infinite at p = sigmoid(-104) = 0 (float32), a NaN gradient."""
    with pytest.raises(ValueError, match='gamma must be 0 or at least 1'):
        ParameterFreeLoss(gamma=0.5)


def test_negative_dual_focal_terms_no_longer_build():
    """nu = -0.5 made [(1 - p_t)^2 + nu] l negative for every well-classified element
    (p_t = 0.9: 0.01 - 0.5 < 0), so the reported loss could go below 0."""
    with pytest.raises(ValueError, match='nu must be >= 0'):
        DualFocalLoss(nu=-0.5)
    with pytest.raises(ValueError, match='beta must be >= 0'):
        DualFocalLoss(beta=-0.5)


@pytest.mark.parametrize('call, match', [
    (lambda: class_balanced_weights(torch.tensor([3, 1]), beta=NAN), 'beta must be finite'),
    (lambda: class_balanced_weights(torch.tensor([3, 1]), 0.9, max_weight=INF),
     'max_weight must be finite'),
    (lambda: parameter_free_loss(torch.zeros(2, 2), torch.tensor([0, 2]), eps=NAN),
     'eps must be finite'),
    (lambda: gaussian_parameter_free_loss(torch.rand(1, 2, 3, 3), torch.rand(1, 2, 3, 3),
                                          gamma=-1), 'gamma must be >= 0'),
])
def test_functional_forms_check_their_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize('check, good, bad', [
    (check_finite, [-3, 0, 2.5, np.float32(1)], [NAN, INF, -INF, '2', True, None,
                                                 torch.tensor(1.0)]),
    (check_non_negative, [0, 0.0, 1e300], [-1e-300, NAN, INF]),
    (check_positive, [1e-300, 5], [0, -1e-300, NAN, INF]),
    (check_probability, [0, 0.999999], [1, -1e-9, NAN]),
    (check_fraction, [0, 1, 0.5], [1 + 1e-9, -1e-9, NAN]),
    (check_alpha, [-1, -0.5, 0, 1], [1.0001, NAN, -INF]),
    (check_gamma, [0, 1, 2.5, 8], [0.5, 0.999, -1, NAN, INF]),
])
def test_helpers_take_the_range_they_name(check, good, bad):
    for value in good:
        assert check(value, 'x') == value
    for value in bad:
        with pytest.raises(ValueError, match=r'^x must'):
            check(value, 'x')


def test_count_helper_takes_whole_numbers_only():
    assert check_count(0, 'n') == 0 and check_count(np.int64(4), 'n', minimum=1) == 4
    for value in (-1, 2.0, True, NAN, '3'):
        with pytest.raises(ValueError, match=r'^n must be an integer >= 0'):
            check_count(value, 'n')
    with pytest.raises(ValueError, match=r'^n must be an integer >= 1, got 0'):
        check_count(0, 'n', minimum=1)

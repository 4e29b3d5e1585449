"""Tests of ``EqualizedFocalLoss`` (Li et al., CVPR 2022, https://arxiv.org/abs/2201.02593)."""
import io
from math import log

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses import FocalLoss
from mmdet.registry import MODELS
from mmengine.runner.checkpoint import load_state_dict

import imbfocal  # noqa: F401  (registers the losses)
from imbfocal.losses.equalized_focal_loss import EqualizedFocalLoss

from loss_testing import (
    equalized_focal_loss,
    equalized_focal_loss_grad,
    labelled_batch,
    value_and_grad,
)

C = 4


def _batch(n=12, c=C, scale=3.0, dtype=torch.float32, seed=0):
    return labelled_batch(n, c, scale, dtype, seed)


def _efl(pos_grad=None, neg_grad=None, train=False, **kwargs):
    """An EFL module with a hand-set state, in eval mode unless ``train``."""
    loss = EqualizedFocalLoss(num_classes=C, **kwargs).train(train)
    if pos_grad is not None:
        loss.pos_grad.copy_(torch.tensor(pos_grad))
        loss.neg_grad.copy_(torch.tensor(neg_grad))
    return loss


# g = G+ / G- = [1/4, 3 -> clamped 1, 0/2 = 0, no statistics (G- = 0) -> 1]
HAND_STATE = dict(pos_grad=[1.0, 3.0, 0.0, 0.0], neg_grad=[4.0, 1.0, 2.0, 0.0])


def test_registered():
    loss = MODELS.build(dict(type='EqualizedFocalLoss', num_classes=C, gamma_b=2.0,
                             s=8.0, alpha=0.25))
    assert isinstance(loss, EqualizedFocalLoss)
    assert loss.pos_grad.shape == loss.neg_grad.shape == (C, )


@pytest.mark.parametrize('state', [None, dict(pos_grad=[1.0] * C, neg_grad=[1.0] * C),
                                   dict(pos_grad=[5.0, 2.0, 9.0, 1.0], neg_grad=[5.0, 1.0,
                                                                               3.0, 0.5])],
                         ids=['initial', 'equal', 'positives_dominate'])
def test_balanced_statistics_equal_focal_loss(state):
    # g_j = 1 (initial state, G+ = G-, or G+ > G- clamped) -> gamma_j = gamma_b, w_j = 1:
    # EFL = alpha_t * (1 - p_t)^gamma_b * l, MMDetection's FocalLoss.
    pred, labels = _batch()
    efl = _efl(**(state or {}), reduction='none')
    g_j, gamma_j, w_j = efl.class_factors()
    assert (g_j == 1).all() and (gamma_j == 2).all() and (w_j == 1).all()
    focal = FocalLoss(gamma=2.0, alpha=0.25, reduction='none')
    value, grad = value_and_grad(efl, pred, labels)
    ref_value, ref_grad = value_and_grad(focal, pred, labels)
    torch.testing.assert_close(value, ref_value)
    torch.testing.assert_close(grad, ref_grad)


def test_hand_set_state_factors_and_loss():
    efl = _efl(**HAND_STATE, reduction='none')
    g_j, gamma_j, w_j = efl.class_factors()
    # g = [0.25, 1, 0, 1]; gamma = 2 + 8 (1 - g) = [2 + 8*0.75, 2, 2 + 8, 2] = [8, 2, 10, 2];
    # w = gamma / 2 = [4, 1, 5, 1].
    torch.testing.assert_close(g_j, torch.tensor([0.25, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(gamma_j, torch.tensor([8.0, 2.0, 10.0, 2.0]))
    torch.testing.assert_close(w_j, torch.tensor([4.0, 1.0, 5.0, 1.0]))
    # One anchor of class 0 with all logits 0 (p = 1/2, 1 - p_t = 1/2, l = ln 2):
    # class 0 (t=1): alpha_t = 0.25, 0.25 * 4 * 0.5^8  * ln 2
    # class 1 (t=0): alpha_t = 0.75, 0.75 * 1 * 0.5^2  * ln 2
    # class 2 (t=0):                 0.75 * 5 * 0.5^10 * ln 2
    # class 3 (t=0):                 0.75 * 1 * 0.5^2  * ln 2
    expected = log(2) * torch.tensor([[0.25 * 4 * 0.5**8, 0.75 * 0.5**2, 0.75 * 5 * 0.5**10,
                                       0.75 * 0.5**2]], dtype=torch.float64)
    loss = efl(torch.zeros(1, C, dtype=torch.float64), torch.tensor([0]))
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize('target_kind', ['binary', 'soft'])
def test_analytic_gradient_matches_autograd(target_kind):
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(30, C, generator=gen, dtype=torch.float64) * 6
    target = torch.rand(30, C, generator=gen, dtype=torch.float64)
    if target_kind == 'binary':
        target = (target > 0.7).double()
    gamma_j = torch.tensor([8.0, 2.0, 10.0, 3.5], dtype=torch.float64)
    w_j = gamma_j / 2
    _, autograd = value_and_grad(equalized_focal_loss, pred, target, gamma_j, w_j, 0.25)
    torch.testing.assert_close(equalized_focal_loss_grad(pred, target, gamma_j, w_j, 0.25),
                               autograd)


@pytest.mark.parametrize('statistics,scale', [('backprop', 3.0 / 7.0),
                                              ('unnormalised', 1.0)])
def test_statistics_accumulate_gradient_magnitudes(statistics, scale):
    # One training step: G+_j += sum_i |d(weight_i * EFL_ij)/dx_ij| t_ij, G-_j likewise with
    # (1 - t_ij), the gradient taken with the state before the step; as back-propagated it
    # carries loss_weight / avg_factor = 3 / 7 (float32 eps aside), unnormalised it does not.
    # Anchor 0 is ignored (weight 0) and must not count.
    pred, labels = _batch()
    weight = torch.rand(12)
    weight[0] = 0
    efl = _efl(**HAND_STATE, train=True, loss_weight=3.0, statistics=statistics)
    _, gamma_j, w_j = efl.class_factors()
    target = F.one_hot(labels, C + 1)[:, :C].float()
    _, grad = value_and_grad(lambda x: scale * weight[:, None] * equalized_focal_loss(
        x, target, gamma_j, w_j, 0.25), pred)
    efl(pred, labels, weight=weight, avg_factor=7.0)
    torch.testing.assert_close(efl.pos_grad,
                               torch.tensor(HAND_STATE['pos_grad']) + (grad.abs() * target).sum(0))
    torch.testing.assert_close(efl.neg_grad, torch.tensor(HAND_STATE['neg_grad']) +
                               (grad.abs() * (1 - target)).sum(0))
    # changing only the ignored anchor leaves the statistics untouched
    before = {k: v.clone() for k, v in efl.state_dict().items()}
    efl.pos_grad.copy_(torch.tensor(HAND_STATE['pos_grad']))
    efl.neg_grad.copy_(torch.tensor(HAND_STATE['neg_grad']))
    pred[0] = 50.0
    efl(pred, labels, weight=weight, avg_factor=7.0)
    torch.testing.assert_close(efl.state_dict(), before)


def test_statistics_update_only_in_training_and_after_the_loss():
    pred, labels = _batch()
    efl = _efl(reduction='none')
    efl(pred, labels)  # eval mode: no update
    assert not efl.pos_grad.any() and not efl.neg_grad.any()
    efl.train()
    first = efl(pred, labels)
    # The step's loss used the state before the update (initial: focal loss) ...
    torch.testing.assert_close(first, FocalLoss(reduction='none')(pred, labels))
    # ... which then moved: every class saw negatives, so G- > 0.
    assert (efl.neg_grad > 0).all() and (efl.pos_grad > 0).all()
    assert not torch.allclose(efl(pred, labels), first)


def test_num_classes_from_first_logits_or_checkpoint():
    # Configs need not know C: the buffers are empty until the first forward or a load.
    pred, labels = _batch()
    lazy = EqualizedFocalLoss().train()
    assert lazy.num_classes is None and lazy.pos_grad.shape == (0, )
    torch.testing.assert_close(lazy(pred, labels), FocalLoss()(pred, labels))
    assert lazy.num_classes == C and (lazy.neg_grad > 0).all()
    resumed = EqualizedFocalLoss()
    resumed.load_state_dict(lazy.state_dict())
    torch.testing.assert_close(resumed.state_dict(), lazy.state_dict())
    with pytest.raises(ValueError, match='num_classes'):
        lazy(pred[:, :3], labels.clamp(max=3))  # labels of 3 classes, C = 3 background


def test_state_round_trips_through_checkpoint(tmp_path):
    pred, labels = _batch()
    efl = _efl(train=True)
    for seed in range(3):
        efl(*_batch(seed=seed))
    path = tmp_path / 'efl.pth'
    torch.save(efl.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert set(state) == {'pos_grad', 'neg_grad'}
    restored = _efl()
    restored.load_state_dict(state)
    efl.eval()
    torch.testing.assert_close(restored.state_dict(), efl.state_dict())
    torch.testing.assert_close(restored(pred, labels), efl(pred, labels))
    buffer = io.BytesIO()
    torch.save(efl.state_dict(), buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=True), state)


def _in_a_head(efl):
    """The loss where a detector keeps it, so that state-dict keys carry a prefix."""
    head = torch.nn.Module()
    head.loss_cls = efl
    return head


@pytest.mark.parametrize('key, value, shown', [
    ('pos_grad', [1.0, float('nan'), 0.0, 0.0], r'1 invalid gradient statistics \(entries '
     r'\[1\]: nan\)'),
    ('neg_grad', [4.0, 1.0, -2.0, -1e-30], r'2 invalid gradient statistics \(entries '
     r'\[2, 3\]: -2, -1e-30\)'),
    ('neg_grad', [float('inf'), 1.0, 2.0, 0.0], r'1 invalid gradient statistics \(entries '
     r'\[0\]: inf\)'),
])
@pytest.mark.parametrize('lazy', [False, True])
def test_a_corrupt_checkpoint_is_refused_naming_the_key(key, value, shown, lazy):
    """A resumed run with NaN or negative G+/G- would train on g_j = NaN (NaN gamma_j) or
    on a ratio of a negative sum: the load fails, naming the key, the module untouched."""
    state = {f'loss_cls.{k}': torch.tensor(v) for k, v in HAND_STATE.items()}
    state[f'loss_cls.{key}'] = torch.tensor(value)
    head = _in_a_head(EqualizedFocalLoss() if lazy else _efl(**HAND_STATE))
    before = {k: v.clone() for k, v in head.state_dict().items()}
    for load in (head.load_state_dict, lambda sd: load_state_dict(head, sd)):
        with pytest.raises(ValueError, match=rf'^loss_cls\.{key} in the checkpoint holds '
                           rf'{shown}; gradient statistics must be finite and >= 0'):
            load(dict(state))
    torch.testing.assert_close(head.state_dict(), before)


def test_checkpoint_statistics_of_two_sizes_are_refused():
    state = dict(pos_grad=torch.zeros(C), neg_grad=torch.zeros(C + 1))
    with pytest.raises(ValueError, match=r'pos_grad and neg_grad .* shapes \(4,\) and \(5,\)'):
        EqualizedFocalLoss().load_state_dict(state)


def test_a_valid_checkpoint_with_zero_statistics_still_loads():
    efl = EqualizedFocalLoss()
    efl.load_state_dict(dict(pos_grad=torch.zeros(C), neg_grad=torch.tensor([0.0, 1, 2, 3])))
    assert efl.num_classes == C and efl.neg_grad[3] == 3


def test_empty_input_leaves_the_statistics_alone():
    pred = torch.zeros(0, C, requires_grad=True)
    labels = torch.zeros(0, dtype=torch.long)
    efl = _efl(train=True)
    for kwargs in ({}, {'avg_factor': 0.0}):
        loss = efl(pred, labels, **kwargs)
        assert loss.item() == 0
        loss.backward()
    assert pred.grad.shape == (0, C)
    assert not efl.pos_grad.any() and not efl.neg_grad.any()


def test_no_positives_and_all_ignored():
    pred, _ = _batch()
    background = torch.full((12, ), C)
    efl = _efl(train=True)
    loss = efl(pred, background)
    assert torch.isfinite(loss) and loss > 0
    # no positives: G+ stays 0, G- grows, so g = 0 and gamma_j = 2 + 8 = 10 for every class
    assert not efl.pos_grad.any() and (efl.neg_grad > 0).all()
    assert (efl.class_factors()[1] == 10).all()
    # all ignored: weight 0 everywhere, avg_factor 0 -> loss 0, zero gradients, no update
    state = {k: v.clone() for k, v in efl.state_dict().items()}
    pred.requires_grad_()
    loss = efl(pred, background, weight=torch.zeros(12), avg_factor=0.0)
    loss.backward()
    assert loss.item() == 0 and not pred.grad.any()
    torch.testing.assert_close(efl.state_dict(), state)


def test_errors():
    for bad in (dict(gamma_b=0.0), dict(gamma_b=0.5), dict(s=-1.0),
                dict(num_classes=0)):
        with pytest.raises(ValueError):
            EqualizedFocalLoss(**{'num_classes': C, **bad})
    pred, labels = _batch()
    with pytest.raises(ValueError, match='num_classes'):
        _efl()(pred[:, :3], labels.clamp(max=3))


def _official_efl_statistics(logits_per_step, labels, normalisers, loss_weight=1.0,
                             gamma=2.0, alpha=0.25, scale_factor=8.0):
    """ModelTC/United-Perception's EqualizedFocalLoss, written out: each step's loss uses
    ``pos_neg`` from the steps before (initially 1), is summed over the elements and divided
    by the step's normaliser, times ``loss_weight``; the gradient of that loss as autograd
    back-propagates it is accumulated, then ``pos_neg = clamp(G+ / (G- + 1e-10), 0, 1)``."""
    c = logits_per_step[0].size(1)
    pos_grad, neg_grad = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)
    pos_neg = torch.ones(c, dtype=torch.float64)
    target = F.one_hot(labels, c + 1)[:, :c].double()
    for logits, normaliser in zip(logits_per_step, normalisers):
        x = logits.clone().requires_grad_()
        p = x.sigmoid()
        p_t = p * target + (1 - p) * (1 - target)
        gamma_j = gamma + scale_factor * (1 - pos_neg)
        loss = -torch.log(p_t) * (1 - p_t).pow(gamma_j) * gamma_j / gamma
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
        (grad, ) = torch.autograd.grad(loss_weight * loss.sum() / normaliser, x)
        pos_grad += (grad.abs() * target).sum(0)
        neg_grad += (grad.abs() * (1 - target)).sum(0)
        pos_neg = torch.clamp(pos_grad / (neg_grad + 1e-10), min=0, max=1)
    return pos_neg


def test_statistics_follow_the_official_implementation_step_by_step():
    """Six steps whose normalisers (the heads' positive counts) alternate 10 / 200: the
    gradient as back-propagated weighs the steps differently, and g_j must follow the
    official code's pos_neg, not a ratio of unnormalised sums."""
    gen = torch.Generator().manual_seed(5)
    c = 6
    labels = torch.randint(0, c + 1, (40, ), generator=gen)
    steps = [torch.randn(40, c, generator=gen, dtype=torch.float64) * 3 for _ in range(6)]
    normalisers = [10.0, 200.0] * 3
    efl = EqualizedFocalLoss(num_classes=c, loss_weight=2.0).double().train()
    for logits, normaliser in zip(steps, normalisers):
        efl(logits, labels, avg_factor=normaliser - torch.finfo(torch.float32).eps)
    official = _official_efl_statistics(steps, labels, normalisers, loss_weight=2.0)
    torch.testing.assert_close(efl.class_factors()[0], official, rtol=1e-6, atol=1e-9)
    unnormalised = EqualizedFocalLoss(num_classes=c, statistics='unnormalised').double().train()
    for logits, normaliser in zip(steps, normalisers):
        unnormalised(logits, labels, avg_factor=normaliser)
    assert not torch.allclose(unnormalised.class_factors()[0], official, rtol=1e-3)

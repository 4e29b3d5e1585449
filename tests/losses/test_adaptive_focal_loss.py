"""AdaptiveFocalLoss / GaussianAdaptiveFocalLoss: the Adaptive Gradient Function and its state
(MMDetection's contract: test_contract.py)."""
import io
import math
import uuid

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import load_state_dict

from imbfocal.losses import (
    AdaptiveFocalLoss,
    ClassBalancedFocalLoss,
    GaussianAdaptiveFocalLoss,
    GaussianClassBalancedFocalLoss,
    adaptive_gradient_function,
)

COUNTS = [500, 50, 5]
# AFL with class weights (its default beta is 0: every class weighs 1), so that the damping
# acts on a class-balanced loss whose weights differ
WEIGHTED = dict(class_counts=COUNTS, beta=0.99)


def cb_of_afl(**kwargs):
    """CB-focal with the class weights of ``AdaptiveFocalLoss(**WEIGHTED)`` (beta 0.99,
    max_weight 2)."""
    return ClassBalancedFocalLoss(class_counts=COUNTS, max_weight=2.0, **kwargs)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(8, 3, generator=g) * 4).requires_grad_(), torch.randint(0, 4, (8, ),
                                                                                generator=g)


@pytest.fixture
def running_hub():
    """A message hub as MMEngine's RuntimeInfoHook leaves it inside a train loop."""
    hub = MessageHub.get_instance(f'test_afl_{uuid.uuid4().hex}')
    assert MessageHub.get_current_instance() is hub
    hub.update_info('loop_stage', 'train')
    yield hub
    hub.pop_info('loop_stage')


def test_adaptive_gradient_function_values():
    # A_s(L) = log(1 + lam L) / lam: lam = 1, L = e - 1 -> log(e) / 1 = 1;
    # lam = 2, L = 1.5 -> log(4) / 2 = ln 2; lam = 0 -> L itself.
    loss = torch.tensor([math.e - 1, 1.5, 3.0])
    torch.testing.assert_close(adaptive_gradient_function(loss[:1], 1.0), torch.tensor([1.0]))
    torch.testing.assert_close(adaptive_gradient_function(loss[1:2], 2.0),
                               torch.tensor([math.log(2)]))
    assert torch.equal(adaptive_gradient_function(loss, 0.0), loss)
    # the lam = 0 branch keeps a finite gradient of exactly 1.
    loss.requires_grad_()
    adaptive_gradient_function(loss, torch.tensor(0.0)).sum().backward()
    assert torch.equal(loss.grad, torch.ones(3))


def test_lam0_zero_and_finished_schedule_are_cb_focal():
    pred, labels = _inputs()
    cb = cb_of_afl()(pred, labels)
    assert torch.equal(AdaptiveFocalLoss(**WEIGHTED, lam0=0.)(pred, labels), cb)
    afl = AdaptiveFocalLoss(**WEIGHTED, lam0=3., agf_iters=10)
    for it in (10, 25):  # s = min(1, it / 10) = 1 -> lam_s = 0
        afl.agf_iter.fill_(it)
        assert torch.equal(afl(pred, labels), cb)
    # agf_iters = 0 means no warm-up at all.
    assert torch.equal(AdaptiveFocalLoss(**WEIGHTED, agf_iters=0)(pred, labels), cb)


def test_default_is_focal_loss_through_the_damping_with_no_counts():
    """At its defaults AFL has no class weights: beta 0 makes every class's effective number
    (1 - 0^n) / (1 - 0) = 1, so no counts are needed, and with the damping off (lam0 0) it is
    MMDetection's focal loss (gamma 2, alpha 0.25, mean over the 8 x 3 elements)."""
    from mmdet.models.losses import FocalLoss
    pred, labels = _inputs()
    afl = AdaptiveFocalLoss(lam0=0.)
    assert afl.beta == 0.0 and not afl.has_class_counts
    torch.testing.assert_close(afl(pred, labels), FocalLoss()(pred, labels))
    damped = AdaptiveFocalLoss(lam0=4.).eval()  # lam_s = 4 at s = 0
    L = FocalLoss(reduction='none')(pred, labels)
    torch.testing.assert_close(damped(pred, labels), torch.log1p(4 * L).mean() / 4)


@pytest.mark.parametrize('lam0', [0.5, 1.0, 4.0])
def test_gradient_factor_at_start(lam0):
    # At s = 0, lam_s = lam0 and each element is A(L) = log(1 + lam0 L) / lam0, so its gradient
    # is the class-balanced gradient times 1 / (1 + lam0 L), element by element (element (i, c)
    # depends on x_ic alone, so grad of the sum is the element-wise derivative).
    pred, labels = _inputs()
    cb_fn = cb_of_afl(reduction='none')
    afl_fn = AdaptiveFocalLoss(**WEIGHTED, lam0=lam0, reduction='none').eval()
    L = cb_fn(pred, labels)
    (grad_cb, ) = torch.autograd.grad(L.sum(), pred)
    A = afl_fn(pred, labels)
    (grad_afl, ) = torch.autograd.grad(A.sum(), pred)
    L = L.detach()
    torch.testing.assert_close(A.detach(), torch.log1p(lam0 * L) / lam0)
    torch.testing.assert_close(grad_afl, grad_cb / (1 + lam0 * L))
    assert torch.all(grad_afl.abs() <= grad_cb.abs())


def test_schedule_is_linear_in_progress():
    # agf_iters = 100, lam0 = 2: at iter 25, s = 0.25 and lam_s = 2 * 0.75 = 1.5.
    pred, labels = _inputs()
    L = cb_of_afl(reduction='none')(pred, labels).detach()
    afl = AdaptiveFocalLoss(**WEIGHTED, lam0=2., agf_iters=100, reduction='none').eval()
    afl.agf_iter.fill_(25)
    torch.testing.assert_close(afl(pred, labels), torch.log1p(1.5 * L) / 1.5)


def test_progress_from_message_hub(running_hub):
    # iter 500 of agf_iters 1000 with lam0 = 2: lam_s = 2 * (1 - 0.5) = 1, A = log(1 + L).
    pred, labels = _inputs()
    L = cb_of_afl(reduction='none')(pred, labels).detach()
    afl = AdaptiveFocalLoss(**WEIGHTED, lam0=2., agf_iters=1000, reduction='none')
    running_hub.update_info('iter', 500)
    for _ in range(3):  # RetinaNet calls the loss once per level: the hub's iter holds
        torch.testing.assert_close(afl(pred, labels), torch.log1p(L))
    assert afl.agf_iter.item() == 500
    running_hub.update_info('iter', 1500)
    assert torch.equal(afl(pred, labels), L)
    assert afl.agf_iter.item() == 1500


def test_fraction_of_the_run_from_message_hub(running_hub):
    # agf_fraction 0.25 of max_iters 800: T = 200; at iter 50, s = 1/4, lam_s = 2 * 3/4 = 1.5.
    pred, labels = _inputs()
    L = cb_of_afl(reduction='none')(pred, labels).detach()
    afl = AdaptiveFocalLoss(**WEIGHTED, lam0=2., agf_fraction=0.25, reduction='none')
    running_hub.update_info('max_iters', 800)
    running_hub.update_info('iter', 50)
    torch.testing.assert_close(afl(pred, labels), torch.log1p(1.5 * L) / 1.5)
    assert running_hub.get_scalar('train/afl_lam_s').current() == 1.5  # logged for the user
    running_hub.update_info('iter', 200)  # s = 1: CB-focal
    assert torch.equal(afl(pred, labels), L)
    # the default schedule is lam0 4 over half of the run: T = 400, at iter 100
    # lam_s = 4 * 3/4 = 3
    default = AdaptiveFocalLoss(**WEIGHTED, reduction='none')
    running_hub.update_info('iter', 100)
    torch.testing.assert_close(default(pred, labels), torch.log1p(3 * L) / 3)


def test_fraction_outside_a_runner_keeps_lam0_and_warns():
    pred, labels = _inputs()
    L = cb_of_afl(reduction='none')(pred, labels).detach()
    afl = AdaptiveFocalLoss(**WEIGHTED, lam0=2., reduction='none')
    with pytest.warns(UserWarning, match='agf_iters'):
        value = afl(pred, labels)
    torch.testing.assert_close(value, torch.log1p(2 * L) / 2)


def test_finished_run_hub_is_not_read():
    # After a train loop RuntimeInfoHook pops loop_stage; a stale 'iter' must not be used.
    hub = MessageHub.get_instance(f'test_afl_stale_{uuid.uuid4().hex}')
    hub.update_info('iter', 10_000)
    afl = AdaptiveFocalLoss(**WEIGHTED)
    afl(*_inputs())
    assert afl.agf_iter.item() == 1


def test_counter_increments_in_training_mode_only():
    pred, labels = _inputs()
    afl = AdaptiveFocalLoss(**WEIGHTED, lam0=1., agf_iters=4, reduction='none')
    L = cb_of_afl(reduction='none')(pred, labels).detach()
    # Forward k (k = 0, 1, ...) uses s = k / 4, then counts itself: lam_s = 1 - k / 4.
    for k in range(3):
        lam_s = 1 - k / 4
        torch.testing.assert_close(afl(pred, labels), torch.log1p(lam_s * L) / lam_s)
        assert afl.agf_iter.item() == k + 1
    afl.eval()
    afl(pred, labels)
    assert afl.agf_iter.item() == 3
    # Gaussian form: same state machine.
    gafl = GaussianAdaptiveFocalLoss(class_counts=COUNTS)
    gafl(torch.rand(1, 3, 2, 2), torch.rand(1, 3, 2, 2))
    gafl(torch.rand(4, 3), torch.rand(4, 3), pos_inds=torch.tensor([0]),
         pos_labels=torch.tensor([2]))  # one forward, two A_s applications: counted once
    assert gafl.agf_iter.item() == 2


def test_state_round_trip():
    afl = AdaptiveFocalLoss(**WEIGHTED)
    for _ in range(7):
        afl(*_inputs())
    state = afl.state_dict()
    assert set(state) == {'class_counts', 'agf_iter'}
    # in-memory, and through torch.save / weights-only torch.load of the state dict
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    for loaded in (state, torch.load(buffer, weights_only=True)):
        fresh = AdaptiveFocalLoss(class_counts=None)  # as built from a config relying on the hook
        fresh.load_state_dict(loaded)
        assert fresh.agf_iter.item() == 7
        assert torch.equal(fresh.class_counts, torch.tensor(COUNTS))
        assert fresh.class_counts_source == 'checkpoint'
    # MMEngine's own (non-strict) loader, as used by Runner.resume
    fresh = AdaptiveFocalLoss(class_counts=None)
    load_state_dict(fresh, state)
    assert fresh.agf_iter.item() == 7 and fresh.has_class_counts


@pytest.mark.parametrize('loss', [AdaptiveFocalLoss, GaussianAdaptiveFocalLoss])
@pytest.mark.parametrize('value, shown', [
    (torch.tensor(-3), '-3'),
    (torch.tensor(2.5), '2.5'),
    (torch.tensor(float('nan')), 'nan'),
])
def test_a_corrupt_agf_iter_is_refused_naming_the_key(loss, value, shown):
    """agf_iter = -3 would give s = -3 / T < 0 and lam_s above lam0; a resumed run refuses."""
    module = loss(class_counts=COUNTS)
    state = dict(module.state_dict(), agf_iter=value)
    with pytest.raises(ValueError, match=rf'^agf_iter in the checkpoint holds 1 invalid '
                       rf'iterations \(entries \[0\]: {shown}\); iterations must be whole '
                       'numbers >= 0'):
        load_state_dict(module, state)
    assert module.agf_iter.item() == 0
    module.load_state_dict(dict(state, agf_iter=torch.tensor(5.0)))  # whole: taken as 5
    assert module.agf_iter.item() == 5 and module.agf_iter.dtype == torch.long


def test_gaussian_lam0_zero_is_gaussian_cb():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    target[0, :, 0, 0] = 1
    cb = GaussianClassBalancedFocalLoss(class_counts=COUNTS, max_weight=2.0)(pred, target)
    assert torch.equal(GaussianAdaptiveFocalLoss(class_counts=COUNTS, lam0=0.)(pred, target), cb)
    afl = GaussianAdaptiveFocalLoss(class_counts=COUNTS, lam0=1.).eval()
    assert afl(pred, target) < cb  # log(1 + L) < L for L > 0


def test_invalid_schedule_arguments():
    with pytest.raises(ValueError, match='lam0'):
        AdaptiveFocalLoss(**WEIGHTED, lam0=-1.)
    with pytest.raises(ValueError, match='agf_iters'):
        AdaptiveFocalLoss(**WEIGHTED, agf_iters=-5)
    with pytest.raises(ValueError, match='not both'):
        AdaptiveFocalLoss(**WEIGHTED, agf_iters=10, agf_fraction=0.5)
    with pytest.raises(ValueError, match='agf_fraction'):
        AdaptiveFocalLoss(**WEIGHTED, agf_fraction=1.5)

"""What the stateful losses report through MMEngine while a runner trains."""
import uuid

import pytest
import torch
from mmengine.logging import MessageHub

from imbfocal.losses import (
    AdaptiveFocalLoss,
    ClassBalancedFocalLoss,
    EqualizedFocalLoss,
    GaussianClassBalancedFocalLoss,
    state_logging,
)


@pytest.fixture
def running_hub():
    """A message hub as MMEngine's RuntimeInfoHook leaves it inside a train loop."""
    hub = MessageHub.get_instance(f'test_state_{uuid.uuid4().hex}')
    hub.update_info('loop_stage', 'train')
    hub.update_info('iter', 0)
    hub.update_info('max_iters', 100)
    yield hub
    hub.pop_info('loop_stage')


@pytest.fixture
def logged(monkeypatch):
    messages = []
    monkeypatch.setattr(state_logging, 'print_log', lambda msg, logger=None: messages.append(msg))
    return messages


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(30, 4, generator=g), torch.randint(0, 5, (30, ), generator=g)


def test_class_weights_logged_once_per_module(running_hub, logged):
    loss = ClassBalancedFocalLoss(class_counts=[500, 50, 5, 1])
    for _ in range(3):
        loss(*_batch())
    assert len(logged) == 1 and 'class weights' in logged[0] and 'clipped at 1' in logged[0]
    AdaptiveFocalLoss(class_counts=[500, 50, 5, 1])(*_batch())
    assert len(logged) == 2 and logged[1].startswith('AdaptiveFocalLoss')


def test_class_weight_line_names_what_each_form_has(running_hub, logged):
    """The heatmap forms have no ``weighting``: their line used to read "w_c (, beta"."""
    ClassBalancedFocalLoss(class_counts=[500, 50, 5, 1], weighting='row')(*_batch())
    GaussianClassBalancedFocalLoss(class_counts=[500, 50, 5, 1])(
        torch.rand(1, 4, 3, 3), torch.rand(1, 4, 3, 3))
    assert logged[0].startswith("ClassBalancedFocalLoss: class weights w_c (weighting 'row', "
                                'beta 0.99, from config counts): lowest')
    assert logged[1].startswith('GaussianClassBalancedFocalLoss: class weights w_c (beta 0.99, '
                                'from config counts): lowest')
    ClassBalancedFocalLoss(beta=0.0)(*_batch())  # no counts: beta 0 weighs every class 1
    assert logged[2].startswith("ClassBalancedFocalLoss: class weights w_c (weighting "
                                "'positive', beta 0, no counts: all equal at beta 0): lowest")


def test_efl_logs_its_ratios(running_hub, logged):
    efl = EqualizedFocalLoss().train()
    efl(*_batch())  # iteration 0: the per-class line too
    for name in ('train/efl_g_min', 'train/efl_g_median', 'train/efl_g_mean'):
        assert 0 <= running_hub.get_scalar(name).current() <= 1
    assert len(logged) == 1 and 'g_j' in logged[0] and 'lowest' in logged[0]
    running_hub.update_info('iter', 7)
    efl(*_batch())
    assert len(logged) == 1  # every 100 iterations only


def test_nothing_recorded_outside_a_train_loop(logged):
    hub = MessageHub.get_instance(f'test_state_idle_{uuid.uuid4().hex}')
    EqualizedFocalLoss().train()(*_batch())
    ClassBalancedFocalLoss(class_counts=[500, 50, 5, 1])(*_batch())
    assert not logged and 'train/efl_g_min' not in hub.log_scalars

"""The focal family's fast path against the autograd reference, in value and gradient.

``imbfocal.losses.fast.focal`` computes loss and ``dL/dx`` in one pass from integer labels;
the reference is ``focal_family_reference`` (autograd) with MMDetection's
``weight_reduce_loss``. Every element-wise loss module runs the fast path by default and the
reference under ``use_impl('reference')``.
"""
import dataclasses
import itertools

import pytest
import torch

from imbfocal.losses import (
    AdaptiveFocalLoss,
    ClassBalancedFocalLoss,
    DualFocalLoss,
    EqualizedFocalLoss,
    FocalTerms,
    focal_family_loss,
    focal_family_reference,
)
from imbfocal.losses.fast import chunks, dispatch
from imbfocal.losses.fast.focal import applies

from loss_testing import (
    anchor_weights,
    extreme_batch,
    focal_terms_catalogue,
    random_grad_out,
    reference_loss,
    value_and_grad,
)

N, C = 23, 5
COUNTS = [1000, 100, 10, 1, 0]
pytestmark = pytest.mark.filterwarnings('ignore:.*counted as 1:UserWarning')


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of 4 rows, so every test crosses chunk boundaries (and a ragged last one)."""
    monkeypatch.setitem(chunks.CHUNK_ELEMENTS, 'cpu', 4 * C)


def _batch(n=N, c=C, dtype=torch.float64, seed=0):
    return extreme_batch(n, c, dtype, seed)


def _weights(kind, n=N, c=C, dtype=torch.float64):
    return anchor_weights(kind, n, c, dtype)


def _value_and_grad(fn, pred):
    return value_and_grad(fn, pred, grad_out=random_grad_out())


TERMS = focal_terms_catalogue(C)
CONTRACT = list(itertools.product([None, 'anchor', 'element', 'flat'], ['none', 'mean', 'sum'],
                                  [None, 3.5]))


@pytest.mark.parametrize('name', TERMS)
@pytest.mark.parametrize('weight_kind,reduction,avg_factor', CONTRACT)
def test_fused_matches_reference_float64(name, weight_kind, reduction, avg_factor):
    pred, labels = _batch()
    terms, weight = TERMS[name], _weights(weight_kind)
    if reduction == 'sum' and avg_factor is not None:
        with pytest.raises(ValueError, match='avg_factor'):
            focal_family_loss(pred, labels, terms, weight, reduction, avg_factor)
        return
    ours = _value_and_grad(
        lambda x: focal_family_loss(x, labels, terms, weight, reduction, avg_factor), pred)
    ref = _value_and_grad(lambda x: reference_loss(x, labels, terms, weight, reduction, avg_factor),
                          pred)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('name', TERMS)
def test_fused_matches_reference_float32(name):
    pred, labels = _batch(n=300, dtype=torch.float32, seed=1)
    terms, weight = TERMS[name], _weights('anchor', n=300, dtype=torch.float32)
    for reduction in ('none', 'mean'):
        ours = _value_and_grad(lambda x: focal_family_loss(x, labels, terms, weight, reduction),
                               pred)
        ref = _value_and_grad(lambda x: reference_loss(x, labels, terms, weight, reduction, None),
                              pred)
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize('name', TERMS)
@pytest.mark.parametrize('reduction', ['none', 'mean'])
def test_gradcheck_float64(name, reduction):
    pred, labels = _batch(n=9)
    pred = pred.clamp(-12, 12)  # finite differences need non-saturated logits
    weight = _weights('anchor', n=9)
    assert torch.autograd.gradcheck(
        lambda x: focal_family_loss(x, labels, TERMS[name], weight, reduction, avg_factor=2.0),
        pred.requires_grad_())


def test_saves_only_the_gradient():
    # The Function keeps one (N, C) tensor for backward (dL/dx), nothing else.
    saved = []

    def pack(tensor):
        saved.append(tuple(tensor.shape))
        return tensor

    pred, labels = _batch(dtype=torch.float32)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = focal_family_loss(pred.requires_grad_(), labels, TERMS['everything'],
                                _weights('anchor', dtype=torch.float32))
    assert saved == [(N, C)]
    loss.backward()
    assert pred.grad.shape == (N, C)


def test_no_gradient_requested_returns_loss_only():
    pred, labels = _batch()
    loss = focal_family_loss(pred, labels)  # pred does not require grad
    torch.testing.assert_close(loss, reference_loss(pred, labels, FocalTerms(), None, 'mean', None))
    assert not loss.requires_grad


def test_backward_twice_with_retained_graph():
    pred, labels = _batch()
    pred.requires_grad_()
    loss = 2 * focal_family_loss(pred, labels, avg_factor=4.0)
    (first, ) = torch.autograd.grad(loss, pred, retain_graph=True)
    (second, ) = torch.autograd.grad(loss, pred)
    assert torch.equal(first, second)


@pytest.mark.parametrize('name', TERMS)
def test_extreme_logits_finite(name):
    x = torch.linspace(-100, 100, 201).view(-1, 1).repeat(1, C).requires_grad_()
    labels = torch.arange(201) % (C + 1)
    loss = focal_family_loss(x, labels, TERMS[name], reduction='none')
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize('reduction,avg_factor', [('mean', None), ('mean', 0.0), ('sum', None),
                                                  ('none', None)])
def test_empty_and_all_ignored(reduction, avg_factor):
    empty = torch.zeros(0, C, requires_grad=True)
    loss = focal_family_loss(empty, torch.zeros(0, dtype=torch.long), TERMS['everything'],
                            reduction=reduction, avg_factor=avg_factor)
    loss.sum().backward()
    assert loss.shape == ((0, C) if reduction == 'none' else ())
    assert empty.grad.shape == (0, C)
    if reduction != 'none':
        assert loss.item() == 0
    pred, labels = _batch(dtype=torch.float32)
    pred.requires_grad_()
    loss = focal_family_loss(pred, labels, TERMS['everything'], torch.zeros(N), reduction,
                            avg_factor)
    loss.sum().backward()
    assert not loss.any() and not pred.grad.any()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast_half_inputs_computed_in_float32(dtype):
    pred, labels = _batch(dtype=torch.float32)
    half = pred.to(dtype).requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        loss = focal_family_loss(half, labels, TERMS['afl'], avg_factor=3.0)
    loss.backward()
    assert loss.dtype == torch.float32 and half.grad.dtype == dtype
    ref_input = half.detach().float().requires_grad_()
    ref_loss = reference_loss(ref_input, labels, TERMS['afl'], None, 'mean', 3.0)
    (ref_grad, ) = torch.autograd.grad(ref_loss, ref_input)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(half.grad, ref_grad.to(dtype))


def test_errors():
    pred, labels = _batch()
    with pytest.raises(ValueError, match='reduction'):
        focal_family_loss(pred, labels, reduction='avg')
    with pytest.raises(ValueError, match='labels of shape'):
        focal_family_loss(pred, labels[:5])
    with pytest.raises(ValueError, match='integer labels'):
        focal_family_loss(pred, torch.rand(N, C + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match='expects logits'):
        focal_family_loss(pred[0], labels[:1])
    with pytest.raises(ValueError, match='weight of shape'):
        focal_family_loss(pred, labels, weight=torch.ones(4))
    with pytest.raises(ValueError, match='impl'):
        with dispatch.use_impl('cuda'):
            pass
    assert dispatch.get_impl() == 'fused'


# --- the loss modules: fused (default) against use_impl('reference') -----------------------


def _efl(train=False):
    efl = EqualizedFocalLoss(num_classes=C).train(train)
    efl.pos_grad.copy_(torch.tensor([1.0, 3.0, 0.0, 0.0, 0.5]))
    efl.neg_grad.copy_(torch.tensor([4.0, 1.0, 2.0, 0.0, 1.0]))
    return efl


MODULES = {
    'cb': lambda: ClassBalancedFocalLoss(class_counts=COUNTS, beta=0.99, weighting='row',
                                         bg_weight=0.7),
    'cb_positive': lambda: ClassBalancedFocalLoss(class_counts=COUNTS, beta=0.99),
    'cb_column': lambda: ClassBalancedFocalLoss(class_counts=COUNTS, weighting='column'),
    'afl': lambda: AdaptiveFocalLoss(class_counts=COUNTS, beta=0.99, lam0=2.0).eval(),
    'dfl': lambda: DualFocalLoss(gamma=3.0, nu=0.2, beta=0.5, rho=0.5),
    'efl': _efl,
}


@pytest.mark.parametrize('name', MODULES)
@pytest.mark.parametrize('weight_kind,reduction,avg_factor', CONTRACT)
def test_modules_fused_matches_reference(name, weight_kind, reduction, avg_factor):
    if reduction == 'sum' and avg_factor is not None:
        return  # an error on both paths (tested per module)
    module = MODULES[name]()
    pred, labels = _batch()
    kwargs = dict(weight=_weights(weight_kind), avg_factor=avg_factor,
                  reduction_override=reduction)
    ours = _value_and_grad(lambda x: module(x, labels, **kwargs), pred)
    with dispatch.use_impl('reference'):
        ref = _value_and_grad(lambda x: module(x, labels, **kwargs), pred)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('weight_kind', [None, 'anchor', 'element'])
def test_efl_statistics_fused_match_reference(weight_kind):
    pred, labels = _batch()
    weight = _weights(weight_kind)
    if weight is not None:
        weight[3] = 0  # an ignored anchor
    fused_efl, reference_efl = _efl(train=True), _efl(train=True)
    for step in range(2):
        ours = fused_efl(pred + step, labels, weight, avg_factor=5.0)
        with dispatch.use_impl('reference'):
            ref = reference_efl(pred + step, labels, weight, avg_factor=5.0)
        torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(fused_efl.state_dict(), reference_efl.state_dict())


def test_soft_targets_and_weight_gradients_take_the_reference_path():
    pred, labels = _batch()
    soft = torch.rand(N, C, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    module = MODULES['afl']()
    with dispatch.use_impl('reference'):
        ref = module(pred, soft)
    assert torch.equal(module(pred, soft), ref)
    weight = _weights('anchor').requires_grad_()
    assert not applies(weight.view(-1, 1), FocalTerms())
    module(pred, labels, weight).backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def _small_losses_batch():
    """Logits from -20 to 8 whose AFL / DFL losses run from about 1e-9 to 10."""
    x = torch.linspace(-20, 8, 20000, dtype=torch.float64).view(-1, C)
    labels = torch.full((x.size(0), ), C)
    labels[::7] = torch.arange(x.size(0))[::7] % C
    return x, labels


@pytest.mark.parametrize('name', ['afl', 'dfl_rho'])
def test_small_losses_precision(name):
    """``reduction='none'``: each loss within 5e-6 of float64 relatively, or 1.2e-7 (an ulp
    of 1) absolutely. The CPU path computes the BCE as ``relu(x) - log(max(p, 1 - p))``,
    where ``1 - p`` rounds to a multiple of 6e-8: a loss of 1e-9 may read 0. (The Triton
    kernel holds 5e-6 relatively throughout, tests/kernels.)"""
    x, labels = _small_losses_batch()
    ref = focal_family_reference(x, labels, TERMS[name])
    assert ref.min() < 1e-8 and ref.max() > 1
    ours = focal_family_loss(x.float(), labels, TERMS[name], reduction='none')
    torch.testing.assert_close(ours, ref.float(), rtol=5e-6, atol=1.2e-7)


@pytest.mark.parametrize('lam', [0.8, 1e-3, 1e-4, 1e-6])
def test_summed_afl_precision_as_lam_decays(lam):
    """AFL's ``A_s(z) = log1p(lam z) / lam`` averaged over 20,000 elements stays within 5e-7
    of float64 (measured: 1e-7 at most) as the schedule takes ``lam`` towards 0.
    ``log(1 + lam z)`` instead would drop every ``lam z`` below 6e-8 and be low by 6.4e-7,
    7.2e-6 and 9.4e-4 on this batch at ``lam`` = 1e-3, 1e-4 and 1e-6."""
    x, labels = _small_losses_batch()
    terms = dataclasses.replace(TERMS['afl'], lam=lam)
    ref = focal_family_reference(x, labels, terms).mean()
    ours = focal_family_loss(x.float(), labels, terms, reduction='mean')
    torch.testing.assert_close(ours, ref.float(), rtol=5e-7, atol=0)

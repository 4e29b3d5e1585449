"""The Triton kernel of the focal family against the float64 reference and the torch path.

On a machine without a GPU the kernel runs under Triton's interpreter (``conftest.py``),
which executes the same program with NumPy, so its maths, masks, tiling and reductions are
checked in CI; on a GPU the compiled kernel is checked the same way.
"""
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
from imbfocal.losses.fast import dispatch

from conftest import kernel_devices
from loss_testing import (
    anchor_weights,
    extreme_batch,
    focal_terms_catalogue,
    reference_loss,
    value_and_grad,
)

# Default tiles are 512 elements: 64 x 8 for C = 5 (one column tile of whole rows; 70 rows
# make two row tiles, the second partial); 4 x 128 for C = 300 (three column tiles, the last
# one partly masked, and 37 = 9 * 4 + 1 rows ending in a partial row tile).
SHAPES = [(70, 5), (37, 300)]
# tiles of 256 to 4096 elements on 1 to 8 warps, 1 to 32 row tiles per program
TILINGS = ['512x2x2', '2048x8x1', '4096x8x8', '1024x4x32', '256x1x16']
DEVICES = kernel_devices()


def _batch(n, c, device, seed=0):
    return extreme_batch(n, c, seed=seed, device=device)


def _weight(kind, n, c, device):
    return anchor_weights(kind, n, c, device=device)


def _grad_out(reduction):
    """A random upstream gradient for ``'none'``; 2.5 for a scalar (1 is tested apart)."""
    if reduction == 'none':
        return lambda loss: torch.rand(loss.shape, generator=torch.Generator().manual_seed(3),
                                       dtype=torch.float64).to(loss.device, loss.dtype)
    return lambda loss: torch.full_like(loss, 2.5)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('n,c', SHAPES)
@pytest.mark.parametrize('name', list(focal_terms_catalogue(1)))
@pytest.mark.parametrize('weight_kind,reduction,avg_factor',
                         list(itertools.product([None, 'anchor', 'element'], ['none', 'mean'],
                                                [None, 3.5])) + [(None, 'sum', None)])
def test_kernel_matches_float64_reference(device, n, c, name, weight_kind, reduction,
                                          avg_factor):
    pred, labels = _batch(n, c, device)
    terms = focal_terms_catalogue(c)[name]
    weight = _weight(weight_kind, n, c, device)
    weight32 = None if weight is None else weight.float()
    with dispatch.use_impl('triton'):
        ours = value_and_grad(
            lambda x: focal_family_loss(x, labels, terms, weight32, reduction, avg_factor),
            pred.float(), grad_out=_grad_out(reduction))
    ref = value_and_grad(
        lambda x: reference_loss(x, labels, terms, weight, reduction, avg_factor), pred,
        grad_out=_grad_out(reduction))
    assert ours[0].dtype == torch.float32
    torch.testing.assert_close(ours, tuple(r.float() for r in ref), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize('device', DEVICES)
def test_unit_upstream_gradient_is_not_applied(device):
    """The backward kernel skips the in-place scaling when the incoming gradient is 1."""
    pred, labels = _batch(70, 5, device)
    pred = pred.float().requires_grad_()
    with dispatch.use_impl('triton'):
        loss = focal_family_loss(pred, labels, avg_factor=torch.tensor(4.0, device=device))
    loss.backward()
    with dispatch.use_impl('torch'):
        (expected, ) = torch.autograd.grad(focal_family_loss(pred, labels, avg_factor=4.0), pred)
    torch.testing.assert_close(pred.grad, expected, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize('device', DEVICES)
def test_non_contiguous_logits(device):
    pred, labels = _batch(70, 5, device)
    strided = pred.float().t().contiguous().t()  # column-major (N, C)
    assert not strided.is_contiguous()
    with dispatch.use_impl('triton'):
        ours = value_and_grad(lambda x: focal_family_loss(x, labels), strided,
                              grad_out=_grad_out('mean'))
    with dispatch.use_impl('torch'):
        ref = value_and_grad(lambda x: focal_family_loss(x, labels), pred.float(),
                             grad_out=_grad_out('mean'))
    torch.testing.assert_close(ours, ref, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize('device', DEVICES)
def test_strided_labels_and_class_tensors(device):
    """Views that are not contiguous (a column of a ground-truth table, every other entry of
    a per-class vector) are read by their strides, not as if packed."""
    pred, labels = _batch(70, 5, device)
    pred = pred.float()
    table = torch.stack([labels, torch.zeros_like(labels)], 1)
    strided_labels = table[:, 0]
    assert not strided_labels.is_contiguous()
    weights = torch.tensor([2.0, 9, 0.5, 9, 1, 9, 3, 9, 0.2, 9, 4, 9], device=device)
    terms = FocalTerms(gamma=weights[::2][:5] + 1, class_weight=weights[::2][:5],
                       weight_by_label=weights[::2], positive_weight=weights[1::2][:5])
    with dispatch.use_impl('triton'):
        ours = focal_family_loss(pred, strided_labels, terms, avg_factor=3.0)
    with dispatch.use_impl('torch'):
        ref = focal_family_loss(pred, labels.contiguous(), terms, avg_factor=3.0)
    torch.testing.assert_close(ours, ref, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('reduction', ['none', 'mean'])
def test_extreme_logits_finite(device, reduction):
    x = torch.linspace(-100, 100, 201, device=device).view(-1, 1).repeat(1, 5).requires_grad_()
    labels = torch.arange(201, device=device) % 6
    with dispatch.use_impl('triton'):
        for terms in focal_terms_catalogue(5).values():
            loss = focal_family_loss(x, labels, terms, reduction=reduction)
            (grad, ) = torch.autograd.grad(loss.sum(), x)
            assert torch.isfinite(loss).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('reduction,avg_factor', [('mean', None), ('mean', 0.0), ('sum', None),
                                                  ('none', None)])
def test_empty(device, reduction, avg_factor):
    pred = torch.zeros(0, 80, device=device, requires_grad=True)
    labels = torch.zeros(0, dtype=torch.long, device=device)
    with dispatch.use_impl('triton'):
        loss = focal_family_loss(pred, labels, reduction=reduction, avg_factor=avg_factor)
    loss.sum().backward()
    assert loss.shape == ((0, 80) if reduction == 'none' else ())
    assert loss.sum().item() == 0 and pred.grad.shape == (0, 80)


@pytest.mark.parametrize('device', DEVICES)
def test_second_backward_raises_and_names_the_fix(device):
    pred, labels = _batch(70, 5, device)
    pred = pred.float().requires_grad_()
    with dispatch.use_impl('triton'):
        loss = 2 * focal_family_loss(pred, labels)
    torch.autograd.grad(loss, pred, retain_graph=True)
    with pytest.raises(RuntimeError, match=r"use_impl\('torch'\)"):
        torch.autograd.grad(loss, pred)


def test_cpu_without_interpreter_names_the_fix(monkeypatch):
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    pred, labels = _batch(4, 5, 'cpu')
    with dispatch.use_impl('triton'), pytest.raises(RuntimeError, match='TRITON_INTERPRET=1'):
        focal_family_loss(pred.float(), labels)


def _efl(c):
    efl = EqualizedFocalLoss(num_classes=c).train()
    gen = torch.Generator().manual_seed(5)
    efl.pos_grad.copy_(torch.rand(c, generator=gen))
    efl.neg_grad.copy_(torch.rand(c, generator=gen) * 4)
    return efl


MODULES = {
    'cb': lambda c: ClassBalancedFocalLoss(class_counts=[1000 // (k + 1) for k in range(c)],
                                           beta=0.99, weighting='row', bg_weight=0.7),
    'cb_positive': lambda c: ClassBalancedFocalLoss(
        class_counts=[1000 // (k + 1) for k in range(c)], beta=0.99),
    'afl': lambda c: AdaptiveFocalLoss(class_counts=[1000 // (k + 1) for k in range(c)],
                                       beta=0.99, lam0=2.0).eval(),
    'dfl': lambda c: DualFocalLoss(gamma=3.0, nu=0.2, beta=0.5, rho=0.5),
    'efl': _efl,
}


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('n,c', SHAPES)
@pytest.mark.parametrize('name', MODULES)
def test_modules_kernel_matches_torch_path(device, n, c, name):
    """Every element-wise module, EFL's statistics and state included, over two steps."""
    pred, labels = _batch(n, c, device)
    pred = pred.float()
    weight = _weight('anchor', n, c, device).float()
    weight[5] = 0  # an ignored anchor
    kernel_module, torch_module = MODULES[name](c).to(device), MODULES[name](c).to(device)
    for step in range(2):
        with dispatch.use_impl('triton'):
            ours = value_and_grad(lambda x: kernel_module(x, labels, weight, avg_factor=5.0),
                                  pred + step, grad_out=_grad_out('mean'))
        with dispatch.use_impl('torch'):
            ref = value_and_grad(lambda x: torch_module(x, labels, weight, avg_factor=5.0),
                                 pred + step, grad_out=_grad_out('mean'))
        torch.testing.assert_close(ours, ref, rtol=2e-5, atol=1e-7)
        torch.testing.assert_close(kernel_module.state_dict(), torch_module.state_dict(),
                                   rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_logits_read_directly(device, dtype):
    """AMP logits: no float32 copy; loss in float32, dL/dx in the logits' dtype."""
    pred, labels = _batch(70, 5, device)
    half = pred.clamp(-60, 60).to(dtype)
    terms = focal_terms_catalogue(5)['everything']
    with dispatch.use_impl('triton'):
        ours = value_and_grad(lambda x: focal_family_loss(x, labels, terms, avg_factor=3.0),
                               half, grad_out=_grad_out('mean'))
    with dispatch.use_impl('torch'):
        ref = value_and_grad(lambda x: focal_family_loss(x, labels, terms, avg_factor=3.0),
                              half.float(), grad_out=_grad_out('mean'))
    assert ours[0].dtype == torch.float32 and ours[1].dtype == dtype
    torch.testing.assert_close(ours[0], ref[0], rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(ours[1], ref[1].to(dtype))


@pytest.mark.parametrize('device', DEVICES)
def test_statistics_summed_across_programs(device):
    """EFL's per-class statistics and the loss sum, reduced over programs of several tiles.

    With C = 300 a tile is 32 rows x 128 classes; 4 row tiles per program and 300 rows make
    three programs per column tile (4 + 4 + 2 tiles, the last one partly masked), whose
    register sums meet in the atomic adds.
    """
    from imbfocal.kernels import common
    with common.use_tiling(common.Tiling(elements=4096, num_warps=8, row_tiles=4)):
        pred, labels = _batch(300, 300, device)
        pred = pred.float()
        weight = _weight('anchor', 300, 300, device).float()
        kernel_module, torch_module = _efl(300).to(device), _efl(300).to(device)
        with dispatch.use_impl('triton'):
            ours = value_and_grad(lambda x: kernel_module(x, labels, weight, avg_factor=9.0),
                                   pred, grad_out=_grad_out('mean'))
        with dispatch.use_impl('torch'):
            ref = value_and_grad(lambda x: torch_module(x, labels, weight, avg_factor=9.0),
                                  pred, grad_out=_grad_out('mean'))
        torch.testing.assert_close(ours, ref, rtol=2e-5, atol=1e-7)
        torch.testing.assert_close(kernel_module.state_dict(), torch_module.state_dict(),
                                   rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('tiling', TILINGS)
@pytest.mark.parametrize('n,c', SHAPES)
def test_every_tiling_matches(device, tiling, n, c):
    """Loss, gradient and EFL statistics do not depend on how the logits are tiled."""
    from imbfocal.kernels import common
    pred, labels = _batch(n, c, device)
    weight = _weight('anchor', n, c, device)
    terms = focal_terms_catalogue(c)['everything']
    ref = value_and_grad(lambda x: reference_loss(x, labels, terms, weight, 'mean', 3.5), pred,
                         grad_out=_grad_out('mean'))
    kernel_module, torch_module = _efl(c).to(device), _efl(c).to(device)
    with dispatch.use_impl('torch'):
        efl_ref = value_and_grad(lambda x: torch_module(x, labels, weight.float(), avg_factor=9.0),
                                  pred.float(), grad_out=_grad_out('mean'))
    with common.use_tiling(common.Tiling.parse(tiling)), dispatch.use_impl('triton'):
        ours = value_and_grad(
            lambda x: focal_family_loss(x, labels, terms, weight.float(), 'mean', 3.5),
            pred.float(), grad_out=_grad_out('mean'))
        efl_ours = value_and_grad(
            lambda x: kernel_module(x, labels, weight.float(), avg_factor=9.0), pred.float(),
            grad_out=_grad_out('mean'))
    torch.testing.assert_close(ours, tuple(r.float() for r in ref), rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(efl_ours, efl_ref, rtol=2e-5, atol=1e-7)
    torch.testing.assert_close(kernel_module.state_dict(), torch_module.state_dict(),
                               rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('name', ['afl', 'dfl_rho'])
def test_small_losses_keep_relative_precision(device, name):
    """``log1p`` of small arguments (AFL's ``A_s``, DFL's regulariser) holds its relative
    precision: per-element losses from about 1e-9 to 10 within 5e-6 of float64, no absolute
    tolerance. (``log(1 + z)`` alone would err by up to 6e-8 / z, 6e-4 at z = 1e-4.)"""
    x = torch.linspace(-20, 8, 2000, dtype=torch.float64).view(-1, 5)
    labels = torch.full((400, ), 5)
    labels[::7] = torch.arange(5).repeat(12)[:len(labels[::7])]
    terms = focal_terms_catalogue(5)[name]
    ref = focal_family_reference(x, labels, terms)
    assert ref.min() < 1e-8 and ref.max() > 1
    with dispatch.use_impl('triton'):
        ours = focal_family_loss(x.float().to(device), labels.to(device), terms,
                                reduction='none')
    torch.testing.assert_close(ours.cpu(), ref.float(), rtol=5e-6, atol=0)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.filterwarnings('ignore:invalid value encountered:RuntimeWarning')  # inf - inf
def test_infinite_and_nan_logits_propagate_as_in_the_reference(device):
    """A logit of +inf for a negative class has an infinite loss (AFL's ``log1p(inf) = inf``,
    DFL's BCE), -inf its limit 0 (the autograd reference reads NaN there: ``0 * inf``); NaN
    stays NaN; the other elements are untouched."""
    x = torch.tensor([[float('inf'), -float('inf'), 0.5], [float('nan'), 1.0, -2.0]],
                     dtype=torch.float64)
    labels = torch.tensor([3, 3])
    for name in ('afl', 'dfl', 'everything'):
        terms = focal_terms_catalogue(3)[name]
        ref = focal_family_reference(x, labels, terms)
        with dispatch.use_impl('triton'):
            ours = focal_family_loss(x.float().to(device), labels.to(device), terms,
                                    reduction='none').cpu()
        assert ref[0, 0] == float('inf') and ours[0, 0] == float('inf'), name
        assert ours[0, 1] == 0 and ours[1, 0].isnan() and ref[1, 0].isnan(), name
        torch.testing.assert_close(ours[1, 1:], ref[1, 1:].float(), rtol=2e-5, atol=1e-7)
        torch.testing.assert_close(ours[0, 2], ref[0, 2].float(), rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize('device', DEVICES)
def test_kernel_reads_labels_outside_the_classes_as_background(device):
    """The losses refuse such labels on weighted anchors; the kernel itself stays safe: a
    label of -1 or C + 3 indexes nothing and counts as background."""
    from imbfocal.kernels.focal import focal_forward
    pred, labels = _batch(70, 5, device)
    pred = pred.float()
    odd = labels.clone()
    odd[2], odd[3] = -1, 8
    background = labels.clone()
    background[2:4] = 5
    with dispatch.use_impl('triton'):
        ours = focal_forward(pred, odd, None, 3.0, True, True)
        ref = focal_forward(pred, background, None, 3.0, True, True)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)

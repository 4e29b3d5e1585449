"""The Triton kernels of the PF loss's per-class sums against the dense float64 reference."""
import pytest
import torch

from imbfocal.losses import ParameterFreeLoss
from imbfocal.losses.fast import dispatch
from imbfocal.losses.parameter_free_loss import parameter_free_loss

from conftest import kernel_devices

DEVICES = kernel_devices()


def _batch(n, c, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64) * 4
    x[0, :3] = torch.tensor([30.0, -30.0, 0.0], dtype=torch.float64)  # p rounds to 1 at 30
    labels = torch.randint(0, c + 1, (n, ), generator=gen)
    weight = torch.rand(n, generator=gen, dtype=torch.float64) * 2
    weight[:4] = 0
    labels[:2] = -1  # ignored anchors may carry any label
    return x.to(device), labels.to(device), weight.to(device)


def _value_and_grad(x, labels, weight, hard, impl, reduction):
    x = x.detach().clone().requires_grad_()
    with dispatch.use_impl(impl):
        loss = parameter_free_loss(x, labels, weight, hard_majority=hard, reduction=reduction)
    upstream = torch.linspace(0.1, 1.0, x.size(1), dtype=x.dtype, device=x.device)
    (grad, ) = torch.autograd.grad(loss, x, upstream if reduction == 'none' else None)
    return loss.detach(), grad


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('n,c', [(70, 5), (37, 300)])
@pytest.mark.parametrize('hard', [False, True])
@pytest.mark.parametrize('reduction', ['none', 'mean'])
@pytest.mark.parametrize('weighted', [False, True])
def test_kernels_match_float64_reference(device, n, c, hard, reduction, weighted):
    x, labels, weight = _batch(n, c, device)
    if not weighted:
        labels = labels.clamp(min=0)
        weight = None
    ours = _value_and_grad(x.float(), labels, None if weight is None else weight.float(), hard,
                           'triton', reduction)
    ref = _value_and_grad(x, labels, weight, hard, 'reference', reduction)
    assert ours[0].dtype == torch.float32
    torch.testing.assert_close(ours, tuple(r.float() for r in ref), rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize('device', DEVICES)
def test_module_and_empty_batch(device):
    x, labels, weight = _batch(70, 5, device)
    module = ParameterFreeLoss(negative='mean', hard_majority=True)
    results = []
    for impl in ('triton', 'torch'):
        logits = x.float().requires_grad_()
        with dispatch.use_impl(impl):
            loss = module(logits, labels, weight.float(), avg_factor=7.0)
        loss.backward()
        results.append((loss.detach(), logits.grad))
    torch.testing.assert_close(results[0], results[1], rtol=2e-5, atol=1e-7)
    empty = torch.zeros(0, 5, device=device, requires_grad=True)
    with dispatch.use_impl('triton'):
        loss = module(empty, torch.zeros(0, dtype=torch.long, device=device))
    loss.backward()
    assert loss.item() == 0 and empty.grad.shape == (0, 5)


@pytest.mark.parametrize('device', DEVICES)
def test_sums_across_programs(device):
    """Three row programs of up to 4 tiles per column tile meet in the atomic adds."""
    from imbfocal.kernels import common
    with common.use_tiling(common.Tiling(elements=4096, num_warps=8, row_tiles=4)):
        x, labels, weight = _batch(300, 300, device)
        ours = _value_and_grad(x.float(), labels, weight.float(), True, 'triton', 'none')
        ref = _value_and_grad(x, labels, weight, True, 'reference', 'none')
        torch.testing.assert_close(ours, tuple(r.float() for r in ref), rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('tiling', ['512x2x2', '2048x8x1', '4096x8x8', '1024x4x32'])
def test_every_tiling_matches(device, tiling):
    """The per-class sums and the gradient do not depend on how the logits are tiled."""
    from imbfocal.kernels import common
    x, labels, weight = _batch(37, 300, device)
    ref = _value_and_grad(x, labels, weight, False, 'reference', 'mean')
    with common.use_tiling(common.Tiling.parse(tiling)):
        ours = _value_and_grad(x.float(), labels, weight.float(), False, 'triton', 'mean')
    torch.testing.assert_close(ours, tuple(r.float() for r in ref), rtol=2e-5, atol=1e-7)

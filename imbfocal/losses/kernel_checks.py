"""The self-checks of the Triton kernels (:mod:`.fast.selfcheck`): for each loss family, a
small deterministic batch through the kernel and through the PyTorch path.

``'focal'`` covers what the focal-family kernel computes for every loss: class-balanced
positive weights through AFL's damping with gradient statistics (CB-focal, AFL, EFL's
statistics), DFL's floor and regulariser, EFL's per-class gamma and class weights, ``'row'``
weights with an unreduced loss; each backward with an incoming gradient of 0.5, so the
in-place scaling kernel runs too. ``'pf'`` covers PF's per-class sums and their gradient,
with and without PFH's hard majority. 67 anchors × 7 classes, logits ``N(0, 4^2)``, labels
cycling through the classes and background, anchor weights in [0, 1).
"""
from typing import Dict, Tuple

import torch
from torch import Tensor

from .fast import selfcheck
from .fast.focal import FocalFamilyFunction
from .fast.parameter_free import ParameterFreeSums
from .focal_family import FocalTerms

N, C = 67, 7  # not a multiple of any tile
Results = Dict[str, Tuple[Tensor, Tensor, str]]


def check_batch(device: torch.device, dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """Logits ``(N, C)`` in ``dtype``, labels ``(N,)`` and anchor weights ``(N, 1)``."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(N, C, generator=gen) * 4).to(device=device, dtype=dtype)
    labels = (torch.arange(N) % (C + 1)).to(device)
    weight = torch.rand(N, 1, generator=gen).to(device)
    return x, labels, weight


def focal_check(device: torch.device, dtype: torch.dtype) -> Results:
    """The focal-family kernel against the chunked PyTorch path (module docstring)."""
    x, labels, weight = check_batch(device, dtype)
    w_c = torch.linspace(0.5, 2.0, C, dtype=torch.float64)
    cases = {
        'class-balanced + damping': (FocalTerms(lam=2.0, positive_weight=w_c), 5.0, True),
        'dual focal': (FocalTerms(alpha=-1.0, nu=0.01, beta=0.01, rho=1.0), 5.0, False),
        'per-class gamma': (FocalTerms(gamma=torch.linspace(2.0, 6.0, C), class_weight=w_c),
                            5.0, True),
        'row weights, unreduced': (FocalTerms(weight_by_label=torch.cat([w_c, w_c.new_ones(1)])),
                                   None, False),
    }
    results: Results = {}
    for name, (terms, divisor, need_stats) in cases.items():
        outputs = []
        for on_kernel in (True, False):
            pred = (x if on_kernel else x.float()).clone().requires_grad_()
            loss, stats = FocalFamilyFunction.apply(pred, labels, weight, terms, divisor,
                                                    need_stats, on_kernel)
            loss.backward(torch.full_like(loss, 0.5))
            outputs.append((loss, pred.grad, stats))
        (k_loss, k_grad, k_stats), (t_loss, t_grad, t_stats) = outputs
        results[f'{name}: loss'] = (k_loss, t_loss, 'loss')
        results[f'{name}: dL/dx'] = (k_grad, t_grad, 'grad')
        if need_stats:
            results[f'{name}: gradient statistics'] = (k_stats, t_stats, 'loss')
    return results


def pf_check(device: torch.device, dtype: torch.dtype) -> Results:
    """PF's per-class sums and their gradient, kernel against PyTorch (float32, as PF's
    kernels always compute)."""
    x, labels, weight = check_batch(device, torch.float32)
    gen = torch.Generator().manual_seed(1)
    grad_pos, grad_neg = (torch.rand(C, generator=gen).to(device) for _ in range(2))
    results: Results = {}
    for hard in (False, True):
        outputs = []
        for on_kernel in (True, False):
            pred = x.clone().requires_grad_()
            pos, neg = ParameterFreeSums.apply(pred, labels, weight.view(-1), hard, on_kernel)
            torch.autograd.backward([pos, neg], [grad_pos, grad_neg])
            outputs.append((pos, neg, pred.grad))
        name = 'PFH' if hard else 'PF'
        for index, part in enumerate(('positive sums', 'negative sums', 'dL/dx')):
            results[f'{name}: {part}'] = (outputs[0][index], outputs[1][index],
                                          'grad' if part == 'dL/dx' else 'loss')
    return results


selfcheck.register('focal', focal_check)
selfcheck.register('pf', pf_check)

"""Helpers and independent oracles shared by the loss and kernel tests."""
from typing import Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from imbfocal.losses import FocalTerms, focal_family_reference
from imbfocal.losses.contract import AvgFactor, broadcast_anchor_weight, reduce_loss


def labelled_batch(n: int, c: int, scale: float = 3.0, dtype: torch.dtype = torch.float32,
                   seed: int = 0) -> Tuple[Tensor, Tensor]:
    """Logits (n, c) and labels cycling through [0, c] (c = background)."""
    gen = torch.Generator().manual_seed(seed)
    pred = (torch.randn(n, c, generator=gen) * scale).to(dtype)
    labels = torch.arange(n) % (c + 1)
    return pred, labels


def extreme_batch(n: int, c: int, dtype: torch.dtype = torch.float64, seed: int = 0,
                  device: str = 'cpu', ignored_label: bool = False) -> Tuple[Tensor, Tensor]:
    """Logits ``N(0, 4^2)`` with -100, 100, 30, -30 in row 0, random labels in [0, c].

    Rows 0 and 1 are positives of classes 0 and 1, so a positive sits at x = -100 and one at
    x = 100; with ``ignored_label`` row 2 carries the label -1 (an ignored anchor).
    """
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, c, generator=gen, dtype=dtype) * 4
    pred[0, :4] = torch.tensor([-100., 100., 30., -30.], dtype=dtype)
    labels = torch.randint(0, c + 1, (n, ), generator=gen)
    labels[:2] = torch.tensor([0, 1])
    if ignored_label:
        labels[2] = -1
    return pred.to(device), labels.to(device)


def anchor_weights(kind: Optional[str], n: int, c: int, dtype: torch.dtype = torch.float64,
                   device: str = 'cpu') -> Optional[Tensor]:
    """Random weights in [0, 1): None, per anchor ``(n,)``, per element ``(n, c)`` or the
    flattened ``(n * c,)`` FSAF form (``kind`` None, 'anchor', 'element', 'flat')."""
    gen = torch.Generator().manual_seed(7)
    weights = {None: None, 'anchor': torch.rand(n, generator=gen, dtype=dtype),
               'element': torch.rand(n, c, generator=gen, dtype=dtype),
               'flat': torch.rand(n * c, generator=gen, dtype=dtype)}[kind]
    return None if weights is None else weights.to(device)


GradOut = Union[None, Tensor, Callable[[Tensor], Tensor]]


def value_and_grad(loss_fn: Callable, pred: Tensor, *args, grad_out: GradOut = None,
                   **kwargs) -> Tuple[Tensor, Tensor]:
    """The loss and its gradient with respect to a fresh copy of ``pred``.

    ``grad_out`` is the upstream gradient: None back-propagates the loss's sum; a callable
    gets the loss and returns it.
    """
    pred = pred.detach().clone().requires_grad_()
    loss = loss_fn(pred, *args, **kwargs)
    upstream = grad_out(loss) if callable(grad_out) else grad_out
    if upstream is None:
        (grad, ) = torch.autograd.grad(loss.sum(), pred)
    else:
        (grad, ) = torch.autograd.grad(loss, pred, upstream)
    return loss.detach(), grad


def random_grad_out(seed: int = 3) -> Callable[[Tensor], Tensor]:
    """An upstream gradient uniform in [0, 1) of the loss's shape."""
    return lambda loss: torch.rand(loss.shape, generator=torch.Generator().manual_seed(seed),
                                   dtype=loss.dtype).to(loss.device)


def reference_loss(pred: Tensor, labels: Tensor, terms: FocalTerms, weight: Optional[Tensor],
                   reduction: str, avg_factor: AvgFactor) -> Tensor:
    """The focal family's autograd reference reduced by MMDetection's ``weight_reduce_loss``."""
    loss = focal_family_reference(pred, labels, terms)
    return reduce_loss(loss, broadcast_anchor_weight(weight, loss), reduction, avg_factor)


def _cycled(values, length: int) -> Tensor:
    return torch.tensor([values[i % len(values)] for i in range(length)])


def focal_terms_catalogue(num_classes: int) -> Dict[str, FocalTerms]:
    """One :class:`FocalTerms` per code path of the focal family, for ``num_classes`` classes.

    Per-class values cycle through fixed lists, so for 5 classes ``gamma_j`` is
    ``[2, 3.5, 1, 10, 2]`` and the weights by label ``a_y`` (background last) are
    ``[2, 0.5, 1.5, 3, 0.2, 0.7]``.
    """
    gamma_j = _cycled([2.0, 3.5, 1.0, 10.0, 2.0], num_classes)
    a_y = _cycled([2.0, 0.5, 1.5, 3.0, 0.2], num_classes + 1)
    a_y[-1] = 0.7
    return {
        'focal': FocalTerms(),
        'focal_no_alpha_gamma0': FocalTerms(gamma=0.0, alpha=-1),
        'focal_gamma1': FocalTerms(gamma=1.0),
        'focal_gamma3': FocalTerms(gamma=3.0),
        'focal_gamma2.5': FocalTerms(gamma=2.5, alpha=0.6),
        'cb': FocalTerms(weight_by_label=a_y),
        'cb_positive': FocalTerms(positive_weight=a_y[:-1] * 2),
        'cb_column': FocalTerms(class_weight=a_y[:-1]),
        'afl': FocalTerms(weight_by_label=a_y, lam=0.8),
        'afl_positive': FocalTerms(positive_weight=a_y[:-1], lam=0.8),
        'dfl': FocalTerms(alpha=-1, nu=0.1, beta=1.0, rho=1.0),
        'dfl_rho': FocalTerms(gamma=3.0, alpha=-1, nu=0.3, beta=0.5, rho=0.25),
        'efl': FocalTerms(gamma=gamma_j, class_weight=gamma_j / 2),
        'everything': FocalTerms(gamma=gamma_j, alpha=0.3, nu=0.2, beta=0.4, rho=0.5, lam=1.5,
                                 class_weight=gamma_j / 2, weight_by_label=a_y,
                                 positive_weight=a_y[:-1] + 1),
    }


# --- oracles: the papers' formulas written out independently of the package ------------------


def dual_focal_loss(pred: Tensor, target: Tensor, gamma: float = 2.0, nu: float = 0.1,
                    beta: float = 1.0, rho: float = 1.0) -> Tensor:
    """``[(1 - p_t)^gamma + nu] * l + beta * (1 - t) * log(1 + p / rho)``, element-wise."""
    p = pred.sigmoid()
    ce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    p_t = p * target + (1 - p) * (1 - target)
    return ((1 - p_t).pow(gamma) + nu) * ce + beta * (1 - target) * torch.log1p(p / rho)


def equalized_focal_loss(pred: Tensor, target: Tensor, gamma_j: Tensor, w_j: Tensor,
                         alpha: float = 0.25) -> Tensor:
    """``alpha_t * w_j * (1 - p_t)^gamma_j * l``, element-wise (``gamma_j``, ``w_j`` fixed)."""
    p = pred.sigmoid()
    ce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return alpha_t * w_j.detach() * (1 - p_t).pow(gamma_j.detach()) * ce


def equalized_focal_loss_grad(pred: Tensor, target: Tensor, gamma_j: Tensor, w_j: Tensor,
                              alpha: float = 0.25) -> Tensor:
    """Analytic ``d EFL / d x`` of :func:`equalized_focal_loss`.

    With ``q = 1 - p_t``, ``dq/dx = -(2t - 1) p (1 - p)`` and ``dl/dx = p - t``::

        dEFL/dx = alpha_t * w_j * q^gamma_j * [(p - t) - gamma_j (2t - 1) l p(1 - p) / q]

    ``p (1 - p) / q`` is ``p`` for ``t = 1`` and ``1 - p`` for ``t = 0``; where ``q`` is
    exactly 0 the factor ``q^gamma_j`` makes the derivative 0, its limit.
    """
    p = pred.sigmoid()
    ce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    q = 1 - (p * target + (1 - p) * (1 - target))
    sigmoid_over_q = p * (1 - p) / q.clamp(min=torch.finfo(q.dtype).tiny)
    grad = q.pow(gamma_j) * ((p - target) - gamma_j * (2 * target - 1) * ce * sigmoid_over_q)
    return (alpha * target + (1 - alpha) * (1 - target)) * w_j * grad

"""Helpers shared by the loss tests."""
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor

from imbfocal.losses import FocalTerms


def labelled_batch(n: int, c: int, scale: float = 3.0, dtype: torch.dtype = torch.float32,
                   seed: int = 0) -> Tuple[Tensor, Tensor]:
    """Logits (n, c) and labels cycling through [0, c] (c = background)."""
    gen = torch.Generator().manual_seed(seed)
    pred = (torch.randn(n, c, generator=gen) * scale).to(dtype)
    labels = torch.arange(n) % (c + 1)
    return pred, labels


def value_and_grad(loss_fn: Callable, pred: Tensor, *args, **kwargs) -> Tuple[Tensor, Tensor]:
    """The loss and the gradient of its sum with respect to a fresh copy of ``pred``."""
    pred = pred.detach().clone().requires_grad_()
    loss = loss_fn(pred, *args, **kwargs)
    (grad, ) = torch.autograd.grad(loss.sum(), pred)
    return loss.detach(), grad


def _cycled(values, length: int) -> Tensor:
    return torch.tensor([values[i % len(values)] for i in range(length)])


def focal_terms_catalogue(num_classes: int) -> Dict[str, FocalTerms]:
    """One :class:`FocalTerms` per code path of the focal family, for ``num_classes`` classes.

    Per-class values cycle through fixed lists, so for 5 classes ``gamma_j`` is
    ``[2, 3.5, 1, 10, 2]`` and the label weights ``a_y`` (background last) are
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
        'cb': FocalTerms(label_weight=a_y),
        'afl': FocalTerms(label_weight=a_y, lam=0.8),
        'dfl': FocalTerms(alpha=-1, nu=0.1, beta=1.0, rho=1.0),
        'dfl_rho': FocalTerms(gamma=3.0, alpha=-1, nu=0.3, beta=0.5, rho=0.25),
        'efl': FocalTerms(gamma=gamma_j, class_weight=gamma_j / 2),
        'everything': FocalTerms(gamma=gamma_j, alpha=0.3, nu=0.2, beta=0.4, rho=0.5, lam=1.5,
                                 class_weight=gamma_j / 2, label_weight=a_y),
    }

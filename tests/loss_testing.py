"""Helpers shared by the loss tests."""
from typing import Callable, Tuple

import torch
from torch import Tensor


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

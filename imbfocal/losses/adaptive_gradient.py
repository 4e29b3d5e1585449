"""The Adaptive Gradient Function of Adaptive Focal Loss and its schedule, in one place.

Su, Adam and Nasrudin, "Adaptive Focal Loss for Keypoint-Based Deep Learning Detectors
Addressing Class Imbalance", IEEE Access 13, 2025,
https://ieeexplore.ieee.org/document/10872927/. Only the abstract is public; it describes "an
Adaptive Gradient Function ... designed to mitigate the impact of large gradients during the
early stages of training". This project's reconstruction (NOT the authors' formula)::

    A_s(L) = log(1 + lam_s * L) / lam_s        (the identity when lam_s = 0)
    lam_s  = lam0 * (1 - s),    s = min(1, iter / T)

with ``T`` a fixed number of iterations, or a fraction of the run's iterations.

applied element-wise; ``dA_s/dL = 1 / (1 + lam_s * L)`` damps the largest per-element losses
early in training and fades to 1 as ``s`` reaches 1. The fast paths compute ``A_s`` fused
(``FocalTerms.lam``); :func:`adaptive_gradient_function` is the reference they are held to.
"""
from typing import Optional, Union

import torch
from mmengine.logging import MessageHub
from torch import Tensor

from .state_logging import training_under_runner


def adaptive_gradient_function(loss: Tensor, lam_s: Union[float, Tensor]) -> Tensor:
    """Element-wise ``A_s(L) = log(1 + lam_s * L) / lam_s``; the identity where ``lam_s = 0``.

    Args:
        loss: Non-negative element-wise loss ``L``.
        lam_s: Non-negative damping strength, a float or a scalar tensor.

    Returns:
        ``A_s(L)`` of ``loss``'s shape and dtype; its gradient is ``1 / (1 + lam_s * L)``.
    """
    lam_s = torch.as_tensor(lam_s, dtype=loss.dtype, device=loss.device)
    # Dividing by a clamped lam_s keeps the unused branch (and its gradient) finite at 0.
    lam_safe = lam_s.clamp(min=torch.finfo(loss.dtype).tiny)
    return torch.where(lam_s > 0, torch.log1p(lam_safe * loss) / lam_safe, loss)


def damping_strength(lam0: float, iteration: int, horizon: Optional[int]) -> float:
    """``lam_s = lam0 * (1 - s)`` with ``s = min(1, iteration / horizon)``; ``s = 1`` for a
    horizon of 0, ``s = 0`` for an unknown (None) horizon."""
    if horizon is None:
        return lam0
    progress = 1.0 if horizon == 0 else min(1.0, iteration / horizon)
    return lam0 * (1 - progress)


def running_train_iter() -> Optional[int]:
    """The runner's iteration while an MMEngine train loop is running, else None.

    ``RuntimeInfoHook`` sets ``loop_stage='train'`` in ``before_train`` (and back after each
    validation) and pops it in ``after_train``, so a message hub left over from a finished run
    does not count.
    """
    if not training_under_runner():
        return None
    return MessageHub.get_current_instance().get_info('iter')


def running_max_iters() -> Optional[int]:
    """The run's total iterations while an MMEngine train loop is running, else None."""
    if not training_under_runner():
        return None
    return MessageHub.get_current_instance().get_info('max_iters')

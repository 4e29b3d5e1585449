"""Dual Focal Loss (DFL) for sigmoid (one-vs-all) classification heads.

Hossain, Paplinski and Betts, "Adaptive Class Weight based Dual Focal Loss for Improved Semantic
Segmentation" (abstract only: ``shared/seeds/000``). The formula below is this project's
reconstruction from that abstract, not the authors' formula.
"""
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ..registry import register
from .class_balanced_focal_loss import (as_float32, broadcast_anchor_weight, reduce_loss,
                                        resolve_reduction)
from .utils import labels_to_targets


def check_gamma(gamma: float, name: str = 'gamma') -> None:
    """Reject focusing parameters whose modulating factor has an infinite derivative.

    ``d(1 - p_t)^gamma / dp_t`` is unbounded at ``p_t = 1`` when ``0 < gamma < 1``; a saturated
    logit (``|x|`` around 17 or more in float32 makes ``p_t`` exactly 1) then turns the
    gradient into NaN. ``gamma = 0`` (no focusing) and ``gamma >= 1`` stay finite everywhere.

    Raises:
        ValueError: If ``gamma < 0`` or ``0 < gamma < 1``.
    """
    if gamma < 0 or 0 < gamma < 1:
        raise ValueError(f'{name} must be 0 or at least 1, got {gamma}: for 0 < {name} < 1 the '
                         f'derivative of (1 - p_t)^{name} is infinite at p_t = 1, so saturated '
                         'logits give NaN gradients')


def check_sigmoid(use_sigmoid: bool, loss_name: str) -> None:
    """Raise a clear error for ``use_sigmoid=False``: these losses are one-vs-all only."""
    if not use_sigmoid:
        raise ValueError(f'{loss_name} is defined for sigmoid (one-vs-all) heads only: set '
                         'use_sigmoid=True (a softmax head needs a softmax loss)')


class ElementwiseSigmoidLoss(nn.Module):
    """MMDetection's loss contract around an element-wise sigmoid loss of shape ``(N, C)``.

    ``forward`` turns labels into targets, computes :meth:`elementwise` in float32 (float64
    input stays float64) with autocast disabled, weights and reduces it through MMDetection's
    ``weight_reduce_loss`` (the weight broadcast as in its ``FocalLoss``; the mean of an empty
    loss is 0, not NaN) and applies ``loss_weight`` last.

    Args:
        use_sigmoid: Must be True (heads read it from the config); False raises ValueError.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier applied to the reduced loss.
    """

    def __init__(self, use_sigmoid: bool, reduction: str, loss_weight: float) -> None:
        super().__init__()
        check_sigmoid(use_sigmoid, type(self).__name__)
        self.use_sigmoid = True
        self.reduction = reduction
        self.loss_weight = loss_weight

    def elementwise(self, pred: Tensor, target: Tensor, weight: Optional[Tensor]) -> Tensor:
        """The unreduced, unweighted loss ``(N, C)`` from logits and targets ``(N, C)``.

        ``weight`` (broadcastable to ``(N, C)``, or None) is given for losses that keep
        statistics; it is applied afterwards by ``forward``.
        """
        raise NotImplementedError

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[int, float, Tensor]] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: Logits ``(N, C)``.
            target: Integer labels ``(N,)`` with background ``= C``, or targets ``(N, C)``.
            weight: Per-anchor ``(N,)`` or per-element ``(N, C)`` / ``(N * C,)`` weights.
            avg_factor: Divisor of the summed loss for ``reduction='mean'``.
            reduction_override: Replaces ``self.reduction`` for this call.

        Returns:
            The loss, times ``loss_weight``.
        """
        reduction = resolve_reduction(self.reduction, reduction_override)
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred = as_float32(pred)
            target = labels_to_targets(pred, target)
            weight = broadcast_anchor_weight(weight, pred)
            loss = reduce_loss(self.elementwise(pred, target, weight), weight, reduction,
                               avg_factor)
        return self.loss_weight * loss


def dual_focal_loss(pred: Tensor,
                    target: Tensor,
                    gamma: float = 2.0,
                    nu: float = 0.1,
                    beta: float = 1.0,
                    rho: float = 1.0) -> Tensor:
    """Element-wise Dual Focal Loss on logits, no reduction.

    ``DFL = [(1 - p_t)^gamma + nu] * l + beta * (1 - t) * log(1 + p / rho)`` with
    ``p = sigmoid(x)``, ``p_t = t * p + (1 - t) * (1 - p)`` and ``l = BCE(x, t)`` in the stable
    softplus form. The regulariser uses ``log1p`` of a sigmoid probability, so it is finite
    (between 0 and ``beta * log(1 + 1 / rho)``) for every logit.

    Args:
        pred: Logits ``x`` of shape ``(N, C)``.
        target: Targets ``t`` in [0, 1] of the same shape (see ``labels_to_targets``).
        gamma: Focusing parameter (0, or at least 1).
        nu: Constant added to the modulating factor, so easy examples keep a fraction ``nu``
            of their cross-entropy.
        beta: Weight of the false-class regulariser.
        rho: Scale of the regulariser, ``rho > 0``.

    Returns:
        The loss of shape ``(N, C)``.
    """
    p = pred.sigmoid()
    ce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    p_t = p * target + (1 - p) * (1 - target)
    loss = ((1 - p_t).pow(gamma) + nu) * ce
    return loss + beta * (1 - target) * torch.log1p(p / rho)


@register(MODELS)
class DualFocalLoss(ElementwiseSigmoidLoss):
    """Dual Focal Loss for sigmoid heads (project reconstruction of Hossain et al.).

    Paper (abstract): Hossain, Paplinski and Betts, "Adaptive Class Weight based Dual Focal
    Loss for Improved Semantic Segmentation". The abstract describes focal scaling of true and
    false classes with equal importance plus a Dual-Cross-Entropy-style regulariser on false
    classes against vanishing gradients; it gives no formula. This project implements::

        DFL = [(1 - p_t)^gamma + nu] * l + beta * (1 - t) * log(1 + p / rho)

    which is **our reconstruction, not the authors' formula**. In a sigmoid head every class is
    its own binary problem, so ``(1 - p_t)^gamma`` already scales true (``t = 1``) and false
    (``t = 0``) classes alike; ``nu`` keeps a floor of plain cross-entropy; the regulariser
    penalises probability on false classes with a slope ``d/dp = beta / (rho + p)`` that never
    falls below ``beta / (rho + 1)``, so the push on a confident false class does not fade as
    ``p -> 1``. With ``nu = beta = 0`` it is focal loss without ``alpha``.

    The paper's learnable scaling parameter is not offered: for every example the loss
    decreases monotonically in ``gamma`` (``(1 - p_t)^gamma`` with ``0 <= 1 - p_t <= 1``), so
    gradient descent on ``gamma`` would only drive it to whatever bound it is given.

    Args:
        use_sigmoid: Must be True (heads read it from the config); False raises ValueError.
        gamma: Focusing parameter, 0 or at least 1. Defaults to 2.
        nu: Constant added to the modulating factor. Defaults to 0.1.
        beta: Weight of the false-class regulariser. Defaults to 1.
        rho: Scale of the regulariser, positive. Defaults to 1.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier applied to the reduced loss. Defaults to 1.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 nu: float = 0.1,
                 beta: float = 1.0,
                 rho: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid, reduction, loss_weight)
        check_gamma(gamma)
        if rho <= 0:
            raise ValueError(f'rho must be positive, got {rho}')
        self.gamma = gamma
        self.nu = nu
        self.beta = beta
        self.rho = rho

    def elementwise(self, pred: Tensor, target: Tensor, weight: Optional[Tensor]) -> Tensor:
        """Element-wise DFL, see :func:`dual_focal_loss`."""
        return dual_focal_loss(pred, target, self.gamma, self.nu, self.beta, self.rho)

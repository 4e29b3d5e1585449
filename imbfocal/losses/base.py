"""MMDetection's loss contract, once, for every element-wise sigmoid loss of the focal family."""
from typing import Optional

import torch
from torch import Tensor, nn

from . import fused
from .focal_loss import FocalTerms, focal_family_loss
from .utils import (AvgFactor, as_float32, broadcast_anchor_weight, check_label_shape,
                    check_reduction, check_sigmoid, labels_to_targets, reduce_loss,
                    resolve_reduction)


class ElementwiseSigmoidLoss(nn.Module):
    """MMDetection's loss contract around an element-wise sigmoid loss of shape ``(N, C)``.

    A subclass describes its loss by :meth:`focal_terms` (a :class:`FocalTerms`, read once per
    forward). ``forward`` computes it in float32 (float64 input stays float64) with autocast
    disabled: from integer labels through the fused Function (:mod:`imbfocal.losses.fused`:
    loss and analytic gradient in one pass, no ``(N, C)`` targets), else (one-hot / soft
    targets, or ``fused.use_impl('reference')``) through the autograd reference
    :func:`focal_family_loss` and MMDetection's ``weight_reduce_loss``. Both weight as
    MMDetection's ``FocalLoss`` does (``(N,)``, ``(N, C)`` or flattened ``(N * C,)``), give 0
    for the mean of an empty loss (not NaN), and ``loss_weight`` is applied last.

    A subclass that keeps gradient statistics (Equalized Focal Loss) sets
    ``tracks_gradients`` and implements :meth:`reference_grad_stats` and
    :meth:`accumulate_grad_stats`; they are collected in training mode only.

    Args:
        use_sigmoid: Must be True (heads read it from the config); False raises ValueError.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier applied to the reduced loss.
    """

    tracks_gradients = False

    def __init__(self, use_sigmoid: bool, reduction: str, loss_weight: float) -> None:
        super().__init__()
        check_sigmoid(use_sigmoid, type(self).__name__)
        self.use_sigmoid = True
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def focal_terms(self, num_classes: int) -> FocalTerms:
        """The loss's parameters for logits with ``num_classes`` classes, for this forward."""
        raise NotImplementedError

    def reference_grad_stats(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                             terms: FocalTerms) -> Tensor:
        """``(2, C)`` sums of ``|dL/dx|`` over ``t = 1`` and ``t = 0`` (targets ``(N, C)``)."""
        raise NotImplementedError

    def accumulate_grad_stats(self, stats: Tensor) -> None:
        """Take this step's ``(2, C)`` gradient statistics into the module's state."""
        raise NotImplementedError

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: AvgFactor = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: Logits ``(N, C)``.
            target: Integer labels ``(N,)`` with background ``= C``, or targets ``(N, C)``.
            weight: Per-anchor ``(N,)`` or per-element ``(N, C)`` / ``(N * C,)`` weights.
            avg_factor: Divisor of the summed loss for ``reduction='mean'``.
            reduction_override: Replaces ``self.reduction`` for this call.

        Returns:
            The loss, times ``loss_weight``: float32 (float64 for float64 input).
        """
        reduction = resolve_reduction(self.reduction, reduction_override)
        if pred.dim() != 2:
            raise ValueError(f'{type(self).__name__} expects logits of shape (N, C), got '
                             f'{tuple(pred.shape)}')
        check_label_shape(pred, target)
        terms = self.focal_terms(pred.size(1))
        track = self.tracks_gradients and self.training
        with torch.autocast(device_type=pred.device.type, enabled=False):
            weight = broadcast_anchor_weight(weight, pred)
            if fused.get_impl() != 'reference' and fused.fusable(pred, target, weight, terms):
                # upcasts half logits itself, unless the kernel reads them directly
                result = fused.fused_focal_loss(pred, target, terms, weight, reduction,
                                                avg_factor, return_grad_stats=track)
                loss, stats = result if track else (result, None)
            else:
                pred = as_float32(pred)
                loss = reduce_loss(focal_family_loss(pred, target, terms), weight, reduction,
                                   avg_factor)
                stats = None
                if track:
                    stats = self.reference_grad_stats(pred.detach(),
                                                      labels_to_targets(pred, target), weight,
                                                      terms)
            if stats is not None:
                self.accumulate_grad_stats(stats)
        return self.loss_weight * loss

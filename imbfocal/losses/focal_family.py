"""The focal family: every element-wise sigmoid loss of this package as one formula.

Focal loss: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017,
https://arxiv.org/abs/1708.02002. With logits ``x``, ``p = sigmoid(x)``, targets ``t``,
``p_t = t p + (1 - t)(1 - p)``, ``alpha_t = alpha t + (1 - alpha)(1 - t)`` and ``l`` the
binary cross-entropy::

    L_ic = A_s(a_{y_i} * w_c * v_c^t_ic * L0_ic)
    L0   = alpha_t * ((1 - p_t)^gamma_c + nu) * l + beta * (1 - t) * log(1 + p / rho)

``A_s`` is the Adaptive Gradient Function (:mod:`.adaptive_gradient`); ``v_c`` weighs the
positive (``t = 1``) element of class ``c`` only. A loss is its :class:`FocalTerms`:

=============================== =============================================================
loss                            FocalTerms
=============================== =============================================================
focal (MMDetection FocalLoss)   ``FocalTerms(gamma, alpha)``
ClassBalancedFocalLoss          ``positive_weight=w_c`` (``weighting='positive'``),
                                ``class_weight=w_c`` (``'column'``) or
                                ``weight_by_label=[w_0 .. w_{C-1}, bg_weight]`` (``'row'``)
AdaptiveFocalLoss               as class-balanced, plus ``lam=lam_s``
DualFocalLoss                   ``alpha=-1, nu, beta, rho``
EqualizedFocalLoss              ``gamma=gamma_j`` ``(C,)``, ``class_weight=w_j`` ``(C,)``
=============================== =============================================================

:func:`focal_family_loss` computes any of them, reduced as MMDetection does: from integer
labels through the fast path (:mod:`.fast.focal`, loss and gradient in one pass), else through
the autograd reference :func:`focal_family_reference`, which the fast paths are tested against.
"""
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .adaptive_gradient import adaptive_gradient_function
from .contract import (
    AvgFactor,
    ClassificationLoss,
    as_float32,
    broadcast_anchor_weight,
    check_label_shape,
    check_reduction,
    check_sigmoid,
    check_target_values,
    labels_to_targets,
    no_autocast,
    reduce_loss,
    reduction_divisor,
)
from .fast import dispatch
from .fast.focal import FocalFamilyFunction, applies


@dataclass(frozen=True)
class FocalTerms:
    """The parameters of one loss of the focal family (see the module docstring).

    Attributes:
        gamma: Focusing parameter ``gamma``, a float or per class ``(C,)``. Defaults to 2.
        alpha: ``alpha`` of ``alpha_t``; negative disables ``alpha_t``. Defaults to 0.25.
        nu: Constant added to the modulating factor. Defaults to 0.
        beta: Weight of the false-class regulariser ``(1 - t) * log(1 + p / rho)``.
            Defaults to 0.
        rho: Scale of the regulariser. Defaults to 1.
        lam: Adaptive Gradient Function strength ``lam_s``; 0 is the identity. Defaults to 0.
        class_weight: Per-class ``w_c`` ``(C,)``, or None. Defaults to None.
        weight_by_label: ``a_y`` ``(C + 1,)``, the weight of every term of an anchor indexed by
            the anchor's label ``y`` (background last), or None. Defaults to None.
        positive_weight: Per-class ``v_c`` ``(C,)``, the weight of the positive (``t = 1``)
            element of class ``c`` only, or None. Defaults to None.
    """
    gamma: Union[float, Tensor] = 2.0
    alpha: float = 0.25
    nu: float = 0.0
    beta: float = 0.0
    rho: float = 1.0
    lam: float = 0.0
    class_weight: Optional[Tensor] = None
    weight_by_label: Optional[Tensor] = None
    positive_weight: Optional[Tensor] = None


def focal_core(pred: Tensor,
               target: Tensor,
               gamma: Union[float, Tensor] = 2.0,
               alpha: float = 0.25,
               nu: float = 0.0,
               beta: float = 0.0,
               rho: float = 1.0) -> Tensor:
    """Element-wise ``L0 = alpha_t ((1 - p_t)^gamma + nu) l + beta (1 - t) log1p(p / rho)``.

    ``l = BCE(x, t)`` in the stable softplus form, so logits in [-100, 100] stay finite.

    Args:
        pred: Logits ``x`` of shape ``(N, C)``.
        target: Targets ``t`` in [0, 1] of the same shape.
        gamma: Focusing parameter; a float, or a tensor broadcastable to ``(N, C)`` such as
            per-class values ``(C,)``. Defaults to 2.
        alpha: Weight of the positive term; a negative value disables ``alpha_t``.
            Defaults to 0.25.
        nu: Constant added to the modulating factor. Defaults to 0.
        beta: Weight of the false-class regulariser. Defaults to 0.
        rho: Scale of the regulariser, ``rho > 0``. Defaults to 1.

    Returns:
        The loss of shape ``(N, C)``.
    """
    p = pred.sigmoid()
    ce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    p_t = p * target + (1 - p) * (1 - target)
    modulator = (1 - p_t).pow(gamma)
    if nu:
        modulator = modulator + nu
    loss = ce * modulator
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    if beta:
        loss = loss + beta * (1 - target) * torch.log1p(p / rho)
    return loss


def anchor_labels(target: Tensor, num_classes: int) -> Tensor:
    """Each anchor's class ``y_i`` in ``[0, C]`` (``C`` = background).

    Integer labels pass through. For targets ``(N, C)`` (one-hot or soft), ``y_i`` is the
    argmax of a row with a positive entry, and an all-zero row is background.
    """
    if target.dim() == 2:
        is_pos = target.gt(0).any(dim=1)
        return torch.where(is_pos, target.argmax(dim=1), num_classes)
    return target


def focal_family_reference(pred: Tensor, target: Tensor, terms: FocalTerms) -> Tensor:
    """Element-wise ``L = A_s(a_{y_i} * w_c * v_c^t * L0)`` via autograd, no reduction (the
    reference). A soft target ``t`` weighs its element by ``t * v_c + (1 - t)``.

    Args:
        pred: Logits ``(N, C)``.
        target: Labels ``(N,)`` with background ``C``, or targets ``(N, C)`` in [0, 1].
        terms: The loss's parameters.

    Returns:
        The loss ``(N, C)`` in ``pred``'s dtype.
    """
    t = labels_to_targets(pred, target)
    loss = focal_core(pred, t, terms.gamma, terms.alpha, terms.nu, terms.beta, terms.rho)
    if terms.class_weight is not None:
        loss = terms.class_weight.to(pred.dtype) * loss
    if terms.weight_by_label is not None:
        a_y = terms.weight_by_label.to(pred.dtype)[anchor_labels(target, pred.size(1))]
        loss = loss * a_y.unsqueeze(1)
    if terms.positive_weight is not None:
        loss = loss * (t * terms.positive_weight.to(pred.dtype) + (1 - t))
    if terms.lam:
        loss = adaptive_gradient_function(loss, terms.lam)
    return loss


def check_focal_inputs(pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                       name: str = 'focal_family_loss') -> None:
    """Raise a ValueError unless ``pred`` is ``(N, C)``, ``target`` labels in ``[0, C]`` or
    targets in [0, 1] of ``pred``'s shape, and ``weight`` non-negative."""
    if pred.dim() != 2:
        raise ValueError(f'{name} expects logits of shape (N, C), got {tuple(pred.shape)}')
    check_label_shape(pred, target)
    check_target_values(pred, target, broadcast_anchor_weight(weight, pred))


def focal_family_loss(pred: Tensor,
                      target: Tensor,
                      terms: FocalTerms = FocalTerms(),
                      weight: Optional[Tensor] = None,
                      reduction: str = 'mean',
                      avg_factor: AvgFactor = None,
                      return_grad_stats: bool = False
                      ) -> Union[Tensor, Tuple[Tensor, Optional[Tensor]]]:
    """A focal-family loss of logits, reduced as MMDetection's ``FocalLoss``.

    ``L_ic = u_ic * A_s(a_{y_i} * w_c * L0_ic)`` with ``u`` the ``weight``, then ``'none'``:
    ``(N, C)``; ``'sum'``: the sum; ``'mean'``: the sum over ``avg_factor + eps`` if given,
    else the mean over the ``N * C`` elements (0 for no elements). Computed in float32
    (float64 stays float64) with autocast disabled.

    Args:
        pred: Logits ``(N, C)``.
        target: Integer labels ``(N,)`` in ``[0, C]`` with background ``C`` (an anchor of
            weight 0 may carry any label), or targets ``(N, C)`` in [0, 1]; anything else
            raises ``ValueError``.
        terms: The loss's parameters. Defaults to focal loss (gamma 2, alpha 0.25).
        weight: Anchor weights ``(N,)``, or per element ``(N, C)`` / ``(N * C,)``.
            Defaults to None.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        avg_factor: Divisor of the summed loss for ``'mean'``. Defaults to None.
        return_grad_stats: Also return the ``(2, C)`` per-class sums of ``|dL/dx|`` (before
            the reduction's divisor) over the ``t = 1`` and ``t = 0`` elements, the
            statistics of Equalized Focal Loss. Defaults to False.

    Returns:
        The loss, and the statistics if asked for.
    """
    check_reduction(reduction)
    check_focal_inputs(pred, target, weight)
    with no_autocast(pred):
        loss, stats = _compute(pred, target, terms, weight, reduction, avg_factor,
                               return_grad_stats)
    return (loss, stats) if return_grad_stats else loss


def _compute(pred: Tensor, target: Tensor, terms: FocalTerms, weight: Optional[Tensor],
             reduction: str, avg_factor: AvgFactor,
             need_stats: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """:func:`focal_family_loss` on checked inputs with autocast off: the fast path or the
    reference."""
    weight = broadcast_anchor_weight(weight, pred)
    if (not target.is_floating_point() and dispatch.get_impl() != 'reference'
            and applies(weight, terms)):
        on_kernel = dispatch.use_kernel(pred, 'focal')  # the kernel reads half logits directly
        divisor = reduction_divisor(pred.numel(), reduction, avg_factor)
        loss, stats = FocalFamilyFunction.apply(pred if on_kernel else as_float32(pred), target,
                                                weight, terms, divisor, need_stats, on_kernel)
        return loss, stats if need_stats else None
    pred = as_float32(pred)
    loss = reduce_loss(focal_family_reference(pred, target, terms), weight, reduction,
                       avg_factor)
    stats = _reference_grad_stats(pred, target, terms, weight) if need_stats else None
    return loss, stats


def _reference_grad_stats(pred: Tensor, target: Tensor, terms: FocalTerms,
                          weight: Optional[Tensor]) -> Tensor:
    """``(2, C)``: ``sum_i |u_ic dL_ic/dx_ic|`` weighted by ``t`` and by ``1 - t``.

    ``L_ic`` depends on ``x_ic`` alone, so the gradient of the summed reference loss is the
    element-wise derivative; a soft target splits an element's magnitude into ``t`` and
    ``1 - t`` shares.
    """
    x = pred.detach().requires_grad_()
    with torch.enable_grad():
        (grad, ) = torch.autograd.grad(focal_family_reference(x, target, terms).sum(), x)
    grad = grad.abs()
    if weight is not None:
        grad = grad * weight.abs().to(grad.dtype)
    t = labels_to_targets(pred, target)
    return torch.stack([(grad * t).sum(0), (grad * (1 - t)).sum(0)])


class FocalFamilyLoss(ClassificationLoss):
    """Base module of the element-wise sigmoid losses: MMDetection's contract around
    :func:`focal_family_loss`.

    A subclass describes its loss by :meth:`focal_terms`, read once per forward. A subclass
    that keeps gradient statistics (Equalized Focal Loss) sets ``tracks_gradients`` and
    implements :meth:`accumulate_grad_stats`, called in training mode only, after the loss
    has been computed with the current state, with the factor that turns the statistics into
    the gradient as back-propagated (``loss_weight`` over the reduction's divisor).

    Args:
        use_sigmoid: Must be True (heads read it from the config); False raises ValueError.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier applied to the reduced loss, last.
    """

    tracks_gradients = False

    def __init__(self, use_sigmoid: bool, reduction: str, loss_weight: float) -> None:
        super().__init__(reduction, loss_weight)
        check_sigmoid(use_sigmoid, type(self).__name__)
        self.use_sigmoid = True

    def focal_terms(self, num_classes: int) -> FocalTerms:
        """The loss's parameters for logits with ``num_classes`` classes, for this forward."""
        raise NotImplementedError

    def accumulate_grad_stats(self, stats: Tensor, backprop_scale: Union[float, Tensor]) -> None:
        """Take this step's ``(2, C)`` gradient statistics (before the reduction's divisor and
        ``loss_weight``; times ``backprop_scale``, the gradient as back-propagated) into the
        module's state."""
        raise NotImplementedError

    def loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """:func:`focal_family_loss` with this module's terms."""
        check_focal_inputs(pred, target, weight, type(self).__name__)
        track = self.tracks_gradients and self.training
        loss, stats = _compute(pred, target, self.focal_terms(pred.size(1)), weight, reduction,
                               avg_factor, track)
        if track:
            divisor = reduction_divisor(pred.numel(), reduction, avg_factor)
            divisor = 1 if divisor is None else divisor
            self.accumulate_grad_stats(stats, self.loss_weight / divisor)
        return loss

"""Reference (pure PyTorch, autograd) maths of the element-wise sigmoid focal family.

Focal loss: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017,
https://arxiv.org/abs/1708.02002. Every element-wise sigmoid loss of this package is one
instance of

    L_ic = A_s(c_ic * L0_ic),    c_ic = a_{y_i} * w_c,
    L0   = alpha_t * ((1 - p_t)^gamma_c + nu) * l + beta * (1 - t) * log(1 + p / rho)

(focal: ``a = w = 1``, ``nu = beta = 0``; class-balanced focal: ``a_y = w_y`` with ``bg_weight``
for background; Adaptive Focal: ``A_s(L) = log(1 + lam_s L) / lam_s``; Dual Focal: no
``alpha_t``; Equalized Focal: per-class ``gamma_c`` and ``w_c``), described by
:class:`FocalTerms`. :func:`focal_family_loss` is the reference the fused path
(:mod:`imbfocal.losses.fused`) is tested against.
"""
from dataclasses import dataclass
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .utils import labels_to_targets


def focal_core(pred: Tensor,
               target: Tensor,
               gamma: Union[float, Tensor] = 2.0,
               alpha: float = 0.25,
               nu: float = 0.0,
               beta: float = 0.0,
               rho: float = 1.0) -> Tensor:
    """Element-wise ``L0 = alpha_t * ((1 - p_t)^gamma + nu) * l + beta * (1 - t) * log1p(p / rho)``.

    With ``p = sigmoid(x)``, ``p_t = t * p + (1 - t) * (1 - p)``,
    ``alpha_t = alpha * t + (1 - alpha) * (1 - t)`` (1 if ``alpha < 0``) and ``l = BCE(x, t)``
    in the stable softplus form, so logits in [-100, 100] stay finite.

    Args:
        pred: Logits ``x`` of shape ``(N, C)``.
        target: Targets ``t`` in [0, 1] of the same shape (see ``labels_to_targets``).
        gamma: Focusing parameter; a float, or a tensor broadcastable to ``(N, C)`` such as
            per-class values of shape ``(C,)``.
        alpha: Weight of the positive term; a negative value disables ``alpha_t``.
        nu: Constant added to the modulating factor (Dual Focal Loss).
        beta: Weight of the false-class regulariser (Dual Focal Loss).
        rho: Scale of the regulariser, ``rho > 0``.

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


def sigmoid_focal_loss(pred: Tensor,
                       target: Tensor,
                       gamma: Union[float, Tensor] = 2.0,
                       alpha: float = 0.25) -> Tensor:
    """Element-wise sigmoid focal loss ``alpha_t * (1 - p_t)^gamma * BCE(x, t)``, no reduction.

    See :func:`focal_core` (this is it with ``nu = beta = 0``).
    """
    return focal_core(pred, target, gamma, alpha)


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


def anchor_labels(target: Tensor, num_classes: int) -> Tensor:
    """Each anchor's class ``y_i`` in ``[0, C]`` (``C`` = background).

    Integer labels pass through. For targets ``(N, C)`` (one-hot or soft), ``y_i`` is the
    argmax of a row with a positive entry, and an all-zero row is background.
    """
    if target.dim() == 2:
        is_pos = target.gt(0).any(dim=1)
        return torch.where(is_pos, target.argmax(dim=1), num_classes)
    return target


@dataclass(frozen=True)
class FocalTerms:
    """The parameters of one element-wise loss of the focal family (see the module docstring).

    Attributes:
        gamma: Focusing parameter ``gamma``, a float or per-class ``(C,)``.
        alpha: ``alpha`` of ``alpha_t``; negative disables ``alpha_t``.
        nu: Constant added to the modulating factor.
        beta: Weight of the false-class regulariser ``(1 - t) * log(1 + p / rho)``.
        rho: Scale of the regulariser.
        lam: Adaptive Gradient Function strength ``lam_s``; 0 is the identity.
        class_weight: Per-class ``w_c`` ``(C,)``, or None.
        label_weight: Per-anchor-class ``a_y`` ``(C + 1,)`` indexed by the anchor's label
            (background last), or None.
    """
    gamma: Union[float, Tensor] = 2.0
    alpha: float = 0.25
    nu: float = 0.0
    beta: float = 0.0
    rho: float = 1.0
    lam: float = 0.0
    class_weight: Optional[Tensor] = None
    label_weight: Optional[Tensor] = None


def focal_family_loss(pred: Tensor, target: Tensor, terms: FocalTerms) -> Tensor:
    """Reference element-wise ``L = A_s(a_{y_i} * w_c * L0)``, no reduction, via autograd.

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
    if terms.label_weight is not None:
        a_y = terms.label_weight.to(pred.dtype)[anchor_labels(target, pred.size(1))]
        loss = loss * a_y.unsqueeze(1)
    if terms.lam:
        loss = adaptive_gradient_function(loss, terms.lam)
    return loss

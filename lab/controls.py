"""Controls for the mechanism of Adaptive Focal Loss's damping (the lt100 fair fight).

AFL's gain on lt100 is the damping's (focal loss through ``A_s`` with no class weights ties
AFL), so every control here is MMDetection's focal loss changed in one way; a control that
matches AFL names where the gain comes from (``docs/benchmark.md``). The damping is
``A_s(L) = log(1 + lam_s L) / lam_s`` on each element's focal loss ``L``, whose gradient
factor ``1 / (1 + lam_s L)`` fades with ``lam_s = lam0 (1 - s)`` (:mod:`imbfocal.losses.
adaptive_gradient`):

* :class:`DampedFocalLoss` -- the damping on the positive (``t = 1``) elements only, on the
  negatives only, on all of them (= ``AdaptiveFocalLoss(beta=0)``), and with or without its
  fade.
* :class:`PositiveRampFocalLoss` -- every positive's loss times ``r_s``, the batch mean of
  ``1 / (1 + lam_s L)`` over the positives: the damping's average down-weighting of positives,
  without its per-element shape (a lower alpha that ramps back up).
* :class:`PolyFocalLoss` -- Poly-1 (Leng et al., ICLR 2022, https://arxiv.org/abs/2204.12511)
  on focal loss, a published loss of the same robust family: ``FL + eps alpha_t (1 -
  p_t)^(gamma + 1)``; ``eps = -1`` removes the leading term of focal loss's polynomial
  expansion, the one that weighs the hardest elements most.

They run on the autograd reference (no fused path), registered in ``mmdet.registry.MODELS``
when this module is imported (``custom_imports=dict(imports=['imbfocal', 'lab.controls'])``).
"""
from typing import Optional

from mmdet.registry import MODELS
from torch import Tensor

from imbfocal.losses import ClassificationLoss, adaptive_gradient_function
from imbfocal.losses.adaptive_focal_loss import AdaptiveGradientMixin
from imbfocal.losses.contract import (
    AvgFactor,
    as_float32,
    broadcast_anchor_weight,
    check_gamma,
    check_sigmoid,
    labels_to_targets,
    reduce_loss,
)
from imbfocal.losses.focal_family import check_focal_inputs, focal_core
from imbfocal.losses.state_logging import log_scalars


class _FocalControl(AdaptiveGradientMixin, ClassificationLoss):
    """Focal loss ``alpha_t (1 - p_t)^gamma l`` with AFL's damping schedule ``lam_s``;
    subclasses change :meth:`elementwise`."""

    def __init__(self, use_sigmoid: bool, gamma: float, alpha: float, lam0: float,
                 agf_iters: Optional[int], agf_fraction: Optional[float], reduction: str,
                 loss_weight: float) -> None:
        super().__init__(reduction, loss_weight)
        check_sigmoid(use_sigmoid, type(self).__name__)
        check_gamma(gamma)
        self.use_sigmoid = True
        self.gamma = gamma
        self.alpha = alpha
        self.init_adaptive_gradient(lam0, agf_iters, agf_fraction)

    def elementwise(self, focal: Tensor, target: Tensor, lam_s: float) -> Tensor:
        """The control's ``(N, C)`` loss from focal loss's ``focal`` and the targets."""
        raise NotImplementedError

    def loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        check_focal_inputs(pred, target, weight, type(self).__name__)
        pred = as_float32(pred)
        t = labels_to_targets(pred, target)
        focal = focal_core(pred, t, self.gamma, self.alpha)
        return reduce_loss(self.elementwise(focal, t, self.lam_s()),
                           broadcast_anchor_weight(weight, pred), reduction, avg_factor)


@MODELS.register_module()
class DampedFocalLoss(_FocalControl):
    """Focal loss through AFL's damping ``A_s`` on a chosen set of elements.

    Args:
        use_sigmoid: Must be True (heads read it). Defaults to True.
        gamma: Focusing parameter. Defaults to 2.
        alpha: Weight of positives in ``alpha_t``. Defaults to 0.25.
        lam0: Initial damping strength. Defaults to 4.
        agf_iters: Iterations over which ``lam_s`` fades to 0, or None. Defaults to None.
        agf_fraction: The same as a fraction of the run, or None. Defaults to None (0.5).
        scope: ``'all'`` elements (``AdaptiveFocalLoss(beta=0)``), ``'positives'`` (``t = 1``)
            or ``'negatives'`` (``t = 0``). Defaults to ``'all'``.
        fade: False holds ``lam_s`` at ``lam0`` for the whole run. Defaults to True.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier of the loss, applied last. Defaults to 1.
    """

    SCOPES = ('all', 'positives', 'negatives')

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25,
                 lam0: float = 4.0, agf_iters: Optional[int] = None,
                 agf_fraction: Optional[float] = None, scope: str = 'all', fade: bool = True,
                 reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid, gamma, alpha, lam0, agf_iters, agf_fraction, reduction,
                         loss_weight)
        if scope not in self.SCOPES:
            raise ValueError(f'scope must be one of {self.SCOPES}, got {scope!r}')
        self.scope = scope
        self.fade = fade

    def lam_s(self) -> float:
        """``lam_s`` of AFL's schedule, or ``lam0`` throughout without the fade."""
        lam_s = super().lam_s()
        return lam_s if self.fade else self.lam0

    def elementwise(self, focal: Tensor, target: Tensor, lam_s: float) -> Tensor:
        damped = adaptive_gradient_function(focal, lam_s)
        if self.scope == 'all':
            return damped
        on = target if self.scope == 'positives' else 1 - target
        return on * damped + (1 - on) * focal


@MODELS.register_module()
class PositiveRampFocalLoss(_FocalControl):
    """Focal loss with every positive element's loss times ``r_s``, the batch mean of
    ``1 / (1 + lam_s L)`` over the positive elements (detached): AFL's average damping of the
    positives, the same for each of them.

    Args:
        use_sigmoid: Must be True (heads read it). Defaults to True.
        gamma: Focusing parameter. Defaults to 2.
        alpha: Weight of positives in ``alpha_t``. Defaults to 0.25.
        lam0: Initial damping strength whose factor is averaged. Defaults to 4.
        agf_iters: Iterations over which ``lam_s`` fades to 0, or None. Defaults to None.
        agf_fraction: The same as a fraction of the run, or None. Defaults to None (0.5).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier of the loss, applied last. Defaults to 1.
    """

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25,
                 lam0: float = 4.0, agf_iters: Optional[int] = None,
                 agf_fraction: Optional[float] = None, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid, gamma, alpha, lam0, agf_iters, agf_fraction, reduction,
                         loss_weight)

    def elementwise(self, focal: Tensor, target: Tensor, lam_s: float) -> Tensor:
        positives = target > 0
        if not lam_s or not positives.any():
            if self.training:  # the log would otherwise repeat the last factor applied
                log_scalars(ramp_r_s=1.0)
            return focal
        r_s = (1 / (1 + lam_s * focal.detach()[positives])).mean()
        if self.training:
            log_scalars(ramp_r_s=r_s)
        return focal * (1 + target * (r_s - 1))


@MODELS.register_module()
class PolyFocalLoss(ClassificationLoss):
    """Poly-1 focal loss (Leng et al., ICLR 2022, https://arxiv.org/abs/2204.12511, eq. 3):
    ``alpha_t [(1 - p_t)^gamma l + eps (1 - p_t)^(gamma + 1)]``.

    Args:
        use_sigmoid: Must be True (heads read it). Defaults to True.
        gamma: Focusing parameter. Defaults to 2.
        alpha: Weight of positives in ``alpha_t``. Defaults to 0.25.
        eps: Coefficient of the added polynomial term, ``>= -1`` (at -1 it cancels the
            leading term of focal loss's expansion). Defaults to -1.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier of the loss, applied last. Defaults to 1.
    """

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25,
                 eps: float = -1.0, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        check_sigmoid(use_sigmoid, type(self).__name__)
        check_gamma(gamma)
        if not eps >= -1:
            raise ValueError(f'eps must be >= -1 (below it the loss goes negative), got {eps}')
        self.use_sigmoid = True
        self.gamma = gamma
        self.alpha = alpha
        self.eps = eps

    def loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        check_focal_inputs(pred, target, weight, type(self).__name__)
        pred = as_float32(pred)
        t = labels_to_targets(pred, target)
        p = pred.sigmoid()
        one_minus_p_t = 1 - (p * t + (1 - p) * (1 - t))
        alpha_t = self.alpha * t + (1 - self.alpha) * (1 - t)
        poly = self.eps * alpha_t * one_minus_p_t.pow(self.gamma + 1)
        loss = focal_core(pred, t, self.gamma, self.alpha) + poly
        return reduce_loss(loss, broadcast_anchor_weight(weight, pred), reduction, avg_factor)

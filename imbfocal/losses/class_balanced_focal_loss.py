"""Class-balanced focal loss for sigmoid heads and CenterNet heatmaps.

Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019,
https://arxiv.org/abs/1901.05555, applied to the focal loss of Lin et al. (ICCV 2017,
https://arxiv.org/abs/1708.02002).
"""
from typing import Callable, Optional

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..class_counts import ClassCountsMixin, ClassCountsSource
from ..registry import register
from .base import ElementwiseSigmoidLoss
from .focal_loss import FocalTerms, adaptive_gradient_function, focal_family_loss
from .utils import AvgFactor, as_float32, check_reduction, reduce_loss, resolve_reduction


def class_balanced_weights(counts: Tensor, beta: float) -> Tensor:
    """Class weights from the effective number of samples.

    ``E_c = (1 - beta ** n_c) / (1 - beta)``, ``w_c = 1 / E_c`` rescaled so that the mean of
    ``w_c`` over the ``C`` classes is 1. ``n_c = 0`` counts as 1. ``beta = 0`` gives ``w_c = 1``
    for every class; ``beta -> 1`` approaches inverse class frequency.

    Args:
        counts: Per-class counts ``n_c``, shape ``(C,)``.
        beta: Hyper-parameter in ``[0, 1)``.

    Returns:
        ``w_c`` of shape ``(C,)`` in float64.
    """
    if not 0 <= beta < 1:
        raise ValueError(f'beta must be in [0, 1), got {beta}')
    n_c = counts.to(torch.float64).clamp(min=1)
    # -expm1(n log beta) is 1 - beta**n without the cancellation for beta near 1;
    # beta = 0 gives log 0 = -inf and E_c = 1.
    log_beta = torch.tensor(beta, dtype=torch.float64, device=n_c.device).log()
    E_c = -torch.expm1(n_c * log_beta) / (1 - beta)
    w_c = 1 / E_c
    return w_c / w_c.mean()


def label_weights(w_c: Tensor, bg_weight: float = 1.0) -> Tensor:
    """``a_y`` indexed by an anchor's label ``y`` in ``[0, C]``: ``w_c``, then ``bg_weight``."""
    return torch.cat([w_c, w_c.new_full((1, ), bg_weight)])


def class_balanced_focal_loss(pred: Tensor,
                              target: Tensor,
                              w_c: Tensor,
                              gamma: float = 2.0,
                              alpha: float = 0.25,
                              bg_weight: float = 1.0) -> Tensor:
    """Element-wise class-balanced sigmoid focal loss, no reduction (reference, autograd).

    ``CB_ic = w_{y_i} * alpha_t * (1 - p_t) ** gamma * BCE(x_ic, t_ic)``: every one of the C
    terms of anchor ``i`` is scaled by the weight of its class ``y_i`` (``bg_weight`` for
    background; for targets ``(N, C)``, ``y_i`` is the argmax of a row with a positive entry).

    Args:
        pred: Logits ``(N, C)``.
        target: Labels ``(N,)`` with background ``C``, or targets ``(N, C)`` in [0, 1].
        w_c: Class weights ``(C,)``, e.g. from ``class_balanced_weights``.
        gamma: Focusing parameter.
        alpha: Weight of the positive term; a negative value disables ``alpha_t``.
        bg_weight: Weight of background anchors.

    Returns:
        The loss of shape ``(N, C)``.
    """
    terms = FocalTerms(gamma=gamma, alpha=alpha, label_weight=label_weights(w_c, bg_weight))
    return focal_family_loss(pred, target, terms)


def gaussian_class_balanced_focal_loss(pred: Tensor,
                                       gaussian_target: Tensor,
                                       w_c: Tensor,
                                       alpha: float = 2.0,
                                       gamma: float = 4.0,
                                       pos_weight: float = 1.0,
                                       neg_weight: float = 1.0) -> Tensor:
    """Element-wise class-balanced focal loss for Gaussian heatmaps (CenterNet), no reduction.

    MMDetection's ``gaussian_focal_loss`` with the positive term of class channel ``c``
    multiplied by ``w_c``: with ``p`` the predicted probability and ``t`` the target,
    ``pos = -w_c * log(p) * (1 - p) ** alpha * [t == 1]``,
    ``neg = -log(1 - p) * p ** alpha * (1 - t) ** gamma``,
    ``loss = pos_weight * pos + neg_weight * neg``.

    Args:
        pred: Probabilities ``(B, C, H, W)`` (any shape with classes on dim 1).
        gaussian_target: Gaussian heatmap of ``pred``'s shape; peaks are where it equals 1.
        w_c: Class weights ``(C,)``.
        alpha: Power of the prediction in the modulating factor.
        gamma: Power of ``1 - t`` for negatives.
        pos_weight: Weight of the positive term.
        neg_weight: Weight of the negative term.

    Returns:
        The loss, of ``pred``'s shape.
    """
    eps = 1e-12
    w_c = w_c.to(pred.dtype).view(1, -1, *([1] * (pred.dim() - 2)))
    pos_weights = gaussian_target.eq(1) * w_c
    neg_weights = (1 - gaussian_target).pow(gamma)
    pos_loss = -(pred + eps).log() * (1 - pred).pow(alpha) * pos_weights
    neg_loss = -(1 - pred + eps).log() * pred.pow(alpha) * neg_weights
    return pos_weight * pos_loss + neg_weight * neg_loss


def _identity(loss: Tensor) -> Tensor:
    return loss


class ClassBalancedMixin(ClassCountsMixin):
    """Counts buffer and ``beta`` of the class-balanced losses, and the AFL hook.

    Call ``init_class_balanced`` from ``__init__`` after ``nn.Module.__init__``.
    """

    def init_class_balanced(self, beta: float, class_counts: ClassCountsSource,
                            count_type: str) -> None:
        if not 0 <= beta < 1:
            raise ValueError(f'beta must be in [0, 1), got {beta}')
        self.beta = beta
        self.init_class_counts(class_counts, count_type)

    def class_weights(self, num_classes: int) -> Tensor:
        """``w_c`` (float64) from the counts buffer, checked against ``num_classes``."""
        return class_balanced_weights(self.checked_class_counts(num_classes), self.beta)

    def adaptive_lam(self) -> float:
        """``lam_s`` of the Adaptive Gradient Function for this forward: 0 (none) here.

        ``AdaptiveGradientMixin`` overrides it (and advances its progress counter), so call
        it once per forward.
        """
        return 0.0


@register(MODELS)
class ClassBalancedFocalLoss(ClassBalancedMixin, ElementwiseSigmoidLoss):
    """Class-balanced sigmoid focal loss (Cui et al. 2019, https://arxiv.org/abs/1901.05555).

    ``CB_ic = w_{y_i} * alpha_t * (1 - p_t) ** gamma * BCE(x_ic, t_ic)`` with
    ``E_c = (1 - beta ** n_c) / (1 - beta)`` and ``w_c = 1 / E_c`` rescaled to mean 1 over the
    classes (``n_c = 0`` counts as 1, with a warning). Background anchors are weighted by
    ``bg_weight``. For one-hot / soft targets, an anchor's class ``y_i`` is the argmax of its
    row if the row has a positive entry, else background. With equal counts (or ``beta = 0``)
    this is MMDetection's ``FocalLoss``.

    Args:
        use_sigmoid: Must be True (heads read it); this is a sigmoid loss.
        gamma: Focusing parameter.
        alpha: Weight of positives in ``alpha_t``; a negative value disables ``alpha_t``.
        beta: Effective-number hyper-parameter in ``[0, 1)``.
        class_counts: Per-class training counts: a list of ints, a COCO/LVIS annotation json, a
            counts file from ``tools/class_counts.py``, or None to have ``ClassCountsHook`` fill
            them from the training dataset (see ``imbfocal.class_counts``).
        count_type: ``'instances'`` or ``'images'``: what ``n_c`` counts.
        bg_weight: Weight of background anchors.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss, applied last.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 alpha: float = 0.25,
                 beta: float = 0.999,
                 class_counts: ClassCountsSource = None,
                 count_type: str = 'instances',
                 bg_weight: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid, reduction, loss_weight)
        self.init_class_balanced(beta, class_counts, count_type)
        self.gamma = gamma
        self.alpha = alpha
        self.bg_weight = bg_weight

    def focal_terms(self, num_classes: int) -> FocalTerms:
        """``a_y = w_y`` (``bg_weight`` for background) and the AFL ``lam_s`` (0 here)."""
        a_y = label_weights(self.class_weights(num_classes), self.bg_weight)
        return FocalTerms(gamma=self.gamma, alpha=self.alpha, label_weight=a_y,
                          lam=self.adaptive_lam())


@register(MODELS)
class GaussianClassBalancedFocalLoss(ClassBalancedMixin, nn.Module):
    """Class-balanced Gaussian focal loss for CenterNet heatmaps.

    MMDetection's ``GaussianFocalLoss`` (CornerNet / CenterNet, https://arxiv.org/abs/1808.01244)
    with the positive (peak) terms of class channel ``c`` multiplied by the class-balanced
    weight ``w_c`` of Cui et al. 2019 (https://arxiv.org/abs/1901.05555):
    ``pos = -w_c * log(p) * (1 - p) ** alpha`` at peaks (``t == 1``),
    ``neg = -log(1 - p) * p ** alpha * (1 - t) ** gamma`` elsewhere. Same inputs as
    ``GaussianFocalLoss``: probabilities after sigmoid, Gaussian targets, classes on dim 1,
    ``avg_factor`` = number of peaks; optionally ``pos_inds`` / ``pos_labels`` as used by
    ``CenterNetUpdateHead``. With equal counts it equals ``GaussianFocalLoss``.

    Args:
        alpha: Power of the prediction in the modulating factor.
        gamma: Power of ``1 - t`` for negatives.
        beta: Effective-number hyper-parameter in ``[0, 1)``.
        class_counts: Per-class training counts (see ``ClassBalancedFocalLoss``).
        count_type: ``'instances'`` or ``'images'``.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss, applied last.
        pos_weight: Weight of the positive term.
        neg_weight: Weight of the negative term.
    """

    def __init__(self,
                 alpha: float = 2.0,
                 gamma: float = 4.0,
                 beta: float = 0.999,
                 class_counts: ClassCountsSource = None,
                 count_type: str = 'instances',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 pos_weight: float = 1.0,
                 neg_weight: float = 1.0) -> None:
        super().__init__()
        self.init_class_balanced(beta, class_counts, count_type)
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight
        self.alpha = alpha
        self.gamma = gamma
        self.pos_weight = pos_weight
        self.neg_weight = neg_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                pos_inds: Optional[Tensor] = None,
                pos_labels: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: AvgFactor = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: Probabilities, classes on dim 1: ``(B, C, H, W)``, or ``(N, C)`` with
                ``pos_inds``.
            target: Gaussian targets of ``pred``'s shape.
            pos_inds: Rows of ``pred`` that are positives (then peaks are not read from
                ``target``); requires ``pos_labels``.
            pos_labels: Class of each positive, shape ``(M,)``.
            weight: Element-wise weight, broadcastable to ``pred`` (not with ``pos_inds``).
            avg_factor: Divisor of the summed loss for ``reduction='mean'``.
            reduction_override: Replaces ``self.reduction`` for this call.

        Returns:
            The loss, float32 (float64 for float64 input).
        """
        reduction = resolve_reduction(self.reduction, reduction_override)
        if pred.dim() < 2 or target.shape != pred.shape:
            raise ValueError(f'{type(self).__name__} expects predictions with classes on dim '
                             f'1 and targets of the same shape, got {tuple(pred.shape)} and '
                             f'{tuple(target.shape)}')
        w_c = self.class_weights(pred.size(1))
        if pos_inds is not None and pos_labels is None:
            raise ValueError('pos_inds needs pos_labels')
        if pos_inds is not None and weight is not None:
            raise ValueError('weight is not supported together with pos_inds (MMDetection '
                             'ignores it there)')
        lam_s = self.adaptive_lam()
        transform = _identity if lam_s == 0 else (
            lambda loss: adaptive_gradient_function(loss, lam_s))
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred, target = as_float32(pred), as_float32(target)
            if pos_inds is None:
                loss = gaussian_class_balanced_focal_loss(pred, target, w_c, self.alpha,
                                                          self.gamma, self.pos_weight,
                                                          self.neg_weight)
                loss = reduce_loss(transform(loss), weight, reduction, avg_factor)
            else:
                loss = self._loss_with_pos_inds(pred, target, pos_inds, pos_labels, w_c,
                                                transform, reduction, avg_factor)
        return self.loss_weight * loss

    def _loss_with_pos_inds(self, pred: Tensor, target: Tensor, pos_inds: Tensor,
                            pos_labels: Tensor, w_c: Tensor,
                            transform: Callable[[Tensor], Tensor], reduction: str,
                            avg_factor: AvgFactor) -> Tensor:
        # MMDetection's gaussian_focal_loss_with_pos_inds, positives scaled by w_{pos_labels}.
        eps = 1e-12
        pos_pred = pred[pos_inds].gather(1, pos_labels.unsqueeze(1))
        w_pos = w_c.to(pred.dtype)[pos_labels].unsqueeze(1)
        pos_loss = -(pos_pred + eps).log() * (1 - pos_pred).pow(self.alpha) * w_pos
        neg_loss = -(1 - pred + eps).log() * pred.pow(self.alpha) * (1 - target).pow(
            self.gamma)
        pos_loss = reduce_loss(transform(self.pos_weight * pos_loss), None, reduction,
                               avg_factor)
        neg_loss = reduce_loss(transform(self.neg_weight * neg_loss), None, reduction,
                               avg_factor)
        return pos_loss + neg_loss

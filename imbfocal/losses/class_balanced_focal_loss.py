"""Class-balanced focal loss for sigmoid heads and CenterNet heatmaps.

Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019,
https://arxiv.org/abs/1901.05555, applied to the focal loss ``FL`` of Lin et al. (ICCV 2017,
https://arxiv.org/abs/1708.02002), with the effective number ``E_c = (1 - beta^n_c) /
(1 - beta)`` and ``w_c`` proportional to ``1 / E_c``. Three ways to apply ``w_c``
(``weighting``), in terms of the focal family (:mod:`.focal_family`):

=========== ===================================================== ==========================
weighting   loss                                                  FocalTerms
=========== ===================================================== ==========================
positive    ``w_c FL_ic`` on the positive element (``c = y_i``),  ``positive_weight=w_c``
            ``FL_ic`` elsewhere (detection form, default)
column      ``w_c FL_ic`` for every element of class ``c``        ``class_weight=w_c``
row         ``w_{y_i} FL_ic`` for every element of anchor ``i``,  ``weight_by_label=[w_c,
            ``bg_weight`` for background (Cui et al.)              bg_weight]``
=========== ===================================================== ==========================

For ``'positive'`` and ``'column'`` the weights have mean 1 over the training instances
(``sum_c n_c w_c = sum_c n_c``, the positive mass of focal loss), then are clipped at
``max_weight``; for ``'row'`` they have mean 1 over the classes, as in the paper.
"""
from typing import Optional

import torch
from mmdet.registry import MODELS
from torch import Tensor

from ..class_counts import ClassCountsMixin, ClassCountsSource
from ..registry import register
from .adaptive_gradient import adaptive_gradient_function
from .contract import (
    AvgFactor,
    HeatmapLoss,
    check_alpha,
    check_gamma,
    check_non_negative,
    check_positive,
    check_probability,
    reduce_loss,
)
from .focal_family import FocalFamilyLoss, FocalTerms
from .state_logging import log_class_weights


def class_balanced_weights(counts: Tensor, beta: float, mean_over: str = 'classes',
                           max_weight: Optional[float] = None) -> Tensor:
    """Class weights from the effective number of samples.

    ``E_c = (1 - beta ** n_c) / (1 - beta)``, ``w_c = 1 / E_c`` rescaled so that its mean over
    the ``C`` classes (``mean_over='classes'``) or over the training instances
    (``'instances'``: ``sum_c n_c w_c = sum_c n_c``) is 1, then clipped at ``max_weight``.
    ``n_c = 0`` counts as 1. ``beta = 0`` gives ``w_c = 1`` for every class; ``beta -> 1``
    approaches inverse class frequency.

    Args:
        counts: Per-class counts ``n_c``, shape ``(C,)``.
        beta: Hyper-parameter in ``[0, 1)``.
        mean_over: ``'classes'`` or ``'instances'``. Defaults to ``'classes'``.
        max_weight: Upper bound of ``w_c`` after the rescaling, or None. Defaults to None.

    Returns:
        ``w_c`` of shape ``(C,)`` in float64.

    Raises:
        ValueError: For ``beta`` outside ``[0, 1)`` or a ``max_weight`` that is not a positive
            finite number.
    """
    check_probability(beta, 'beta')
    check_max_weight(max_weight)
    n_c = counts.to(torch.float64).clamp(min=1)
    # -expm1(n log beta) is 1 - beta**n without the cancellation for beta near 1;
    # beta = 0 gives log 0 = -inf and E_c = 1.
    log_beta = torch.tensor(beta, dtype=torch.float64, device=n_c.device).log()
    E_c = -torch.expm1(n_c * log_beta) / (1 - beta)
    w_c = 1 / E_c
    if mean_over == 'classes':
        w_c = w_c / w_c.mean()
    elif mean_over == 'instances':
        w_c = w_c * n_c.sum() / (n_c * w_c).sum()
    else:
        raise ValueError(f"mean_over must be 'classes' or 'instances', got {mean_over!r}")
    return w_c if max_weight is None else w_c.clamp(max=max_weight)


def check_max_weight(max_weight: Optional[float]) -> Optional[float]:
    """Return ``max_weight`` if it is None (no clipping) or positive and finite, else raise."""
    return max_weight if max_weight is None else check_positive(max_weight, 'max_weight')


def weight_counts(module: ClassCountsMixin, num_classes: int) -> Tensor:
    """The counts a class-balanced module's weights come from: its counts buffer, checked
    against ``num_classes``; at ``beta = 0`` every class weighs the same whatever its count,
    so a module without counts weighs them as equal counts (no counts needed)."""
    if module.beta == 0 and not module.has_class_counts:
        return torch.ones(num_classes, dtype=torch.long, device=module.class_counts.device)
    return module.checked_class_counts(num_classes)


def weights_by_label(w_c: Tensor, bg_weight: float = 1.0) -> Tensor:
    """``a_y`` indexed by an anchor's label ``y`` in ``[0, C]``: ``w_c``, then ``bg_weight``."""
    return torch.cat([w_c, w_c.new_full((1, ), bg_weight)])


@register(MODELS)
class ClassBalancedFocalLoss(ClassCountsMixin, FocalFamilyLoss):
    """Class-balanced sigmoid focal loss (Cui et al. 2019, https://arxiv.org/abs/1901.05555).

    Focal loss with each class's weight ``w_c`` (``E_c = (1 - beta ** n_c) / (1 - beta)``,
    ``w_c`` proportional to ``1 / E_c``; ``n_c = 0`` counts as 1, with a warning) applied as
    ``weighting`` says (module docstring): on the positive element of the ground-truth class
    (``'positive'``, default), on every element of class ``c`` (``'column'``), or on every
    element of an anchor of class ``y_i`` with ``bg_weight`` for background (``'row'``, the
    paper's form). For one-hot / soft targets, ``'row'`` takes an anchor's class from the
    argmax of a row with a positive entry, and ``'positive'`` weighs an element by
    ``t * w_c + (1 - t)``. With equal counts (or ``beta = 0`` and ``'row'``) this is
    MMDetection's ``FocalLoss``.

    The defaults are the detection settings the shipped configs use (chosen on digits-LT
    lt100's val split, ``docs/benchmark.md``); Cui et al.'s own form is
    ``weighting='row', beta=0.999, max_weight=None``.

    Args:
        use_sigmoid: Must be True (heads read it); this is a sigmoid loss. Defaults to True.
        gamma: Focusing parameter, 0 or at least 1. Defaults to 2.
        alpha: Weight of positives in ``alpha_t``, in ``[0, 1]``; a negative value disables
            ``alpha_t``. Defaults to 0.25.
        beta: Effective-number hyper-parameter in ``[0, 1)``. Defaults to 0.99.
        weighting: ``'positive'``, ``'column'`` or ``'row'``. Defaults to ``'positive'``.
        max_weight: Upper bound of ``w_c`` (positive), or None for none. Defaults to 1: no
            class above focal loss's weight.
        class_counts: Per-class training counts: a list of ints, a COCO/LVIS annotation json, a
            counts file from ``tools/class_counts.py``, or None to have ``ClassCountsHook`` fill
            them from the training dataset (see ``imbfocal.class_counts``). Defaults to None.
        count_type: ``'instances'`` or ``'images'``: what ``n_c`` counts.
            Defaults to ``'instances'``.
        bg_weight: Weight of background anchors, ``>= 0``, ``'row'`` only. Defaults to 1.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier of the loss, applied last. Defaults to 1.

    Raises:
        ValueError: For a hyper-parameter outside its range, NaN or inf, naming it.
    """

    WEIGHTINGS = ('positive', 'column', 'row')

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 alpha: float = 0.25,
                 beta: float = 0.99,
                 weighting: str = 'positive',
                 max_weight: Optional[float] = 1.0,
                 class_counts: ClassCountsSource = None,
                 count_type: str = 'instances',
                 bg_weight: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid, reduction, loss_weight)
        if weighting not in self.WEIGHTINGS:
            raise ValueError(f'weighting must be one of {self.WEIGHTINGS}, got {weighting!r}')
        check_non_negative(bg_weight, 'bg_weight')
        if weighting != 'row' and bg_weight != 1.0:
            raise ValueError(f"bg_weight weighs background rows, which weighting={weighting!r} "
                             "leaves alone: use weighting='row' or drop bg_weight")
        self.beta = check_probability(beta, 'beta')
        self.weighting = weighting
        self.max_weight = check_max_weight(max_weight)
        self.gamma = check_gamma(gamma)
        self.alpha = check_alpha(alpha)
        self.bg_weight = bg_weight
        self.init_class_counts(class_counts, count_type)

    def class_weights(self, num_classes: int) -> Tensor:
        """``w_c`` (float64) from the counts buffer, checked against ``num_classes``."""
        mean_over = 'classes' if self.weighting == 'row' else 'instances'
        return class_balanced_weights(weight_counts(self, num_classes), self.beta, mean_over,
                                      self.max_weight)

    def focal_terms(self, num_classes: int) -> FocalTerms:
        """``w_c`` as ``positive_weight``, ``class_weight`` or ``weight_by_label``."""
        w_c = self.class_weights(num_classes)
        if self.training:
            log_class_weights(self, w_c)
        if self.weighting == 'positive':
            return FocalTerms(gamma=self.gamma, alpha=self.alpha, positive_weight=w_c)
        if self.weighting == 'column':
            return FocalTerms(gamma=self.gamma, alpha=self.alpha, class_weight=w_c)
        return FocalTerms(gamma=self.gamma, alpha=self.alpha,
                          weight_by_label=weights_by_label(w_c, self.bg_weight))


@register(MODELS)
class GaussianClassBalancedFocalLoss(ClassCountsMixin, HeatmapLoss):
    """Class-balanced Gaussian focal loss for CenterNet heatmaps.

    MMDetection's ``GaussianFocalLoss`` (CornerNet / CenterNet, https://arxiv.org/abs/1808.01244)
    with the positive (peak) terms of class channel ``c`` multiplied by the class-balanced
    weight ``w_c`` of Cui et al. 2019 (https://arxiv.org/abs/1901.05555), ``p`` the predicted
    probability and ``t`` the Gaussian target::

        pos = -w_c * log(p) * (1 - p)^alpha                 at peaks (t == 1)
        neg = -log(1 - p) * p^alpha * (1 - t)^gamma         elsewhere
        loss = pos_weight * pos + neg_weight * neg

    The weights have mean 1 over the training instances and are clipped at ``max_weight``, as
    ``ClassBalancedFocalLoss``'s ``'positive'`` weighting. Same inputs as ``GaussianFocalLoss``
    (see :class:`~.contract.HeatmapLoss`), ``pos_inds`` / ``pos_labels`` included. With equal
    counts it equals ``GaussianFocalLoss``.

    Args:
        alpha: Power of the prediction in the modulating factor, ``>= 0``. Defaults to 2.
        gamma: Power of ``1 - t`` for negatives, ``>= 0``. Defaults to 4.
        beta: Effective-number hyper-parameter in ``[0, 1)``. Defaults to 0.99.
        max_weight: Upper bound of ``w_c`` (positive), or None for none. Defaults to 2.
        class_counts: Per-class training counts (see ``ClassBalancedFocalLoss``).
            Defaults to None.
        count_type: ``'instances'`` or ``'images'``. Defaults to ``'instances'``.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier of the loss, applied last. Defaults to 1.
        pos_weight: Weight of the positive term, ``>= 0``. Defaults to 1.
        neg_weight: Weight of the negative term, ``>= 0``. Defaults to 1.

    Raises:
        ValueError: For a hyper-parameter outside its range, NaN or inf, naming it.
    """

    def __init__(self,
                 alpha: float = 2.0,
                 gamma: float = 4.0,
                 beta: float = 0.99,
                 max_weight: Optional[float] = 2.0,
                 class_counts: ClassCountsSource = None,
                 count_type: str = 'instances',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 pos_weight: float = 1.0,
                 neg_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        self.beta = check_probability(beta, 'beta')
        self.max_weight = check_max_weight(max_weight)
        self.alpha = check_non_negative(alpha, 'alpha')
        self.gamma = check_non_negative(gamma, 'gamma')
        self.pos_weight = check_non_negative(pos_weight, 'pos_weight')
        self.neg_weight = check_non_negative(neg_weight, 'neg_weight')
        self.init_class_counts(class_counts, count_type)

    def class_weights(self, num_classes: int) -> Tensor:
        """``w_c`` (float64) from the counts buffer, checked against ``num_classes``."""
        w_c = class_balanced_weights(weight_counts(self, num_classes), self.beta, 'instances',
                                     self.max_weight)
        if self.training:
            log_class_weights(self, w_c)
        return w_c

    def loss(self, pred: Tensor, target: Tensor, pos_inds: Optional[Tensor],
             pos_labels: Optional[Tensor], weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """The class-balanced heatmap loss (class docstring)."""
        w_c = self.class_weights(pred.size(1))
        return self.heatmap_focal_loss(pred, target, pos_inds, pos_labels, weight, reduction,
                                       avg_factor, w_c, lam=0.0)

    def heatmap_focal_loss(self, pred: Tensor, target: Tensor, pos_inds: Optional[Tensor],
                           pos_labels: Optional[Tensor], weight: Optional[Tensor],
                           reduction: str, avg_factor: AvgFactor, w_c: Tensor,
                           lam: float) -> Tensor:
        """The class docstring's loss with class weights ``w_c``, every element passed
        through ``A_s`` with strength ``lam`` (0: none).

        Without ``pos_inds`` the peaks are where ``target == 1``; with them, as MMDetection's
        ``gaussian_focal_loss_with_pos_inds``, the positive terms are read at
        ``pred[pos_inds, pos_labels]`` and the positive and negative sums are reduced apart.
        """
        def damped(loss: Tensor) -> Tensor:
            return adaptive_gradient_function(loss, lam) if lam else loss

        w_c = w_c.to(pred.dtype)
        eps = 1e-12
        neg_loss = -(1 - pred + eps).log() * pred.pow(self.alpha) * (1 - target).pow(self.gamma)
        if pos_inds is None:
            w_c = w_c.view(1, -1, *([1] * (pred.dim() - 2)))
            pos_loss = -(pred + eps).log() * (1 - pred).pow(self.alpha) * (target.eq(1) * w_c)
            loss = self.pos_weight * pos_loss + self.neg_weight * neg_loss
            return reduce_loss(damped(loss), weight, reduction, avg_factor)
        pos_pred = pred[pos_inds].gather(1, pos_labels.unsqueeze(1))
        pos_loss = -(pos_pred + eps).log() * (1 - pos_pred).pow(self.alpha) * \
            w_c[pos_labels].unsqueeze(1)
        pos_loss = reduce_loss(damped(self.pos_weight * pos_loss), None, reduction, avg_factor)
        neg_loss = reduce_loss(damped(self.neg_weight * neg_loss), None, reduction, avg_factor)
        return pos_loss + neg_loss

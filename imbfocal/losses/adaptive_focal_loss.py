"""Adaptive Focal Loss (AFL): class-balanced focal loss through an Adaptive Gradient Function.

Su, Adam and Nasrudin, "Adaptive Focal Loss for Keypoint-Based Deep Learning Detectors
Addressing Class Imbalance", IEEE Access 13, 2025, https://ieeexplore.ieee.org/document/10872927/.
**This project's reconstruction from the abstract, not the authors' published formula**
(:mod:`.adaptive_gradient` has ``A_s`` and its schedule)::

    AFL_ic = A_s(CB_ic),    A_s(L) = log(1 + lam_s L) / lam_s,    lam_s = lam0 (1 - s)

with ``CB`` the class-balanced focal loss and ``s = min(1, iter / T)``, ``T`` a number of
iterations or a fraction of the run. In terms of
the focal family: ``FocalTerms`` of :class:`~.class_balanced_focal_loss.ClassBalancedFocalLoss`
with ``lam=lam_s``.
"""
import dataclasses
import warnings
from typing import Optional

import torch
from mmdet.registry import MODELS
from torch import Tensor

from ..class_counts import ClassCountsSource
from ..registry import register
from .adaptive_gradient import damping_strength, running_max_iters, running_train_iter
from .class_balanced_focal_loss import ClassBalancedFocalLoss, GaussianClassBalancedFocalLoss
from .contract import (
    AvgFactor,
    check_count,
    check_fraction,
    check_loaded_state,
    check_non_negative,
)
from .focal_family import FocalTerms
from .state_logging import log_scalars


class AdaptiveGradientMixin:
    """The training progress ``s`` of an AFL module and its ``lam_s``.

    The iteration lives in the int64 buffer ``agf_iter`` (saved with checkpoints; a checkpoint
    whose ``agf_iter`` is negative or not a whole number is refused, naming the key). In training
    mode, each forward reads the runner's iteration (MMEngine's ``MessageHub``) while a train
    loop runs; otherwise it uses ``agf_iter`` and then adds 1 to it (so outside a runner the
    counter counts training forward calls). Evaluation-mode forwards leave it alone. The
    horizon ``T`` is ``agf_iters``, or ``agf_fraction`` of the runner's ``max_iters``; outside
    a train loop a fractional horizon is unknown and ``lam_s`` stays at ``lam0`` (with a
    warning).
    """

    DEFAULT_FRACTION = 0.5

    def init_adaptive_gradient(self, lam0: float, agf_iters: Optional[int],
                               agf_fraction: Optional[float]) -> None:
        """Check and keep the schedule's arguments; register the ``agf_iter`` buffer."""
        check_non_negative(lam0, 'lam0')
        if agf_iters is not None and agf_fraction is not None:
            raise ValueError('give the damping schedule as agf_iters (iterations) or as '
                             'agf_fraction (of the run), not both')
        if agf_iters is not None:
            check_count(agf_iters, 'agf_iters')
        if agf_fraction is not None:
            check_fraction(agf_fraction, 'agf_fraction')
        self.lam0 = lam0
        self.agf_iters = agf_iters
        self.agf_fraction = (self.DEFAULT_FRACTION if agf_iters is None and agf_fraction is None
                             else agf_fraction)
        self.register_buffer('agf_iter', torch.zeros((), dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """A checkpoint's ``agf_iter`` must be a whole number ``>= 0``; anything else raises
        ValueError naming the key (a corrupt checkpoint is not trained on)."""
        check_loaded_state(state_dict.get(prefix + 'agf_iter'), prefix + 'agf_iter',
                           'iterations', integral=True)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def horizon(self) -> Optional[int]:
        """``T``: ``agf_iters``, or ``agf_fraction`` of the run (None outside a train loop)."""
        if self.agf_iters is not None:
            return self.agf_iters
        max_iters = running_max_iters()
        if max_iters is None:
            if self.training and not getattr(self, '_horizon_warned', False):
                self._horizon_warned = True
                warnings.warn(f'{type(self).__name__}: agf_fraction={self.agf_fraction} of a run '
                              'whose length no MMEngine train loop gives; lam_s stays at lam0. '
                              'Give agf_iters for a schedule in iterations.', stacklevel=4)
            return None
        return round(self.agf_fraction * max_iters)

    def lam_s(self) -> float:
        """``lam_s`` for this forward; in training, advances the progress. Call once each."""
        runner_iter = running_train_iter() if self.training else None
        if runner_iter is not None:
            self.agf_iter.fill_(runner_iter)
        lam_s = damping_strength(self.lam0, int(self.agf_iter), self.horizon())
        if self.training and runner_iter is None:
            self.agf_iter += 1
        if self.training:
            log_scalars(afl_lam_s=lam_s)
        return lam_s


@register(MODELS)
class AdaptiveFocalLoss(AdaptiveGradientMixin, ClassBalancedFocalLoss):
    """Adaptive Focal Loss, this project's reconstruction from the abstract of Su et al. 2025.

    NOT the authors' published formula (see the module docstring): ``AFL_ic = A_s(CB_ic)``
    with ``CB_ic`` the loss of ``ClassBalancedFocalLoss`` (Cui et al. 2019,
    https://arxiv.org/abs/1901.05555), ``A_s(L) = log(1 + lam_s * L) / lam_s``,
    ``lam_s = lam0 * (1 - s)``, ``s = min(1, iter / T)``; ``A_s`` is the identity once
    ``s = 1`` or if ``lam0 = 0``. ``A_s`` acts on each element before the anchor ``weight`` and
    the reduction. Paper: https://ieeexplore.ieee.org/document/10872927/.

    ``iter`` is the runner's iteration while a train loop runs, else a counter of
    training-mode forward calls; it is kept in the buffer ``agf_iter`` (checkpointed). ``T``
    is ``agf_iters``, or ``agf_fraction`` of the run's iterations (``max_iters``).

    Args:
        use_sigmoid: Must be True (heads read it); this is a sigmoid loss. Defaults to True.
        gamma: Focusing parameter. Defaults to 2.
        alpha: Weight of positives in ``alpha_t``, in ``[0, 1]``; negative disables it.
            Defaults to 0.25.
        beta: Effective-number hyper-parameter in ``[0, 1)``; 0 gives every class weight 1
            (focal loss through the damping, no class counts needed), 0.99 the paper's
            class-balanced form. Defaults to 0.
        weighting: How the class weights apply (``ClassBalancedFocalLoss``).
            Defaults to ``'positive'``.
        max_weight: Upper bound of the class weights, or None. Defaults to 2.
        lam0: Initial damping strength, ``>= 0``. Defaults to 4.
        agf_iters: Iterations over which ``lam_s`` decays linearly to 0, or None.
            Defaults to None.
        agf_fraction: The same as a fraction of the run's iterations, or None. Defaults to
            None: 0.5 when ``agf_iters`` is None too.
        class_counts: Per-class training counts (see ``ClassBalancedFocalLoss``).
            Defaults to None.
        count_type: ``'instances'`` or ``'images'``. Defaults to ``'instances'``.
        bg_weight: Weight of background anchors, ``weighting='row'`` only. Defaults to 1.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier of the loss, applied last. Defaults to 1.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 alpha: float = 0.25,
                 beta: float = 0.0,
                 weighting: str = 'positive',
                 max_weight: Optional[float] = 2.0,
                 lam0: float = 4.0,
                 agf_iters: Optional[int] = None,
                 agf_fraction: Optional[float] = None,
                 class_counts: ClassCountsSource = None,
                 count_type: str = 'instances',
                 bg_weight: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(use_sigmoid=use_sigmoid, gamma=gamma, alpha=alpha, beta=beta,
                         weighting=weighting, max_weight=max_weight,
                         class_counts=class_counts, count_type=count_type,
                         bg_weight=bg_weight, reduction=reduction, loss_weight=loss_weight)
        self.init_adaptive_gradient(lam0, agf_iters, agf_fraction)

    def focal_terms(self, num_classes: int) -> FocalTerms:
        """Class-balanced focal terms with ``lam = lam_s``."""
        return dataclasses.replace(super().focal_terms(num_classes), lam=self.lam_s())


@register(MODELS)
class GaussianAdaptiveFocalLoss(AdaptiveGradientMixin, GaussianClassBalancedFocalLoss):
    """Adaptive Focal Loss for CenterNet heatmaps (this project's reconstruction, see above).

    ``A_s`` applied element-wise to ``GaussianClassBalancedFocalLoss``; same inputs as
    MMDetection's ``GaussianFocalLoss``. NOT the authors' published formula (only the abstract
    of Su et al. 2025, https://ieeexplore.ieee.org/document/10872927/, was available).

    Args:
        alpha: Power of the prediction in the modulating factor. Defaults to 2.
        gamma: Power of ``1 - t`` for negatives. Defaults to 4.
        beta: Effective-number hyper-parameter in ``[0, 1)``. Defaults to 0.99.
        max_weight: Upper bound of the class weights, or None. Defaults to 2.
        lam0: Initial damping strength, ``>= 0``. Defaults to 1.
        agf_iters: Iterations over which ``lam_s`` decays linearly to 0, or None.
            Defaults to None.
        agf_fraction: The same as a fraction of the run's iterations, or None. Defaults to
            None: 0.5 when ``agf_iters`` is None too.
        class_counts: Per-class training counts (see ``ClassBalancedFocalLoss``).
            Defaults to None.
        count_type: ``'instances'`` or ``'images'``. Defaults to ``'instances'``.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight: Multiplier of the loss, applied last. Defaults to 1.
        pos_weight: Weight of the positive term. Defaults to 1.
        neg_weight: Weight of the negative term. Defaults to 1.
    """

    def __init__(self,
                 alpha: float = 2.0,
                 gamma: float = 4.0,
                 beta: float = 0.99,
                 max_weight: Optional[float] = 2.0,
                 lam0: float = 1.0,
                 agf_iters: Optional[int] = None,
                 agf_fraction: Optional[float] = None,
                 class_counts: ClassCountsSource = None,
                 count_type: str = 'instances',
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 pos_weight: float = 1.0,
                 neg_weight: float = 1.0) -> None:
        super().__init__(alpha=alpha, gamma=gamma, beta=beta, max_weight=max_weight,
                         class_counts=class_counts,
                         count_type=count_type, reduction=reduction, loss_weight=loss_weight,
                         pos_weight=pos_weight, neg_weight=neg_weight)
        self.init_adaptive_gradient(lam0, agf_iters, agf_fraction)

    def loss(self, pred: Tensor, target: Tensor, pos_inds: Optional[Tensor],
             pos_labels: Optional[Tensor], weight: Optional[Tensor], reduction: str,
             avg_factor: AvgFactor) -> Tensor:
        """The class-balanced heatmap loss through ``A_s`` with this forward's ``lam_s``."""
        w_c = self.class_weights(pred.size(1))
        return self.heatmap_focal_loss(pred, target, pos_inds, pos_labels, weight, reduction,
                                       avg_factor, w_c, lam=self.lam_s())
